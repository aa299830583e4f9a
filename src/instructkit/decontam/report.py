"""What decontamination caught: counts per benchmark and examples side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from instructkit.decontam.benchmarks import Benchmark, resolve
from instructkit.transform import detail_field

REPORT_SCHEMA: dict[str, pl.DataType] = {
    "benchmark": pl.String(),
    "contaminated": pl.UInt32(),
    "item": pl.String(),
    "record_id": pl.String(),
    "detail": pl.String(),
    "benchmark_text": pl.String(),
    "record_text": pl.String(),
}


def contamination_report(
    dataset: Any,
    benchmarks: Sequence[Benchmark | Mapping[str, Any]],
    examples: int = 3,
) -> pl.DataFrame:
    """Per benchmark: how many records were contaminated, and up to ``examples`` of them.

    Reads records dropped with reason ``contamination`` (``dataset.removed``) and records
    flagged by ``action="flag"`` (the ``contamination`` column). One row per example, with
    the benchmark item's text and the training record's text side by side; ``contaminated``
    is the benchmark's total. Benchmarks with no hits are absent.

    Example:
        >>> import instructkit as ik
        >>> b = ik.benchmarks.from_records("toy", [{"q": "one two three four five"}], ["q"])
        >>> ds = ik.Dataset.from_records([{"instruction": "One two three four five!"}])
        >>> out = ds.pipe(ik.decontaminate([b], n=3))
        >>> from instructkit.decontam import contamination_report
        >>> contamination_report(out, [b]).select("benchmark", "contaminated").row(0)
        ('toy', 1)
    """
    frames = []
    removed = dataset.removed.filter(pl.col("reason") == "contamination")
    if removed.height:
        frames.append(removed.select("id", "detail", "instruction", "input", "output"))
    frame = dataset.to_polars()
    if "contamination" in frame.columns:
        flagged = frame.filter(pl.col("contamination").is_not_null())
        frames.append(
            flagged.select("id", pl.col("contamination").alias("detail"), "instruction", "input", "output")
        )
    if not frames:
        return pl.DataFrame(schema=REPORT_SCHEMA)
    hits = pl.concat(frames, how="vertical").with_columns(detail_field("benchmark"), detail_field("item"))
    texts = {
        (b.name, item): text
        for b in (resolve(x) for x in benchmarks)
        for item, text in zip(b.ids, b.texts, strict=True)
    }
    counts = hits.group_by("benchmark", maintain_order=True).agg(
        pl.len().cast(pl.UInt32).alias("contaminated")
    )
    shown = hits.group_by("benchmark", maintain_order=True).head(examples)
    bench_text = [texts.get((b, i)) for b, i in zip(shown["benchmark"], shown["item"], strict=True)]
    return (
        shown.join(counts, on="benchmark", how="left", maintain_order="left")
        .with_columns(
            pl.Series("benchmark_text", bench_text, dtype=pl.String),
            pl.concat_str(
                [pl.col("instruction"), pl.col("input"), pl.col("output")], separator="\n"
            ).str.strip_chars().alias("record_text"),
            pl.col("id").alias("record_id"),
        )
        .sort("contaminated", "benchmark", descending=[True, False], maintain_order=True)
        .select([pl.col(c).cast(t) for c, t in REPORT_SCHEMA.items()])
    )
