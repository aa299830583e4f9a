"""Read corpora bigger than RAM in batches of canonical records.

:func:`scan` returns a :class:`Scan`: a re-iterable, lazy view of one or more JSONL,
JSONL.gz, Parquet or JSON files that yields canonical polars frames of ``batch_size``
records, so a 10 GB corpus never has to fit in memory. Executors (``Pipeline.run``) use
its :class:`Split` list to skip finished batches without parsing them, and Ray workers use
it to read byte ranges of the same files in parallel.

Records get the same ids as :func:`instructkit.read` gives them: the record's own ``id``
field, else ``"<source>:<row index in the file>"``. A batch never spans two files.
"""

from __future__ import annotations

import glob
import gzip
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl

from instructkit.io.formats import canonical_frame
from instructkit.schema import COLUMNS, SCHEMA, conform

Kind = Literal["jsonl", "jsonl.gz", "parquet", "json"]
_BLOCK = 16 << 20  # bytes read at a time while cutting a JSONL file into batches


@dataclass(frozen=True)
class Split:
    """One batch of one file: enough to read it again without reading what comes before.

    ``start``/``stop`` are byte offsets for JSONL and row offsets for the other kinds;
    ``first_row`` is the index (in the file) of the split's first record and ``first_line``
    its 1-based line number, for ids and error messages.
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


def _kind(path: Path) -> Kind:
    name = path.name.lower()
    if name.endswith((".jsonl.gz", ".ndjson.gz", ".json.gz")):
        return "jsonl.gz"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".json"):
        return "json"
    raise ValueError(
        f"{path}: cannot scan this file type; use .jsonl, .jsonl.gz, .parquet or .json"
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl.gz", ".ndjson.gz", ".json.gz", ".jsonl", ".ndjson", ".parquet", ".json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


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
        self.paths = list(paths)
        self.batch_size = batch_size
        self.format = format
        self.mapping = dict(mapping) if mapping else None
        self.source = source
        self.on_error = on_error
        self._splits: list[Split] | None = None

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

    # splits -------------------------------------------------------------------------------
    def splits(self) -> list[Split]:
        """Every batch as a :class:`Split` (one pass over JSONL files to find line offsets)."""
        if self._splits is None:
            out: list[Split] = []
            for path in self.paths:
                out.extend(self._file_splits(path, start_index=len(out)))
            self._splits = out
        return list(self._splits)

    def _file_splits(self, path: Path, start_index: int) -> list[Split]:
        kind = _kind(path)
        source = self.source or _stem(path)
        bs = self.batch_size
        if kind == "parquet":
            n = pl.scan_parquet(path).select(pl.len()).collect().item()
            return [
                Split(start_index + k, str(path), kind, source, s, min(s + bs, n), s, s + 1, min(bs, n - s))
                for k, s in enumerate(range(0, n, bs))
            ]
        if kind == "json":
            n = len(_load_json_array(path))
            return [
                Split(start_index + k, str(path), kind, source, s, min(s + bs, n), s, s + 1, min(bs, n - s))
                for k, s in enumerate(range(0, n, bs))
            ]
        splits: list[Split] = []
        for start, stop, first_row, first_line, rows, _ in _cut_lines(path, kind, bs, keep=False):
            splits.append(
                Split(start_index + len(splits), str(path), kind, source, start, stop, first_row, first_line, rows)
            )
        return splits

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
            kind = _kind(path)
            source = self.source or _stem(path)
            if kind in ("jsonl", "jsonl.gz"):
                cuts = _cut_lines(path, kind, self.batch_size, keep=True)
                for start, stop, first_row, first_line, rows, lines in cuts:
                    split = Split(index, str(path), kind, source, start, stop, first_row, first_line, rows)
                    if index in skip:
                        yield split, _empty(), _empty_removed()
                    else:
                        yield (split, *self._parse_lines(split, lines))
                    index += 1
            else:
                for split in self._file_splits(path, start_index=index):
                    if index in skip:
                        yield split, _empty(), _empty_removed()
                    else:
                        yield split, *self.read_split(split)
                    index += 1

    def read_split(self, split: Split) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Canonical frame and removed log of one split, read on its own (used by Ray workers).

        JSONL.gz splits decompress the file from its start, so prefer plain JSONL or
        Parquet when batches are read out of order.
        """
        path = Path(split.path)
        if split.kind == "jsonl":
            with open(path, "rb") as fh:
                fh.seek(split.start)
                data = fh.read(split.stop - split.start)
            return self._parse_lines(split, data.split(b"\n"))
        if split.kind == "jsonl.gz":
            with gzip.open(path, "rb") as fh:
                fh.seek(split.start)
                data = fh.read(split.stop - split.start)
            return self._parse_lines(split, data.split(b"\n"))
        if split.kind == "parquet":
            raw = pl.scan_parquet(path).slice(split.start, split.stop - split.start).collect()
            return self._from_frame(split, raw)
        records = _load_json_array(path)[split.start : split.stop]
        return self._from_records(split, records, [f"record {split.first_row + i}" for i in range(len(records))])

    def _parse_lines(self, split: Split, lines: list[bytes]) -> tuple[pl.DataFrame, pl.DataFrame]:
        if lines and lines[-1] == b"":
            lines = lines[:-1]
        try:
            # the common case, every line a record: one C-level pass
            records: list[Any] = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:
            pass  # a blank or bad line: the line-by-line pass below skips or reports it
        else:
            locations = [f"line {split.first_line + i}" for i in range(len(records))]
            return self._from_records(split, records, locations)
        records = []
        locations: list[str] = []
        for offset, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                if self.on_error == "raise":
                    raise ValueError(
                        f"{split.path}, line {split.first_line + offset}: invalid JSON: {e} "
                        "(pass on_error='skip' to log it in removed and go on)"
                    ) from None
                records.append(ValueError(f"invalid JSON: {e}"))
            locations.append(f"line {split.first_line + offset}")
        return self._from_records(split, records, locations)

    def _from_frame(self, split: Split, raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        if all(c in raw.columns for c in COLUMNS) and self.format is None and not self.mapping:
            # already canonical (written by an executor or Dataset.write to parquet)
            return conform(raw), _empty_removed()
        locations = [f"row {split.first_row + i}" for i in range(raw.height)]
        return self._from_records(split, raw.to_dicts(), locations)

    def _from_records(
        self, split: Split, records: list[Any], locations: list[str]
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        good = [r for r in records[:200] if isinstance(r, dict)]
        if good and self.format is None and not self.mapping and all(
            set(COLUMNS) <= r.keys() for r in good
        ):
            frame = _canonical_records(records, split, locations)
            return frame, _empty_removed()
        # default ids count rows in the whole file, not in this batch
        for i, raw in enumerate(records):
            if isinstance(raw, dict) and raw.get("id") is None:
                raw["id"] = f"{split.source}:{split.first_row + i}"
        frame, removed = canonical_frame(
            records,
            source=split.source,
            format=self.format,
            mapping=self.mapping,
            origin=split.path,
            locations=locations,
            on_error=self.on_error,
        )
        if removed.height:
            local = pl.col("id").str.split(":").list.last().cast(pl.Int64)
            removed = removed.with_columns(
                (pl.lit(f"{split.source}:") + (local + split.first_row).cast(pl.String)).alias("id")
            )
        return frame, removed


def _canonical_records(records: list[Any], split: Split, locations: list[str]) -> pl.DataFrame:
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"{split.path}, {locations[i]}: expected a canonical JSON object, got {r!r:.80}")
    return conform(pl.DataFrame(records, infer_schema_length=None))


def _cut_lines(
    path: Path, kind: Kind, batch_size: int, keep: bool
) -> Iterator[tuple[int, int, int, int, int, list[bytes]]]:
    """Cut a JSONL file into runs of ``batch_size`` non-blank lines.

    Yields ``(start_byte, stop_byte, first_row, first_line, rows, lines)``; ``lines`` is
    empty unless ``keep``. Byte offsets are in the decompressed stream for .gz files.
    """
    opener = gzip.open if kind == "jsonl.gz" else open
    with opener(path, "rb") as fh:
        pos = 0  # byte offset of the start of `pending`
        line_no = 1  # line number of the first line in `pending`
        row = 0  # non-blank lines before `pending`
        pending: list[bytes] = []
        pending_rows = 0
        start, first_line, first_row = 0, 1, 0
        tail = b""
        while True:
            block = fh.read(_BLOCK)
            data = tail + block
            if not block:
                lines = [data] if data else []
                tail = b""
            else:
                lines = data.split(b"\n")
                tail = lines.pop()
            for line in lines:
                nbytes = len(line) + 1
                if line.strip():
                    if pending_rows == 0:
                        start, first_line, first_row = pos, line_no, row
                    pending_rows += 1
                    row += 1
                if keep:
                    pending.append(line)
                pos += nbytes
                line_no += 1
                if pending_rows == batch_size:
                    yield start, pos, first_row, first_line, pending_rows, _drop_leading_blank(pending)
                    pending, pending_rows = [], 0
            if not block:
                break
        if pending_rows:
            yield start, pos, first_row, first_line, pending_rows, _drop_leading_blank(pending)


def _drop_leading_blank(lines: list[bytes]) -> list[bytes]:
    # blank lines before a batch's first record belong to no batch
    k = 0
    while k < len(lines) and not lines[k].strip():
        k += 1
    return lines[k:]


def _load_json_array(path: Path) -> list[Any]:
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, list):
        raise ValueError(f"{path}: a .json file must hold a JSON array of records")
    return data


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def _empty_removed() -> pl.DataFrame:
    from instructkit.schema import empty_removed

    return empty_removed()


def scan(
    paths: str | Path | Sequence[str | Path],
    batch_size: int = 100_000,
    *,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
    on_error: str = "raise",
) -> Scan:
    """Lazily read JSONL, JSONL.gz, Parquet or JSON files in batches of canonical records.

    ``paths`` may be a file, a directory (its data files, sorted), a glob pattern
    (``"big/*.jsonl.gz"``, sorted) or a list of them.
    ``format``/``mapping``/``source``/``on_error`` mean what they mean for
    :func:`instructkit.read`. JSON arrays are parsed whole (one JSON value cannot be
    streamed): convert big ones to JSONL or Parquet.

    Example:
        >>> import tempfile, pathlib, instructkit as ik
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"instruction": "Hi", "output": "Hello"}\\n' * 3)
        >>> next(iter(ik.scan(p)))["id"].to_list()
        ['d:0', 'd:1', 'd:2']
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    expanded: list[Path] = []
    for item in paths:
        text = str(item)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{text}: the pattern matches no file")
            expanded.extend(matches)
        else:
            expanded.append(Path(item))
    for p in expanded:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.is_file() and f.name.lower().endswith((".jsonl", ".jsonl.gz", ".ndjson", ".parquet", ".json"))
            )
            if not found:
                raise FileNotFoundError(f"{p}: directory holds no .jsonl/.jsonl.gz/.parquet/.json file")
            files.extend(found)
        elif p.is_file():
            _kind(p)
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return Scan(files, batch_size, format, mapping, source, on_error)
