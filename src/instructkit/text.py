"""Apply a text function to the text fields of a frame, conversations included.

Text transforms (normalize, PII scrubbing) must edit ``messages`` as well as the flat fields,
or a conversation and its ``instruction``/``output`` mirror would disagree. These helpers do it
once for everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from instructkit.schema import TEXT_FIELDS


def resolve_fields(fields: str | Sequence[str] | None, frame: pl.DataFrame) -> list[str]:
    """Expand ``None``/``"all"`` to every text field; check the names exist.

    Example:
        >>> import polars as pl
        >>> resolve_fields("instruction", pl.DataFrame({"instruction": ["a"]}))
        ['instruction']
    """
    if fields is None or fields == "all":
        names = list(TEXT_FIELDS)
    elif isinstance(fields, str):
        names = [fields]
    else:
        names = list(fields)
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise ValueError(f"unknown field(s) {missing}; columns are {frame.columns}")
    return names


def map_text_expr(
    frame: pl.DataFrame, fields: Sequence[str], fn: Callable[[pl.Expr], pl.Expr]
) -> pl.DataFrame:
    """Rewrite each field with a polars expression function ``fn(expr) -> expr``.

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"instruction": [" a "]})
        >>> map_text_expr(f, ["instruction"], lambda e: e.str.strip_chars())["instruction"][0]
        'a'
    """
    exprs = []
    for name in fields:
        if name == "messages":
            exprs.append(
                pl.col("messages").list.eval(
                    pl.struct(
                        pl.element().struct.field("role"),
                        fn(pl.element().struct.field("content")).alias("content"),
                    )
                )
            )
        else:
            exprs.append(fn(pl.col(name)).alias(name))
    return frame.with_columns(exprs)


def texts(frame: pl.DataFrame, field: str) -> pl.Series:
    """All texts of one field as a flat String series (each turn's content for messages)."""
    if field == "messages":
        return frame["messages"].explode().struct.field("content").drop_nulls()
    return frame[field]


def map_text_batch(
    frame: pl.DataFrame,
    fields: Sequence[str],
    fn: Callable[[list[str | None]], list[str | None]],
) -> pl.DataFrame:
    """Rewrite each field with a Python function over a list of texts (one call per field).

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"output": ["ab", None]})
        >>> map_text_batch(f, ["output"], lambda xs: [x and x.upper() for x in xs])["output"].to_list()
        ['AB', None]
    """
    out = frame
    for name in fields:
        if name == "messages":
            out = out.with_columns(_map_messages(out["messages"], fn))
        else:
            values = fn(out[name].to_list())
            out = out.with_columns(pl.Series(name, values, dtype=pl.String))
    return out


def _map_messages(
    messages: pl.Series, fn: Callable[[list[str | None]], list[str | None]]
) -> pl.Series:
    lengths = messages.list.len()
    flat = messages.explode()
    # explode turns null and empty lists into one null row each; rebuild offsets from lengths
    keep = flat.is_not_null()
    contents = flat.filter(keep).struct.field("content").to_list()
    roles = flat.filter(keep).struct.field("role")
    new = pl.DataFrame({"role": roles, "content": pl.Series(fn(contents), dtype=pl.String)})
    structs = new.to_struct("m")
    rebuilt: list[list[dict] | None] = []
    pos = 0
    for is_null, n in zip(messages.is_null().to_list(), lengths.to_list(), strict=True):
        if is_null:
            rebuilt.append(None)
            continue
        rebuilt.append(structs.slice(pos, n).to_list())
        pos += n
    return pl.Series("messages", rebuilt, dtype=messages.dtype)
