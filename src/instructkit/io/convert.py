"""Convert canonical records into alpaca, sharegpt and messages rows (what the writers emit).

Each function takes one canonical record as :class:`~instructkit.Dataset` yields it (``meta``
decoded to a dict) and returns plain output rows: ``id`` and ``source`` first (unless
``ids=False``), then the format's fields, then ``system``, then every ``meta`` key flattened
back to the top level and any extra columns transforms added. Reading such a row with
``ik.read`` gives the record back.

Lossless rules:

- A single-turn record becomes one user turn (``instruction``, then ``"\\n\\n" + input`` when
  there is an input) and one assistant turn (``output``). Chat formats have no input slot,
  so when the input is merged the row also keeps it under a top-level ``"input"`` key; going
  back to alpaca, a one-exchange conversation whose user turn ends with ``"\\n\\n" + input``
  is split into ``instruction`` and ``input`` again (and the key is consumed).
- ``system`` is a top-level ``"system"`` field in alpaca and sharegpt rows (LLaMA-Factory's
  layout) and the first ``{"role": "system"}`` message in messages rows.
- ShareGPT speakers: user -> ``human``, assistant -> ``gpt``, tool -> ``observation``,
  function_call -> ``function_call``.
- A conversation with more than one exchange has no alpaca form: converting it raises
  :class:`ConversionError` unless ``turns`` is ``"first"``, ``"last"`` (that exchange only)
  or ``"split"`` (one row per exchange, ids ``"<id>:<k>"``).

Single-turn alpaca rows of a whole frame are also built column-wise
(:func:`alpaca_json_rows`, :func:`alpaca_frame`), byte for byte as the record-by-record
converters and ``orjson`` make them; a frame with anything those do not model (a
conversation, a ``meta`` key that clashes with an output field, ...) is handed to the
per-record converters, which give the result or the precise error.

Example:
    >>> rec = {"id": "a:0", "source": "a", "instruction": "Sum.", "input": "2 3",
    ...        "output": "5", "system": None, "messages": None, "meta": {}}
    >>> to_sharegpt(rec)["conversations"][0]
    {'from': 'human', 'value': 'Sum.\\n\\n2 3'}
    >>> to_alpaca(to_canonical(to_sharegpt(rec)))[0]["input"]
    '2 3'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
import polars as pl

from instructkit.io.formats import json_string
from instructkit.schema import COLUMNS

#: Output formats the writers know.
ROW_FORMATS = ("alpaca", "sharegpt", "messages")
TURNS = ("first", "last", "split")

SHAREGPT_SPEAKER = {"user": "human", "assistant": "gpt", "tool": "observation", "function_call": "function_call"}


class ConversionError(ValueError):
    """A record that has no form in the requested output format; names the record and why."""


def _head(record: Mapping[str, Any], ids: bool, suffix: str = "") -> dict[str, Any]:
    if not ids:
        return {}
    return {"id": f"{record['id']}{suffix}", "source": record["source"]}


def _tail(row: dict[str, Any], record: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Append flattened meta and extra columns to ``row``; a clash is an error, not a loss."""
    extras = {k: v for k, v in record.items() if k not in COLUMNS and not k.startswith("_")}
    for key, value in (*meta.items(), *extras.items()):
        if key in row or key in ("id", "source"):
            raise ConversionError(
                f"record {record.get('id')!r}: field {key!r} (from meta or an added column) clashes "
                f"with the output field of the same name; rename or drop it before writing"
            )
        row[key] = value
    return row


def _meta(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("meta") or {}
    if isinstance(meta, str):  # a raw frame row rather than a Dataset row
        import json

        meta = json.loads(meta)
    return dict(meta)


def _user_turn(record: Mapping[str, Any], meta: dict[str, Any]) -> str:
    instruction, input = record.get("instruction") or "", record.get("input") or ""
    if not input:
        return instruction
    if "input" in meta:
        raise ConversionError(
            f"record {record.get('id')!r}: has both an input and a meta key 'input'; cannot keep both"
        )
    meta["input"] = input  # kept so the merge can be undone (see module docs)
    return f"{instruction}\n\n{input}"


def _turns(record: Mapping[str, Any], meta: dict[str, Any]) -> list[dict[str, str]]:
    if record.get("messages"):
        return [{"role": m["role"], "content": m["content"] or ""} for m in record["messages"]]
    return [
        {"role": "user", "content": _user_turn(record, meta)},
        {"role": "assistant", "content": record.get("output") or ""},
    ]


def to_sharegpt(record: Mapping[str, Any], ids: bool = True) -> dict[str, Any]:
    """One ShareGPT row: ``{"conversations": [{"from", "value"}, ...], "system"?}``.

    Example:
        >>> to_sharegpt({"id": "x", "source": "s", "instruction": "Hi", "input": "",
        ...              "output": "Yo", "system": None, "messages": None, "meta": {}}, ids=False)
        {'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Yo'}]}
    """
    meta = _meta(record)
    conv = [{"from": SHAREGPT_SPEAKER[t["role"]], "value": t["content"]} for t in _turns(record, meta)]
    row = {**_head(record, ids), "conversations": conv}
    if record.get("system") is not None:
        row["system"] = record["system"]
    return _tail(row, record, meta)


def to_messages(record: Mapping[str, Any], ids: bool = True) -> dict[str, Any]:
    """One OpenAI-style row: ``{"messages": [{"role", "content"}, ...]}``, system first.

    Example:
        >>> to_messages({"id": "x", "source": "s", "instruction": "Hi", "input": "",
        ...              "output": "Yo", "system": "Be kind.", "messages": None, "meta": {}},
        ...             ids=False)["messages"][0]
        {'role': 'system', 'content': 'Be kind.'}
    """
    meta = _meta(record)
    turns = _turns(record, meta)
    if record.get("system") is not None:
        turns = [{"role": "system", "content": record["system"]}, *turns]
    return _tail({**_head(record, ids), "messages": turns}, record, meta)


def _exchanges(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(user, assistant) pairs of a conversation that alternates user / assistant."""
    pairs: list[tuple[str, str]] = []
    for i, m in enumerate(record["messages"]):
        role = m["role"]
        if role == "user" and (not pairs or pairs[-1][1] is not None):
            pairs.append((m["content"] or "", None))  # type: ignore[arg-type]
        elif role == "assistant" and pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], m["content"] or "")
        else:
            raise ConversionError(
                f"record {record.get('id')!r}: turn {i} is {role!r}; alpaca rows need turns "
                "alternating user, assistant (tool turns have no alpaca form)"
            )
    return [(u, a if a is not None else "") for u, a in pairs]


def to_alpaca(record: Mapping[str, Any], turns: str | None = None, ids: bool = True) -> list[dict[str, Any]]:
    """Alpaca rows (``instruction, input, output``, ``system`` when set) for one record.

    A single-turn record gives one row. A conversation gives one row per exchange it keeps:
    with one exchange no ``turns`` is needed; with more, ``turns`` must be ``"first"``,
    ``"last"`` or ``"split"``.

    Example:
        >>> conv = {"id": "c", "source": "s", "instruction": "", "input": "", "output": "",
        ...         "system": None, "meta": {}, "messages": [
        ...             {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        ...             {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
        >>> [r["instruction"] for r in to_alpaca(conv, turns="split")]
        ['a', 'c']
    """
    if turns is not None and turns not in TURNS:
        raise ValueError(f"turns must be one of {TURNS} or None, got {turns!r}")
    meta = _meta(record)
    system = record.get("system")
    if not record.get("messages"):
        row = {
            **_head(record, ids),
            "instruction": record.get("instruction") or "",
            "input": record.get("input") or "",
            "output": record.get("output") or "",
        }
        if system is not None:
            row["system"] = system
        return [_tail(row, record, meta)]
    pairs = _exchanges(record)
    if len(pairs) > 1 and turns is None:
        raise ConversionError(
            f"record {record.get('id')!r} is a conversation with {len(pairs)} exchanges and "
            "alpaca rows are single-turn; pass turns='first', 'last' or 'split'"
        )
    if not pairs:
        raise ConversionError(f"record {record.get('id')!r}: conversation has no user turn")
    if len(pairs) == 1 or turns in ("first", "last"):
        chosen = [(pairs[-1] if turns == "last" else pairs[0], "")]
    else:
        chosen = [(p, f":{k}") for k, p in enumerate(pairs)]
    rows = []
    for (user, reply), suffix in chosen:
        instruction, input = user, ""
        row_meta = dict(meta)
        kept = row_meta.get("input")
        if len(pairs) == 1 and isinstance(kept, str) and kept and user.endswith("\n\n" + kept):
            # undo the instruction + input merge a chat writer made (module docs)
            instruction, input = user[: -len(kept) - 2], row_meta.pop("input")
        row = {**_head(record, ids, suffix), "instruction": instruction, "input": input, "output": reply}
        if system is not None:
            row["system"] = system
        rows.append(_tail(row, record, row_meta))
    return rows


def to_rows(
    records: Iterable[Mapping[str, Any]], format: str, turns: str | None = None, ids: bool = True
) -> Iterator[dict[str, Any]]:
    """Output rows of ``format`` (``alpaca``, ``sharegpt``, ``messages``) for many records.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Yo"}], source="d")
        >>> next(to_rows(ds, "messages"))
        {'id': 'd:0', 'source': 'd', 'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Yo'}]}
    """
    if format not in ROW_FORMATS:
        raise ValueError(f"unknown output format {format!r}; use one of {ROW_FORMATS} or 'text'")
    for record in records:
        if format == "alpaca":
            yield from to_alpaca(record, turns=turns, ids=ids)
        elif format == "sharegpt":
            yield to_sharegpt(record, ids=ids)
        else:
            yield to_messages(record, ids=ids)


def to_canonical(row: Mapping[str, Any], source: str = "records") -> dict[str, Any]:
    """The canonical record ``ik.read`` makes of one written row (for in-memory round trips).

    Example:
        >>> to_canonical({"id": "a", "source": "s", "instruction": "Hi", "output": "Yo"})["output"]
        'Yo'
    """
    from instructkit.dataset import Dataset

    return Dataset.from_records([dict(row)], source=source)[0]


# column-wise alpaca rows ---------------------------------------------------------------------

_ALPACA_FIELDS = ("instruction", "input", "output")
_JSON_INT = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _single_turn(frame: pl.DataFrame) -> bool:
    return frame.height > 0 and not (frame["messages"].list.len().fill_null(0) > 0).any()


def _meta_fragments(frame: pl.DataFrame, taken: set[str]) -> dict[str, str] | None:
    """Each distinct ``meta`` string -> its keys and values as compact JSON members
    (``"k":v,...``), as ``orjson.dumps`` writes them after ``json.loads``; None when a meta is
    not an object, a key clashes with ``taken`` or ``system`` is set beside a meta ``system``."""
    fragments: dict[str, str] = {}
    has_system = frame["system"].is_not_null().any()
    for text in frame["meta"].drop_nulls().unique().to_list():
        decoded = json.loads(text) if text else {}
        if not isinstance(decoded, dict) or taken & decoded.keys():
            return None
        if "system" in decoded and has_system:
            return None
        fragments[text] = orjson.dumps(decoded).decode()[1:-1]
    return fragments


def _value_json(series: pl.Series) -> pl.Expr:
    """A column's values as ``orjson.dumps`` writes them (``null`` for missing)."""
    if series.dtype == pl.String or series.dtype == pl.Boolean or series.dtype in _JSON_INT:
        return json_string(pl.col(series.name))  # polars' encoder writes these as orjson does
    # floats, lists, structs, dates: orjson formats each value as the per-record path does
    encoded = [orjson.dumps(v).decode() for v in series.to_list()]
    return pl.lit(pl.Series(encoded, dtype=pl.String))


def alpaca_json_rows(frame: pl.DataFrame, ids: bool = True) -> pl.Series | None:
    """One JSON text per record, equal to ``orjson.dumps(row)`` of :func:`to_alpaca`'s row.

    Returns None when the frame has a record the per-record converter must decide (a
    conversation, a clash between a ``meta`` key or added column and an output field, a null
    ``id``); :func:`instructkit.io.write.write` then uses :func:`to_rows`.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Yo", "tag": "t"}], source="d")
        >>> alpaca_json_rows(ds.to_polars()).to_list()
        ['{"id":"d:0","source":"d","instruction":"Hi","input":"","output":"Yo","tag":"t"}']
    """
    if not _single_turn(frame) or frame["id"].is_null().any():
        return None
    extras = [c for c in frame.columns if c not in COLUMNS and not c.startswith("_")]
    taken = {"id", "source", *_ALPACA_FIELDS}
    if taken & set(extras) or ("system" in extras and frame["system"].is_not_null().any()):
        return None
    fragments = _meta_fragments(frame, taken | set(extras))
    if fragments is None:
        return None
    try:
        extra_values = [_value_json(frame[c]) for c in extras]
    except (TypeError, orjson.JSONEncodeError):
        return None  # a value orjson cannot write: the per-record path raises the error
    head = [pl.col(c).fill_null("") for c in _ALPACA_FIELDS]
    if ids:
        head = [pl.col("id"), pl.col("source"), *head]
    # {"id":..,"source":..,"instruction":..,"input":..,"output":.. in one encoder pass
    parts = [pl.struct(head).struct.json_encode().str.head(-1)]
    parts.append(
        pl.when(pl.col("system").is_not_null())
        .then(pl.lit(',"system":') + json_string(pl.col("system"))).otherwise(pl.lit(""))
    )
    if fragments:
        member = pl.col("meta").replace_strict(fragments, default="", return_dtype=pl.String)
        parts.append(pl.when(member != "").then(pl.lit(",") + member).otherwise(pl.lit("")))
    for name, value in zip(extras, extra_values, strict=True):
        parts += [pl.lit("," + orjson.dumps(name).decode() + ":"), value]
    parts.append(pl.lit("}"))
    return frame.select(pl.concat_str(parts).alias("json")).to_series()


def alpaca_frame(frame: pl.DataFrame, ids: bool = True) -> pl.DataFrame | None:
    """The alpaca rows of a single-turn frame without ``meta`` or added columns, as the
    frame ``polars`` builds from :func:`to_rows`' dicts (for Parquet); None otherwise.

    Example:
        >>> import instructkit as ik
        >>> alpaca_frame(ik.Dataset.from_records([{"instruction": "a"}]).to_polars()).columns
        ['id', 'source', 'instruction', 'input', 'output']
    """
    extras = [c for c in frame.columns if c not in COLUMNS and not c.startswith("_")]
    if not _single_turn(frame) or extras or (frame["meta"].fill_null("") != "").any():
        return None
    if frame["id"].is_null().any() or frame["source"].is_null().any():
        return None
    columns = [pl.col(c).fill_null("") for c in _ALPACA_FIELDS]
    if ids:
        columns = [pl.col("id"), pl.col("source"), *columns]
    if frame["system"].is_not_null().any():
        columns.append(pl.col("system"))
    return frame.select(columns)
