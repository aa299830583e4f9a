"""Input formats: detection from field names and mapping of raw records to canonical form.

Each format knows its required fields and turns a raw dict into zero or more canonical
records (seed tasks expand ``instances[]``). Fields a format does not use go to ``meta``.

Two paths, one result. :func:`canonical_frame` first tries a column-wise path for the common
case: flat formats (alpaca, dolly, qa, prompt_completion, or a ``mapping`` onto them) whose
records are all JSON objects with text (or number) fields. It pulls each field out as one
column and builds ids, ``source`` and ``meta`` with polars expressions, giving byte for byte
the frame of the record-by-record path (:func:`canonical_frame_precise`, checked by
``tests/test_read.py``). Whenever a batch holds anything that path does not model exactly (a
record that failed to parse, a non-object, a missing required field, a list where text is
expected, a conversation format), the whole batch goes to :func:`canonical_frame_precise`,
which raises or logs the precise error (file, line, field) exactly as before. The hand-over
is a design choice for precision: the fast path never guesses, and nothing is dropped by it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from instructkit.io.files import DuplicateKeys, Literal, find_duplicate
from instructkit.schema import ROLES, SCHEMA, conform, empty_removed

#: ShareGPT speaker names -> canonical roles.
SHAREGPT_ROLES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
    "system": "system",
    "observation": "tool", "tool": "tool", "function": "tool",
    "function_call": "function_call",
}


class RecordError(ValueError):
    """A record that cannot be turned into a canonical record; says where and which field."""

    def __init__(self, message: str, reason: str = "invalid_record", field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Format:
    """How one input format maps onto canonical records.

    ``fields`` maps canonical names to the format's field names; ``required`` lists the
    canonical names that must be present.
    """

    name: str
    fields: Mapping[str, str]
    required: tuple[str, ...]
    convert: Callable[[Format, dict[str, Any]], list[dict[str, Any]]] | None = None

    def to_canonical(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        """Canonical records (without ``id``/``source``) for one raw record."""
        if type(raw) is DuplicateKeys:
            raise RecordError(f"key {raw.duplicate!r} appears more than once in the record", field=raw.duplicate)
        for key in self.required:
            field = self.fields.get(key, key)
            if raw.get(field) is None:
                raise RecordError(
                    f"missing required field {field!r} for format {self.name!r}; "
                    f"fields found: {sorted(map(str, raw))}",
                    reason="missing_field", field=field,
                )
        if self.convert is not None:
            return self.convert(self, raw)
        if "history" in raw and self.name == "alpaca":
            return _alpaca_history(self, raw)
        return [_flat(self, raw)]


def text_value(value: Any, field: str) -> str:
    """A value where text is expected, as text: strings as they are, integers and finite
    floats as the file wrote them; anything else (booleans, NaN, lists, objects, null inside a
    structure) is an ``invalid_record`` naming the field.

    Example:
        >>> from instructkit.io.files import loads
        >>> text_value(7, "id"), text_value(loads("1.50"), "input")
        ('7', '1.50')
    """
    if type(value) is str:
        return value
    if isinstance(value, bool) or value is None:
        kind = "null" if value is None else "boolean"
        raise RecordError(f"field {field!r} is a {kind}, expected text", field=field)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"field {field!r} is {value}, expected text", field=field)
        return value.text if isinstance(value, Literal) else repr(value)
    if isinstance(value, str):
        return str(value)
    raise RecordError(f"field {field!r} is a {type(value).__name__}, expected text", field=field)


def _text(raw: dict[str, Any], field: str, where: str | None = None) -> str:
    value = raw.get(field)
    return "" if value is None else text_value(value, where or field)


def _meta(raw: dict[str, Any], used: Iterable[str]) -> str | None:
    used = set(used)
    rest = {k: v for k, v in raw.items() if k not in used}
    if not rest:
        return None
    for k, v in rest.items():
        if isinstance(v, (dict, list)):
            dup = find_duplicate(v, str(k))
            if dup:
                raise RecordError(f"key {dup!r} appears more than once in the record", field=dup)
    try:
        return json.dumps(rest, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except ValueError:
        bad = next(str(k) for k, v in rest.items() if _non_finite(v))
        raise RecordError(f"field {bad!r} holds NaN or infinity, which JSON cannot store", field=bad) from None


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_non_finite, value.values()))
    if isinstance(value, list):
        return any(map(_non_finite, value))
    return False


_PASSTHROUGH = ("id", "source", "system")


def _flat(fmt: Format, raw: dict[str, Any]) -> dict[str, Any]:
    f = fmt.fields
    system = raw.get(f.get("system", "system"))
    return {
        "instruction": _text(raw, f["instruction"]),
        "input": _text(raw, f["input"]) if "input" in f else "",
        "output": _text(raw, f["output"]) if "output" in f else "",
        "system": _text(raw, f.get("system", "system")) if system is not None else None,
        "messages": None,
        "meta": _meta(raw, [*f.values(), *_PASSTHROUGH]),
    }


#: ``meta["_format"]`` of a record read from LLaMA-Factory's alpaca layout with ``history``:
#: writers use it to write the record back in that shape.
ALPACA_HISTORY = "alpaca_history"


def _alpaca_history(fmt: Format, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """LLaMA-Factory alpaca: ``history`` ([[user, assistant], ...]) then the record's own turn
    (instruction, a newline and input when there is one; output). The instruction/input/output
    columns mirror that last turn, as in the file."""
    f = fmt.fields
    history = raw["history"]
    if history is not None and not isinstance(history, list):
        raise RecordError(f"field 'history' is a {type(history).__name__}, expected a list of [user, assistant] pairs", field="history")
    messages: list[dict[str, str]] = []
    for i, pair in enumerate(history or []):
        if not isinstance(pair, list) or len(pair) != 2:
            raise RecordError(f"history[{i}] is not a [user, assistant] pair", field=f"history[{i}]")
        messages.append({"role": "user", "content": text_value(pair[0], f"history[{i}][0]")})
        messages.append({"role": "assistant", "content": text_value(pair[1], f"history[{i}][1]")})
    rec = _flat(fmt, raw)
    prompt = rec["instruction"] + ("\n" + rec["input"] if rec["input"] else "")
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": rec["output"]}]
    meta = json.loads(_meta(raw, [*f.values(), *_PASSTHROUGH, "history"]) or "{}")
    meta["_format"] = ALPACA_HISTORY
    rec["messages"] = messages
    rec["meta"] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    return [rec]


def _conversation(fmt: Format, raw: dict[str, Any]) -> list[dict[str, Any]]:
    key = fmt.fields["messages"]
    turns = raw[key]
    if not isinstance(turns, list):
        raise RecordError(f"field {key!r} is a {type(turns).__name__}, expected a list of turns", field=key)
    role_key, text_key = ("from", "value") if fmt.name == "sharegpt" else ("role", "content")
    system = raw.get("system")
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict) or turn.get(role_key) is None:
            raise RecordError(f"turn {i} of field {key!r} lacks {role_key!r}", field=where)
        if type(turn) is DuplicateKeys:
            raise RecordError(f"key {where}.{turn.duplicate} appears more than once", field=f"{where}.{turn.duplicate}")
        speaker = text_value(turn[role_key], f"{where}.{role_key}")
        role = SHAREGPT_ROLES.get(speaker.lower()) if fmt.name == "sharegpt" else speaker
        if role not in ROLES:
            raise RecordError(f"turn {i} of field {key!r} has unknown role {speaker!r}", field=f"{where}.{role_key}")
        if text_key not in turn:
            raise RecordError(f"turn {i} of field {key!r} lacks {text_key!r}", field=f"{where}.{text_key}")
        content = text_value(turn[text_key], f"{where}.{text_key}")
        if role == "system" and not messages:
            system = content if system is None else f"{system}\n\n{content}"
            continue
        messages.append({"role": role, "content": content})
    first_user = next((j for j, m in enumerate(messages) if m["role"] == "user"), None)
    reply = ""
    if first_user is not None:
        reply = next(
            (m["content"] for m in messages[first_user + 1 :] if m["role"] == "assistant"), ""
        )
    return [{
        "instruction": messages[first_user]["content"] if first_user is not None else "",
        "input": "",
        "output": reply,
        "system": system if system is None else text_value(system, "system"),
        "messages": messages,
        "meta": _meta(raw, [key, *_PASSTHROUGH]),
    }]


def _seed(fmt: Format, raw: dict[str, Any]) -> list[dict[str, Any]]:
    instances = raw["instances"]
    if not isinstance(instances, list):
        raise RecordError("field 'instances' must be a list of {input, output}", field="instances")
    if not instances:
        raise RecordError("field 'instances' is empty: a seed task needs at least one instance", field="instances")
    meta = _meta(raw, ["instruction", "instances", *_PASSTHROUGH])
    out = []
    for k, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise RecordError(f"instances[{k}] is a {type(inst).__name__}, expected an object", field=f"instances[{k}]")
        if type(inst) is DuplicateKeys:
            raise RecordError(f"key instances[{k}].{inst.duplicate} appears more than once", field=f"instances[{k}].{inst.duplicate}")
        out.append({
            "instruction": _text(raw, "instruction"),
            "input": _text(inst, "input", f"instances[{k}].input"),
            "output": _text(inst, "output", f"instances[{k}].output"),
            "system": None,
            "messages": None,
            "meta": meta,
            "_suffix": f":{k}",
        })
    return out


def _canonical(fmt: Format, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """A record that already has the canonical columns (an executor's or ``write`` output):
    taken as it is, after checking each column's type."""
    rec: dict[str, Any] = {}
    for name in ("instruction", "input", "output"):
        rec[name] = _text(raw, name)
    rec["system"] = None if raw.get("system") is None else text_value(raw["system"], "system")
    messages = raw.get("messages")
    if messages is not None:
        if not isinstance(messages, list):
            raise RecordError("field 'messages' is not a list of turns", field="messages")
        out = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise RecordError(f"messages[{i}] is not a {{role, content}} turn", field=f"messages[{i}]")
            out.append({"role": m["role"], "content": m["content"]})
        messages = out
    rec["messages"] = messages
    meta = raw.get("meta")
    if isinstance(meta, dict):
        meta = _meta(meta, ())
    elif meta is not None:
        if not isinstance(meta, str) or not isinstance(_json_object(meta), dict):
            raise RecordError("field 'meta' is not a JSON object string", field="meta")
    rec["meta"] = meta
    for k, v in raw.items():
        if k not in SCHEMA:
            rec[k] = v
    return [rec]


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


FORMATS: dict[str, Format] = {
    "alpaca": Format("alpaca", {"instruction": "instruction", "input": "input", "output": "output"}, ("instruction",)),
    "dolly": Format("dolly", {"instruction": "instruction", "input": "context", "output": "response"}, ("instruction",)),
    "qa": Format("qa", {"instruction": "question", "input": "context", "output": "answer"}, ("instruction",)),
    "prompt_completion": Format("prompt_completion", {"instruction": "prompt", "output": "completion"}, ("instruction",)),
    "sharegpt": Format("sharegpt", {"messages": "conversations"}, ("messages",), _conversation),
    "messages": Format("messages", {"messages": "messages"}, ("messages",), _conversation),
    "seed": Format("seed", {"instruction": "instruction", "instances": "instances"}, ("instruction", "instances"), _seed),
    # rendered training text ({"id", "text"}, what write(format="text") makes): the whole text
    # is the record's instruction, so reports, langid and dedup read it
    "text": Format("text", {"instruction": "text"}, ("instruction",)),
    "canonical": Format("canonical", {c: c for c in SCHEMA}, (), _canonical),
}


def detect(keys: set[str], origin: str = "input") -> str:
    """The format name that fits a set of field names.

    Example:
        >>> detect({"question", "answer"})
        'qa'
    """
    rules: Sequence[tuple[str, set[str]]] = (
        ("canonical", set(SCHEMA)),
        ("sharegpt", {"conversations"}),
        ("messages", {"messages"}),
        ("seed", {"instruction", "instances"}),
        ("alpaca", {"instruction", "output"}),
        ("dolly", {"instruction", "response"}),
        ("qa", {"question", "answer"}),
        ("prompt_completion", {"prompt", "completion"}),
        ("alpaca", {"instruction"}),
        ("text", {"text"}),
    )
    for name, needed in rules:
        if needed <= keys:
            return name
    raise ValueError(
        f"{origin}: cannot detect the format from fields {sorted(keys)}; pass format= "
        f"(one of {sorted(FORMATS)}) or mapping={{'instruction': ..., 'output': ...}}"
    )


def resolve(
    format: str | None, mapping: Mapping[str, str] | None, keys: set[str], origin: str
) -> Format:
    """The :class:`Format` to use: named, built from ``mapping``, or detected from ``keys``."""
    if mapping:
        unknown = set(mapping) - {"instruction", "input", "output", "system", "messages"}
        if unknown:
            raise ValueError(f"mapping has non-canonical key(s) {sorted(unknown)}")
        base = FORMATS[format or ("messages" if "messages" in mapping else "alpaca")]
        fields = {**base.fields, **mapping}
        return Format(base.name, fields, base.required, base.convert)
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; known: {sorted(FORMATS)}")
        return FORMATS[format]
    return FORMATS[detect(keys, origin)]


def canonical_frame(
    records: Sequence[dict[str, Any] | BaseException],
    *,
    source: str,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    origin: str = "input",
    locations: Sequence[str] | None = None,
    on_error: str = "raise",
    first_row: int = 0,
    id_prefix: str | None = None,
    own_id_prefix: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical frame and removed log for raw records read from one origin.

    ``records`` may hold exceptions for rows that failed to parse (kept with
    ``on_error="skip"``); ``locations[i]`` names row ``i`` in error messages (e.g. ``line 7``).
    Ids: the record's own ``id`` (prefixed ``<own_id_prefix>:`` when given), else
    ``<id_prefix or source>:<first_row + i>``.
    Flat records are mapped column-wise; any batch with something unusual in it is handed to
    :func:`canonical_frame_precise` (see the module docs). Both give the same frame.

    Example:
        >>> frame, removed = canonical_frame([{"question": "2+2?", "answer": "4"}], source="s")
        >>> frame.select("id", "instruction", "output").row(0), removed.height
        (('s:0', '2+2?', '4'), 0)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    fmt = _resolve_for(records, format, mapping, origin)
    if fmt is not None and fmt.convert is None:
        frame = _flat_frame(records, fmt, source, first_row, id_prefix, own_id_prefix)
        if frame is not None:
            return frame, empty_removed()
    return canonical_frame_precise(
        records, source=source, format=format, mapping=mapping, origin=origin,
        locations=locations, on_error=on_error, first_row=first_row, id_prefix=id_prefix,
        own_id_prefix=own_id_prefix,
    )


def _resolve_for(
    records: Sequence[Any], format: str | None, mapping: Mapping[str, str] | None, origin: str
) -> Format | None:
    """The format of a batch, from the fields of its first 200 objects (None when none)."""
    good = [r for r in records[:200] if isinstance(r, dict)]
    keys = set().union(*(r.keys() for r in good)) if good else set()
    return resolve(format, mapping, keys, origin) if good else None


def own_id(value: Any) -> str:
    """A record's own ``id`` as text: strings, integers and finite numbers (as written)."""
    return text_value(value, "id")


def canonical_frame_precise(
    records: Sequence[dict[str, Any] | BaseException],
    *,
    source: str,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    origin: str = "input",
    locations: Sequence[str] | None = None,
    on_error: str = "raise",
    first_row: int = 0,
    id_prefix: str | None = None,
    own_id_prefix: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`canonical_frame` record by record: the reference path, and the one that reports
    errors (file, location, field) and logs skipped records.

    Example:
        >>> frame, _ = canonical_frame_precise([{"instruction": "a", "tag": 1}], source="s")
        >>> frame["meta"].to_list()
        ['{"tag": 1}']
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    locations = locations or [f"record {first_row + i}" for i in range(len(records))]
    fmt = _resolve_for(records, format, mapping, origin)
    prefix = source if id_prefix is None else id_prefix
    rows: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for i, raw in enumerate(records):
        default_id = f"{prefix}:{first_row + i}"
        if isinstance(raw, BaseException):
            removed.append(_removed_row(default_id, source, "parse_error", error_detail(raw, origin, locations[i])))
            continue
        if not isinstance(raw, dict):
            err: RecordError = RecordError(f"expected a JSON object, got {type(raw).__name__}")
        else:
            try:
                assert fmt is not None
                converted = fmt.to_canonical(raw)
                own = raw.get("id")
                if fmt.name == "canonical":
                    base_id = default_id if own is None else own_id(own)
                elif own is not None:
                    base_id = own_id(own) if own_id_prefix is None else f"{own_id_prefix}:{own_id(own)}"
                else:
                    base_id = default_id
            except RecordError as e:
                err = e
            else:
                src = raw.get("source") if isinstance(raw.get("source"), str) else source
                for rec in converted:
                    rec["id"] = base_id + rec.pop("_suffix", "")
                    rec["source"] = src
                    rows.append(rec)
                continue
        message = f"{origin}, {locations[i]}: {err}"
        if on_error == "raise":
            raise RecordError(message, err.reason, err.field)
        removed.append(_removed_row(default_id, source, err.reason, _record_detail(origin, locations[i], err)))
    if fmt is not None and fmt.name == "canonical":
        frame = (pl.DataFrame(rows, infer_schema_length=None).with_columns(
            pl.col("messages").cast(SCHEMA["messages"])) if rows else pl.DataFrame(schema=SCHEMA))
        frame = conform(frame)
    else:
        frame = pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
    removed_frame = (
        pl.DataFrame(removed, schema=empty_removed().schema) if removed else empty_removed()
    )
    return frame, removed_frame


def _location_keys(origin: str, location: str) -> dict[str, Any]:
    unit, _, number = location.partition(" ")
    keys: dict[str, Any] = {"file": origin}
    if number.isdigit():
        keys[unit if unit in ("line", "record", "row") else "position"] = int(number)
    return keys


def error_detail(err: BaseException, origin: str, location: str) -> str:
    """The ``detail`` of a read error: file, line (or record / row), column, byte offset and
    error kind, as a JSON object; never the text of the line."""
    from instructkit.transform import detail

    keys = _location_keys(getattr(err, "path", None) or origin, location)
    for name in ("line", "column", "offset"):
        value = getattr(err, name, None)
        if value is not None:
            keys[name] = value
    keys["error"] = getattr(err, "error", None) or type(err).__name__
    return detail(**keys)


def _record_detail(origin: str, location: str, err: RecordError) -> str:
    from instructkit.transform import detail

    keys = _location_keys(origin, location)
    keys["error"] = err.reason
    if err.field is not None:
        keys["field"] = err.field
    return detail(**keys)


def _removed_row(id_: str, source: str, reason: str, detail: str) -> dict[str, Any]:
    return {
        "id": id_, "step": "read", "reason": reason, "detail": detail, "source": source,
        "instruction": None, "input": None, "output": None,
    }


# column-wise path -----------------------------------------------------------------------------

#: The characters ``json.dumps(ensure_ascii=False)`` and ``orjson.dumps`` both escape, with
#: their escapes (the two agree on every code point, and so does polars' JSON encoder, which
#: :func:`json_string` uses; ``tests/test_read.py`` checks all three).
JSON_ESCAPES: dict[str, str] = {chr(c): json.dumps(chr(c))[1:-1] for c in (*range(0x20), 0x22, 0x5C)}


def json_string(expr: pl.Expr) -> pl.Expr:
    """A String expression as JSON literals (``null`` for null), as ``json.dumps`` writes them.

    Example:
        >>> print(pl.select(json_string(pl.lit('say "hi"'))).item())
        "say \\"hi\\""
    """
    # {"_":<literal>} -> <literal>: one pass in polars' encoder, whose escapes equal json.dumps'
    return pl.struct(expr.alias("_")).struct.json_encode().str.slice(5).str.head(-1)


_TEXT_TYPES = frozenset({str, type(None)})
_NUMBER_TYPES = frozenset({str, type(None), int, float, Literal})
_MISSING = object()


def _text_column(values: list[Any], field: str) -> pl.Series | None:
    """Values as ``_text`` maps them (None stays None), or None when one needs a record-level
    decision (a boolean, a list, a non-finite float: the precise path names the record)."""
    types = set(map(type, values))
    if types <= _TEXT_TYPES:
        return pl.Series(values, dtype=pl.String)
    if types <= _NUMBER_TYPES:
        try:
            return pl.Series([v if v is None else text_value(v, field) for v in values], dtype=pl.String)
        except RecordError:
            return None
    return None


def _flat_frame(
    records: Sequence[Any], fmt: Format, source: str, first_row: int = 0,
    id_prefix: str | None = None, own_id_prefix: str | None = None,
) -> pl.DataFrame | None:
    """The canonical frame of flat records, column by column; None hands the batch over to
    :func:`canonical_frame_precise` (something in it needs a record-level decision)."""
    n = len(records)
    if n == 0 or not all(type(r) is dict for r in records):
        return None  # a parse error, a non-object, or an object with a repeated key
    keys: set[str] = set().union(*set(map(tuple, map(dict.keys, records))))
    if not all(type(k) is str for k in keys):
        return None  # e.g. int keys from pandas: json.dumps quotes and orders them its own way
    if fmt.name == "alpaca" and "history" in keys:
        return None  # LLaMA-Factory conversations: the record path builds the turns
    f = fmt.fields
    for key in fmt.required:
        field = f.get(key, key)
        if field not in keys or any(r.get(field) is None for r in records):
            return None  # missing_field: the precise path names the field and the record

    def text(field: str | None) -> pl.Series | None:
        if field is None:
            return pl.Series([""] * n, dtype=pl.String)
        if field not in keys:
            return pl.Series([None] * n, dtype=pl.String)
        return _text_column([r.get(field) for r in records], field)

    columns = {
        "instruction": text(f["instruction"]),
        "input": text(f.get("input")),
        "output": text(f.get("output")),
        "system": text(f.get("system", "system")),
    }
    if any(c is None for c in columns.values()):
        return None  # a list or object where text belongs: RecordError from the precise path
    prefix = source if id_prefix is None else id_prefix
    default_id = pl.lit(f"{prefix}:") + pl.int_range(first_row, first_row + n, dtype=pl.Int64).cast(pl.String)
    ids, sources = default_id, pl.lit(source, dtype=pl.String)
    if "id" in keys:
        own = _text_column([r.get("id") for r in records], "id")
        if own is None:
            return None
        if own_id_prefix is not None:
            own = pl.select(pl.lit(f"{own_id_prefix}:") + pl.lit(own)).to_series()
        columns["_own_id"] = own
        ids = pl.col("_own_id").fill_null(default_id)
    if "source" in keys:
        own_source = [v if type(v) is str else None for v in (r.get("source") for r in records)]
        columns["_own_source"] = pl.Series(own_source, dtype=pl.String)
        sources = pl.col("_own_source").fill_null(sources)
    used = {*f.values(), *_PASSTHROUGH}
    try:
        meta = _meta_column(records, sorted(keys - used), used)
    except RecordError:
        return None
    return pl.DataFrame({k: v.alias(k) for k, v in columns.items()}).select(
        ids.alias("id"),
        sources.alias("source"),
        pl.col("instruction").fill_null(""),
        pl.col("input").fill_null(""),
        pl.col("output").fill_null(""),
        pl.col("system"),
        pl.lit(None, dtype=SCHEMA["messages"]).alias("messages"),
        meta.alias("meta"),
    )


def _meta_column(records: Sequence[dict[str, Any]], extra: list[str], used: set[str]) -> pl.Expr:
    """``meta`` for every record: ``json.dumps(rest, ensure_ascii=False, sort_keys=True)``."""
    if not extra:
        return pl.lit(None, dtype=pl.String)
    fragments: list[pl.Expr] = []
    present_any: pl.Expr = pl.lit(False)
    for key in extra:
        values = [r.get(key, _MISSING) for r in records]
        if not set(map(type, values)) <= {str, type(None), object}:
            # numbers, lists, objects: json.dumps formats them (floats, nesting, key order)
            return pl.lit(pl.Series([_meta(r, used) for r in records], dtype=pl.String))
        present = pl.lit(pl.Series([v is not _MISSING for v in values], dtype=pl.Boolean))
        value = pl.lit(pl.Series([v if type(v) is str else None for v in values], dtype=pl.String))
        name = json.dumps(key, ensure_ascii=False) + ": "
        fragments.append(pl.when(present).then(pl.lit(name) + json_string(value)))
        present_any = present_any | present
    body = pl.concat_str(fragments, separator=", ", ignore_nulls=True)
    return pl.when(present_any).then(pl.lit("{") + body + pl.lit("}")).otherwise(pl.lit(None, dtype=pl.String))
