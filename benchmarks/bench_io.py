"""Read and write speed: instructkit vs a baseline checkout of it vs plain parsers.

Builds a JSON Lines corpus of ``--records`` alpaca records (default 100k) by repeating the
real records of ``alpaca_en_demo.json`` with varied ids, then times, each in a fresh process
(so peak RSS is that method's own), ``--repeats`` times, interleaved. Before the clock
starts, each read imports what it needs and ``ik.read`` reads a one-line file, so module
imports (numpy for the reader's byte counts: about 0.15 s once per process) are not timed:

- read ``base``: ``ik.read`` of the checkout given by ``--baseline-src`` (e.g. the main
  branch before a change: ``--baseline-src /work/main/src``);
- read ``new``: ``ik.read`` of this checkout;
- read ``polars`` / ``orjson``: ``pl.read_ndjson`` of the file; an ``orjson.loads`` loop
  over its lines (parsing only, no canonical records);
- write ``old``: ``Dataset.write`` row by row (``to_rows`` + ``orjson``);
- write ``new``: ``Dataset.write`` today (column-wise alpaca rows);
- write ``polars`` / ``orjson``: ``DataFrame.write_ndjson``; ``orjson.dumps`` of each row dict;
- ``from_hf`` / ``from_pandas`` (``base`` and ``new``): ``ik.from_hf(ds.to_hf())`` and
  ``ik.from_pandas(ds.to_pandas())`` on the first ``--convert-records`` records (default 50k);
  the time is the ``from_*`` call (the ``to_*`` call is timed too, in the ``to s`` column).

Each read prints a checksum of the frame and each write the SHA-256 of the file, so the
table shows that base and new give the same records and old and new the same bytes.

Run:

    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_io.py \\
        --baseline-src /work/main/src --out benchmarks/results/io.md
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

DEMO = Path("/work/shared/data/instructions/alpaca_en_demo.json")
READS = ("base", "new", "polars", "orjson")
WRITES = ("old", "new", "polars", "orjson")
CONVERTS = ("base", "new")


def build(path: Path, n: int) -> None:
    """``n`` alpaca records from the demo file, each with its own id, as JSON Lines."""
    import orjson

    base = orjson.loads(DEMO.read_bytes())
    with path.open("wb") as f:
        for start in range(0, n, 100_000):
            chunk = [
                orjson.dumps({"id": f"alpaca-{i}", **base[i % len(base)]})
                for i in range(start, min(n, start + 100_000))
            ]
            f.write(b"\n".join(chunk) + b"\n")


def one(task: str, method: str, path: Path, out: Path) -> dict:
    """Run one method once in this process; returns seconds, records, peak RSS, checksum."""
    import orjson
    import polars as pl

    import instructkit as ik
    from instructkit.io import write as write_mod

    checksum = ""
    if task == "read":
        # the modules ik.read loads on its first call (numpy among them) are imported before
        # the clock starts, as polars and orjson are for their rows: this times reading
        import instructkit.io.read
        import instructkit.io.scan  # noqa: F401

        warm = path.with_name("warm.jsonl")
        instructkit.io.read.read(warm)
        pl.read_ndjson(warm)  # polars starts its thread pool on its first read
        orjson.loads(warm.read_bytes())
        start = time.perf_counter()
        if method in ("base", "new"):  # the same code, imported from another checkout for base
            ds = ik.read(path)
        elif method == "polars":
            frame = pl.read_ndjson(path)
        else:
            records = [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line]
        seconds = time.perf_counter() - start
        if method in ("base", "new"):
            frame = ds.to_polars()
            checksum = str(frame.hash_rows(seed=0).sum())
        n = frame.height if method != "orjson" else len(records)
    elif task in ("from_hf", "from_pandas"):
        ds = ik.read(path)
        ds = ik.Dataset(ds.to_polars().head(int(os.environ["IK_CONVERT_RECORDS"])))
        import datasets  # noqa: F401  (imported before the clock starts)
        import pandas  # noqa: F401
        start = time.perf_counter()
        other = ds.to_hf() if task == "from_hf" else ds.to_pandas()
        to_seconds = time.perf_counter() - start
        convert = ik.from_hf if task == "from_hf" else ik.from_pandas
        note = ""
        try:
            start = time.perf_counter()
            back = convert(other)
            seconds = time.perf_counter() - start
        except ValueError:
            # a checkout that cannot take canonical records back (issue 17.5): time its row
            # path on the same rows without the `messages` column, which it can convert
            other = other.remove_columns("messages") if task == "from_hf" else other.drop(columns="messages")
            start = time.perf_counter()
            back = convert(other)
            seconds = time.perf_counter() - start
            note = "fails; timed without messages, "
        equal = back.to_polars().equals(ds.to_polars())
        return {"seconds": seconds, "to_seconds": to_seconds, "records": len(back), "rss_gib": _peak_rss_gib(),
                "checksum": note + ("equal" if equal else "differs")}
    else:
        ds = ik.read(path)
        frame = ds.to_polars()
        start = time.perf_counter()
        if method == "old":
            write_mod._write_alpaca_columns = lambda *a, **k: False  # the row-by-row writer
            ds.write(out)
        elif method == "new":
            ds.write(out)
        elif method == "polars":
            frame.write_ndjson(out)
        else:
            with out.open("wb") as f:
                f.write(b"\n".join(orjson.dumps(r) for r in frame.iter_rows(named=True)) + b"\n")
        seconds = time.perf_counter() - start
        n = frame.height
        checksum = hashlib.sha256(out.read_bytes()).hexdigest()[:16] if method in ("old", "new") else ""
        out.unlink()
    return {"seconds": seconds, "records": n, "rss_gib": _peak_rss_gib(), "checksum": checksum}


def _peak_rss_gib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    parent across exec, so every child would report at least the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # KiB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--convert-records", type=int, default=50_000)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="src/ folder of the instructkit checkout to compare with (the 'base' rows)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--one", nargs=4, metavar=("TASK", "METHOD", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        task, method, data, out = args.one
        print(json.dumps(one(task, method, Path(data), Path(out))))
        return

    tmp = Path(tempfile.mkdtemp(prefix="ik-bench-io-"))
    data = tmp / "alpaca.jsonl"
    build(data, args.records)
    (tmp / "warm.jsonl").write_text('{"instruction": "warm-up", "output": "ok"}\n')
    size_mb = data.stat().st_size / 1e6
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "IK_CONVERT_RECORDS": str(args.convert_records)}
    here = str(Path(__file__).resolve().parents[1] / "src")
    results: dict[tuple[str, str], list[dict]] = {}
    tasks = [("read", READS), ("write", WRITES), ("from_hf", CONVERTS), ("from_pandas", CONVERTS)]
    if args.baseline_src is None:
        tasks = [(t, tuple(m for m in ms if m != "base")) for t, ms in tasks]
    for task, methods in tasks:
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all methods alike
            for method in methods:
                src = str(args.baseline_src) if method == "base" else here
                cmd = [sys.executable, __file__, "--one", task, method, str(data), str(tmp / "out.jsonl")]
                run = subprocess.run(cmd, capture_output=True, text=True, env={**env, "PYTHONPATH": src}, check=True)
                results.setdefault((task, method), []).append(json.loads(run.stdout.strip().splitlines()[-1]))
                print(task, method, results[(task, method)][-1], flush=True)
    data.unlink()
    (tmp / "warm.jsonl").unlink()
    tmp.rmdir()

    command = "flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_io.py"
    command += f" --records {args.records}" if args.records != 100_000 else ""
    command += f" --baseline-src {args.baseline_src}" if args.baseline_src else ""
    command += " --out benchmarks/results/io.md" if args.out else ""
    lines = [
        f"# I/O: {args.records:,} alpaca records ({size_mb:.0f} MB of JSON Lines)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f} "
        "(shared machine: compare ratios within this run). Each method runs in a fresh process; "
        f"median of {args.repeats} runs; peak RSS is the process's (for writes and conversions it "
        "includes reading the data first).",
        "",
        "| task | method | median s | records/s | vs polars | vs polars, paired | vs base/old | peak RSS GiB | checksum |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for task, methods in tasks:
        if task.startswith("from_"):
            continue
        ref = "base" if task == "read" and "base" in methods else "old"
        ref_median = statistics.median(r["seconds"] for r in results[(task, ref)]) if ref in methods else None
        polars = statistics.median(r["seconds"] for r in results[(task, "polars")])
        for method in methods:
            runs = results[(task, method)]
            median = statistics.median(r["seconds"] for r in runs)
            rss = max(r["rss_gib"] for r in runs)
            checks = {r["checksum"] for r in runs if r["checksum"]}
            vs_ref = f"{ref_median / median:.2f}x" if ref_median else ""
            # runs are interleaved: repeat i of each method ran back to back, under the same load
            paired = statistics.median(
                p["seconds"] / r["seconds"] for p, r in zip(results[(task, "polars")], runs, strict=True)
            )
            lines.append(
                f"| {task} | {method} | {median:.3f} | {runs[0]['records'] / median:,.0f} | "
                f"{polars / median:.2f}x | {paired:.2f}x | {vs_ref} | {rss:.2f} | {', '.join(sorted(checks))} |"
            )
    lines += [
        "",
        f"Round trips on {args.convert_records:,} canonical records (`from s`: the `ik.from_*` call; "
        "`to s`: `ds.to_hf()` / `ds.to_pandas()`; equal: the records came back equal):",
        "",
        "| round trip | method | from s (median) | to s (median) | speed-up vs base | peak RSS GiB | records |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for task, methods in tasks:
        if not task.startswith("from_"):
            continue
        base = statistics.median(r["seconds"] for r in results[(task, "base")]) if "base" in methods else None
        for method in methods:
            runs = results[(task, method)]
            median = statistics.median(r["seconds"] for r in runs)
            to_median = statistics.median(r["to_seconds"] for r in runs)
            speed = f"{base / median:.1f}x" if base else ""
            checks = ", ".join(sorted({r["checksum"] for r in runs}))
            lines.append(
                f"| {task}({'to_hf' if task == 'from_hf' else 'to_pandas'}()) | {method} | {median:.4f} | "
                f"{to_median:.4f} | {speed} | {max(r['rss_gib'] for r in runs):.2f} | {checks} |"
            )
    lines += [
        "",
        "base: `ik.read` / `ik.from_*` of the baseline checkout (`--baseline-src`); new: this "
        "checkout. polars / orjson: parsing or serialising only, without canonical records. "
        "vs polars: median polars time / median time; paired: the median over repeats of the "
        "same ratio within one repeat (the methods of a repeat run back to back). "
        "Equal read checksums: base and new read the same frame. write old: the row-by-row writer; "
        "equal write checksums: the same bytes.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
