"""``ik.tokenize``: the exact token ids and labels ``ik.finetune`` trains on, as a table."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from instructkit.dataset import Dataset


def tokenize(
    dataset: Dataset | Iterable[dict[str, Any]],
    tokenizer: Any,
    *,
    template: str = "alpaca",
    max_seq_length: int = 1024,
) -> pl.DataFrame:
    """Render and tokenize every record as :func:`ik.finetune <instructkit.finetune>` does.

    ``tokenizer`` is a Hugging Face tokenizer or a model folder / hub id to load one from.
    Each record is rendered with the prompt format ``template`` and its whole text is
    tokenized once; a token is learned when it starts inside a response, and a token that
    straddles the prompt/response boundary stays masked (counted in ``boundary_merges``).
    Sequences are truncated to ``max_seq_length`` tokens.

    Returns a polars DataFrame with one row per record, in input order (nothing is
    dropped): ``id``, ``input_ids`` and ``labels`` (lists of the same length; ``labels`` is
    ``-100`` on masked tokens and equals ``input_ids`` everywhere else), ``tokens``,
    ``learned`` (tokens with a label), ``truncated`` and ``boundary_merges``. ``finetune``
    trains on the rows with ``learned > 0``.

    Example:
        >>> import instructkit as ik
        >>> table = ik.tokenize(ds, "meta-llama/Llama-2-7b-hf", template="llama2")  # doctest: +SKIP
        >>> row = table.row(0, named=True)                                          # doctest: +SKIP
        >>> tok.decode([t for t in row["labels"] if t != -100])                     # doctest: +SKIP
        ' Hello </s>'
    """
    import polars as pl

    from instructkit.templates.formats import get_format
    from instructkit.training.data import TokenizeStats, iter_encoded

    if isinstance(tokenizer, (str, Path)):
        from instructkit.training.model import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    fmt = get_format(template, tokenizer=tokenizer)
    records = dataset if not isinstance(dataset, (str, Path)) else None
    if records is None:
        raise TypeError(f"tokenize: dataset is a path ({dataset}); read it first with ik.read()")
    rows: dict[str, list[Any]] = {k: [] for k in (
        "id", "input_ids", "labels", "tokens", "learned", "truncated", "boundary_merges")}
    for rid, enc, truncated in iter_encoded(records, fmt, tokenizer, max_seq_length, TokenizeStats()):
        rows["id"].append(rid)
        rows["input_ids"].append(enc.input_ids)
        rows["labels"].append(enc.labels)
        rows["tokens"].append(len(enc.input_ids))
        rows["learned"].append(sum(1 for x in enc.labels if x != -100))
        rows["truncated"].append(truncated)
        rows["boundary_merges"].append(enc.boundary_merges)
    schema = {"id": pl.String, "input_ids": pl.List(pl.Int64), "labels": pl.List(pl.Int64),
              "tokens": pl.Int64, "learned": pl.Int64, "truncated": pl.Boolean,
              "boundary_merges": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
