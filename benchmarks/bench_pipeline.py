"""The six-step pipeline in memory, streamed with one worker and streamed with two.

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_pipeline.py --records 1000000

Pipeline (issue 21): normalize, quality, dedup.exact, dedup.minhash, langid(keep=["en"]),
decontaminate(GSM8K test) on ``ik.synth.corpus(N, seed=0)``. Three jobs, each in a fresh
child process, ``--repeats`` times (medians):

- ``memory``: ``ik.read(path).pipe(*steps)``, then ``write_parquet``;
- ``workers=1``: ``Pipeline(steps).run(path, output=..., batch_size=B)``;
- ``workers=2``: the same with ``workers=2``;
- ``ray``: the same with ``executor="ray"`` on a local Ray instance with ``num_cpus=2`` (the
  cores ``workers=2`` gets); ``ray.init`` is timed apart (``init_s``) and not in ``seconds``;
- ``workers=1,threads=1``: ``workers=1`` with polars and numba limited to one thread, the
  one-core baseline (plain ``workers=1`` runs its multi-threaded parts on every core).

``--pipeline five`` leaves decontaminate out (the five steps of docs/scaling.md's Ray profile).

Each job reports wall time (read to last byte written), the CPU seconds and the peak RSS of
its whole process tree (the child and its worker processes; RSS sampled every 50 ms and
summed), a checksum of the
kept records in order (equal on every path) and its per-step seconds. Results go to
benchmarks/results/pipeline.md.

With ``--datatrove-records N --datatrove-python PATH`` it also runs the same pipeline
expressed in datatrove (``datatrove_pipeline.py``, run by PATH, a Python that has datatrove,
with ``LocalPipelineExecutor(workers=2)``) on ``ik.synth.corpus(N, seed=0)`` split into
``--datatrove-tasks`` JSONL shards, interleaved with the instructkit modes on the same N
records (batch size N / tasks, so both cut the sample into as many pieces), and writes the
per-record ratio to benchmarks/results/pipeline_datatrove.md (``--records 0`` skips the 1M
section; when it runs, the ratio against it is reported too):

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_pipeline.py --records 0 \
        --datatrove-records 50000 --datatrove-python /work/dtvenv/bin/python --modes memory workers=2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
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
# the shared data sits beside the checkout; IK_SHARED_DATA points elsewhere (a git worktree)
GSM8K = Path(os.environ.get("IK_SHARED_DATA", ROOT.parent / "shared" / "data")) / "benchmarks" / "gsm8k_test.jsonl"
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


def run_tree(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; its stdout, the peak RSS of its process tree (MB, sampled every 50 ms and
    summed over the processes) and the CPU seconds of the tree.

    CPU seconds: the larger of the reaped children's user + system time (``RUSAGE_CHILDREN``,
    blind to grandchildren nobody waits for, such as the workers of a forkserver) and the sum
    of every process's last sampled user + system time (blind to a process's last 50 ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    root, peak, cpu_seen = psutil.Process(proc.pid), 0, {}
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                    t = p.cpu_times()
                    cpu_seen[(p.pid, p.create_time())] = t.user + t.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"stdout": stdout, "peak_mb": peak / 2**20, "cpu_s": max(reaped, sum(cpu_seen.values())),
            "process_s": wall}


def _result(stdout: str) -> dict[str, Any]:
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[7:])


#: ``workers=1`` with polars, numba and the decontamination scan on one thread each: the
#: one-core baseline (plain ``workers=1`` already runs the multi-threaded parts on every core).
ONE_THREAD = "workers=1,threads=1"
#: the cores the runs share (workers=2 spreads its threads over all of them)
CORES = os.cpu_count() or 1


def measure(mode: str, path: Path, batch_size: int, pipeline: str = "six") -> dict[str, Any]:
    """``job`` in a fresh child process; adds the peak RSS of its process tree (MB) and the
    CPU seconds of the tree (user + system of the child and its reaped workers)."""
    env = {"INSTRUCTKIT_QUIET": "1"}
    if mode == ONE_THREAD:
        mode = "workers=1"
        env.update(POLARS_MAX_THREADS="1", NUMBA_NUM_THREADS="1")
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r})\n"
            "from bench_pipeline import job\n"
            f"print('RESULT ' + json.dumps(job({mode!r}, {str(path)!r}, {batch_size}, {pipeline!r})))\n")
    run = run_tree([sys.executable, "-c", code], env)
    return {**_result(run["stdout"]), "peak_mb": run["peak_mb"], "cpu_s": run["cpu_s"]}


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


def ratio_ceiling(one: dict[str, Any], many: dict[str, Any], cores: int) -> float:
    """The highest speed-up ``many`` could show over ``one`` on ``cores`` cores: its own CPU
    seconds spread over every core with no idle moment, so ``one``'s wall time over
    ``many``'s CPU seconds / ``cores``. A baseline that already runs threads on several
    cores lowers it: the work does not shrink when it moves to processes."""
    return one["seconds"] * cores / many["cpu_s"]


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per mode (peak RSS: the highest)."""
    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "peak_mb": max(r["peak_mb"] for r in rs),
            "cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "init_s": statistics.median(r["init_s"] for r in rs) if rs[0].get("init_s") is not None else None,
            "kept": rs[0]["kept"],
            "checksums": sorted({r.get("checksum", "") for r in rs}),
            "steps": {k: statistics.median(r["steps"].get(k, 0.0) for r in rs) for k in rs[0]["steps"]},
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="0 skips this section")
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["memory", "workers=1", "workers=2"],
                        help=f"memory, workers=N, ray, {ONE_THREAD} (one worker on one thread)")
    parser.add_argument("--pipeline", choices=["six", "five"], default="six",
                        help="five: without decontaminate")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pipeline.md")
    parser.add_argument("--concurrency", action="store_true", help="only the sleeping-step check")
    parser.add_argument("--datatrove-records", type=int, default=0,
                        help="also run the pipeline in datatrove on this many records (0: no)")
    parser.add_argument("--datatrove-python", help="a Python that has datatrove (e.g. /work/dtvenv/bin/python)")
    parser.add_argument("--datatrove-tasks", type=int, default=4, help="JSONL shards, one datatrove task each")
    parser.add_argument("--datatrove-workers", type=int, default=2)
    parser.add_argument("--datatrove-out", type=Path, default=HERE / "results" / "pipeline_datatrove.md")
    args = parser.parse_args()
    if args.concurrency:
        concurrency()
        return
    sys.path.insert(0, str(HERE))
    from harness import corpus

    summary = None
    if args.records > 0:
        path = corpus(args.records)
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.modes}
        load = [_uptime()]
        for _ in range(args.repeats):
            for mode in args.modes:  # interleaved, so load on the machine hits every mode alike
                runs[mode].append(measure(mode, path, args.batch_size, args.pipeline))
                print(mode, json.dumps(runs[mode][-1]), flush=True)
        summary = summarize(runs)
        load.append(_uptime())
        print(json.dumps(summary, indent=1))
        write(args, summary, runs, load)
    if args.datatrove_records > 0:
        datatrove_section(args, summary)


DATATROVE_NOTES = """\
How each step is expressed in datatrove (`benchmarks/datatrove_pipeline.py`; nothing is downloaded):

- read / write: `JsonlReader` (an adapter makes the text the record's non-empty fields joined by a blank line, the fields in metadata) and `JsonlWriter` (uncompressed; its default is gzip), plus one intermediate JSONL written after quality, as datatrove's multi-stage dedups need a re-readable input.
- normalize: no datatrove formatter does what `ik.normalize()` does (`FTFYFormatter` fixes mojibake, a different job), so a `BaseFormatter` subclass applies `ik.normalize()`'s default edits to each field.
- quality: datatrove's quality filters (Gopher, C4, FineWeb) are web-text rules; `ik.quality()`'s defaults (empty output, refusal phrases) run as its `LambdaFilter`.
- dedup.exact: `ExactDedupSignature` / `ExactFindDedups` / `ExactDedupFilter`, key `simplify_text` without number and diacritic folding (as `ik.dedup.exact`'s key).
- dedup.minhash: its 4 stages (`MinhashDedupSignature`, `Buckets` with one task per band, `Cluster`, `Filter`), 5-gram words with datatrove's English tokenizer (spaCy blank `en`), 21 bands x 6 rows (the banding of `ik.dedup.minhash(threshold=0.8)`). datatrove does not verify candidate pairs, so it removes more.
- langid: its `LanguageFilter(["en"])`, keep when the English score > 0.65 (its default); the model is the local `lid.176.ftz` inside instructkit (the file `ik.langid` uses) instead of lid.176.bin from fbaipublicfiles, and, like `ik.langid()`'s default, it reads the instruction (a subclass of its `FT176LID`).
- decontaminate: its `NGramsDecontFilter` with 13-grams (as `ik.decontaminate`'s n=13) of GSM8K test questions and answers; the index is built by a step that reuses `NGramsDecontIndexer.compute_hashes`, since the stock indexer requires lighteval and fetches tasks from the Hub.
"""


def datatrove_version(python: str | None) -> tuple[str | None, str]:
    """``(version, "")`` when ``python`` has datatrove and what its steps need, else
    ``(None, why not)``."""
    if not python:
        return None, "--datatrove-python not given (a Python that has datatrove, fasttext and spacy)"
    if not Path(python).exists():
        return None, f"{python} does not exist"
    check = subprocess.run([python, "-c", "import importlib.metadata, datatrove, fasttext, spacy, xxhash; print(importlib.metadata.version(\"datatrove\"))"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        return None, f"{python} cannot import datatrove and its step dependencies: {check.stderr.strip()[-300:]}"
    return check.stdout.strip(), ""


def split_jsonl(path: Path, folder: Path, parts: int) -> float:
    """Cut a JSONL file into ``parts`` contiguous shards (datatrove parallelises over files);
    returns the seconds it took."""
    started = time.perf_counter()
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(parts):
        (folder / f"part-{i:05d}.jsonl").write_bytes(b"".join(lines[i * size:(i + 1) * size]))
    return time.perf_counter() - started


def datatrove_section(args: argparse.Namespace, main_summary: dict[str, Any] | None) -> None:
    """The pipeline in datatrove against instructkit's modes on the same sample."""
    version, why = datatrove_version(args.datatrove_python)
    if version is None:
        print(f"datatrove section skipped: {why}")
        return
    from harness import corpus

    import instructkit as ik
    from instructkit.filters.quality import REFUSALS

    n, tasks = args.datatrove_records, args.datatrove_tasks
    batch = -(-n // tasks)
    path = corpus(n)
    lid = Path(ik.__file__).parent / "data" / "lid.176.ftz"
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in [*args.modes, "datatrove"]}
    with tempfile.TemporaryDirectory(prefix="ik-dt-") as tmp:
        shards = Path(tmp) / "shards"
        split_s = split_jsonl(path, shards, tasks)
        refusals = Path(tmp) / "refusals.json"
        refusals.write_text(json.dumps(list(REFUSALS)))
        for i in range(args.repeats):
            for mode in args.modes:
                runs[mode].append(measure(mode, path, batch))
                print(f"n={n}", mode, json.dumps(runs[mode][-1]), flush=True)
            work = Path(tmp) / f"work-{i}"
            cmd = [args.datatrove_python, str(HERE / "datatrove_pipeline.py"), "--input", str(shards),
                   "--work", str(work), "--gsm8k", str(GSM8K), "--lid", str(lid), "--refusals", str(refusals),
                   "--workers", str(args.datatrove_workers)]
            run = run_tree(cmd, {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
            result = _result(run["stdout"])
            runs["datatrove"].append({**result, "peak_mb": run["peak_mb"], "cpu_s": run["cpu_s"],
                                      "process_s": run["process_s"]})
            print(f"n={n} datatrove", json.dumps(runs["datatrove"][-1]), flush=True)
            shutil.rmtree(work)
    load_after = os.getloadavg()
    summary = summarize(runs)
    for key in ("stages", "dropped"):
        summary["datatrove"][key] = {k: statistics.median(r[key][k] for r in runs["datatrove"])
                                     for k in runs["datatrove"][0][key]}
    summary["datatrove"]["process_s"] = statistics.median(r["process_s"] for r in runs["datatrove"])
    print(json.dumps(summary, indent=1))
    write_datatrove(args, version, summary, runs, main_summary, split_s, (load_before, load_after))


def write_datatrove(args: argparse.Namespace, version: str, summary: dict[str, Any],
                    runs: dict[str, list[dict[str, Any]]], main_summary: dict[str, Any] | None,
                    split_s: float, load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    n, dt = args.datatrove_records, summary["datatrove"]
    per_record = dt["seconds"] / n
    command = "flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:])
    lines = [
        "# The six-step pipeline in datatrove and in instructkit",
        "",
        f"`{command}`",
        "",
        f"{n:,} records of `ik.synth.corpus({n}, seed=0)`, cut into {args.datatrove_tasks} JSONL shards for "
        f"datatrove (it parallelises over files; the cut took {split_s:.1f} s, not counted). datatrove "
        f"{version}, `LocalPipelineExecutor(workers={args.datatrove_workers})`, one task per shard "
        "(`benchmarks/datatrove_pipeline.py`); instructkit on the same records with batch size "
        f"{-(-n // args.datatrove_tasks):,} (as many pieces as shards). Medians of {args.repeats} interleaved "
        f"run(s). Wall s: from reading to the last byte written, interpreter start-up and imports left out on "
        "both sides. Peak RSS: whole process tree, sampled every 50 ms and summed. "
        f"{os.cpu_count()} cores shared with other jobs; load average (1, 5, 15 min) "
        f"{' / '.join(f'{x:.2f}' for x in load[0])} before, {' / '.join(f'{x:.2f}' for x in load[1])} after.",
        "",
        "| run | wall s | records/s | s per 1k records | datatrove / this, per record | CPU s (tree) "
        "| peak RSS MB | kept |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"datatrove, workers={args.datatrove_workers}, {n:,}", dt, n)]
    rows += [(f"instructkit {m}, {n:,}", summary[m], n) for m in args.modes]
    rows += [(f"instructkit {m}, {args.records:,}", s, args.records) for m, s in (main_summary or {}).items()]
    for label, s, count in rows:
        ratio = per_record / (s["seconds"] / count)
        lines.append(f"| {label} | {s['seconds']:.1f} | {count / s['seconds']:,.0f} | "
                     f"{1000 * s['seconds'] / count:.2f} | **{ratio:.1f}x** | {s['cpu_s']:.1f} | "
                     f"{s['peak_mb']:,.0f} | {s['kept']:,} |")
    lines += ["", f"datatrove process wall time, start-up included: {dt['process_s']:.1f} s (median).", "",
              "datatrove stages (wall s, medians):", "", "| stage | s |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in dt["stages"].items()]
    lines += ["", "datatrove's own per-step seconds (summed over tasks; its step timers nest, a filter's "
              "time including the steps it yields to, so they overlap; the stage times are the ones to "
              "read) and records dropped:", "",
              "| step | s | dropped |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {dt['dropped'].get(k, 0):,} |" for k, v in dt["steps"].items()]
    ik_steps = [m for m in args.modes if m in summary]
    lines += ["", "instructkit per-step seconds on the same records (streamed: summed over batches):", "",
              "| step | " + " | ".join(ik_steps) + " |", "|---|" + "---:|" * len(ik_steps)]
    for name in ["read", *STEP_NAMES, "write"]:
        cells = [f"{summary[m]['steps'][name]:.1f}" if name in summary[m]["steps"] else "" for m in ik_steps]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", *DATATROVE_NOTES.splitlines()]
    raw = [f"{m}: {json.dumps({k: v for k, v in r.items() if k not in ('steps', 'dropped')})}"
           for m, rs in runs.items() for r in rs]
    lines += ["", "Raw runs (datatrove's per-step figures are in the medians above):", "", "```", *raw, "```", ""]
    args.datatrove_out.parent.mkdir(parents=True, exist_ok=True)
    args.datatrove_out.write_text("\n".join(lines))


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
        "| mode | wall s | ray.init s | records/s | CPU s (tree) | cores busy | peak RSS MB | kept | checksum |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode, s in summary.items():
        init = "" if s.get("init_s") is None else f"{s['init_s']:.1f}"
        lines.append(f"| {mode} | {s['seconds']:.1f} | {init} | {args.records / s['seconds']:,.0f} | {s['cpu_s']:.1f} "
                     f"| {s['cpu_s'] / s['seconds']:.2f} | {s['peak_mb']:,.0f} "
                     f"| {s['kept']:,} | {', '.join(s['checksums'])} |")
    if "workers=1" in summary and "workers=2" in summary:
        one, two = summary["workers=1"], summary["workers=2"]
        lines += ["", f"workers=2 vs workers=1: **{one['seconds'] / two['seconds']:.2f}x** (goal 1.6x). "
                  f"The most it could be on {CORES} cores: {ratio_ceiling(one, two, CORES):.2f}x, "
                  f"with workers=2's {two['cpu_s']:.1f} CPU-seconds spread over every core from start "
                  f"to end, against workers=1, which keeps {one['cpu_s'] / one['seconds']:.2f} cores "
                  "busy on its own (numba's and polars' threads)."]
    if ONE_THREAD in summary and "workers=2" in summary:
        ratio = summary[ONE_THREAD]["seconds"] / summary["workers=2"]["seconds"]
        lines += ["", f"workers=2 vs one worker on one thread ({ONE_THREAD}): **{ratio:.2f}x**."]
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
