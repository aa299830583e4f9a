"""Cherry LLM (IFD) and AlpaGasus (LLM judge) selection on alpaca_en_demo.json.

Scores every record, sweeps the fraction kept, and prints what the best and worst scores
look like. Point --model at a local folder of a real 0.5-7B causal LM for meaningful
scores, and --judge-url at an OpenAI-compatible server for the AlpaGasus rating:

    python examples/select_with_scores.py --model models/Qwen2.5-0.5B-Instruct \
        --judge-url http://localhost:8000/v1 --judge-model qwen2.5-7b-instruct

Without --model it builds the tests' tiny random Llama, which shows the mechanics (and the
speed of the plumbing), not the quality of a selection.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

import instructkit as ik

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "instructions" / "alpaca_en_demo.json")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--judge-url", default=None)
    parser.add_argument("--judge-model", default=None)
    parser.add_argument("--records", type=int, default=None, help="score only the first N records")
    args = parser.parse_args()

    ds = ik.read(args.data).pipe(ik.dedup.exact())
    if args.records:
        ds = ds.head(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_llama import build_tiny_llama

            model = build_tiny_llama(Path(tmp) / "tiny")
        start = time.perf_counter()
        scored = ds.pipe(ik.score.ifd(str(model)))
        print(f"IFD of {len(scored)} records in {time.perf_counter() - start:.1f} s with {Path(model).name}")
        # Cherry LLM: drop IFD > 1 (the instruction does not help), keep the hardest fraction
        sweep = ik.sweep(ik.score.select(by="ifd", top_fraction=0.1, valid_range=(0, 1)),
                         "top_fraction", [0.05, 0.1, 0.25, 0.5], scored)
        print(sweep)
        picked = scored.pipe(ik.score.select(by="ifd", top_fraction=0.1, valid_range=(0, 1)))
        frame = picked.to_polars().sort("ifd", descending=True)
        print("highest IFD kept:", frame.select("ifd", pl.col("instruction").str.slice(0, 70)).head(3))
        dropped = picked.removed.filter(pl.col("reason") == "low_score").head(3)
        print("dropped (low IFD):", dropped.select("detail", pl.col("instruction").str.slice(0, 70)))
        if args.judge_url:
            judge = ik.LLM.from_openai(args.judge_url, args.judge_model)
            rated = ds.pipe(ik.score.judge(judge))
            # AlpaGasus keeps the records rated 4.5 and above
            kept = rated.pipe(ik.score.select(by="judge_score", threshold=4.5))
            print(f"AlpaGasus: {len(kept)} of {len(rated)} rated >= 4.5", kept.report())


if __name__ == "__main__":
    main()
