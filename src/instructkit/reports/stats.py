"""Length statistics per source and field: characters, words and (optionally) tokens.

A *word* is a run of non-space characters (``\\S+``), so CJK text without spaces counts as
few words: use characters or tokens for it. A conversation (``messages``) is measured as the
sum over its turns. Empty fields (``""`` or null) are counted in ``empty`` and left out of the
length figures, so ``input`` statistics describe the records that have an input.

Example:
    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"instruction": "Add two numbers.", "output": "5"}])
    >>> row = stats(ds).filter(field="instruction").row(0, named=True)
    >>> row["source"], row["records"], row["words_mean"]
    ('(all)', 1, 3.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from instructkit.schema import TEXT_FIELDS

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: The ``source`` value of the rows that cover every source together.
ALL = "(all)"
#: Texts passed to a tokenizer per call.
TOKEN_BATCH = 10_000

_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def stats(
    dataset: Dataset,
    tokenizer: Any = None,
    fields: Sequence[str] | None = None,
    by_source: bool = True,
) -> pl.DataFrame:
    """One row per (source, field): record counts and length figures.

    Columns: ``source`` (``"(all)"`` first, then each source when ``by_source``), ``field``,
    ``records`` (non-empty), ``empty``, then for each unit (``chars``, ``words``, and
    ``tokens`` when a tokenizer is given) ``<unit>_mean, _p50, _p90, _p99, _max`` and
    ``<unit>_total``.

    ``tokenizer`` is a Hugging Face tokenizer (called on batches, special tokens left out)
    or any callable mapping a string to a sequence of tokens.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a b", "output": "c"}], source="s")
        >>> stats(ds).select("source", "field", "records", "chars_max").rows()[:3]
        [('(all)', 'instruction', 1, 3), ('(all)', 'input', 0, None), ('(all)', 'output', 1, 1)]
    """
    lengths = length_frame(dataset.to_polars(), fields=fields, tokenizer=tokenizer)
    return summarize(lengths, by_source=by_source)


def length_frame(
    frame: pl.DataFrame, fields: Sequence[str] | None = None, tokenizer: Any = None
) -> pl.DataFrame:
    """Per record and field: ``source, field, chars, words`` (and ``tokens``); null = empty.

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"source": ["s"], "instruction": ["Hi there"], "output": [""]})
        >>> length_frame(f, fields=["instruction", "output"]).rows()
        [('s', 'instruction', 8, 2), ('s', 'output', None, None)]
    """
    names = [f for f in (fields or TEXT_FIELDS) if f in frame.columns]
    if fields is not None:
        missing = [f for f in fields if f not in frame.columns]
        if missing:
            raise ValueError(f"unknown field(s) {missing}; columns are {frame.columns}")
    if not names:
        return pl.DataFrame(schema={"source": pl.String, "field": pl.String,
                                    "chars": pl.Int64, "words": pl.Int64})
    # one wide select, so polars measures every field (and unit) in parallel
    texts = [
        pl.when(_field_text(n) != "").then(_field_text(n)).alias(n) for n in names
    ]
    wide = frame.select(pl.col("source"), *texts).select(
        pl.col("source"),
        *[pl.col(n).str.len_chars().cast(pl.Int64).alias(f"{n}\0chars") for n in names],
        *[pl.col(n).str.count_matches(r"\S+").cast(pl.Int64).alias(f"{n}\0words") for n in names],
    )
    parts = []
    for name in names:
        part = wide.select(
            pl.col("source"),
            pl.lit(name).alias("field"),
            pl.col(f"{name}\0chars").alias("chars"),
            pl.col(f"{name}\0words").alias("words"),
        )
        if tokenizer is not None:
            text = frame.select(pl.when(_field_text(name) != "").then(_field_text(name)))
            part = part.with_columns(
                pl.Series("tokens", token_counts(text.to_series().to_list(), tokenizer), dtype=pl.Int64)
            )
        parts.append(part)
    return pl.concat(parts)


def summarize(lengths: pl.DataFrame, by_source: bool = True) -> pl.DataFrame:
    """Aggregate a :func:`length_frame` into the table :func:`stats` returns."""
    units = [u for u in ("chars", "words", "tokens") if u in lengths.columns]
    aggs: list[pl.Expr] = [
        pl.col(units[0]).is_not_null().sum().cast(pl.Int64).alias("records"),
        pl.col(units[0]).is_null().sum().cast(pl.Int64).alias("empty"),
    ]
    for unit in units:
        col = pl.col(unit)
        aggs.append(col.mean().round(2).alias(f"{unit}_mean"))
        aggs.extend(
            col.quantile(q, "nearest").cast(pl.Int64).alias(f"{unit}_{label}")
            for label, q in _QUANTILES
        )
        aggs.append(col.max().alias(f"{unit}_max"))
        aggs.append(col.sum().cast(pl.Int64).alias(f"{unit}_total"))
    field_order = pl.col("field").replace_strict(
        {f: i for i, f in enumerate(TEXT_FIELDS)}, default=len(TEXT_FIELDS), return_dtype=pl.Int64
    )
    overall = (
        lengths.group_by("field", maintain_order=True).agg(aggs)
        .with_columns(pl.lit(ALL).alias("source"))
    )
    tables = [overall]
    if by_source:
        tables.append(lengths.group_by("source", "field", maintain_order=True).agg(aggs))
    out = pl.concat(tables, how="diagonal")
    # (all) first, then sources by name; fields in canonical order
    return out.sort(
        pl.col("source") != ALL, "source", field_order, maintain_order=True
    ).select("source", "field", pl.exclude("source", "field"))


def token_counts(texts: Sequence[str | None], tokenizer: Any) -> list[int | None]:
    """Number of tokens of each text (``None`` stays ``None``).

    ``tokenizer`` is a Hugging Face tokenizer (batched, without special tokens) or a
    callable ``str -> sequence of tokens``.

    Example:
        >>> token_counts(["a b c", None], str.split)
        [3, None]
    """
    present = [i for i, t in enumerate(texts) if t is not None]
    counts: list[int | None] = [None] * len(texts)
    count = _counter(tokenizer)
    for start in range(0, len(present), TOKEN_BATCH):
        idx = present[start:start + TOKEN_BATCH]
        for i, n in zip(idx, count([texts[i] for i in idx]), strict=True):  # type: ignore[misc]
            counts[i] = n
    return counts


def _counter(tokenizer: Any) -> Callable[[list[str]], list[int]]:
    if hasattr(tokenizer, "batch_encode_plus") or hasattr(tokenizer, "backend_tokenizer"):
        def hf(batch: list[str]) -> list[int]:
            ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
            return [len(x) for x in ids]
        return hf
    if callable(tokenizer):
        return lambda batch: [len(tokenizer(t)) for t in batch]
    raise TypeError(
        f"tokenizer must be a Hugging Face tokenizer or a callable str -> tokens, "
        f"got {type(tokenizer).__name__}"
    )


def _field_text(name: str) -> pl.Expr:
    if name == "messages":
        return pl.col("messages").list.eval(pl.element().struct.field("content")).list.join(" ")
    return pl.col(name).cast(pl.String)
