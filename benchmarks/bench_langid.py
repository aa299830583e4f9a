"""Benchmark: ``ik.langid`` against calling the fastText lid.176 model directly in a loop.

Records are synthetic, built by repeating and perturbing the real instructions in
``../shared/data/instructions`` (English, Chinese, French, code tasks), so text lengths and the
language mix are realistic. Both sides run in the same process, in alternating rounds, on the
same texts; we report medians, the overhead ratio and peak RSS.

    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_langid.py --n 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import polars as pl

import instructkit as ik
from instructkit.filters.langid import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instructions"


def real_instructions() -> list[str]:
    """Every instruction of the real instruction files (the pool the synthetic set draws on)."""
    pool: list[str] = []
    for path in sorted(DATA.glob("*.json*")):
        if path.suffix == ".json":
            records = json.loads(path.read_text())
        else:
            records = []
            for line in path.read_text().splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # the known bad lines of instructionwild_user_2/3
        pool += [r["instruction"] for r in records if isinstance(r.get("instruction"), str)]
    return [p for p in pool if p.strip()]


def synthetic(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` canonical records whose instructions are perturbed copies of real ones."""
    rng = random.Random(seed)
    pool = real_instructions()
    out = []
    for i in range(n):
        words = rng.choice(pool).split(" ")
        op = rng.randrange(4)
        if op == 1 and len(words) > 3:
            del words[rng.randrange(len(words))]
        elif op == 2 and len(words) > 3:
            a, b = rng.randrange(len(words)), rng.randrange(len(words))
            words[a], words[b] = words[b], words[a]
        elif op == 3:
            words.append(f"#{i}")
        out.append(" ".join(words))
    return pl.DataFrame(
        {
            "id": [f"bench:{i}" for i in range(n)],
            "source": "bench",
            "instruction": out,
            "input": "",
            "output": "",
        }
    ).with_columns(
        pl.lit(None, dtype=pl.String).alias("system"),
        pl.lit(None).alias("messages"),
        pl.lit(None, dtype=pl.String).alias("meta"),
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="also time the raw binding loop")
    args = parser.parse_args()
    ik.set_quiet(True)

    frame = synthetic(args.n)
    ds = ik.Dataset.from_polars(frame)
    texts = frame["instruction"].to_list()
    model = load_model()
    step = ik.langid()
    rss_start = peak_rss_mib()

    def direct() -> list:
        # what a user writes without instructkit: the public predict, newlines removed
        return [model.predict(t.replace("\n", " ")) for t in texts]

    def raw_binding() -> list:
        # the binding's C++ predict with no Python wrapper: the floor for per-text calls
        predict = model.f.predict
        return [predict(t.replace("\n", " ") + "\n", 1, 0.0, "strict") for t in texts]

    def instructkit() -> ik.Dataset:
        return ds.pipe(step)

    methods = [("direct", direct), ("instructkit", instructkit)]
    if args.raw:
        methods.insert(1, ("raw_binding", raw_binding))
    timings: dict[str, list[float]] = {name: [] for name, _ in methods}
    rss: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, fn in methods:
            start = time.perf_counter()
            result = fn()
            timings[name].append(time.perf_counter() - start)
            rss.setdefault(name, peak_rss_mib())
            del result

    med = {k: statistics.median(v) for k, v in timings.items()}
    langs = ds.pipe(step).to_polars()["lang"].value_counts(sort=True).head(6).rows()
    print(f"records: {args.n:,}  rounds: {args.rounds}  python {sys.version.split()[0]}  polars {pl.__version__}")
    print(f"languages (top 6): {langs}")
    print("| method | median s | per record µs | records/s | runs (s) | peak RSS after first run (MiB) |")
    print("|---|---|---|---|---|---|")
    for name in timings:
        runs = ", ".join(f"{t:.2f}" for t in timings[name])
        print(
            f"| {name} | {med[name]:.2f} | {med[name] / args.n * 1e6:.2f} | "
            f"{args.n / med[name]:,.0f} | {runs} | {rss[name]:.0f} |"
        )
    print(f"\npeak RSS before timing (data built, model loaded): {rss_start:.0f} MiB")
    overhead = med["instructkit"] / med["direct"] - 1
    print(f"overhead of ik.langid vs direct model.predict loop: {overhead:+.1%} (limit +15%)")
    if args.raw:
        print(f"overhead of ik.langid vs raw binding loop: {med['instructkit'] / med['raw_binding'] - 1:+.1%}")


if __name__ == "__main__":
    main()
