"""Read and write speed: column-wise paths vs the record-by-record paths vs plain baselines.

Builds a JSON Lines corpus of ``--records`` alpaca records (default 1M) by repeating the real
records of ``alpaca_en_demo.json`` with varied ids, then times, each in a fresh process (so
peak RSS is that method's own), ``--repeats`` times:

- read ``old``: the record-by-record reader (line loop + ``canonical_frame_precise``),
  i.e. ``ik.read`` before the column-wise path;
- read ``new``: ``ik.read`` today;
- read ``polars`` / ``orjson``: ``pl.read_ndjson`` of the file; an ``orjson.loads`` loop
  over its lines (parsing only, no canonical records: the floor);
- write ``old``: ``Dataset.write`` row by row (``to_rows`` + ``orjson``);
- write ``new``: ``Dataset.write`` today (column-wise alpaca rows);
- write ``polars`` / ``orjson``: ``DataFrame.write_ndjson``; ``orjson.dumps`` of each row dict.

Each read prints a checksum of the frame and each write the SHA-256 of the file, so the
table shows that old and new give the same records and the same bytes.

Run (heavy: about 1 GB of data, several GB of RAM for the old paths):

    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_io.py --out benchmarks/results/io.md
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
READS = ("old", "new", "polars", "orjson")
WRITES = ("old", "new", "polars", "orjson")


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


def _read_old(path: Path):
    from instructkit.io.files import _bytes, _json_lines_precise
    from instructkit.io.formats import canonical_frame_precise
    from instructkit.io.read import _assemble

    start = time.perf_counter()
    records, locations = _json_lines_precise(path, _bytes(path), "raise")
    frame, removed = canonical_frame_precise(records, source=path.stem, origin=str(path), locations=locations)
    return _assemble([frame], [removed], len(records), time.perf_counter() - start, what=path.name)


def one(task: str, method: str, path: Path, out: Path) -> dict:
    """Run one method once in this process; returns seconds, records, peak RSS, checksum."""
    import orjson
    import polars as pl

    import instructkit as ik
    from instructkit.io import write as write_mod

    checksum = ""
    if task == "read":
        start = time.perf_counter()
        if method == "old":
            ds = _read_old(path)
        elif method == "new":
            ds = ik.read(path)
        elif method == "polars":
            frame = pl.read_ndjson(path)
        else:
            records = [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line]
        seconds = time.perf_counter() - start
        if method in ("old", "new"):
            frame = ds.to_polars()
            checksum = str(frame.hash_rows(seed=0).sum())
        n = frame.height if method != "orjson" else len(records)
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
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--one", nargs=4, metavar=("TASK", "METHOD", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        task, method, data, out = args.one
        print(json.dumps(one(task, method, Path(data), Path(out))))
        return

    tmp = Path(tempfile.mkdtemp(prefix="ik-bench-io-"))
    data = tmp / "alpaca_1m.jsonl"
    build(data, args.records)
    size_mb = data.stat().st_size / 1e6
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    results: dict[tuple[str, str], list[dict]] = {}
    for task, methods in (("read", READS), ("write", WRITES)):
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all methods alike
            for method in methods:
                cmd = [sys.executable, __file__, "--one", task, method, str(data), str(tmp / "out.jsonl")]
                run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                results.setdefault((task, method), []).append(json.loads(run.stdout.strip().splitlines()[-1]))
                print(task, method, results[(task, method)][-1], flush=True)
    data.unlink()
    tmp.rmdir()

    lines = [
        f"# I/O: {args.records:,} alpaca records ({size_mb:.0f} MB of JSON Lines)",
        "",
        "Command: `flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_io.py"
        + (f" --records {args.records}" if args.records != 1_000_000 else "")
        + (" --out benchmarks/results/io.md`" if args.out else "`"),
        "",
        f"Machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f} "
        "(shared machine: compare ratios within this run). Each method runs in a fresh process; "
        f"median of {args.repeats} runs; peak RSS is the process's (for writes it includes "
        "reading the data first).",
        "",
        "| task | method | median s | records/s | vs old | peak RSS GiB | checksum |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for task, methods in (("read", READS), ("write", WRITES)):
        old = statistics.median(r["seconds"] for r in results[(task, "old")])
        for method in methods:
            runs = results[(task, method)]
            median = statistics.median(r["seconds"] for r in runs)
            rss = max(r["rss_gib"] for r in runs)
            checks = {r["checksum"] for r in runs if r["checksum"]}
            lines.append(
                f"| {task} | {method} | {median:.2f} | {runs[0]['records'] / median:,.0f} | "
                f"{old / median:.2f}x | {rss:.2f} | {', '.join(sorted(checks))} |"
            )
    lines += [
        "",
        "old: the record-by-record path (kept as `canonical_frame_precise` and the row writer); "
        "new: `ik.read` / `Dataset.write` now. polars / orjson: parsing or serialising only, "
        "without canonical records (lower bounds, not equivalent work). Equal checksums: old "
        "and new read the same frame and write the same bytes.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
