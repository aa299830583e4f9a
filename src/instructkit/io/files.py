"""Files of raw records: which files a path names, how each kind is opened, and the precise
JSON parser every reader shares.

One walker (:func:`expand`) and one set of parsers serve :func:`instructkit.read`,
:func:`instructkit.scan` and therefore ``Pipeline.run`` and the CLI: the same files, the same
kinds, the same errors.

The precise parser (:func:`loads`) is the reference for what a JSON value means:

- a key repeated in one object is not silently last-wins: the object is marked and the record
  becomes an ``invalid_record`` naming the key;
- a float keeps the literal written in the file (``1.50`` reads as text ``"1.50"``);
- integers are exact at any size (``12345678901234567890123`` keeps every digit);
- ``NaN`` / ``Infinity`` are not JSON and make the line a ``parse_error``;
- a UTF-8 byte order mark at the start of a file is skipped.

Errors name the file and the line (or record / row) and the byte offset, never the text.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import math
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import polars as pl

SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".csv", ".tsv", ".parquet")
BOM = b"\xef\xbb\xbf"


class ParseError(ValueError):
    """A file, line or record that cannot be parsed; the message says where, never what.

    ``error`` is the short error kind and ``line`` the line number when known.
    """

    def __init__(self, message: str, error: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.error = error or message
        self.line = line


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


# walking ---------------------------------------------------------------------------------------


def expand(path_or_paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The data files named by a path, folder (recursive), glob or list of them, sorted per item.

    Raises ``FileNotFoundError`` naming any path that matches nothing, and ``ValueError`` for
    a file named directly whose type is not supported.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b.jsonl", "a.csv", "sub/c.json.gz", "notes.txt"):
        ...     (d / name).parent.mkdir(exist_ok=True); _ = (d / name).write_text("")
        >>> [p.relative_to(d).as_posix() for p in expand(d)]
        ['a.csv', 'b.jsonl', 'sub/c.json.gz']
    """
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    files: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{text}: the pattern matches no file")
            matches = [m for m in matches if m.is_file() and supported(m)]
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).rglob("*") if p.is_file() and supported(p))
        elif Path(text).is_file():
            kind_of(Path(text))
            matches = [Path(text)]
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
        if not matches:
            raise FileNotFoundError(f"{text}: no data files ({', '.join(SUFFIXES)}) found")
        files.extend(matches)
    return files


def supported(path: Path) -> bool:
    """Whether the file name has one of :data:`SUFFIXES`."""
    return path.name.lower().endswith(SUFFIXES)


def stem(path: Path) -> str:
    """The file name without its data suffix: ``sub/e.jsonl.gz`` -> ``e``.

    Example:
        >>> stem(Path("sub/e.jsonl.gz"))
        'e'
    """
    name = path.name
    for ext in sorted(SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def file_keys(paths: Sequence[Path]) -> list[str]:
    """A name per file, unique in the list: its stem, else its file name, else its path.

    Used to make ids unique across files (see :func:`instructkit.read`).

    Example:
        >>> file_keys([Path("d/a.json"), Path("d/a.jsonl"), Path("d/b.csv")])
        ['a.json', 'a.jsonl', 'b']
    """
    stems = [stem(p) for p in paths]
    names = [p.name for p in paths]
    stem_counts, name_counts = Counter(stems), Counter(names)
    keys = []
    for s, n, p in zip(stems, names, paths, strict=True):
        if stem_counts[s] == 1:
            keys.append(s)
        elif name_counts[n] == 1:
            keys.append(n)
        else:
            keys.append(p.as_posix())
    return keys


def kind_of(path: Path) -> str:
    """``json``, ``jsonl``, ``csv``, ``tsv`` or ``parquet`` from the file name."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                      (".csv", "csv"), (".tsv", "tsv"), (".parquet", "parquet")):
        if name.endswith(ext):
            return kind
    raise ValueError(f"{path}: cannot scan or read this file type; expected one of {', '.join(SUFFIXES)}")


def is_gz(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def read_bytes(path: Path) -> bytes:
    """The file's bytes (decompressed for ``.gz``), BOM removed; a file that cannot be read
    raises :class:`ParseError` naming it."""
    try:
        if is_gz(path):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise ParseError(f"{path}: cannot read the file ({_reason(e)})", _reason(e)) from None
    return data[3:] if data.startswith(BOM) else data


def _reason(e: BaseException) -> str:
    if isinstance(e, EOFError):
        return "truncated gzip stream"
    if isinstance(e, gzip.BadGzipFile):
        return "not a gzip file"
    return type(e).__name__


def json_kind(path: Path, data: bytes | None = None) -> tuple[str, Any]:
    """Whether a ``.json`` file is one JSON document (``"json"``, with the parsed value) or
    JSON Lines saved as ``.json`` (``"jsonl"``, with None)."""
    data = read_bytes(path) if data is None else data
    head = data.lstrip()[:1]
    if head not in (b"[", b"{"):
        if not head:
            return "json", []
        return "jsonl", None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ParseError(f"{path}, line {line}: invalid UTF-8 at byte offset {e.start}", "invalid UTF-8", line) from None
    try:
        return "json", loads(text)
    except json.JSONDecodeError as e:
        if head == b"{" and (e.msg == "Extra data" or b"\n{" in data):
            return "jsonl", None  # several objects, one per line: JSON Lines in a .json file
        raise ParseError(
            f"{path}, line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})", f"invalid JSON: {e.msg}", e.lineno
        ) from None


def unwrap(path: Path, doc: Any) -> list[Any]:
    """The records of a JSON document: an array, ``{"data": [...]}``, or one object."""
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        doc = lists[0] if len(doc) == 1 and len(lists) == 1 else [doc]
    if not isinstance(doc, list):
        raise ParseError(f"{path}: expected a JSON array of records, got {type(doc).__name__}", "not an array of records")
    return doc


# the precise JSON parser -------------------------------------------------------------------------


class Literal(float):
    """A JSON float that remembers how the file wrote it (``1.50`` stays ``"1.50"`` as text)."""

    text: str

    def __new__(cls, text: str) -> Literal:
        self = super().__new__(cls, text)
        self.text = text
        return self


class DuplicateKeys(dict):  # type: ignore[type-arg]
    """A JSON object in which a key appeared more than once (``duplicate`` names it)."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        marked = DuplicateKeys(out)
        marked.duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        return marked
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = Literal(text)
    if not math.isfinite(value):
        raise ValueError(f"number {len(text)} digits long overflows a float")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant)


def loads(text: str) -> Any:
    """Parse one JSON value precisely (see the module docs); raises ``json.JSONDecodeError``.

    Example:
        >>> v = loads('{"a": 1.50, "n": 123456789012345678901234567890}')
        >>> v["a"].text, v["n"]
        ('1.50', 123456789012345678901234567890)
        >>> loads('{"a": 1, "a": 2}').duplicate
        'a'
    """
    try:
        return _DECODER.decode(text)
    except ValueError as e:
        if isinstance(e, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(e), text, 0) from None


def find_duplicate(value: Any, where: str = "") -> str | None:
    """The path of the first repeated key inside a parsed value (None when there is none).

    Example:
        >>> find_duplicate({"a": [loads('{"b": 1, "b": 2}')]}, "")
        'a[0].b'
    """
    if isinstance(value, DuplicateKeys):
        return f"{where}.{value.duplicate}" if where else value.duplicate
    if isinstance(value, dict):
        for k, v in value.items():
            found = find_duplicate(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = find_duplicate(v, f"{where}[{i}]")
            if found:
                return found
    return None


# per-line errors ---------------------------------------------------------------------------------


class LineError(ParseError):
    """A JSON line that does not parse: where it is (file, line, column, byte offset) and the
    parser's error kind, never the line's text."""

    def __init__(self, path: str, line: int, column: int, offset: int, error: str) -> None:
        super().__init__(f"{path}, line {line}, column {column}: {error} at byte offset {offset}", error, line)
        self.path, self.column, self.offset = path, column, offset


def parse_line(path: str, number: int, start: int, line: bytes) -> Any:
    """One JSON line, precisely; a line that does not parse raises :class:`LineError`.

    ``start`` is the byte offset of the line in the (decompressed) file.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as u:
        raise LineError(path, number, u.start + 1, start + u.start, "invalid UTF-8") from None
    try:
        return loads(text)
    except json.JSONDecodeError as e:
        column = len(text[: e.pos].encode("utf-8")) + 1
        raise LineError(path, number, column, start + column - 1, f"invalid JSON: {e.msg}") from None


def json_lines(path: Path, data: bytes, on_error: str, first_line: int = 1, base: int = 0) -> tuple[list[Any], list[str]]:
    """Records and locations of JSON Lines, blank lines skipped; a bad line raises, or with
    ``on_error="skip"`` stands in its place as a :class:`LineError`."""
    records: list[Any] = []
    locations: list[str] = []
    offset = base
    for number, line in enumerate(data.split(b"\n"), start=first_line):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        try:
            records.append(parse_line(str(path), number, start, line))
        except LineError as err:
            if on_error == "raise":
                raise
            records.append(err)
        locations.append(f"line {number}")
    return records, locations


# CSV / TSV / Parquet ------------------------------------------------------------------------------


class RowError(ParseError):
    """A CSV row whose number of cells differs from the header's."""

    def __init__(self, path: str, line: int, cells: int, expected: int) -> None:
        super().__init__(
            f"{path}, line {line}: {cells} cells where the header has {expected}",
            f"ragged row: {cells} cells, header has {expected}", line,
        )
        self.path, self.column, self.offset = path, None, None


def csv_records(path: Path, data: bytes, kind: str, on_error: str) -> tuple[list[Any], list[str]]:
    """Records of a CSV/TSV file, each located at the line it starts on (multi-line quoted
    cells counted). Empty cells are null. A ragged row raises, or stands as a :class:`RowError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ParseError(f"{path}, line {line}: invalid UTF-8 at byte offset {e.start}", "invalid UTF-8", line) from None
    if not text.strip():
        return [], []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        header = next(reader)
        records: list[Any] = []
        locations: list[str] = []
        line = reader.line_num + 1
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not cells:
                continue
            if len(cells) != len(header):
                err = RowError(str(path), start, len(cells), len(header))
                if on_error == "raise":
                    raise err
                records.append(err)
            else:
                records.append({k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)})
            locations.append(f"line {start}")
    except csv.Error as e:
        raise ParseError(f"{path}, line {reader.line_num}: invalid CSV ({e})", f"invalid CSV: {e}", reader.line_num) from None
    return records, locations


def parquet_frame(path: Path, start: int = 0, length: int | None = None) -> pl.DataFrame:
    """Rows of a Parquet file; a file that cannot be read raises :class:`ParseError` naming it."""
    try:
        lazy = pl.scan_parquet(path)
        if length is not None:
            lazy = lazy.slice(start, length)
        return lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise ParseError(f"{path}: cannot read the Parquet file ({type(e).__name__})", "unreadable Parquet") from None


def parquet_rows(path: Path) -> int:
    """The number of rows of a Parquet file (from its footer)."""
    try:
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    except (pl.exceptions.PolarsError, OSError) as e:
        raise ParseError(f"{path}: cannot read the Parquet file ({type(e).__name__})", "unreadable Parquet") from None


def load(path: Path, on_error: str = "raise") -> tuple[list[Any], Sequence[str]]:
    """Raw records and their locations for one file (the precise path; tests compare to it).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
        >>> _ = p.write_text('{"instruction": "hi"}\\n')
        >>> load(p)
        ([{'instruction': 'hi'}], ['line 1'])
    """
    kind = kind_of(path)
    if kind == "parquet":
        frame = parquet_frame(path)
        rows = [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
        return rows, Locations("row", len(rows))
    data = read_bytes(path)
    if kind in ("csv", "tsv"):
        return csv_records(path, data, kind, on_error)
    if kind == "json":
        sub, doc = json_kind(path, data)
        if sub == "json":
            records = unwrap(path, doc)
            return records, Locations("record", len(records))
    return json_lines(path, data, on_error)
