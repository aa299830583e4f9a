"""Clean the real instruction sets in ../shared/data and write a training file.

    python examples/clean_shared_data.py [--data ../shared/data] [--out out/]

Reads every instruction file (broken lines are kept aside, not lost), runs the default
cleaning steps, prints the per-step report and writes the clean set, the removed log and an
eval split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import instructkit as ik
from instructkit.pipeline import write_removed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args()
    folder = args.data / "instructions"
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: pass --data PATH to the shared data folder")

    files = [folder / n for n in ("alpaca_en_demo.json", "code_alpaca_2k.json", "gpteacher_toolformer.json",
                                  "instructionwild_user_2.jsonl")]
    ds = ik.read(files, on_error="skip")
    steps = [ik.normalize(), ik.quality(empty_output=True), ik.dedup.exact(), ik.dedup.minhash(threshold=0.8),
             ik.langid(keep=["en"])]
    clean = ds.pipe(*steps)
    print(clean.report())
    train, test = ik.split(clean, eval_fraction=0.05, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    train.write(args.out / "train.jsonl")
    test.write(args.out / "eval.jsonl")
    write_removed(clean.removed, args.out / "removed.jsonl")
    print(f"train {len(train)}, eval {len(test)}, removed {clean.removed.height} -> {args.out}")


if __name__ == "__main__":
    main()
