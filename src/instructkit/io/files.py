"""Raw records from files: JSON, JSON Lines (optionally gzipped), CSV/TSV and Parquet.

A loader returns the raw records of one file, in order, with a location for each
(``line 7``, ``record 3``, ``row 12``) so errors can say where they are. With
``on_error="skip"`` a record that fails to parse is returned as an exception in its place,
so it can go to the removed log instead of vanishing.

JSON Lines are parsed in one pass (``map(orjson.loads, lines)``) when every line is a JSON
value, which is the common case; a file with a blank line or a line that does not parse is
handed to the line-by-line reader, which skips the blanks and reports (or keeps, with
``on_error="skip"``) the bad line with its number and byte offset. Both use the same parser,
so they give the same records. Locations are computed when asked for (:class:`Locations`),
not built as a million strings up front.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import orjson
import polars as pl

SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".csv", ".tsv", ".parquet")


class ParseError(ValueError):
    """A file, line or record that cannot be parsed; the message says where."""


class Locations(Sequence[str]):
    """``"<unit> <start>"``, ``"<unit> <start + 1>"``, ...: record locations, made on demand.

    Example:
        >>> Locations("line", 3, start=1)[2], len(Locations("row", 5))
        ('line 3', 5)
    """

    def __init__(self, unit: str, n: int, start: int = 0) -> None:
        self.unit, self.n, self.start = unit, n, start

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return f"{self.unit} {self.start + (i % self.n)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


def kind_of(path: Path) -> str:
    """``json``, ``jsonl``, ``csv``, ``tsv`` or ``parquet`` from the file name."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                      (".csv", "csv"), (".tsv", "tsv"), (".parquet", "parquet")):
        if name.endswith(ext):
            return kind
    raise ParseError(f"{path}: unsupported file type; expected one of {', '.join(SUFFIXES)}")


def load(path: Path, on_error: str = "raise") -> tuple[list[Any], Sequence[str]]:
    """Raw records and their locations for one file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
        >>> _ = p.write_text('{"instruction": "hi"}\\n')
        >>> load(p)
        ([{'instruction': 'hi'}], ['line 1'])
    """
    kind = kind_of(path)
    if kind == "parquet":
        # one schema for all rows: a field absent from a record reads back as null, drop those
        rows = [{k: v for k, v in r.items() if v is not None} for r in pl.read_parquet(path).to_dicts()]
        return rows, Locations("row", len(rows))
    if kind in ("csv", "tsv"):
        data = _bytes(path)
        if not data.strip():
            return [], []
        _check_utf8(path, data)
        frame = pl.read_csv(data, infer_schema=False, separator="\t" if kind == "tsv" else ",")
        rows = frame.to_dicts()
        return rows, Locations("line", len(rows), start=2)
    data = _bytes(path)
    if kind == "json" and data.lstrip()[:1] == b"[":
        return _json_document(path, data)
    if kind == "json" and data.lstrip()[:1] == b"{":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            doc = None  # several objects, one per line: JSON Lines in a .json file
        if doc is not None:
            return _unwrap(path, doc)
    return _json_lines(path, data, on_error)


def _bytes(path: Path) -> bytes:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _check_utf8(path: Path, data: bytes, base: int = 0) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        offset = base + e.start
        line = data.count(b"\n", 0, e.start) + 1
        raise ParseError(
            f"{path}: invalid UTF-8 at byte offset {offset} (line {line}): {e.reason}"
        ) from None


def _json_document(path: Path, data: bytes) -> tuple[list[Any], Sequence[str]]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        _check_utf8(path, data)
        raise ParseError(f"{path}: invalid JSON: {e}") from None
    return _unwrap(path, doc)


def _unwrap(path: Path, doc: Any) -> tuple[list[Any], Sequence[str]]:
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(doc) == 1 and len(lists) == 1:
            doc = lists[0]  # {"data": [...]}: a wrapped list of records
        else:
            doc = [doc]
    if not isinstance(doc, list):
        raise ParseError(f"{path}: expected a JSON array of records, got {type(doc).__name__}")
    return doc, Locations("record", len(doc))


def _json_lines(path: Path, data: bytes, on_error: str) -> tuple[list[Any], Sequence[str]]:
    body = data[:-1] if data.endswith(b"\n") else data
    if body:
        try:
            records = list(map(orjson.loads, body.split(b"\n")))
        except orjson.JSONDecodeError:
            pass  # a blank or bad line: the line-by-line reader below skips or reports it
        else:
            return records, Locations("line", len(records), start=1)
    return _json_lines_precise(path, data, on_error)


def _json_lines_precise(path: Path, data: bytes, on_error: str) -> tuple[list[Any], list[str]]:
    records: list[Any] = []
    locations: list[str] = []
    offset = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as e:
            err = _line_error(path, number, start, line, e)
            if on_error == "raise":
                raise err from None
            records.append(err)
        locations.append(f"line {number}")
    return records, locations


def _line_error(path: Path, number: int, start: int, line: bytes, e: Exception) -> ParseError:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as u:
        return ParseError(
            f"{path}, line {number}: invalid UTF-8 at byte offset {start + u.start}: {u.reason}"
        )
    excerpt = text.strip()
    excerpt = excerpt if len(excerpt) <= 80 else excerpt[:77] + "..."
    return ParseError(f"{path}, line {number}: invalid JSON ({e}): {excerpt}")
