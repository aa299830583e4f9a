"""False positives of the whole-text match of short benchmark items (4+ words), per file.

Every file in ../shared/data/instructions is scanned with ``ik.decontaminate(method="ngram")``
against each shared benchmark (HumanEval, GSM8K test, MMLU dev+val+test). Reported per file
and benchmark: records removed, and how many of them only by a whole-text match of an item
shorter than ``min_words`` (8) words, the matches this change adds; each such match is listed
so it can be judged by eye. gsm8k_train_alpaca.json against GSM8K test is a same-domain hard
negative; all other pairs are unrelated corpora.

Usage:
    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_decontam_short.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DATA = HERE.parents[1].parent / "shared" / "data"


def main() -> None:
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    import polars as pl

    import instructkit as ik
    from instructkit.decontam.ngram import WHOLE_MIN_WORDS

    b = DATA / "benchmarks"
    benches = {
        "humaneval": ik.benchmarks.humaneval(b / "HumanEval.jsonl.gz"),
        "gsm8k_test": ik.benchmarks.gsm8k(b / "gsm8k_test.jsonl"),
        "mmlu": ik.benchmarks.mmlu(b / "mmlu_dev_val_test_csv.tar.gz", splits=("dev", "val", "test")),
    }
    lines, examples = [], []
    t0 = time.perf_counter()
    total_short = 0
    for path in sorted((DATA / "instructions").iterdir()):
        data = ik.read(path, on_error="skip")
        for name, bench in benches.items():
            short_items = {i for i, t in zip(bench.ids, bench.texts, strict=True) if WHOLE_MIN_WORDS <= len(t.split()) < 8}
            out = data.pipe(ik.decontaminate([bench]))
            rem = out.removed.filter(pl.col("reason") == "contamination")  # not the read's parse errors
            det = rem["detail"].to_list()
            items = [d.split("item=")[1].split(" ")[0] if "item=" in d else "" for d in det]
            short = [(r, it) for r, it, d in zip(rem["id"].to_list(), items, det, strict=True) if "full_text" in d and it in short_items]
            total_short += len(short)
            lines.append(f"| {path.name} | {len(data)} | {name} | {rem.height} | {len(short)} |")
            for rid, it in short:
                rec = data.to_polars().filter(pl.col("id") == rid).row(0, named=True)
                examples.append(f"| {path.name} | {rid} | {name}:{it} | {bench.text(it)[:80]!r} | {(rec['instruction'] or '')[:60]!r} |")
    secs = time.perf_counter() - t0
    page = [
        "# Decontamination: whole-text matches of short benchmark items",
        "",
        "Command:",
        "",
        "    flock /tmp/ik-heavy.lock nice .venv/bin/python benchmarks/bench_decontam_short.py",
        "",
        f"A training text equal to a benchmark item after normalization is contamination down to "
        f"{WHOLE_MIN_WORDS} words; `min_words` (8) now guards only partial (n-gram) matches. "
        f"Every file of ../shared/data/instructions against every shared benchmark "
        f"(MMLU: dev, val and test), n=13. 'short-item matches' are the removals that only the "
        f"new rule makes (a whole-text match of an item of {WHOLE_MIN_WORDS}-7 words). "
        f"Total {total_short} short-item matches; run time {secs:.0f} s.",
        "",
        "| file | records | benchmark | removed | short-item matches |",
        "|---|---|---|---|---|",
        *lines,
        "",
    ]
    if examples:
        page += ["Every short-item match:", "", "| file | record | item | item text | record instruction |", "|---|---|---|---|---|", *examples, ""]
    out = HERE.parent / "results" / "decontam_short.md"
    out.write_text("\n".join(page), encoding="utf-8")
    print("\n".join(page))


if __name__ == "__main__":
    main()
