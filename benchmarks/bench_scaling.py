"""Streaming executor vs in-memory pipeline: throughput and peak RSS at 100k / 1M / 10M records.

    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_scaling.py --sizes 100000 1000000

Each job runs in a fresh child process (harness.measure) on a synthetic corpus from
``ik.synth.corpus`` (10% duplicates, 2% PII, en/fr/de). The pipeline is normalize, quality,
exact dedup and MinHash dedup. Baseline, in the same run: ``ik.read(...).pipe(...)`` (whole
corpus in memory). ``--pipeline lean`` uses MinHash with num_perm=64 and no exact
verification, the setting docs/scaling.md recommends at 10M records; ``--pipeline light``
leaves MinHash out; ``--pipeline issue`` is the 10M target of the scaling issue: normalize,
quality, exact dedup, langid and decontamination against GSM8K + HumanEval
(``--pipeline issue-minhash`` adds MinHash with its defaults: num_perm=128, exact verification). ``--words`` sets the record length
(220 words: ~1 KB per record, so 10M records make ~10 GB); ``--corpus`` runs on a corpus
written beforehand (one size). Candidate: ``executors.run(..., batch_size=100_000)`` writing
Parquet shards; ``--ray`` also runs it on the Ray executor (a local Ray instance).
Results go to benchmarks/results/scaling.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, corpus, markdown_table, measure  # noqa: E402

PIPELINES = {
    "full": "normalize, quality, dedup.exact, dedup.minhash (threshold 0.8)",
    "lean": "normalize, quality, dedup.exact, dedup.minhash (threshold 0.8, num_perm=64, verify=False)",
    "light": "normalize, quality, dedup.exact",
    "issue": "normalize, quality, dedup.exact, langid(keep=en/fr/de), decontaminate(GSM8K + HumanEval, n=13)",
    "issue-minhash": "normalize, quality, dedup.exact, langid(keep=en/fr/de), decontaminate(GSM8K + HumanEval, "
                     "n=13), dedup.minhash (threshold 0.8, num_perm=128, verify='exact')",
}
BENCHMARKS = ROOT.parent / "shared" / "data" / "benchmarks"


def _steps(pipeline: str) -> list:
    import instructkit as ik

    if pipeline == "light":
        return [ik.normalize(), ik.quality(), ik.dedup.exact()]
    if pipeline.startswith("issue"):
        benchmarks = [ik.benchmarks.gsm8k(BENCHMARKS / "gsm8k_test.jsonl"),
                      ik.benchmarks.humaneval(BENCHMARKS / "HumanEval.jsonl.gz")]
        steps = [ik.normalize(), ik.quality(), ik.dedup.exact(), ik.langid(keep=["en", "fr", "de"]),
                 ik.decontaminate(benchmarks)]
        if pipeline == "issue-minhash":
            steps.append(ik.dedup.minhash())
        return steps
    if pipeline == "lean":
        return [ik.normalize(), ik.quality(), ik.dedup.exact(), ik.dedup.minhash(num_perm=64, verify=False)]
    return [ik.normalize(), ik.quality(), ik.dedup.exact(), ik.dedup.minhash()]


def job_memory(path: str, pipeline: str) -> dict:
    """Baseline: read everything, run the pipeline in memory."""
    import instructkit as ik

    out = ik.read(path).pipe(*_steps(pipeline))
    return {"records_out": len(out)}


def job_stream(path: str, batch_size: int, pipeline: str, executor: str = "local") -> dict:
    """Candidate: stream batches, write shards (output in a temporary folder)."""
    from instructkit.executors import run

    out = Path(tempfile.mkdtemp(prefix="ik-scale-"))
    try:
        options = {"num_cpus": os.cpu_count()} if executor == "ray" else {}
        result = run(_steps(pipeline), path, executor, batch_size=batch_size, output=out / "run", **options)
        return {"records_out": result.records_out, "shards": len(result.shards)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def job_bench(path: str, sample: int, pipeline: str) -> list:
    """Per-step figures from ik.bench itself (the user-facing tool) on the first ``sample``."""
    import instructkit as ik

    return ik.bench(_steps(pipeline), path, sample=sample).frame.to_dicts()


def state_sizes(n: int = 50_000) -> list[dict]:
    """Bytes of ``observe()`` state per record of each global step: in RAM (pickled, as Ray
    ships it) and in spill files on disk (MinHash shingle hashes or signatures)."""
    import json
    import pickle

    import polars as pl

    import instructkit as ik

    gsm = ROOT.parent / "shared" / "data" / "benchmarks" / "gsm8k_test.jsonl"
    frame = pl.concat(list(ik.scan(corpus(n, seed=0, dup_fraction=0.1))))
    steps = {
        "dedup.exact": ik.dedup.exact(),
        "dedup.minhash": ik.dedup.minhash(),
        "dedup.minhash(verify=False)": ik.dedup.minhash(verify=False),
        "dedup.minhash(num_perm=64, verify=False)": ik.dedup.minhash(num_perm=64, verify=False),
        "dedup.fuzzy": ik.dedup.fuzzy(),
        "sample(total=n/2)": ik.sample(total=n // 2),
    }
    if gsm.exists():
        questions = [json.loads(line)["question"] for line in gsm.read_text().splitlines()]
        frame = pl.concat([frame, ik.Dataset.from_records(
            [{"instruction": q} for q in questions[:50]], source="planted").to_polars()])
        steps["decontaminate(gsm8k, n=13)"] = ik.decontaminate([ik.benchmarks.gsm8k(gsm)])
    rows = []
    for name, step in steps.items():
        state = step.observe(frame)
        # MinHash keeps its shingle hashes (or signatures) in a spill file: on disk, not in RAM
        spill = getattr(getattr(state, "spill", None), "path", None)
        blob = pickle.dumps(state, protocol=5)
        rows.append({
            "step": name,
            "bytes_per_record": len(blob) / frame.height,
            "spill_bytes_per_record": os.path.getsize(spill) / frame.height if spill else 0.0,
        })
        # pickling hands the spill file to the unpickled copy (as a Ray worker does): take
        # it back, so the file is deleted with the copy
        del state
        pickle.loads(blob)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--baseline-max", type=int, default=1_000_000,
                        help="skip the in-memory baseline above this size")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), default="full")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.md")
    parser.add_argument("--words", type=int, default=100, help="words per synthetic record")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="run on this corpus (written beforehand) instead of generating one; one size")
    parser.add_argument("--ray", action="store_true",
                        help="also run the streaming job on the Ray executor (a local Ray instance on "
                             "every core; its peak RSS is the driver's only)")
    parser.add_argument("--state-sizes", action="store_true",
                        help="print the observe() state per record of each global step and exit")
    args = parser.parse_args()
    if args.state_sizes:
        print(markdown_table(state_sizes(), ["step", "bytes_per_record", "spill_bytes_per_record"]))
        return
    if args.corpus is not None and len(args.sizes) != 1:
        parser.error("--corpus takes one --sizes value (its record count)")

    def corpus_path(n: int) -> Path:
        if args.corpus is not None:
            return args.corpus
        return corpus(n, seed=0, dup_fraction=0.1, pii_rate=0.02, languages=("en", "fr", "de"),
                      **({"words": args.words} if args.words != 100 else {}))

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for n in args.sizes:
        path = corpus_path(n)
        size_gb = path.stat().st_size / 1e9
        stream = measure("stream", "bench_scaling:job_stream", repeats=args.repeats,
                         path=str(path), batch_size=args.batch_size, pipeline=args.pipeline)
        row = {"records": n, "file_gb": size_gb, "stream_s": stream["seconds"],
               "stream_rec_per_s": n / stream["seconds"], "stream_peak_mb": stream["peak_rss_mb"],
               "records_out": stream["result"]["records_out"]}
        if args.ray:
            on_ray = measure("ray", "bench_scaling:job_stream", repeats=args.repeats, path=str(path),
                             batch_size=args.batch_size, pipeline=args.pipeline, executor="ray")
            assert on_ray["result"]["records_out"] == stream["result"]["records_out"], (on_ray, stream)
            row.update(ray_s=on_ray["seconds"], ray_rec_per_s=n / on_ray["seconds"],
                       ray_driver_peak_mb=on_ray["peak_rss_mb"], ray_time_ratio=on_ray["seconds"] / stream["seconds"])
        if n <= args.baseline_max:
            memory = measure("memory", "bench_scaling:job_memory", repeats=args.repeats,
                             path=str(path), pipeline=args.pipeline)
            assert memory["result"]["records_out"] == stream["result"]["records_out"], (memory, stream)
            row.update(memory_s=memory["seconds"], memory_peak_mb=memory["peak_rss_mb"],
                       time_ratio=stream["seconds"] / memory["seconds"],
                       rss_ratio=stream["peak_rss_mb"] / memory["peak_rss_mb"])
        rows.append(row)
        print(row, flush=True)
    steps_md = ""
    if rows:
        n = args.sizes[-1]
        path = corpus_path(n)
        sample = min(n, 100_000)
        per_step = measure("bench", "bench_scaling:job_bench", path=str(path), sample=sample,
                           pipeline=args.pipeline)["result"]
        steps_md = (
            f"\nPer step, from `ik.bench` on the first {sample:,} records of the {n:,}-record corpus "
            "(in memory; projected_s = linear projection to the full corpus):\n\n"
            + markdown_table(per_step, ["step", "records_in", "removed", "reasons", "seconds",
                                        "records_per_s", "peak_mb", "projected_s"])
        )
    cols = ["records", "file_gb", "records_out", "stream_s", "stream_rec_per_s", "stream_peak_mb",
            "memory_s", "memory_peak_mb", "time_ratio", "rss_ratio"]
    if args.ray:
        cols += ["ray_s", "ray_rec_per_s", "ray_driver_peak_mb", "ray_time_ratio"]
    load_end = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    command = "flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_scaling.py " + " ".join(sys.argv[1:])
    text = (
        "# Scaling: streaming executor vs in-memory pipeline\n\n"
        f"Command: `{command}`\n\n"
        f"Pipeline: {PIPELINES[args.pipeline]}. Corpus: "
        + (f"`{args.corpus}`. " if args.corpus else
           f"`ik.synth.corpus(n, seed=0, dup_fraction=0.1, pii_rate=0.02, languages=(en, fr, de), "
           f"words={args.words})`. ")
        + f"Load average (1, 5, 15 min) before the run: {load}; after: {load_end}. "
        f"Streaming batch size {args.batch_size:,}, Parquet shards. Each job in a fresh process; "
        "peak RSS is the child's VmHWM; seconds include reading and writing. Machine: 2 shared "
        f"cores, 24 GiB, loaded by other jobs (medians of {args.repeats} run(s)).\n\n"
        + markdown_table(rows, cols)
        + "\ntime_ratio and rss_ratio are streaming / in-memory (lower is better)"
        + ("; ray_time_ratio is the Ray executor / the local one, same corpus and batches" if args.ray else "")
        + ".\n"
        + steps_md
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
