"""Write a :class:`~instructkit.Dataset` atomically as alpaca, sharegpt, messages or text.

The file type follows the extension: ``.json`` (one JSON array), ``.jsonl`` / ``.ndjson``,
their ``.gz`` variants, or ``.parquet``. The data is written to a temporary file in the same
folder and moved into place with ``os.replace``, so readers never see half a file, and a
crash leaves the previous file (if any) untouched. Output is deterministic byte for byte
(gzip headers carry no timestamp).

Rows carry ``id`` and ``source`` (unless ``ids=False``) and the ``meta`` fields flattened
back to the top level, so ``ik.read`` of the file gives the same records. See
:mod:`instructkit.io.convert` for how formats map onto one another.

Single-turn alpaca output is serialised column-wise (:func:`~instructkit.io.convert.alpaca_json_rows`,
:func:`~instructkit.io.convert.alpaca_frame`) into the same bytes the row-by-row writer makes;
a dataset with anything unusual for that path (conversations, clashing ``meta`` keys, ...) is
written row by row, which also raises the precise error when there is one.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
import polars as pl

from instructkit.io.convert import ROW_FORMATS, TURNS, alpaca_frame, alpaca_json_rows, to_rows

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

WRITE_FORMATS = (*ROW_FORMATS, "text")
_KINDS = {
    ".json": "json", ".json.gz": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl",
    ".parquet": "parquet",
}


def _kind(path: Path) -> tuple[str, bool]:
    name = path.name.lower()
    for suffix in sorted(_KINDS, key=len, reverse=True):
        if name.endswith(suffix):
            return _KINDS[suffix], name.endswith(".gz")
    raise ValueError(
        f"{path}: cannot tell the file type from the extension; use one of {sorted(_KINDS)}"
    )


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` only once it is complete.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_file(p) as f:
        ...     _ = f.write(b"done")
        >>> p.read_bytes()
        b'done'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write(
    dataset: Dataset,
    path: str | Path,
    format: str = "alpaca",
    template: str | None = None,
    turns: str | None = None,
    ids: bool = True,
    tokenizer: Any = None,
) -> Path:
    """Write ``dataset`` to ``path`` in ``format``; returns the path.

    - ``format``: ``alpaca``, ``sharegpt``, ``messages``, or ``text`` (``{"id", "text"}`` rows
      with the training text rendered in the prompt format ``template``, e.g. ``"llama2"``).
    - ``turns``: how conversations become alpaca rows: ``first``, ``last`` or ``split``
      (required when a record has more than one exchange).
    - ``ids``: write ``id`` and ``source`` in every row.

    Example:
        >>> import tempfile, instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}], source="d")
        >>> p = write(ds, tempfile.mkdtemp() + "/t.jsonl", format="text", template="llama2")
        >>> p.read_text()
        '{"id":"d:0","text":"<s>[INST] Hi [/INST] Hello </s>"}\\n'
    """
    path = Path(path)
    kind, gz = _kind(path)
    if format not in WRITE_FORMATS:
        raise ValueError(f"unknown output format {format!r}; use one of {WRITE_FORMATS}")
    if format == "text":
        if template is None:
            raise ValueError("format='text' needs template= (a prompt format such as 'alpaca' or 'llama2')")
        rows: Iterator[dict[str, Any]] = _text_rows(dataset, template, ids, tokenizer)
    else:
        if template is not None:
            raise ValueError(f"template= applies to format='text' only, not {format!r}")
        if format == "alpaca" and (turns is None or turns in TURNS):
            if _write_alpaca_columns(dataset, path, kind, gz, ids):
                return path
        rows = to_rows(dataset, format, turns=turns, ids=ids)
    if kind == "parquet":
        _write_parquet(path, list(rows))
        return path
    with atomic_file(path) as raw:
        if gz:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
                _write_json(f, rows, kind)
        else:
            _write_json(raw, rows, kind)
    return path


_SLICE = 100_000  # records serialised at a time: memory stays bounded on large datasets


class _HandOver(Exception):
    """A slice the column-wise writer does not model: write the dataset row by row instead."""


def _write_alpaca_columns(dataset: Dataset, path: Path, kind: str, gz: bool, ids: bool) -> bool:
    """Write single-turn alpaca rows column-wise; False when the frame needs the row path."""
    frame = dataset.to_polars()
    if kind == "parquet":
        table = alpaca_frame(frame, ids)
        if table is None:
            return False
        with atomic_file(path) as f:
            table.write_parquet(f)
        return True
    if alpaca_json_rows(frame.head(1), ids) is None:
        return False
    try:
        with atomic_file(path) as raw:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
                    _write_slices(f, frame, kind, ids)
            else:
                _write_slices(raw, frame, kind, ids)
    except _HandOver:
        return False  # atomic_file removed the partial temporary file
    return True


def _write_slices(f: IO[bytes], frame: pl.DataFrame, kind: str, ids: bool) -> None:
    if kind == "json":
        f.write(b"[\n")
    for start in range(0, frame.height, _SLICE):
        lines = alpaca_json_rows(frame.slice(start, _SLICE), ids)
        if lines is None:
            raise _HandOver
        if kind == "json" and start > 0:
            f.write(b",\n")
        _write_lines(f, lines, kind)
    if kind == "json":
        f.write(b"\n]\n")


def _write_lines(f: IO[bytes], lines: pl.Series, kind: str) -> None:
    """JSON texts one per line; for the JSON array layout of :func:`_write_json`, separated by
    ``,\\n`` and without the last newline (the caller writes the brackets)."""
    frame = lines.to_frame()
    if kind == "json":
        last = pl.int_range(pl.len()) == pl.len() - 1
        frame = frame.select(pl.when(last).then(pl.first()).otherwise(pl.first() + ","))
    # one JSON text per line, no quoting: polars' CSV writer streams them out without Python
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, quote_style="never")
    text = buffer.getbuffer()
    f.write(text[:-1] if kind == "json" else text)


def _text_rows(dataset: Dataset, template: str, ids: bool, tokenizer: Any) -> Iterator[dict[str, Any]]:
    from instructkit.templates.formats import render_column

    texts = render_column(dataset, template, tokenizer=tokenizer).to_list()
    if not ids:
        for text in texts:
            yield {"text": text}
        return
    for rid, text in zip(dataset.to_polars()["id"].to_list(), texts, strict=True):
        yield {"id": rid, "text": text}


def _write_json(f: IO[bytes], rows: Iterator[dict[str, Any]], kind: str) -> None:
    if kind == "jsonl":
        buf: list[bytes] = []
        for row in rows:
            buf.append(orjson.dumps(row))
            if len(buf) >= 10_000:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")
        return
    # one JSON array, one record per line (readable, and streams without holding all rows)
    f.write(b"[")
    first = True
    for row in rows:
        f.write(b"\n" if first else b",\n")
        f.write(orjson.dumps(row))
        first = False
    f.write(b"\n]\n" if not first else b"]\n")


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import polars as pl

    try:
        frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    except (TypeError, pl.exceptions.PolarsError) as e:
        raise ValueError(
            f"{path}: the rows do not fit one Parquet schema (a meta field has different types "
            f"across records): {e}; write .jsonl instead"
        ) from e
    with atomic_file(path) as f:
        frame.write_parquet(f)
