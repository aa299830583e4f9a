"""Benchmark: ``ik.report`` and ``ds.stats()`` on 1M records (target: report under 60 s).

The corpus is built from the real instruction files in ../shared/data (Alpaca en/zh, Code
Alpaca, GPTeacher roleplay), repeated with fresh ids up to ``--records``, with the columns
and log rows later steps add: ``lang``, ``pii_counts``, a history, and removed rows for
exact/near duplicates (JSON details naming the kept id, as ``ik.dedup`` writes them),
contamination and quality. Baseline in the same run: the same length statistics computed
with pandas (``str.len``, ``str.split().str.len``, ``groupby().describe()``), the way one
would by hand.

Run (heavy, so under the shared lock):
    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_report.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

import instructkit as ik
from instructkit.reports.html import report
from instructkit.reports.stats import stats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instructions"
FILES = ("alpaca_en_demo.json", "alpaca_zh_demo.json", "code_alpaca_2k.json", "gpteacher_roleplay.json")


def corpus(n: int) -> ik.Dataset:
    """``n`` records from the real files, repeated with fresh ids, plus a realistic log."""
    if not DATA.is_dir():
        sys.exit(f"real data folder {DATA} is absent; this benchmark needs it")
    base = ik.read([DATA / f for f in FILES]).to_polars()
    reps = -(-n // base.height)
    frame = pl.concat([
        base.with_columns((pl.col("id") + f"~{r}").alias("id")) for r in range(reps)
    ]).head(n)
    frame = frame.with_columns(
        pl.when(pl.col("source") == "alpaca_zh_demo").then(pl.lit("zh")).otherwise(pl.lit("en")).alias("lang"),
        pl.struct(
            EMAIL_ADDRESS=pl.col("output").str.count_matches(r"\S+@\S+\.\w+"),
            URL=pl.col("output").str.count_matches(r"https?://"),
            PHONE_NUMBER=pl.col("output").str.count_matches(r"\d{3}-\d{3}-\d{4}"),
        ).alias("pii_counts"),
    )
    # 10% of the size in removed rows: duplicates of kept records, contamination, quality
    k = n // 10
    src = frame.head(k).with_row_index("i")
    removed = src.select(
        (pl.col("id") + "#dup").alias("id"),
        pl.when(pl.col("i") % 3 == 0).then(pl.lit("decontaminate")).when(pl.col("i") % 3 == 1)
        .then(pl.lit("dedup.minhash")).otherwise(pl.lit("quality")).alias("step"),
        pl.when(pl.col("i") % 3 == 0).then(pl.lit("contamination")).when(pl.col("i") % 3 == 1)
        .then(pl.lit("near_duplicate")).otherwise(pl.lit("too_short")).alias("reason"),
        pl.when(pl.col("i") % 3 == 0).then(pl.format("benchmark=gsm8k item={} ngrams=13", pl.col("i") % 1319))
        .when(pl.col("i") % 3 == 1).then(pl.format('{{"kept": "{}", "cluster": {}}}', pl.col("id"), pl.col("i") % 5000))
        .otherwise(pl.lit("output: 2 chars < 5")).alias("detail"),
        "source", "instruction", "input", "output",
    )
    history = [
        {"step": s, "kind": "filter", "params": "", "records_in": 0, "records_out": 0,
         "removed": 0, "by_reason": {}, "seconds": 0.0}
        for s in ("quality", "dedup.minhash", "decontaminate")
    ]
    return ik.Dataset(frame, removed, history)


def pandas_baseline(ds: ik.Dataset) -> None:
    frame = ds.to_polars().select("source", "instruction", "input", "output").to_pandas()
    for field in ("instruction", "input", "output"):
        text = frame[field].where(frame[field] != "")
        lengths = frame[["source"]].assign(chars=text.str.len(), words=text.str.split().str.len())
        lengths.describe(percentiles=[0.5, 0.9, 0.99])
        lengths.groupby("source").describe(percentiles=[0.5, 0.9, 0.99])


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ik.set_quiet(True)
    ds = corpus(args.records)
    out = Path(tempfile.mkdtemp()) / "report.html"
    results = {
        "records": len(ds),
        "removed": ds.removed.height,
        "report_s": timed(lambda: report(ds, out), args.repeats),
        "stats_s": timed(lambda: stats(ds), args.repeats),
        "pandas_stats_s": timed(lambda: pandas_baseline(ds), args.repeats),
    }
    results["report_bytes"] = out.stat().st_size
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = {k: statistics.median(v) for k, v in results.items() if k.endswith("_s")}
    results["median"] = med
    results["pandas_over_stats"] = med["pandas_stats_s"] / med["stats_s"]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
