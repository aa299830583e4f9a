"""Read corpora bigger than RAM in batches of canonical records: the one reader.

:func:`scan` returns a :class:`Scan`: a re-iterable, lazy view of the data files a path names
that yields canonical polars frames of ``batch_size`` records, so a 10 GB corpus never has to
fit in memory. :func:`instructkit.read` is the same reader collected into one Dataset, so both
see the same files (json, jsonl, ndjson, each also ``.gz``, csv, tsv, parquet, folders
recursively), detect the same formats, give the same ids and raise or log the same errors.
Executors (``Pipeline.run``) use its :class:`Split` list to skip finished batches without
parsing them, and Ray workers use it to read byte ranges of the same files in parallel.

Ids: the record's own ``id`` field, else ``"<source>:<row index in the file>"``. When more than
one file is read, ids are made unique across files deterministically: a record's own id is
prefixed with its file's key (``<stem>:<own id>``; the file name or path when stems repeat),
and default ids use that key too. One file read with ``source=`` prefixes own ids with that
source, so datasets read one file at a time can be concatenated. Canonical files (an
executor's output) keep their ids.
A batch never spans two files.

Parsing JSON Lines: a batch is first parsed column-wise by polars (``read_ndjson``) and kept
only when a guard proves the frame equals the record-by-record parse: every column is text,
the file's ``"`` and ``:`` counts equal those the frame implies (no repeated key, no number or
boolean coerced to text, no explicit null), and no ``\\u`` escape polars decodes differently
(surrogates, quote, colon). Anything else goes through the precise per-line parser
(:func:`instructkit.io.files.loads`), which names the line, column and byte offset of errors.
"""

from __future__ import annotations

import gzip
import json
import mmap
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from instructkit.io.files import (
    BOM,
    Locations,
    ParseError,
    csv_records,
    expand,
    file_keys,
    is_gz,
    json_kind,
    json_lines,
    kind_of,
    parquet_frame,
    parquet_rows,
    read_bytes,
    stem,
    unwrap,
)
from instructkit.io.formats import FORMATS, SCHEMA, canonical_frame, json_string, resolve
from instructkit.schema import COLUMNS, MESSAGE, ROLES, conform, empty_removed
from instructkit.transform import detail

Kind = Literal["jsonl", "jsonl.gz", "parquet", "json", "csv", "tsv", "error"]
_BLOCK = 16 << 20  # bytes of a memory-mapped JSONL file searched for newlines at a time
_GZ_BLOCK = 1 << 20  # smaller for .gz: a broken stream loses at most this much before the break
_WHOLE = 1 << 62  # batch size of ik.read: one batch per file


@dataclass(frozen=True)
class Split:
    """One batch of one file: enough to read it again without reading what comes before.

    ``start``/``stop`` are byte offsets for JSONL and row offsets for the other kinds;
    ``first_row`` is the index (in the file) of the split's first record and ``first_line``
    its 1-based line number, for ids and error messages. A file (or the rest of one) that
    cannot be read is a split of kind ``"error"`` holding one ``read_error`` row (with
    ``on_error="skip"``); ``error`` says why.
    """

    index: int
    path: str
    kind: Kind
    source: str
    start: int
    stop: int
    first_row: int
    first_line: int
    rows: int
    error: str = ""


class Scan:
    """Batches of canonical records read lazily from files. Build it with :func:`scan`.

    Iterating yields one canonical frame per batch (records that fail to parse are left
    out with ``on_error="skip"``; :meth:`batches` yields them too, as a removed log).

    Example:
        >>> import tempfile, pathlib, instructkit as ik
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"instruction": "a", "output": "b"}\\n' * 5)
        >>> [len(f) for f in ik.scan(p, batch_size=2)]
        [2, 2, 1]
    """

    def __init__(
        self,
        paths: Sequence[Path],
        batch_size: int,
        format: str | None,
        mapping: Mapping[str, str] | None,
        source: str | None,
        on_error: str,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if format is not None and format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; known: {sorted(FORMATS)}")
        self.paths = [Path(p) for p in paths]
        self.batch_size = batch_size
        self.format = format
        self.mapping = dict(mapping) if mapping else None
        self.source = source
        self.on_error = on_error
        self._keys = dict(zip(map(str, self.paths), file_keys(self.paths), strict=True))
        self._splits: list[Split] | None = None
        #: the format detected in each file read so far (``ik.read`` lists them in its history)
        self.formats: dict[str, str] = {}

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.paths[:3]) + (" …" if len(self.paths) > 3 else "")
        return f"Scan([{names}], batch_size={self.batch_size})"

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for _, frame, _ in self.batches():
            yield frame

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this input for a resumable run: paths, sizes, mtimes, options."""
        return {
            "paths": [str(p.resolve()) for p in self.paths],
            "sizes": [p.stat().st_size for p in self.paths],
            "mtimes": [p.stat().st_mtime_ns for p in self.paths],
            "batch_size": self.batch_size,
            "format": self.format,
            "mapping": self.mapping,
            "source": self.source,
            "on_error": self.on_error,
        }

    # ids ----------------------------------------------------------------------------------
    def _source(self, path: Path) -> str:
        return self.source or stem(path)

    def _prefixes(self, path: str) -> tuple[str, str | None]:
        """(prefix of default ids, prefix of own ids) for a file (see the module docs)."""
        if len(self.paths) == 1:
            return self._source(Path(path)), self.source
        key = self._keys[path]
        return key, key

    # splits -------------------------------------------------------------------------------
    def splits(self) -> list[Split]:
        """Every batch as a :class:`Split` (one pass over JSONL files to find line offsets)."""
        if self._splits is None:
            out: list[Split] = []
            for path in self.paths:
                out.extend(split for split, _ in self._file_batches(path, len(out), keep=False))
            self._splits = out
        return list(self._splits)

    def _file_batches(self, path: Path, start_index: int, keep: bool) -> Iterator[tuple[Split, Any]]:
        """``(split, payload)`` per batch of one file: JSONL bytes (``keep``), or the parsed
        records of a JSON document or CSV file, or None. A file that cannot be read raises, or
        with ``on_error="skip"`` ends with an ``error`` split."""
        source = self._source(path)
        index = start_index
        done = 0  # records before the error, if one comes
        try:
            kind, doc = self._kind(path)
            if kind in ("jsonl", "jsonl.gz"):
                for start, stop, first_row, first_line, rows, data in _cut_lines(path, kind, self.batch_size, keep):
                    yield Split(index, str(path), kind, source, start, stop, first_row, first_line, rows), data
                    index, done = index + 1, first_row + rows
                return
            if kind == "parquet":
                n, payload = parquet_rows(path), None
            else:
                payload = self._whole(path, kind, doc)
                n = len(payload[0])
            for s in range(0, n, self.batch_size):
                rows = min(self.batch_size, n - s)
                first_line = _first_line(payload, s) if payload is not None else s + 1
                yield Split(index, str(path), kind, source, s, s + rows, s, first_line, rows), payload
                index, done = index + 1, s + rows
        except ParseError as e:
            if self.on_error == "raise":
                raise
            yield Split(index, str(path), "error", source, 0, 0, done, e.line or 0, 1, e.error), None

    def _kind(self, path: Path) -> tuple[Kind, Any]:
        """The file's kind, and for a JSON document its parsed value (parsed once)."""
        kind = kind_of(path)
        if kind == "json":
            sub, doc = json_kind(path)
            if sub == "jsonl":
                return ("jsonl.gz" if is_gz(path) else "jsonl"), None
            return "json", doc
        if kind == "jsonl":
            return ("jsonl.gz" if is_gz(path) else "jsonl"), None
        return kind, None  # type: ignore[return-value]

    def _whole(self, path: Path, kind: str, doc: Any = None) -> tuple[list[Any], Sequence[str]]:
        """Records and locations of a file that is parsed whole (a JSON document, CSV, TSV)."""
        if kind == "json":
            records = unwrap(path, json_kind(path)[1] if doc is None else doc)
            return records, Locations("record", len(records))
        return csv_records(path, read_bytes(path), kind, self.on_error)

    # reading ------------------------------------------------------------------------------
    def batches(
        self, skip: Sequence[int] | set[int] = ()
    ) -> Iterator[tuple[Split, pl.DataFrame, pl.DataFrame]]:
        """Yield ``(split, frame, removed)`` per batch in order, reading each file once.

        Batches whose index is in ``skip`` are yielded with empty frames and are not parsed
        (a resumed run passes its finished shards here).
        """
        skip = set(skip)
        index = 0
        for path in self.paths:
            for split, payload in self._file_batches(path, index, keep=True):
                if split.index in skip:
                    yield split, _empty(), empty_removed()
                else:
                    yield split, *self._parse(split, payload)
                index = split.index + 1

    def read_split(self, split: Split) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Canonical frame and removed log of one split, read on its own (used by Ray workers).

        JSONL.gz splits decompress the file from its start, so prefer plain JSONL or
        Parquet when batches are read out of order.
        """
        path = Path(split.path)
        if split.kind == "error":
            return self._parse(split, None)
        if split.kind in ("jsonl", "jsonl.gz"):
            opener = gzip.open if split.kind == "jsonl.gz" else open
            with opener(path, "rb") as fh:
                fh.seek(split.start)
                data = fh.read(split.stop - split.start)
            return self._parse(split, data)
        if split.kind == "parquet":
            return self._parse(split, None)
        return self._parse(split, self._whole(path, split.kind))

    def _parse(self, split: Split, payload: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        id_prefix, own_prefix = self._prefixes(split.path)
        if split.kind == "error":
            where = {"line": split.first_line} if split.first_line else {}
            row = {
                "id": f"{id_prefix}:{split.first_row}", "step": "read", "reason": "read_error",
                "detail": detail(file=split.path, error=split.error, **where),
                "source": split.source, "instruction": None, "input": None, "output": None,
            }
            return _empty(), pl.DataFrame([row], schema=empty_removed().schema)
        if split.kind in ("jsonl", "jsonl.gz"):
            fast = self._fast_jsonl(split, payload, id_prefix, own_prefix)
            if fast is not None:
                return fast, empty_removed()
            data: bytes = read_bytes(payload) if isinstance(payload, Path) else payload
            records, locations = json_lines(
                Path(split.path), data, self.on_error, first_line=split.first_line, base=split.start
            )
        elif split.kind == "parquet":
            try:
                raw = parquet_frame(Path(split.path), split.start, split.stop - split.start)
            except ParseError as e:
                if self.on_error == "raise":
                    raise
                # the footer read but these rows do not: one read_error row for them
                broken = Split(split.index, split.path, "error", split.source, 0, 0, split.first_row, 0, 1, e.error)
                return self._parse(broken, None)
            if self._canonical(set(raw.columns)):
                self.formats.setdefault(split.path, "canonical")
                return conform(raw), empty_removed()
            records = [{k: v for k, v in r.items() if v is not None} for r in raw.to_dicts()]
            locations = Locations("row", len(records), start=split.first_row)
        else:
            all_records, all_locations = payload
            records = all_records[split.start : split.stop]
            locations = all_locations[split.start : split.stop]
        if split.path not in self.formats:
            good = [r for r in records[:200] if isinstance(r, dict)]
            if good:
                keys = set().union(*(r.keys() for r in good))
                try:
                    self.formats[split.path] = resolve(self.format, self.mapping, keys, split.path).name
                except ValueError:
                    pass  # canonical_frame raises it with the file named
        return canonical_frame(
            records, source=split.source, format=self.format, mapping=self.mapping,
            origin=split.path, locations=locations, on_error=self.on_error,
            first_row=split.first_row, id_prefix=id_prefix, own_id_prefix=own_prefix,
        )

    def _canonical(self, columns: set[str]) -> bool:
        return self.format in (None, "canonical") and not self.mapping and set(COLUMNS) <= columns

    # the column-wise JSON Lines path -----------------------------------------------------------
    def _fast_jsonl(
        self, split: Split, data: bytes | Path, id_prefix: str, own_prefix: str | None
    ) -> pl.DataFrame | None:
        """The batch parsed by polars, or None when the guard cannot prove it equals the
        precise parse (see the module docs). ``data`` is the batch's bytes, or the path of a
        whole plain file."""
        if isinstance(data, Path):
            with data.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    counts = _byte_counts(view)
                    ends_with_newline = mm[-1:] == b"\n"
                finally:
                    view.release()
        else:
            if not data or data.isspace():
                return None
            counts = _byte_counts(data)
            ends_with_newline = data.endswith(b"\n")
        if counts is None:
            return None
        try:
            # the schema from the first rows: a key or type that appears later is dropped or
            # coerced by polars, and then the byte counts of the guard cannot match
            raw = pl.read_ndjson(data)
        except (pl.exceptions.PolarsError, ValueError, OSError):
            return None
        quotes, colons, newlines = counts
        if raw.height == 0 or raw.height != newlines + (0 if ends_with_newline else 1):
            return None  # blank lines, or polars and the line reader disagree on a record
        if not _guard(raw, quotes, colons):
            return None
        if self._canonical(set(raw.columns)):
            frame = _canonical_columns(raw, id_prefix, split.first_row)
            if frame is not None:
                self.formats.setdefault(split.path, "canonical")
            return frame
        if any(dt != pl.String for dt in raw.schema.values()):
            return None
        try:
            fmt = resolve(self.format, self.mapping, set(raw.columns), split.path)
        except ValueError:
            return None  # the precise path raises it with the file named
        if fmt.convert is not None or (fmt.name == "alpaca" and "history" in raw.columns):
            return None
        self.formats.setdefault(split.path, fmt.name)
        return _flat_columns(raw, fmt, split.source, split.first_row, id_prefix, own_prefix)


def _first_line(payload: tuple[list[Any], Sequence[str]], row: int) -> int:
    location = payload[1][row] if row < len(payload[1]) else ""
    unit, _, number = location.partition(" ")
    return int(number) if unit == "line" and number.isdigit() else row + 1


_CHUNK = 1 << 20
_BAD_ESCAPES = (b"0022", b"003a", b"003A")


def _byte_counts(data: bytes | memoryview) -> tuple[int, int, int] | None:
    """The numbers of ``"``, ``:`` and newline bytes in ``data``; None when a ``\\u`` escape could make
    polars decode differently from the precise parser (surrogates) or hide a quote or colon."""
    arr = np.frombuffer(data, np.uint8)
    quotes = colons = newlines = 0
    escapes: list[np.ndarray] = []
    for s in range(0, len(arr), _CHUNK):
        chunk = arr[s : s + _CHUNK + 1]  # one byte of overlap to see "\u" across the cut
        body = chunk[:_CHUNK]
        quotes += int(np.count_nonzero(body == 34))
        colons += int(np.count_nonzero(body == 58))
        newlines += int(np.count_nonzero(body == 10))
        slash = body == 92
        if slash.any():
            at = np.flatnonzero(slash[: len(chunk) - 1] & (chunk[1:] == 117))
            if len(at):
                escapes.append(at + s)
    for at in escapes:
        for pos in at.tolist():
            code = bytes(data[pos + 2 : pos + 6])
            if code in _BAD_ESCAPES or code[:1] in (b"d", b"D"):
                return None
    return quotes, colons, newlines


def _guard(raw: pl.DataFrame, quotes: int, colons: int) -> bool:
    """Whether the source's quote and colon counts are exactly those of the frame's keys and
    text values: then no key repeats, no value was a number, boolean or null, nothing nested
    other than conversation turns."""
    exprs: list[pl.Expr] = []
    key_quotes = key_colons = 0
    nonnull = raw.select(pl.all().is_not_null().sum()).row(0, named=True)
    for name, dtype in raw.schema.items():
        n = int(nonnull[name])
        key_quotes += n * (2 + name.count('"'))
        key_colons += n * (1 + name.count(":"))
        if dtype == pl.String:
            exprs.append((pl.col(name).str.count_matches('"', literal=True).sum() + 2 * n).alias(f"q{name}"))
            exprs.append(pl.col(name).str.count_matches(":", literal=True).sum().alias(f"c{name}"))
        elif name == "messages" and dtype == pl.List(MESSAGE):
            # each turn {"role":"..","content":".."}: 8 quotes and 2 colons besides its text;
            # a null turn, role or content would be an invalid record: the precise path says so
            turns = int(raw[name].list.len().sum() or 0)
            fields = raw[name].explode().struct.unnest()
            if fields["role"].is_not_null().sum() != turns or fields["content"].is_not_null().sum() != turns:
                return False
            inner = pl.col(name).explode().struct.field
            exprs.append((
                inner("role").str.count_matches('"', literal=True).sum()
                + inner("content").str.count_matches('"', literal=True).sum() + 8 * turns
            ).alias(f"q{name}"))
            exprs.append((
                inner("role").str.count_matches(":", literal=True).sum()
                + inner("content").str.count_matches(":", literal=True).sum() + 2 * turns
            ).alias(f"c{name}"))
        else:
            return False
    sums = raw.select(exprs).row(0, named=True) if exprs else {}
    value_quotes = sum(int(v or 0) for k, v in sums.items() if k.startswith("q"))
    value_colons = sum(int(v or 0) for k, v in sums.items() if k.startswith("c"))
    return quotes == key_quotes + value_quotes and colons == key_colons + value_colons


def _canonical_columns(raw: pl.DataFrame, id_prefix: str, first_row: int) -> pl.DataFrame | None:
    """A canonical JSON Lines batch taken as is, with the checks the record path makes."""
    if raw.schema["messages"] not in (pl.List(MESSAGE), pl.Null):
        return None
    if any(raw.schema[c] not in (pl.String, pl.Null) for c in COLUMNS if c != "messages"):
        return None
    frame = conform(raw)
    roles = frame["messages"].explode().struct.field("role").drop_nulls()
    contents_null = frame["messages"].explode().struct.field("content").null_count()
    turns_null = frame["messages"].explode().null_count() - frame["messages"].null_count()
    if not roles.is_in(list(ROLES)).all() or contents_null != turns_null:
        return None
    meta = frame["meta"].drop_nulls()
    if not (meta.str.starts_with("{") & meta.str.ends_with("}")).all():
        return None
    default_id = pl.lit(f"{id_prefix}:") + pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).cast(pl.String)
    return frame.with_columns(
        pl.col("id").fill_null(default_id),
        *(pl.col(c).fill_null("") for c in ("instruction", "input", "output")),
    )


def _flat_columns(
    raw: pl.DataFrame, fmt: Any, source: str, first_row: int, id_prefix: str, own_prefix: str | None
) -> pl.DataFrame | None:
    """:func:`instructkit.io.formats._flat_frame` on a frame of text columns (null = absent)."""
    f = fmt.fields
    cols = set(raw.columns)
    for key in fmt.required:
        field = f.get(key, key)
        if field not in cols or raw[field].null_count():
            return None  # missing_field: the precise path names the field and the line

    def text(field: str | None, blank: bool) -> pl.Expr:
        if field is None:
            return pl.lit("", dtype=pl.String)
        if field not in cols:
            return pl.lit("" if blank else None, dtype=pl.String)
        return pl.col(field).fill_null("") if blank else pl.col(field)

    n = raw.height
    default_id = pl.lit(f"{id_prefix}:") + pl.int_range(first_row, first_row + n, dtype=pl.Int64).cast(pl.String)
    ids = default_id
    if "id" in cols:
        own = pl.col("id") if own_prefix is None else pl.lit(f"{own_prefix}:") + pl.col("id")
        ids = own.fill_null(default_id)
    sources = pl.lit(source, dtype=pl.String)
    if "source" in cols:
        sources = pl.col("source").fill_null(sources)
    used = {*f.values(), "id", "source", "system"}
    extra = sorted(cols - used)
    if extra:
        fragments = [
            pl.when(pl.col(k).is_not_null()).then(pl.lit(json.dumps(k, ensure_ascii=False) + ": ") + json_string(pl.col(k)))
            for k in extra
        ]
        present = pl.any_horizontal([pl.col(k).is_not_null() for k in extra])
        body = pl.concat_str(fragments, separator=", ", ignore_nulls=True)
        meta = pl.when(present).then(pl.lit("{") + body + pl.lit("}")).otherwise(pl.lit(None, dtype=pl.String))
    else:
        meta = pl.lit(None, dtype=pl.String)
    return raw.select(
        ids.alias("id"),
        sources.alias("source"),
        text(f["instruction"], True).alias("instruction"),
        text(f.get("input"), True).alias("input"),
        text(f.get("output"), True).alias("output"),
        text(f.get("system", "system"), False).alias("system"),
        pl.lit(None, dtype=SCHEMA["messages"]).alias("messages"),
        meta.alias("meta"),
    )


def _cut_lines(
    path: Path, kind: str, batch_size: int, keep: bool
) -> Iterator[tuple[int, int, int, int, int, bytes]]:
    """Cut a JSONL file into runs of ``batch_size`` non-blank lines.

    Yields ``(start_byte, stop_byte, first_row, first_line, rows, data)``; ``data`` is the
    batch's bytes when ``keep`` (else empty). Byte offsets are in the decompressed stream for
    .gz files; a leading byte order mark is skipped. A stream that breaks off raises
    :class:`ParseError` after the complete lines before the break have been yielded.
    """
    if batch_size >= _WHOLE and kind == "jsonl":
        # ik.read: the whole file is one batch, handed over as its path (polars and the byte
        # counts map the file; the precise path reads it only when needed)
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                head = fh.read(len(BOM))
        except OSError as e:
            raise ParseError(f"{path}: cannot read the file ({type(e).__name__})", type(e).__name__) from None
        if head == BOM:
            data = read_bytes(path)
            if data and not data.isspace():
                yield len(BOM), size, 0, 1, -1, data if keep else b""
        elif size:
            yield 0, size, 0, 1, -1, path if keep else b""
        return
    if kind == "jsonl":
        yield from _cut_mapped(path, batch_size, keep)
        return
    # a .gz stream: decompressed block by block
    with gzip.open(path, "rb") as fh:
        cutter = _LineCutter(batch_size, keep)
        first = True
        while True:
            try:
                block = fh.read(_GZ_BLOCK)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
                yield from cutter.rest()
                reason = "truncated gzip stream" if isinstance(e, EOFError) else type(e).__name__
                raise ParseError(
                    f"{path}, line {cutter.line_no}: cannot read the rest of the file ({reason})", reason, cutter.line_no
                ) from None
            if not block:
                yield from cutter.finish()
                return
            if first:
                first = False
                if block.startswith(BOM):
                    block = block[len(BOM):]
                    cutter.pos = len(BOM)
            yield from cutter.feed(block)


def _cut_mapped(path: Path, batch_size: int, keep: bool) -> Iterator[tuple[int, int, int, int, int, bytes]]:
    """:func:`_cut_lines` for a plain JSONL file: the file is memory-mapped and its newlines
    found window by window in place, with no copy of what is not kept."""
    cutter = _LineCutter(batch_size, keep)
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if not size:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = np.frombuffer(mm, np.uint8)
            try:
                first = len(BOM) if mm[: len(BOM)] == BOM else 0
                cutter.pos = first
                for window in range(first, size, _BLOCK):
                    ends = np.flatnonzero(view[window : window + _BLOCK] == 10) + window
                    if ends.size:
                        yield from cutter.lines(mm, view, ends, first, 0)
                        first = int(ends[-1]) + 1
                cutter.pos, cutter.tail = first, mm[first:size]
            finally:
                del view  # the map cannot close while an array looks at it
    yield from cutter.finish()


# bytes that bytes.strip() removes: a line made only of them is blank
_BLANK_BYTES = np.zeros(256, bool)
_BLANK_BYTES[[9, 10, 11, 12, 13, 32]] = True


class _LineCutter:
    """The state of :func:`_cut_lines` between blocks, found with array operations rather
    than a Python loop over lines (a million lines a second is the read's own speed).

    A batch is ``batch_size`` non-blank lines; its bytes run from its first non-blank line
    through the end of its last one (blank lines inside it included), and for the file's last
    batch through the file's end, each line ending with a newline."""

    def __init__(self, batch_size: int, keep: bool) -> None:
        self.batch_size, self.keep = batch_size, keep
        self.pos = 0  # byte offset of the start of ``tail``
        self.line_no = 1  # line number of the first line in ``tail``
        self.row = 0  # non-blank lines before ``tail``
        self.tail = b""  # an incomplete last line, waiting for the next block
        self.pending: list[bytes] = []  # bytes of the batch being filled
        self.pending_rows = 0
        self.start = self.first_line = self.first_row = 0
        self.end = 0  # byte offset just after the batch's last complete line

    def feed(self, block: bytes) -> Iterator[tuple[int, int, int, int, int, bytes]]:
        data = self.tail + block
        arr = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(arr == 10)  # the newline of each complete line
        cut = int(ends[-1]) + 1 if ends.size else 0
        if ends.size:
            yield from self.lines(data, arr, ends, 0, self.pos)
            self.pos += cut
        self.tail = data[cut:]

    def finish(self) -> Iterator[tuple[int, int, int, int, int, bytes]]:
        """The end of the stream: a last line without a newline counts as one that has it."""
        if self.tail:
            data = self.tail + b"\n"
            self.tail = b""
            arr = np.frombuffer(data, np.uint8)
            yield from self.lines(data, arr, np.array([len(data) - 1]), 0, self.pos)
            self.pos += len(data)
        yield from self.rest()

    def rest(self) -> Iterator[tuple[int, int, int, int, int, bytes]]:
        """The batch being filled, if it has a line."""
        if self.pending_rows:
            yield self._batch()

    def _batch(self) -> tuple[int, int, int, int, int, bytes]:
        data = b"".join(self.pending) if self.keep else b""
        out = (self.start, self.end, self.first_row, self.first_line, self.pending_rows, data)
        self.pending, self.pending_rows = [], 0
        return out

    def lines(
        self, data: bytes | mmap.mmap, arr: np.ndarray, ends: np.ndarray, first: int, base: int
    ) -> Iterator[tuple[int, int, int, int, int, bytes]]:
        """The complete lines ``data[first : ends[-1] + 1]``, ``ends`` their newlines (``arr``
        is ``data`` as an array); ``data[0]`` is byte ``base`` of the stream."""
        starts = np.empty_like(ends)
        starts[0] = first
        starts[1:] = ends[:-1] + 1
        # a line is blank when strip() leaves nothing: only a line that starts with a blank
        # byte (an empty one starts with its newline) needs a look at the rest
        blank = _BLANK_BYTES[arr[starts]]
        for k in np.flatnonzero(blank).tolist():
            blank[k] = not data[starts[k] : ends[k]].strip()
        rows = np.flatnonzero(~blank)  # the non-blank lines, by number
        taken = 0  # non-blank lines of this block already in a batch
        since = first  # byte in ``data`` where the pending bytes of these lines begin
        while rows.size - taken >= self.batch_size - self.pending_rows:
            need = self.batch_size - self.pending_rows
            if self.pending_rows == 0:
                since = self._open(rows, taken, starts, base)
            last = int(rows[taken + need - 1])
            if self.keep:
                self.pending.append(data[since : int(ends[last]) + 1])
            self.pending_rows += need
            self.end = base + int(ends[last]) + 1
            taken += need
            yield self._batch()
        left = rows.size - taken
        if left and self.pending_rows == 0:
            since = self._open(rows, taken, starts, base)
        if left or self.pending_rows:
            # the pending batch takes every line up to the block's last complete one
            if self.keep:
                self.pending.append(data[since : int(ends[-1]) + 1])
            self.pending_rows += left
            self.end = base + int(ends[-1]) + 1
        self.row += rows.size
        self.line_no += ends.size

    def _open(self, rows: np.ndarray, k: int, starts: np.ndarray, base: int) -> int:
        """Start a batch at the ``k``-th non-blank line of ``rows``; returns its first byte."""
        line = int(rows[k])
        self.start = base + int(starts[line])
        self.first_line = self.line_no + line
        self.first_row = self.row + k
        return int(starts[line])


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def scan(
    paths: str | Path | Sequence[str | Path],
    batch_size: int = 100_000,
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
    on_error: str = "raise",
) -> Scan:
    """Lazily read data files in batches of canonical records.

    ``paths`` may be a file, a folder (its data files, recursively, sorted), a glob pattern
    (``"big/*.jsonl.gz"``, sorted) or a list of them: the files :func:`instructkit.read`
    reads (json, jsonl, ndjson, each also ``.gz``, csv, tsv, parquet).
    ``format``/``mapping``/``source``/``on_error`` mean what they mean for
    :func:`instructkit.read`. JSON documents and CSV files are parsed whole (one JSON value
    cannot be streamed): convert big ones to JSONL or Parquet.

    Example:
        >>> import tempfile, pathlib, instructkit as ik
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"instruction": "Hi", "output": "Hello"}\\n' * 3)
        >>> next(iter(ik.scan(p)))["id"].to_list()
        ['d:0', 'd:1', 'd:2']
    """
    return Scan(expand(paths), batch_size, format, mapping, source, on_error)
