"""The six-step pipeline in memory, streamed with one worker and streamed with two.

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_pipeline.py --records 1000000

Pipeline (issue 21): normalize, quality, dedup.exact, dedup.minhash, langid(keep=["en"]),
decontaminate(GSM8K test) on ``ik.synth.corpus(N, seed=0)``. Three jobs, each in a fresh
child process, ``--repeats`` times (medians):

- ``memory``: ``ik.read(path).pipe(*steps)``, then ``write_parquet``;
- ``workers=1``: ``Pipeline(steps).run(path, output=..., batch_size=B)``;
- ``workers=2``: the same with ``workers=2``;
- ``ray``: the same with ``executor="ray"`` on a local Ray instance with ``num_cpus=2`` (the
  cores ``workers=2`` gets); ``ray.init`` is timed apart (``init_s``) and not in ``seconds``.

``--pipeline five`` leaves decontaminate out (the five steps of docs/scaling.md's Ray profile).

Each job reports wall time (read to last byte written), the CPU seconds and the peak RSS of
its whole process tree (the child and its worker processes; RSS sampled every 50 ms and
summed), a checksum of the
kept records in order (equal on every path) and its per-step seconds. Results go to
benchmarks/results/pipeline.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from instructkit.transform import Map

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GSM8K = ROOT.parent / "shared" / "data" / "benchmarks" / "gsm8k_test.jsonl"
STEP_NAMES = ["normalize", "quality", "dedup.exact", "dedup.minhash", "langid", "decontaminate"]


def steps(pipeline: str = "six") -> list[Any]:
    import instructkit as ik

    chosen = [
        ik.normalize(),
        ik.quality(),
        ik.dedup.exact(),
        ik.dedup.minhash(),
        ik.langid(keep=["en"]),
    ]
    if pipeline == "six":
        chosen.append(ik.decontaminate([ik.benchmarks.gsm8k(GSM8K)]))
    return chosen


def _digest(frames: Any) -> str:
    """Order-sensitive checksum of the kept records (id and the text columns)."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame.select("id", "instruction", "input", "output").hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()[:16]


def job(mode: str, path: str, batch_size: int, pipeline: str = "six") -> dict[str, Any]:
    """One run in this process; returns seconds, records kept, checksum and per-step seconds
    (``ray``: also ``init_s``, the seconds ``ray.init`` took before ``seconds`` started)."""
    import instructkit as ik

    init = None
    if mode == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - t0
    started = time.perf_counter()
    if mode == "memory":
        t0 = time.perf_counter()
        ds = ik.read(path)
        read = time.perf_counter() - t0
        out = ds.pipe(*steps(pipeline))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out.to_polars().write_parquet(Path(tmp) / "out.parquet")
        write = time.perf_counter() - t0
        seconds = time.perf_counter() - started
        report = out.report()
        digest = _digest([out.to_polars()])
        kept = len(out)
    else:
        if mode == "ray":
            options: dict[str, Any] = {"executor": "ray"}
        else:
            workers = int(mode.split("=")[1])
            # workers=1 is the default, left out so a checkout without workers= runs as baseline
            options = {"workers": workers} if workers != 1 else {}
        with tempfile.TemporaryDirectory() as tmp:
            result = ik.Pipeline(steps(pipeline)).run(path, output=Path(tmp) / "run", batch_size=batch_size,
                                                      **options)
            seconds = time.perf_counter() - started
            digest = _digest(result.read())
        report = result.report()
        kept, read, write = result.records_out, None, None
    per_step = {row["step"]: row["seconds"] for row in report.iter_rows(named=True)}
    if read is not None:
        per_step["read"] = read
        per_step["write"] = write
    if init is not None:
        import ray

        ray.shutdown()
    return {"seconds": seconds, "init_s": init, "kept": kept, "checksum": digest, "steps": per_step}


def measure(mode: str, path: Path, batch_size: int, pipeline: str = "six") -> dict[str, Any]:
    """``job`` in a fresh child process; adds the peak RSS of its process tree (MB) and the
    CPU seconds of the tree (user + system of the child and its reaped workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r})\n"
            "from bench_pipeline import job\n"
            f"print('RESULT ' + json.dumps(job({mode!r}, {str(path)!r}, {batch_size}, {pipeline!r})))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "INSTRUCTKIT_QUIET": "1"})
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return {**json.loads(line[7:]), "peak_mb": peak / 2**20, "cpu_s": cpu}


def concurrency(workers: tuple[int, ...] = (1, 2, 4), seconds: float = 1.0) -> None:
    """Wall time of a step that sleeps ``seconds`` per batch (8 batches, two passes around
    an exact dedup): shows batches overlapping on workers without needing free cores."""
    import instructkit as ik

    ds = ik.Dataset.from_records([{"instruction": f"t{i}", "output": "o"} for i in range(80)])
    for n in workers:
        started = time.perf_counter()
        result = ik.Pipeline([Sleepy(seconds), ik.dedup.exact(), Sleepy(seconds)]).run(ds, batch_size=10, workers=n)
        print(f"workers={n}: {time.perf_counter() - started:.1f} s for 8 batches x 2 passes x {seconds} s "
              f"of sleep, {result.records_out} kept")


class Sleepy(Map):
    """Sleeps on each batch (a stand-in for work that needs no CPU)."""

    name = "bench.sleepy"

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def apply(self, frame: Any) -> Any:
        time.sleep(self.seconds)
        return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["memory", "workers=1", "workers=2"],
                        help="memory, workers=N, ray")
    parser.add_argument("--pipeline", choices=["six", "five"], default="six",
                        help="five: without decontaminate")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pipeline.md")
    parser.add_argument("--concurrency", action="store_true", help="only the sleeping-step check")
    args = parser.parse_args()
    if args.concurrency:
        concurrency()
        return
    sys.path.insert(0, str(HERE))
    from harness import corpus

    path = corpus(args.records)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.modes}
    load = [_uptime()]
    for _ in range(args.repeats):
        for mode in args.modes:  # interleaved, so load on the machine hits every mode alike
            runs[mode].append(measure(mode, path, args.batch_size, args.pipeline))
            print(mode, json.dumps(runs[mode][-1]), flush=True)
    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "peak_mb": max(r["peak_mb"] for r in rs),
            "cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "init_s": statistics.median(r["init_s"] for r in rs) if rs[0].get("init_s") is not None else None,
            "kept": rs[0]["kept"],
            "checksums": sorted({r["checksum"] for r in rs}),
            "steps": {k: statistics.median(r["steps"].get(k, 0.0) for r in rs) for k in rs[0]["steps"]},
        }
    load.append(_uptime())
    print(json.dumps(summary, indent=1))
    write(args, summary, runs, load)


def _uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def write(args: argparse.Namespace, summary: dict[str, Any], runs: dict[str, list[dict[str, Any]]],
          load: list[str]) -> None:
    chosen = ", ".join(STEP_NAMES[:5]) + (", decontaminate(GSM8K test)" if args.pipeline == "six" else "")
    lines = [
        "# The pipeline: in memory, streamed, on worker processes, on Ray",
        "",
        f"`flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_pipeline.py --records {args.records} "
        f"--batch-size {args.batch_size} --repeats {args.repeats} --pipeline {args.pipeline} "
        f"--modes {' '.join(args.modes)}`",
        "",
        f"{args.records:,} records of `ik.synth.corpus({args.records}, seed=0)`; {chosen}. "
        f"{os.cpu_count()} cores, shared with other jobs (`uptime` load averages before and after: "
        f"{load[0]}; {load[1]}); medians of {args.repeats} run(s) per mode, "
        "interleaved. Peak RSS: the whole process tree (sum over the child and its workers; a Ray "
        "run's raylet and workers are not children of the driver, so only the driver's is counted). "
        "`ray`: a local Ray instance with `num_cpus=2`; `ray.init` s is timed apart, not in wall s.",
        "",
        "| mode | wall s | ray.init s | records/s | CPU s (tree) | peak RSS MB | kept | checksum |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode, s in summary.items():
        init = "" if s.get("init_s") is None else f"{s['init_s']:.1f}"
        lines.append(f"| {mode} | {s['seconds']:.1f} | {init} | {args.records / s['seconds']:,.0f} | {s['cpu_s']:.1f} "
                     f"| {s['peak_mb']:,.0f} "
                     f"| {s['kept']:,} | {', '.join(s['checksums'])} |")
    if "workers=1" in summary and "workers=2" in summary:
        ratio = summary["workers=1"]["seconds"] / summary["workers=2"]["seconds"]
        lines += ["", f"workers=2 vs workers=1: **{ratio:.2f}x** (goal 1.6x)."]
    if "ray" in summary and "workers=2" in summary:
        ray_s, local_s = summary["ray"]["seconds"], summary["workers=2"]["seconds"]
        lines += ["", f"ray / workers=2 wall time: **{ray_s / local_s:.2f}x** without `ray.init`, "
                  f"**{(ray_s + summary['ray']['init_s']) / local_s:.2f}x** with it (goal 1.5x)."]
    lines += ["", "Per-step seconds (for a streamed run: summed over batches and workers, so CPU-seconds "
              "on two workers; a global step's includes its driver-side decide):", "",
              "| step | " + " | ".join(summary) + " |", "|---|" + "---:|" * len(summary)]
    names = ["read", *STEP_NAMES, "write"]
    for name in names:
        cells = [f"{s['steps'][name]:.1f}" if name in s["steps"] else "" for s in summary.values()]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Raw runs:", "", "```", *(f"{m}: {json.dumps(r)}" for m, rs in runs.items() for r in rs), "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
