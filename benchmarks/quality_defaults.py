"""How many records each ``ik.quality()`` rule removes from each real file, with samples.

Measures every rule of the default ``ik.quality()`` on its own (``empty_output``,
``refusal``), and Stanford Alpaca's keyword blacklist (``blacklist="alpaca"``, the default
before issue 17.7), on every file of ``../shared/data/instructions``: records removed, share
of the file, the most frequent matched words or phrases, and a few removed instructions
(sampled with a seed). Then the default and the old default against the hand-labelled sample
``tests/data/quality_labels.jsonl``: how many records labelled keep each would remove.

    python benchmarks/quality_defaults.py [--samples 3] [--out benchmarks/results/quality_defaults.md]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import polars as pl

import instructkit as ik
from instructkit.filters.quality import Quality
from instructkit.transform import parse_detail

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "instructions"
LABELS = ROOT / "tests" / "data" / "quality_labels.jsonl"

#: Each rule alone: (name, step, detail key that names what matched).
RULES = (
    ("empty_output", Quality(refusals=None), None),
    ("refusal", Quality(empty_output=False), "phrase"),
    ("alpaca_blacklist (old default)", Quality(empty_output=False, refusals=None, blacklist="alpaca"), "word"),
)


def _short(text: str | None, n: int = 90) -> str:
    text = (text or "").replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def measure(samples: int, seed: int) -> str:
    lines = [
        "| file | records | rule | removed | share | top matches |",
        "|---|---:|---|---:|---:|---|",
    ]
    shown: list[str] = []
    rng = random.Random(seed)
    for path in sorted(DATA.iterdir()):
        ds = ik.read(path, on_error="skip")
        for name, step, key in RULES:
            removed = ds.pipe(step).removed.filter(pl.col("step") == "quality")
            n = removed.height
            top = ""
            if key and n:
                found = Counter(parse_detail(d).get(key) for d in removed["detail"].to_list())
                top = ", ".join(f"{w}: {c}" for w, c in found.most_common(5))
            share = 100 * n / len(ds) if len(ds) else 0.0
            lines.append(f"| {path.name} | {len(ds):,} | {name} | {n:,} | {share:.1f}% | {top} |")
            if n and samples:
                picks = sorted(rng.sample(range(n), min(samples, n)))
                shown.append(f"\n**{path.name}, {name}** ({n:,} removed; {len(picks)} at random):\n")
                for k in picks:
                    rid, detail, instruction, output = removed.select("id", "detail", "instruction", "output").row(k)
                    shown.append(f"- `{rid}` {detail}: {_short(instruction)} → {_short(output, 60)}")
    return "\n".join(lines) + "\n\n### Samples of removed records\n" + "\n".join(shown) + "\n"


def labelled() -> str:
    labels = [json.loads(line) for line in LABELS.read_text().splitlines()]
    out = ["| rules | keep-labelled records removed | false-removal rate | removed drop-labelled |",
           "|---|---:|---:|---:|"]
    keep = [r for r in labels if r["label"] == "keep"]
    drop = [r for r in labels if r["label"] == "drop"]
    for name, step in (("default `ik.quality()`", ik.quality()), ("`ik.quality(blacklist=\"alpaca\")`", ik.quality(blacklist="alpaca"))):
        removed: set[tuple[str, int]] = set()
        for file in sorted({r["file"] for r in labels}):
            ds = ik.read(DATA / file)
            ids = set(ds.pipe(step).removed["id"].to_list())
            index = {rid: k for k, rid in enumerate(ds.to_polars()["id"].to_list())}
            removed |= {(file, index[i]) for i in ids}
        wrong = [r for r in keep if (r["file"], r["index"]) in removed]
        caught = [r for r in drop if (r["file"], r["index"]) in removed]
        reasons = Counter(r["reason"] for r in wrong)
        out.append(
            f"| {name} | {len(wrong)} of {len(keep)} ({dict(reasons)}) | {100 * len(wrong) / len(keep):.1f}% "
            f"| {len(caught)} of {len(drop)} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: this benchmark needs ../shared/data")
    ik.set_quiet(True)
    with pl.Config(tbl_rows=-1):
        body = (
            "# quality() defaults on real data\n\n"
            "Each rule alone, on every file of `../shared/data/instructions` (read with "
            "`on_error=\"skip\"`). The default `ik.quality()` is `empty_output` + `refusal`; "
            "Stanford Alpaca's keyword blacklist was the default until issue 17.7 and is now "
            "`blacklist=\"alpaca\"`.\n\nCommand:\n\n"
            f"    .venv/bin/python benchmarks/quality_defaults.py --samples {args.samples} --seed {args.seed}"
            + (f" --out {args.out}" if args.out else "")
            + "\n\n"
            + measure(args.samples, args.seed)
            + "\n## Against the hand-labelled sample\n\n"
            "200 records drawn with `random.Random(17)` (100 from each Code Alpaca file), each "
            "labelled keep/drop by reading it (`tests/data/quality_labels.jsonl`, criteria in "
            "docs/filters.md); checked by `tests/test_filters.py::"
            "test_default_quality_rules_keep_what_a_careful_reader_keeps`.\n\n"
            + labelled()
        )
    print(body)
    if args.out:
        args.out.write_text(body, encoding="utf-8")


if __name__ == "__main__":
    main()
