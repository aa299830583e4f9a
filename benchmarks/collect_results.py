"""Assemble benchmarks/RESULTS.md from the per-area result pages in benchmarks/results/.

Each benchmark script writes its own page (with the command that produced it); this joins
them in a fixed order so RESULTS.md is one document.

    python benchmarks/collect_results.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["install", "io", "dedup", "langid", "pii", "decontam", "report", "scaling", "bench", "finetune", "finetune_gpu"]

HEADER = """# Benchmark results

Every figure below was measured on the project's 2-core, 24 GiB machine (shared and noisy:
medians and ratios against a baseline measured in the same run), by the command given in its
section. Regenerate a section by running its command; this file is assembled by
`python benchmarks/collect_results.py` from `benchmarks/results/*.md`.
"""


def main() -> None:
    pages = {p.stem: p for p in sorted((HERE / "results").glob("*.md"))}
    names = [n for n in ORDER if n in pages] + sorted(set(pages) - set(ORDER))
    parts = [HEADER]
    for name in names:
        text = pages[name].read_text(encoding="utf-8").strip()
        if not text.startswith("#"):
            text = f"## {name}\n\n{text}"
        else:
            text = "#" + text if text.startswith("# ") else text
        parts.append(text)
    (HERE / "RESULTS.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(f"RESULTS.md: {len(names)} sections ({', '.join(names)})")


if __name__ == "__main__":
    main()
