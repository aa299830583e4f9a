"""Write a :class:`~instructkit.Dataset` atomically as alpaca, sharegpt, messages or text.

The file type follows the extension: ``.json`` (one JSON array), ``.jsonl`` / ``.ndjson``,
their ``.gz`` variants, or ``.parquet``. The data is written to a temporary file in the same
folder, ``.<name>.ik-tmp``, and moved into place with ``os.replace``, so readers never see
half a file, and a crash leaves the previous file (if any) untouched. The temporary name is
fixed per target, so one that a killed process left behind is removed by the next write to
that target. Output is deterministic byte for byte (gzip headers carry no timestamp).

Rows carry ``id`` and ``source`` (unless ``ids=False``) and the ``meta`` fields flattened
back to the top level (unless ``meta=False``), so ``ik.read`` of the file gives the same
records. ``columns=`` writes only the fields named. ``provenance=True`` also writes
``<path>.provenance.json``: the instructkit version, the step history, the record count and
the SHA-256 of the data file. See :mod:`instructkit.io.convert` for how formats map onto
one another.

Single-turn alpaca output is serialised column-wise (:func:`~instructkit.io.convert.alpaca_json_rows`,
:func:`~instructkit.io.convert.alpaca_frame`) into the same bytes the row-by-row writer makes;
a dataset with anything unusual for that path (conversations, clashing ``meta`` keys, ...) is
written row by row, which also raises the precise error when there is one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
import polars as pl

from instructkit.io.convert import ROW_FORMATS, TURNS, alpaca_frame, alpaca_json_rows, to_rows

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

WRITE_FORMATS = (*ROW_FORMATS, "text", "prompt_completion")
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


def temporary_path(path: Path) -> Path:
    """Where :func:`atomic_file` writes ``path`` before moving it into place.

    Example:
        >>> temporary_path(Path("out/train.jsonl")).as_posix()
        'out/.train.jsonl.ik-tmp'
    """
    return path.parent / f".{path.name}.ik-tmp"


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` only once it is complete.

    It is written as :func:`temporary_path` and renamed; a temporary file that a killed
    writer left there is removed first. Two processes writing one target at the same time
    are not supported.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_file(p) as f:
        ...     _ = f.write(b"done")
        >>> p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
        (b'done', ['x.txt'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    tmp.unlink(missing_ok=True)  # left by a write that was killed before it could clean up
    # 0o666 under the umask: the mode a plain open() gives
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(
    dataset: Dataset,
    path: str | Path,
    format: str = "alpaca",
    template: str | None = None,
    turns: str | None = None,
    ids: bool = True,
    tokenizer: Any = None,
    *,
    system: str | None = None,
    meta: bool = True,
    columns: Sequence[str] | None = None,
    provenance: bool = False,
) -> Path:
    """Write ``dataset`` to ``path`` in ``format``; returns the path.

    - ``format``: ``alpaca``, ``sharegpt``, ``messages``, or ``text`` (``{"id", "text"}`` rows
      with the training text rendered in the prompt format ``template``, e.g. ``"llama2"``), or
      ``prompt_completion`` (``{"id", "prompt", "completion"}``, trl's prompt-completion form:
      a hand-off to a trainer, like ``text``; a record it cannot hold, a conversation or a
      system prompt, is an error naming it, see :mod:`instructkit.io.handoff`).
    - ``turns``: how conversations become alpaca rows. By default one row each, the earlier
      exchanges in ``history`` (LLaMA-Factory); ``first``, ``last`` or ``split`` instead.
    - ``ids``: write ``id`` and ``source`` in every row.
    - ``system``: the system prompt of records that have none (all formats, ``text`` too).
    - ``meta``: flatten ``meta`` keys and added columns into the rows (the default, so the
      file reads back as the same records); ``False`` writes the format's own fields only.
    - ``columns``: write only these fields of each row, in this order (for example
      ``["instruction", "input", "output"]`` for text-generation-webui); a name that no row
      has is an error.
    - ``provenance``: also write ``<path>.provenance.json`` (version, history, count, SHA-256).

    Example:
        >>> import tempfile, instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}], source="d")
        >>> p = write(ds, tempfile.mkdtemp() + "/t.jsonl", format="text", template="llama2")
        >>> p.read_text()
        '{"id":"d:0","text":"<s>[INST] Hi [/INST] Hello </s>"}\\n'
        >>> write(ds, p.parent / "w.json", columns=["instruction", "output"]).read_text()
        '[\\n{"instruction":"Hi","output":"Hello"}\\n]\\n'
    """
    path = Path(path)
    kind, gz = _kind(path)
    if format not in WRITE_FORMATS:
        raise ValueError(f"unknown output format {format!r}; use one of {WRITE_FORMATS}")
    if columns is not None and (isinstance(columns, str) or not columns):
        raise ValueError(f"columns= takes a non-empty list of field names, got {columns!r}")
    if system is not None:
        from instructkit.dataset import Dataset
        from instructkit.templates.formats import with_default_system

        dataset = Dataset(with_default_system(dataset.to_polars(), system), dataset.removed, dataset.history)
    options = {"format": format, "template": template, "turns": turns, "ids": ids, "meta": meta,
               "columns": list(columns) if columns is not None else None, "system": system}
    count = _Count()
    if format == "text":
        if template is None:
            raise ValueError("format='text' needs template= (a prompt format such as 'alpaca' or 'llama2')")
        rows: Iterator[dict[str, Any]] = _text_rows(dataset, template, ids, tokenizer)
    elif format == "prompt_completion":
        from instructkit.io.handoff import trainer_frame

        rows = trainer_frame(dataset.to_polars(), "prompt_completion", ids=ids).iter_rows(named=True)
    else:
        if template is not None:
            raise ValueError(f"template= applies to format='text' only, not {format!r}")
        if format == "alpaca" and columns is None and (turns is None or turns in TURNS):
            written = _write_alpaca_columns(dataset, path, kind, gz, ids, meta)
            if written is not None:
                return _finish(dataset, path, written, provenance, options)
        rows = to_rows(dataset, format, turns=turns, ids=ids, meta=meta)
    if columns is not None:
        rows = _select(rows, list(columns), path)
    rows = count.over(rows)
    if kind == "parquet":
        _write_parquet(path, list(rows))
    else:
        with atomic_file(path) as raw:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
                    _write_json(f, rows, kind)
            else:
                _write_json(raw, rows, kind)
    return _finish(dataset, path, count.n, provenance, options)


class _Count:
    """Counts the rows that pass through :meth:`over`."""

    def __init__(self) -> None:
        self.n = 0

    def over(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.n += 1
            yield row


def _select(rows: Iterable[dict[str, Any]], columns: list[str], path: Path) -> Iterator[dict[str, Any]]:
    """Each row reduced to ``columns`` (in that order); a column no row has is an error."""
    seen: set[str] = set()
    fields: set[str] = set()
    any_row = False
    for row in rows:
        any_row = True
        fields.update(row)
        kept = {c: row[c] for c in columns if c in row}
        seen.update(kept)
        yield kept
    missing = [c for c in columns if c not in seen]
    if any_row and missing:
        raise ValueError(
            f"{path}: columns= names {missing}, which no written row has; the rows have {sorted(fields)}"
        )


#: The provenance sidecar of ``train.jsonl`` is ``train.jsonl.provenance.json``.
PROVENANCE_SUFFIX = ".provenance.json"


def provenance_path(path: str | Path) -> Path:
    """The provenance sidecar of a data file: ``<path>.provenance.json``.

    Example:
        >>> provenance_path("out/train.jsonl").name
        'train.jsonl.provenance.json'
    """
    path = Path(path)
    return path.parent / f"{path.name}{PROVENANCE_SUFFIX}"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"")
        >>> file_sha256(p)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finish(dataset: Dataset, path: Path, rows: int, provenance: bool, options: dict[str, Any]) -> Path:
    if not provenance:
        return path
    import instructkit

    # no timings or clock times: the sidecar is as deterministic as the data it describes
    history = [{k: v for k, v in dict(entry).items() if k != "seconds"} for entry in dataset.history]
    removed = dataset.removed.group_by("step", "reason", maintain_order=True).len("records")
    record = {
        "instructkit": instructkit.__version__,
        "file": path.name,
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
        "records": len(dataset),
        "rows": rows,
        "write": options,
        "history": history,
        "removed": removed.to_dicts(),
    }
    text = json.dumps(record, ensure_ascii=False, indent=2, default=_plain) + "\n"
    with atomic_file(provenance_path(path)) as f:
        f.write(text.encode("utf-8"))
    return path


def _plain(value: Any) -> Any:
    """JSON form of what a history entry may hold besides JSON types."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"provenance: cannot write a {type(value).__name__} value as JSON")


_SLICE = 100_000  # records serialised at a time: memory stays bounded on large datasets


class _HandOver(Exception):
    """A slice the column-wise writer does not model: write the dataset row by row instead."""


def _write_alpaca_columns(dataset: Dataset, path: Path, kind: str, gz: bool, ids: bool, meta: bool) -> int | None:
    """Write single-turn alpaca rows column-wise and return their number; None when the frame
    needs the row path."""
    frame = dataset.to_polars()
    if kind == "parquet":
        table = alpaca_frame(frame, ids, meta)
        if table is None:
            return None
        with atomic_file(path) as f:
            table.write_parquet(f)
        return table.height
    if alpaca_json_rows(frame.head(1), ids, meta) is None:
        return None
    try:
        with atomic_file(path) as raw:
            if gz:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
                    _write_slices(f, frame, kind, ids, meta)
            else:
                _write_slices(raw, frame, kind, ids, meta)
    except _HandOver:
        return None  # atomic_file removed the partial temporary file
    return frame.height


def _write_slices(f: IO[bytes], frame: pl.DataFrame, kind: str, ids: bool, meta: bool) -> None:
    if kind == "json":
        f.write(b"[\n")
    for start in range(0, frame.height, _SLICE):
        lines = alpaca_json_rows(frame.slice(start, _SLICE), ids, meta)
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
