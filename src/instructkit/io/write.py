"""Write a :class:`~instructkit.Dataset` atomically as alpaca, sharegpt, messages or text.

The file type follows the extension: ``.json`` (one JSON array), ``.jsonl`` / ``.ndjson``,
their ``.gz`` variants, or ``.parquet``. The data is written to a temporary file in the same
folder and moved into place with ``os.replace``, so readers never see half a file, and a
crash leaves the previous file (if any) untouched. Output is deterministic byte for byte
(gzip headers carry no timestamp).

Rows carry ``id`` and ``source`` (unless ``ids=False``) and the ``meta`` fields flattened
back to the top level, so ``ik.read`` of the file gives the same records. See
:mod:`instructkit.io.convert` for how formats map onto one another.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from instructkit.io.convert import ROW_FORMATS, to_rows

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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
