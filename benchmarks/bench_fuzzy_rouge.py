"""Self-instruct's ROUGE-L filter: ik.dedup.fuzzy(scorer="rougeL") against the reference loop.

The reference is Stanford Alpaca's ``generate_instruction.py`` loop (tatsu-lab/stanford_alpaca
@761dc5b, copied in ../shared/data/prompts): per new instruction, ``Pool(num_cpus).map`` of
``rouge_scorer._score_lcs`` over every pool instruction, drop at max F > 0.7, else the record
joins the pool. It runs on the first ``--ref-n`` records of each file (it is slow), and
ik runs on the same records in the same process; the removed sets are compared. ik then runs
on the whole files (median of ``--repeat``), and fuzz.ratio (exact mode) is counted at a few
thresholds for comparison.

Usage:
    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_fuzzy_rouge.py --ref-n 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve()
DATA = HERE.parents[1].parent / "shared" / "data" / "instructions"
FILES = [
    ("code_alpaca_2k.json", "code_alpaca_seed_tasks.jsonl"),
    ("new_codealpaca.json", "code_alpaca_seed_tasks.jsonl"),
    ("alpaca_en_demo.json", "stanford_alpaca_seed_tasks.jsonl"),
]


def reference_loop(seeds: list[str], texts: list[str], cpus: int) -> list[int]:
    """The reference's filter loop, as written there (one Pool per instruction)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    all_tokens = [scorer._tokenizer.tokenize(t) for t in seeds]
    removed = []
    for i, text in enumerate(texts):
        new_tokens = scorer._tokenizer.tokenize(text)
        with Pool(cpus) as p:
            scores = p.map(partial(rouge_scorer._score_lcs, new_tokens), all_tokens)
        scores = [s.fmeasure for s in scores]
        if max(scores) > 0.7:
            removed.append(i)
            continue
        all_tokens.append(new_tokens)
    return removed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-n", type=int, default=300, help="records the reference loop runs on, per file")
    ap.add_argument("--cpus", type=int, default=2, help="the reference's Pool size")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "fuzzy_rouge.md")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    import instructkit as ik

    # compile the kernel once outside the timings
    ik.Dataset.from_records([{"instruction": "a b"}, {"instruction": "a b"}]).pipe(ik.dedup.fuzzy(scorer="rougeL"))
    load = os.getloadavg()[0]
    rows, ratio_rows = [], []
    for name, seed_name in FILES:
        data = ik.read(DATA / name)
        seeds = ik.read(DATA / seed_name)
        seed_texts = seeds.to_polars()["instruction"].to_list()
        sub = data.head(args.ref_n)
        t = time.perf_counter()
        ref_removed = reference_loop(seed_texts, sub.to_polars()["instruction"].to_list(), args.cpus)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        out = sub.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7, against=seeds))
        t_ik_sub = time.perf_counter() - t
        ids = sub.to_polars()["id"].to_list()
        ours = sorted(ids.index(i) for i in out.removed["id"].to_list())
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            full = data.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7, against=seeds))
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        rows.append(
            f"| {name} | {len(sub)} | {t_ref:.1f} | {t_ik_sub:.3f} | {t_ref / t_ik_sub:,.0f}x | "
            f"{len(ref_removed)} / {len(ours)} | {'yes' if ours == ref_removed else 'NO'} | "
            f"{len(data)} | {med:.3f} | {len(data) / med:,.0f} | {full.removed.height} |"
        )
        counts = []
        for th in (0.7, 0.8, 0.9):
            counts.append(data.pipe(ik.dedup.fuzzy(threshold=th, blocking="exact", against=seeds)).removed.height)
        ratio_rows.append(f"| {name} | {full.removed.height} | " + " | ".join(str(c) for c in counts) + " |")
        print(rows[-1], ratio_rows[-1], flush=True)
    page = [
        "# Self-instruct ROUGE-L filter (ik.dedup.fuzzy scorer='rougeL')",
        "",
        "Command:",
        "",
        f"    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_fuzzy_rouge.py --ref-n {args.ref_n}",
        "",
        f"Reference: Stanford Alpaca's loop (one `Pool({args.cpus})` per instruction, rouge-score "
        f"`_score_lcs` against every pool instruction) on the first {args.ref_n} records of each file; "
        f"ik on the same records, then on the whole file (median of {args.repeat}). Seeds: the Code "
        f"Alpaca seed tasks for the code files, the Stanford seed tasks for alpaca_en_demo. Load "
        f"average (1 min) {load:.1f} at the start (2 cores, shared).",
        "",
        "| file | records (ref) | reference s | ik s | speed-up | removed ref / ik | same set | records | ik s (full) | records/s | removed (full) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The same files with rapidfuzz `fuzz.ratio` (character level, exact mode, greedy pool, same "
        "seeds) at three thresholds, against ROUGE-L > 0.7:",
        "",
        "| file | ROUGE-L > 0.7 | ratio >= 0.7 | ratio >= 0.8 | ratio >= 0.9 |",
        "|---|---|---|---|---|",
        *ratio_rows,
        "",
    ]
    args.out.write_text("\n".join(page), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
