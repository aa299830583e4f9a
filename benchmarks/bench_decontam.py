"""Decontamination speed: index HumanEval + GSM8K + MMLU, then scan 1M training records.

Baseline, in the same run: a pure-Python scanner in the style of lm-eval's janitor (a set
of normalized 13-gram strings, one record at a time), timed on a slice.

    flock /tmp/ik-heavy.lock .venv/bin/python benchmarks/bench_decontam.py --records 1000000

Prints a markdown table (medians over ``--repeats`` runs) and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import string
import time
from pathlib import Path

import polars as pl

import instructkit as ik
from instructkit.decontam.ngram import cached_index

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = [
    "alpaca_en_demo.json", "code_alpaca_2k.json", "gpteacher_roleplay.json",
    "gpteacher_toolformer.json", "gsm8k_train_alpaca.json",
]


def corpus(records: int) -> ik.Dataset:
    """``records`` canonical records cycled from the real instruction files."""
    rows = []
    for name in SOURCES:
        rows += json.loads((DATA / "instructions" / name).read_text())
    base = pl.DataFrame(rows).select("instruction", "input", "output")
    frame = pl.concat([base] * (records // base.height + 1)).head(records)
    frame = frame.with_columns(
        pl.format("r{}", pl.int_range(pl.len())).alias("id"),
        pl.lit("bench").alias("source"),
        pl.lit(None, dtype=pl.String).alias("system"),
        pl.lit(None).alias("messages"),
        pl.lit(None, dtype=pl.String).alias("meta"),
    )
    return ik.Dataset.from_polars(frame)


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def janitor_baseline(benchmarks: list[ik.benchmarks.Benchmark], frame: pl.DataFrame, n: int) -> int:
    """lm-eval janitor style: Python sets of normalized n-gram strings."""
    def grams(text: str) -> set[str]:
        words = _PUNCT.sub(" ", text.lower()).split()
        return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}

    index: set[str] = set()
    for b in benchmarks:
        for t in b.texts:
            index |= grams(t)
    hits = 0
    for row in frame.select("instruction", "input", "output").iter_rows():
        if any(not grams(t or "").isdisjoint(index) for t in row):
            hits += 1
    return hits


#: Paraphrases written by hand of GSM8K test items (item id -> rewording).
HANDWRITTEN = {
    "0": "Every day Janet's hens produce sixteen eggs; three go into her breakfast and four into "
    "muffins she bakes for friends. The rest she sells at the market for two dollars apiece. "
    "What does she earn daily?",
    "1": "To make one robe you need two bolts of blue fabric and half as many bolts of white "
    "fabric. What is the total number of bolts required?",
    "2": "Josh bought a house for $80,000 and spent another $50,000 fixing it up, which raised "
    "its value by 150%. What was his profit on the flip?",
    "3": "Three times a week James does 3 sprints of 60 meters each. How far does he sprint in "
    "a week in total?",
    "5": "Kylar needs 16 glasses for his apartment. A glass is $5, but every second glass is "
    "sold at 60% of that price. What will he pay for all of them?",
    "6": "Seattle has 20 sheep. Charleston has four times as many as Seattle, and Toulouse has "
    "twice as many as Charleston. How many sheep do the three cities have in total?",
    "8": "John drove 3 hours at 60 mph, then turned back for something he forgot. On the way "
    "home, in 4 hours, he was stuck in traffic for 2 hours, drove half an hour at 30 mph and "
    "the rest at 80 mph. How far from home is he after those 4 hours?",
    "9": "Eliza earns $10 an hour for her first 40 hours each week and 1.2 times that for "
    "overtime. She worked 45 hours this week. What did she earn?",
}


def semantic_speed(records: int, repeats: int = 3) -> None:
    """method="semantic" on a general instruction corpus (no GSM8K train) against GSM8K test
    + HumanEval + MMLU test: records/s of the whole step (median of ``repeats`` runs, each on
    texts never seen before), and how many records reach the precise (MiniLM) check."""
    from instructkit import embed as E
    from instructkit.decontam import semantic

    bench = DATA / "benchmarks"
    benchmarks = [
        ik.benchmarks.humaneval(bench / "HumanEval.jsonl.gz"),
        ik.benchmarks.gsm8k(bench / "gsm8k_test.jsonl"),
        ik.benchmarks.mmlu(bench / "mmlu_dev_val_test_csv.tar.gz"),
    ]
    rows: list[dict] = []
    for name in ("alpaca_en_demo.json", "code_alpaca_2k.json", "gpteacher_roleplay.json", "gpteacher_toolformer.json"):
        rows += json.loads((DATA / "instructions" / name).read_text())
    t0 = time.perf_counter()
    index = semantic.cached_index(benchmarks)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    semantic.embed(["load the model"])  # import torch + load MiniLM: once per process
    load_s = time.perf_counter() - t0
    runs: list[float] = []
    cpu: list[float] = []
    for rep in range(repeats):
        # distinct texts (a suffix per copy and per run), so the content-hash cache does not
        # flatter the run
        data = ik.Dataset.from_records(
            [{**rows[i % len(rows)], "instruction": f"{rows[i % len(rows)]['instruction']} ({rep}.{i})"}
             for i in range(records)],
            source="general",
        )
        before = E.cached_vectors("minilm")
        t0, c0 = time.perf_counter(), time.process_time()
        out = data.pipe(ik.decontaminate(benchmarks, method="semantic"))
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        reached = E.cached_vectors("minilm") - before
    secs = statistics.median(runs)
    print(f"\nsemantic speed: {len(index.item_ids)} benchmark items (static index built in {build_s:.1f} s, "
          f"MiniLM loaded in {load_s:.1f} s, both once per process); {records} general records: "
          f"median {secs:.1f} s of {repeats} runs ({', '.join(f'{r:.1f}' for r in runs)}) = "
          f"{records / secs:,.0f} records/s ({records / (secs + build_s + load_s):,.0f} records/s "
          f"with the one-time loads); median {statistics.median(cpu):.1f} CPU s per run = "
          f"{records / statistics.median(cpu):,.0f} records per CPU-second; {reached} texts (records + items) reached MiniLM in the "
          f"last run; removed {len(data) - len(out)} (load avg {os.getloadavg()[0]:.1f})")


def semantic_eval(sample: int, clean_sample: int) -> None:
    """Recall on paraphrased GSM8K test items and false positives on clean data (all of GSM8K
    train: the same-domain hard negatives; alpaca_en_demo and code_alpaca_2k), n-gram vs
    semantic vs both; then the threshold grid behind the defaults."""
    import random

    from instructkit.decontam import semantic
    from instructkit.decontam.paraphrase import paraphrase

    gsm = ik.benchmarks.gsm8k(DATA / "benchmarks" / "gsm8k_test.jsonl")
    rng = random.Random(0)
    picked = sorted(rng.sample(range(len(gsm)), sample))
    para = [{"instruction": paraphrase(gsm.queries[i], seed=i), "output": ""} for i in picked]
    para += [{"instruction": t, "output": ""} for t in HANDWRITTEN.values()]
    # GPT-4-style rephrasings: reworded, people and numbers kept (the answer is the same)
    kept = [{"instruction": paraphrase(gsm.queries[i], seed=i, names=False, numbers=False), "output": ""}
            for i in picked]
    train = json.loads((DATA / "instructions" / "gsm8k_train_alpaca.json").read_text())
    clean = {
        "gsm8k train (same domain)": train if clean_sample <= 0 else rng.sample(train, clean_sample),
        "alpaca_en_demo": json.loads((DATA / "instructions" / "alpaca_en_demo.json").read_text()),
        "code_alpaca_2k": json.loads((DATA / "instructions" / "code_alpaca_2k.json").read_text()),
    }
    t0 = time.perf_counter()
    semantic.cached_index([gsm])
    embed_bench_s = time.perf_counter() - t0

    def rate(records: list[dict], **params: object) -> tuple[float, float]:
        ds = ik.Dataset.from_records(records, source="eval")
        t0 = time.perf_counter()
        out = ds.pipe(ik.decontaminate([gsm], **params))
        return 1 - len(out) / len(ds), time.perf_counter() - t0

    sizes = ", ".join(f"{k} {len(v):,}" for k, v in clean.items())
    print(f"\nsemantic: {len(para)} paraphrases ({sample} generated + {len(HANDWRITTEN)} "
          f"handwritten), {len(kept)} GPT-4-style; clean: {sizes}; GSM8K test embedded in "
          f"{embed_bench_s:.1f} s")
    print()
    print("| method | recall, names+numbers changed | recall, GPT-4-style (numbers kept) | "
          + " | ".join(f"FP, {k}" for k in clean) + " | s per 1k clean |")
    print("|---|---|---|" + "---|" * len(clean) + "---|")
    variants = {
        "ngram": {"method": "ngram"},
        "semantic (defaults)": {"method": "semantic"},
        "semantic, number_agreement=0": {"method": "semantic", "number_agreement": 0.0},
        "semantic, name_agreement=0": {"method": "semantic", "name_agreement": 0.0},
        "semantic, both checks off": {"method": "semantic", "number_agreement": 0.0, "name_agreement": 0.0},
        "both (defaults)": {"method": "both"},
    }
    for label, params in variants.items():
        recall = rate(para, **params)[0]
        recall_kept = rate(kept, **params)[0]
        fps = [rate(c, **params) for c in clean.values()]
        n_clean = sum(len(c) for c in clean.values())
        print(f"| {label} | {recall:.1%} | {recall_kept:.1%} | "
              + " | ".join(f"{fp:.2%}" for fp, _ in fps)
              + f" | {1000 * sum(s for _, s in fps) / n_clean:.1f} |", flush=True)
    # the grid behind the defaults: observe once at the loosest floors, decide per cell
    step = ik.decontaminate([gsm], method="semantic", fuzzy_threshold=50, number_agreement=0.0,
                            name_agreement=0.0)
    states = {
        name: step.observe(ik.Dataset.from_records(recs, source=name).to_polars())
        for name, recs in (("para", para), ("kept", kept), ("train", clean["gsm8k train (same domain)"]))
    }
    n_train = len(clean["gsm8k train (same domain)"])
    print("\n| cosine >= | fuzzy >= | numbers >= | names >= | recall (changed) | recall (GPT-4-style) | FP gsm8k train |"
          "\n|---|---|---|---|---|---|---|")
    cells = [(cos, fz, num, nm) for cos in (0.75, 0.8, 0.85) for fz in (50.0, 70.0)
             for num in (0.0, 0.8, 1.0) for nm in (0.0, 0.5, 1.0)]
    for cos, fz, num, nm in cells:
        step.cosine_threshold, step.fuzzy_threshold = cos, fz
        step.number_agreement, step.name_agreement = num, nm
        r = len(step.decide([states["para"]])) / len(para)
        k = len(step.decide([states["kept"]])) / len(kept)
        f = len(step.decide([states["train"]])) / n_train
        print(f"| {cos} | {fz:.0f} | {num} | {nm} | {r:.1%} | {k:.1%} | {f:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--baseline-records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--semantic", action="store_true", help="only the rephrase evaluation")
    parser.add_argument("--sample", type=int, default=300, help="paraphrased GSM8K items")
    parser.add_argument("--clean-sample", type=int, default=0, help="GSM8K train questions (0: all)")
    parser.add_argument("--semantic-records", type=int, default=20_000, help="records of the semantic speed run")
    args = parser.parse_args()
    ik.set_quiet(True)
    if args.semantic:
        semantic_speed(args.semantic_records)
        semantic_eval(args.sample, args.clean_sample)
        return

    t0 = time.perf_counter()
    bench = DATA / "benchmarks"
    benchmarks = [
        ik.benchmarks.humaneval(bench / "HumanEval.jsonl.gz"),
        ik.benchmarks.gsm8k(bench / "gsm8k_test.jsonl"),
        ik.benchmarks.mmlu(bench / "mmlu_dev_val_test_csv.tar.gz"),
    ]
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = cached_index(benchmarks, 13, 8)
    index_s = time.perf_counter() - t0

    ds = corpus(args.records)
    step = ik.decontaminate(benchmarks)
    load_before = os.getloadavg()[0]
    scan_s, scan_cpu, removed = [], [], 0
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = ds.pipe(step)
        scan_s.append(time.perf_counter() - t0)
        scan_cpu.append(time.process_time() - c0)
        removed = len(ds) - len(out)

    sub = ds.to_polars().head(args.baseline_records)
    base_s, base_hits = [], 0
    ours_sub_s, ours_sub_hits = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        base_hits = janitor_baseline(benchmarks, sub, 13)
        base_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours_sub_hits = len(step.decide([step.observe(sub)]))
        ours_sub_s.append(time.perf_counter() - t0)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scan = statistics.median(scan_s)
    cpu = statistics.median(scan_cpu)
    base = statistics.median(base_s)
    ours_sub = statistics.median(ours_sub_s)
    print(f"benchmarks: {[f'{b.name}={len(b)}' for b in benchmarks]}; {index!r}")
    print(f"threads: {pl.thread_pool_size()}; load average (1 min) before the timed runs "
          f"{load_before:.1f}, after {os.getloadavg()[0]:.1f}")
    print()
    print("| stage | records | median s | records/s | note |")
    print("|---|---|---|---|---|")
    print(f"| load benchmark files | - | {load_s:.2f} | - | HumanEval + GSM8K test + MMLU test |")
    print(f"| build 13-gram index | - | {index_s:.2f} | - | {len(index.keys):,} n-grams |")
    print(
        f"| ik.decontaminate (n-gram), full step | {len(ds):,} | {scan:.2f} | "
        f"{len(ds) / scan:,.0f} | removed {removed:,}; {cpu:.2f} CPU s, "
        f"{2 * len(ds) / cpu:,.0f} records/s on 2 uncontended cores |"
    )
    print(
        f"| ik.decontaminate observe+decide | {len(sub):,} | {ours_sub:.2f} | "
        f"{len(sub) / ours_sub:,.0f} | hits {ours_sub_hits:,} |"
    )
    print(
        f"| baseline: janitor-style Python sets | {len(sub):,} | {base:.2f} | "
        f"{len(sub) / base:,.0f} | hits {base_hits:,} (index build included) |"
    )
    print()
    print(f"speed-up vs baseline on the same {len(sub):,} records: {base / ours_sub:.1f}x")
    print(f"full step runs (s): {', '.join(f'{s:.2f}' for s in scan_s)}")
    print(f"peak RSS: {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
