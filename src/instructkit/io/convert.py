"""Convert canonical records into alpaca, sharegpt and messages rows (what the writers emit).

Each function takes one canonical record as :class:`~instructkit.Dataset` yields it (``meta``
decoded to a dict) and returns plain output rows: ``id`` and ``source`` first (unless
``ids=False``), then the format's fields, then ``system``, then every ``meta`` key flattened
back to the top level and any extra columns transforms added. Reading such a row with
``ik.read`` gives the record back. With ``meta=False`` only the format's own fields
(:data:`FORMAT_FIELDS`) are written, for tools that reject unknown keys
(text-generation-webui): meta keys that are such fields (``history``, ``tools``) stay, the
rest is left out. Meta keys that only record the input's shape (:data:`SHAPE_KEYS`, e.g.
``_format``) are never written.

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
- A conversation with more than one exchange becomes one alpaca row in LLaMA-Factory's
  layout: the last exchange in ``instruction``/``input``/``output``, the earlier ones in
  ``history`` as ``[[user, assistant], ...]``, and ``system``. A record read from such a
  row (``meta["_format"] == "alpaca_history"``) is written with ``history`` even when it is
  empty, so it reads back the same. ``turns`` picks rows instead: ``"first"``, ``"last"``
  (that exchange only) or ``"split"`` (one row per exchange, ids ``"<id>:<k>"``). Tool and
  function-call turns have no alpaca form (:class:`ConversionError`).
- ShareGPT ``tools`` (kept in ``meta``) is written back as the row's ``tools`` field, and
  ``function_call`` / ``observation`` turns keep their speakers.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from instructkit.io.formats import json_string
from instructkit.schema import COLUMNS

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: Output formats the writers know.
ROW_FORMATS = ("alpaca", "sharegpt", "messages")
TURNS = ("first", "last", "split")

#: The fields each row format defines: what ``meta=False`` writes (besides ``id``/``source``).
FORMAT_FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output", "system", "history"),
    "sharegpt": ("conversations", "system", "tools"),
    "messages": ("messages", "tools"),
}
#: ``meta`` keys that record the shape of the input a record was read from; never written.
SHAPE_KEYS: tuple[str, ...] = ("_format",)
#: ``meta["_format"]`` of a record read from a LLaMA-Factory alpaca row with ``history``.
ALPACA_HISTORY = "alpaca_history"

SHAREGPT_SPEAKER = {"user": "human", "assistant": "gpt", "tool": "observation", "function_call": "function_call"}


class ConversionError(ValueError):
    """A record that has no form in the requested output format; names the record and why."""


def _head(record: Mapping[str, Any], ids: bool, suffix: str = "") -> dict[str, Any]:
    if not ids:
        return {}
    return {"id": f"{record['id']}{suffix}", "source": record["source"]}


def _tail(
    row: dict[str, Any], record: Mapping[str, Any], meta: Mapping[str, Any], format: str, keep_meta: bool
) -> dict[str, Any]:
    """Append flattened meta and extra columns to ``row``; a clash is an error, not a loss.

    With ``keep_meta=False`` only meta keys that are fields of ``format`` are appended."""
    own = FORMAT_FIELDS[format]
    items = [(k, v) for k, v in meta.items() if k not in SHAPE_KEYS and (keep_meta or k in own)]
    extras = [
        (k, v) for k, v in record.items() if keep_meta and k not in COLUMNS and not k.startswith("_")
    ]
    for key, value in (*items, *extras):
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


def to_sharegpt(record: Mapping[str, Any], ids: bool = True, meta: bool = True) -> dict[str, Any]:
    """One ShareGPT row: ``{"conversations": [{"from", "value"}, ...], "system"?, "tools"?}``.

    Example:
        >>> to_sharegpt({"id": "x", "source": "s", "instruction": "Hi", "input": "",
        ...              "output": "Yo", "system": None, "messages": None, "meta": {}}, ids=False)
        {'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Yo'}]}
    """
    fields = _meta(record)
    conv = [{"from": SHAREGPT_SPEAKER[t["role"]], "value": t["content"]} for t in _turns(record, fields)]
    row = {**_head(record, ids), "conversations": conv}
    if record.get("system") is not None:
        row["system"] = record["system"]
    return _tail(row, record, fields, "sharegpt", meta)


def to_messages(record: Mapping[str, Any], ids: bool = True, meta: bool = True) -> dict[str, Any]:
    """One OpenAI-style row: ``{"messages": [{"role", "content"}, ...]}``, system first.

    Example:
        >>> to_messages({"id": "x", "source": "s", "instruction": "Hi", "input": "",
        ...              "output": "Yo", "system": "Be kind.", "messages": None, "meta": {}},
        ...             ids=False)["messages"][0]
        {'role': 'system', 'content': 'Be kind.'}
    """
    fields = _meta(record)
    turns = _turns(record, fields)
    if record.get("system") is not None:
        turns = [{"role": "system", "content": record["system"]}, *turns]
    return _tail({**_head(record, ids), "messages": turns}, record, fields, "messages", meta)


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


def _split_user(record: Mapping[str, Any], user: str, meta: dict[str, Any], only: bool) -> tuple[str, str]:
    """``(instruction, input)`` of the user turn of the exchange an alpaca row holds.

    The record's flat ``instruction``/``input`` when they make that turn (joined by a blank
    line, or by one newline as LLaMA-Factory joins them); else, for a one-exchange record,
    the ``input`` a chat writer kept (module docs; consumed from ``meta``); else the whole
    turn as the instruction."""
    instruction, input = record.get("instruction") or "", record.get("input") or ""
    if input and user in (f"{instruction}\n\n{input}", f"{instruction}\n{input}"):
        if meta.get("input") == input:
            meta.pop("input")
        return instruction, input
    kept = meta.get("input")
    if only and isinstance(kept, str) and kept and user.endswith("\n\n" + kept):
        return user[: -len(kept) - 2], meta.pop("input")
    return user, ""


def to_alpaca(
    record: Mapping[str, Any], turns: str | None = None, ids: bool = True, meta: bool = True
) -> list[dict[str, Any]]:
    """Alpaca rows (``instruction, input, output``, ``system`` when set, ``history`` for a
    conversation) for one record.

    A single-turn record gives one row. A conversation gives, by default, one row in
    LLaMA-Factory's layout: its last exchange, and the earlier ones in ``history``. With
    ``turns`` it gives the ``"first"`` or ``"last"`` exchange alone, or ``"split"``: one row
    per exchange.

    Example:
        >>> conv = {"id": "c", "source": "s", "instruction": "", "input": "", "output": "",
        ...         "system": None, "meta": {}, "messages": [
        ...             {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        ...             {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
        >>> to_alpaca(conv, ids=False)
        [{'instruction': 'c', 'input': '', 'output': 'd', 'history': [['a', 'b']]}]
        >>> [r["instruction"] for r in to_alpaca(conv, turns="split")]
        ['a', 'c']
    """
    if turns is not None and turns not in TURNS:
        raise ValueError(f"turns must be one of {TURNS} or None, got {turns!r}")
    fields = _meta(record)
    system = record.get("system")
    history_shape = fields.get("_format") == ALPACA_HISTORY
    if not record.get("messages"):
        row = {
            **_head(record, ids),
            "instruction": record.get("instruction") or "",
            "input": record.get("input") or "",
            "output": record.get("output") or "",
        }
        if system is not None:
            row["system"] = system
        if history_shape and "history" not in fields:
            row["history"] = []
        return [_tail(row, record, fields, "alpaca", meta)]
    pairs = _exchanges(record)
    if not pairs:
        raise ConversionError(f"record {record.get('id')!r}: conversation has no user turn")
    last = len(pairs) - 1
    if turns is None:
        chosen, history = [(last, "")], [list(p) for p in pairs[:-1]]
    elif turns in ("first", "last"):
        chosen, history = [(last if turns == "last" else 0, "")], None
    else:
        chosen, history = [(k, f":{k}") for k in range(len(pairs))], None
    write_history = history is not None and (len(pairs) > 1 or history_shape)
    rows = []
    for k, suffix in chosen:
        user, reply = pairs[k]
        row_meta = dict(fields)
        if k == last:  # the exchange the flat fields of an alpaca-history record hold
            instruction, input = _split_user(record, user, row_meta, only=len(pairs) == 1)
        else:
            instruction, input = user, ""
        row = {**_head(record, ids, suffix), "instruction": instruction, "input": input, "output": reply}
        if system is not None:
            row["system"] = system
        if write_history:
            row["history"] = history
        rows.append(_tail(row, record, row_meta, "alpaca", meta))
    return rows


def to_rows(
    records: Iterable[Mapping[str, Any]], format: str, turns: str | None = None, ids: bool = True,
    meta: bool = True,
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
            yield from to_alpaca(record, turns=turns, ids=ids, meta=meta)
        elif format == "sharegpt":
            yield to_sharegpt(record, ids=ids, meta=meta)
        else:
            yield to_messages(record, ids=ids, meta=meta)


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


def _meta_fragments(frame: pl.DataFrame, taken: set[str], keep_meta: bool = True) -> dict[str, str] | None:
    """Each distinct ``meta`` string -> the keys :func:`to_alpaca` writes from it and their
    values as compact JSON members (``"k":v,...``), as ``orjson.dumps`` writes them after
    ``json.loads``; None when a meta is not an object, records the input's shape
    (:data:`SHAPE_KEYS`), has a key that clashes with ``taken``, or a ``system`` beside a set
    ``system``."""
    fragments: dict[str, str] = {}
    has_system = frame["system"].is_not_null().any()
    own = FORMAT_FIELDS["alpaca"]
    for text in frame["meta"].drop_nulls().unique().to_list():
        decoded = json.loads(text) if text else {}
        if not isinstance(decoded, dict) or any(k in decoded for k in SHAPE_KEYS):
            return None
        if not keep_meta:
            decoded = {k: v for k, v in decoded.items() if k in own}
        if taken & decoded.keys():
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


def alpaca_json_rows(frame: pl.DataFrame, ids: bool = True, meta: bool = True) -> pl.Series | None:
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
    extras = [c for c in frame.columns if meta and c not in COLUMNS and not c.startswith("_")]
    taken = {"id", "source", *_ALPACA_FIELDS}
    if taken & set(extras) or ("system" in extras and frame["system"].is_not_null().any()):
        return None
    fragments = _meta_fragments(frame, taken | set(extras), meta)
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


def alpaca_frame(frame: pl.DataFrame, ids: bool = True, meta: bool = True) -> pl.DataFrame | None:
    """The alpaca rows of a single-turn frame without ``meta`` or added columns (or written
    with ``meta=False``), as the frame ``polars`` builds from :func:`to_rows`' dicts (for
    Parquet); None otherwise.

    Example:
        >>> import instructkit as ik
        >>> alpaca_frame(ik.Dataset.from_records([{"instruction": "a"}]).to_polars()).columns
        ['id', 'source', 'instruction', 'input', 'output']
    """
    extras = [c for c in frame.columns if meta and c not in COLUMNS and not c.startswith("_")]
    if not _single_turn(frame) or extras:
        return None
    if meta and (frame["meta"].fill_null("") != "").any():
        return None
    if not meta:
        fragments = _meta_fragments(frame, set(), keep_meta=False)
        if fragments is None or any(fragments.values()):
            return None  # a meta key that is an alpaca field (history): the row path writes it
    if frame["id"].is_null().any() or frame["source"].is_null().any():
        return None
    columns = [pl.col(c).fill_null("") for c in _ALPACA_FIELDS]
    if ids:
        columns = [pl.col("id"), pl.col("source"), *columns]
    if frame["system"].is_not_null().any():
        columns.append(pl.col("system"))
    return frame.select(columns)


def convert_file(
    source: str | Path | Sequence[str | Path],
    target: str | Path,
    to: str,
    *,
    input_format: str | None = None,
    template: str | None = None,
    turns: str | None = None,
    system: str | None = None,
    meta: bool = True,
    columns: Sequence[str] | None = None,
    on_error: str = "raise",
) -> tuple[Path, Dataset]:
    """Read ``source`` (files, folders, globs; format detected or ``input_format``) and write
    it to ``target`` as ``to``; returns ``(path written, dataset read)``.

    What ``instructkit convert`` runs. ``system`` is the system prompt of records without
    one; ``template``, ``turns``, ``meta`` and ``columns`` are as in
    :func:`instructkit.io.write.write`.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "qa.jsonl").write_text('{"question": "2+2?", "answer": "4"}\\n')
        >>> path, ds = convert_file(d / "qa.jsonl", d / "chat.jsonl", to="messages", system="Be brief.")
        >>> path.read_text()
        '{"id":"qa:0","source":"qa","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}\\n'
    """
    from instructkit.io.read import read

    dataset = read(source, format=input_format, on_error=on_error)
    path = dataset.write(
        target, format=to, template=template, turns=turns, system=system, meta=meta, columns=columns
    )
    return path, dataset
