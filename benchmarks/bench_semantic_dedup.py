"""Semantic dedup: precision/recall on built pairs, and speed on 100k records (static model).

Pairs (from ../shared/data/instructions):
- duplicates: an instruction and a rewording of it made here (synonym and phrase swaps,
  "How do I" -> "How can I", "Write" -> "Compose", ...; the wording changes, the request
  does not);
- same-topic non-duplicates: two different GSM8K train questions (same domain, same
  style), and two different Code Alpaca instructions that start with the same three words.

Precision and recall of ``cosine >= threshold`` per threshold, for the static model and for
MiniLM. Speed: ``ik.dedup.semantic`` (static model, default settings) on ``--n`` records
(real instructions cycled, each made distinct, 30% reworded copies), observed in batches of
10,000 as an out-of-core executor does, then one ``decide``; the content-hash cache is
cleared first.

Usage:
    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_semantic_dedup.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
DATA = HERE.parents[1].parent / "shared" / "data" / "instructions"
SWAPS = [
    ("how do i", "how can i"), ("write", "compose"), ("give", "provide"), ("explain", "describe"),
    ("create", "make"), ("generate", "produce"), ("list", "name"), ("find", "determine"),
    ("a function", "a routine"), ("program", "script"), ("tell me", "let me know"),
    ("what is", "what's"), ("describe", "explain"), ("suggest", "recommend"), ("short", "brief"),
    ("summarize", "sum up"), ("identify", "point out"), ("calculate", "compute"),
]


def reword(text: str, rng: random.Random) -> str:
    """A rewording: every applicable swap made, a polite prefix or suffix sometimes added."""
    out = text
    for a, b in SWAPS:
        out = re.sub(rf"\b{re.escape(a)}\b", b, out, flags=re.IGNORECASE)
    r = rng.random()
    if r < 0.3:
        out = "Please " + out[:1].lower() + out[1:]
    elif r < 0.5:
        out = out.rstrip(".") + ", please."
    return out


def pairs(rng: random.Random, count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    alpaca = [r["instruction"] for r in json.loads((DATA / "alpaca_en_demo.json").read_text())]
    code = [r["instruction"] for r in json.loads((DATA / "code_alpaca_2k.json").read_text())]
    gsm = [r["instruction"] for r in json.loads((DATA / "gsm8k_train_alpaca.json").read_text())]
    pool = [t for t in alpaca + code if t and reword(t, random.Random(0)) != t]
    pos = []
    for t in rng.sample(pool, count):
        pos.append((t, reword(t, rng)))
    neg = [tuple(rng.sample(gsm, 2)) for _ in range(count // 2)]
    by_start: dict[str, list[str]] = {}
    for t in code:
        by_start.setdefault(" ".join(t.lower().split()[:3]), []).append(t)
    groups = [g for g in by_start.values() if len(set(g)) > 1]
    while len(neg) < count:
        g = rng.choice(groups)
        a, b = rng.sample(sorted(set(g)), 2)
        neg.append((a, b))
    return pos, neg  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="static,minilm", help="models of the pairs table")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parents[1] / "src"))

    import instructkit as ik
    from instructkit import embed

    rng = random.Random(args.seed)
    pos, neg = pairs(rng, args.pairs)
    lines = [
        "# Semantic dedup (ik.dedup.semantic)",
        "",
        "Command:",
        "",
        f"    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_semantic_dedup.py --n {args.n}",
        "",
        f"Pairs: {len(pos)} rewordings of Alpaca / Code Alpaca instructions (duplicates) and "
        f"{len(neg)} same-topic non-duplicates (two GSM8K train questions; two Code Alpaca "
        "instructions with the same first three words). Precision and recall of "
        "`cosine >= threshold`.",
        "",
        "| model | threshold | precision | recall |",
        "|---|---|---|---|",
    ]
    for model in args.models.split(","):
        cos = []
        for group in (pos, neg):
            a = embed.embed([p[0] for p in group], model=model)
            b = embed.embed([p[1] for p in group], model=model)
            cos.append(np.sum(a * b, axis=1))
        for t in (0.8, 0.85, 0.9, 0.95):
            tp, fp = int((cos[0] >= t).sum()), int((cos[1] >= t).sum())
            prec = tp / (tp + fp) if tp + fp else 1.0
            lines.append(f"| {model} | {t} | {prec:.3f} | {tp / len(pos):.3f} |")
        print("\n".join(lines[-4:]), flush=True)

    # speed: distinct texts (instructions, and the sentences of the outputs, of seven
    # shared files), 30% of the records reworded copies of earlier ones
    seen: dict[str, None] = {}
    for name in ("alpaca_en_demo.json", "code_alpaca_2k.json", "gpteacher_toolformer.json",
                 "gpteacher_roleplay.json", "gsm8k_train_alpaca.json", "new_codealpaca.json", "alpaca_zh_demo.json"):
        for r in json.loads((DATA / name).read_text()):
            seen.setdefault(r["instruction"].strip(), None)
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", r.get("output") or ""):
                if len(sentence.split()) >= 4:
                    seen.setdefault(sentence.strip(), None)
    base = list(seen)
    rng.shuffle(base)
    records: list[dict] = []
    fresh = iter(base)
    for i in range(args.n):
        if i > 10 and rng.random() < 0.3:
            records.append({"instruction": reword(records[rng.randrange(i)]["instruction"], rng)})
        else:
            records.append({"instruction": next(fresh)})
    frame = ik.Dataset.from_records(records, source="s").to_polars()
    embed._VECTORS.clear()
    embed.embedder("static", "auto")  # load once, outside the timing (a few ms once cached)
    load = os.getloadavg()[0]
    step = ik.dedup.semantic()
    t0 = time.perf_counter()
    states = [step.observe(frame.slice(s, 10_000)) for s in range(0, frame.height, 10_000)]
    t_obs = time.perf_counter() - t0
    t1 = time.perf_counter()
    drops = step.decide(states)
    t_dec = time.perf_counter() - t1
    total = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Speed: {args.n:,} records (distinct instructions and output sentences of seven shared "
        f"files, {len(base):,} available; 30% reworded copies of earlier records), static model, threshold {step.threshold}, observed in batches of "
        f"10,000 then one decide. Load average (1 min) {load:.1f} at the start, 2 cores shared.",
        "",
        "| records | observe (embed + spill) s | decide s | total s | records/s | removed | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
        f"| {args.n:,} | {t_obs:.1f} | {t_dec:.1f} | {total:.1f} | {args.n / total:,.0f} | {drops.height:,} | {rss:,.0f} |",
        "",
    ]
    print("\n".join(lines[-3:]), flush=True)
    out = HERE.parent / "results" / "semantic_dedup.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
