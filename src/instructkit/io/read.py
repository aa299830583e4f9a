"""``ik.read``: files, folders and globs of instruction data into one :class:`Dataset`.

``read`` is :func:`instructkit.scan` collected: one walker, one parser, the same ids and
errors on every path. ``from_hf`` / ``from_pandas`` convert through Arrow.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset, check_unique_ids
from instructkit.io.files import (
    BOM,
    ParseError,
    expand,
    is_gz,
    kind_of,
    load,
    parquet_frame,
    parse_line,
)
from instructkit.io.formats import canonical_frame, resolve
from instructkit.schema import COLUMNS, conform, empty_frame, empty_removed

PathLike = str | Path

__all__ = ["read", "detect_format", "expand", "from_hf", "from_pandas", "assemble", "read_entry"]


def read(
    path_or_paths: PathLike | Sequence[PathLike],
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
    on_error: str = "raise",
    *,
    license: str | None = None,
    origin: str | None = None,
) -> Dataset:
    """Read .json, .jsonl / .ndjson (each also .gz), .csv, .tsv or .parquet files, or folders
    (recursively) and globs of them: :func:`instructkit.scan` collected into one Dataset.

    The format (alpaca, dolly, sharegpt, messages, qa, seed, prompt_completion, or canonical
    records written by instructkit) is detected per file from its field names; ``format=``
    overrides it and ``mapping`` names the fields of any other layout
    (``{"instruction": "prompt", "output": "reply"}``). Each record's ``source`` is ``source``
    or the file's stem. Ids are the record's own ``id`` else ``<source>:<index>``; when several
    files are read, ids are prefixed with the file's stem so they stay unique across files
    (see docs/io.md). With ``on_error="skip"``, a line that does not parse, a record that lacks
    a required field or has a bad value, or a file that cannot be read at all goes to
    ``removed`` (reasons ``parse_error``, ``missing_field``, ``invalid_record``,
    ``read_error``) instead of raising; its ``detail`` names the file, line and error kind,
    never the text.

    ``license`` (an SPDX id such as ``cc-by-nc-4.0``) and ``origin`` (``human-written``,
    ``templated``, ``synthetic``, ...) describe the sources read; they travel in the
    ``read`` record of the history (``extra["sources"]``), through concat and mix, to the
    dataset card (:func:`instructkit.card`).

    Example:
        >>> import tempfile, pathlib, instructkit as ik
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "qa.jsonl"
        >>> _ = p.write_text('{"question": "2+2?", "answer": "4"}\\n{bad\\n')
        >>> ds = ik.read(p, on_error="skip")
        >>> len(ds), ds.removed["reason"].to_list()
        (1, ['parse_error'])
    """
    from instructkit.io.scan import _WHOLE, Scan

    start = time.perf_counter()
    reader = Scan(expand(path_or_paths), _WHOLE, format, mapping, source, on_error)
    frames, removed, formats = [], [], []
    for split, frame, dropped in reader.batches():
        frames.append(frame)
        removed.append(dropped)
        formats.append(f"{Path(split.path).name}: {_format_of(split, reader.formats, mapping)}")
    n_raw = sum(f.height for f in frames) + sum(r.height for r in removed)
    what = "; ".join(dict.fromkeys(formats))
    dataset = assemble(frames, removed, n_raw, time.perf_counter() - start, what=what)
    if license is None and origin is None:
        return dataset
    notes = {k: v for k, v in (("license", license), ("origin", origin)) if v is not None}
    names = [split.source for split in reader.splits()]
    return dataset.with_sources({name: notes for name in dict.fromkeys(names)})


def _format_of(split: Any, formats: Mapping[str, str], mapping: Mapping[str, str] | None) -> str:
    if split.kind == "error":
        return "unreadable"
    return "mapping" if mapping else formats.get(split.path, "empty")


def detect_format(path: PathLike) -> str:
    """The input format :func:`read` detects for one file (``"empty"`` for no records).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.json"
        >>> _ = p.write_text('[{"instruction": "a", "context": "", "response": "b"}]')
        >>> detect_format(p)
        'dolly'
    """
    path = Path(path)
    good = [r for r in _head(path) if isinstance(r, dict)]
    if not good:
        return "empty"
    return resolve(None, None, set().union(*(r.keys() for r in good)), str(path)).name


def _head(path: Path, n: int = 200) -> list[Any]:
    """The first ``n`` raw records of a file (lines that do not parse left out)."""
    kind = kind_of(path)
    if kind == "parquet":
        return parquet_frame(path, 0, n).to_dicts()
    if kind == "jsonl" and not is_gz(path):
        out: list[Any] = []
        with path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                if len(out) >= n:
                    break
                if number == 1:
                    line = line.removeprefix(BOM)
                if line.strip():
                    try:
                        out.append(parse_line(str(path), number, 0, line))
                    except ParseError:
                        continue
        return out
    try:
        records, _ = load(path, on_error="skip")
    except ParseError:
        return []
    return [r for r in records[:n] if not isinstance(r, BaseException)]


def from_hf(
    dataset: Any, format: str | None = None, mapping: Mapping[str, str] | None = None,
    source: str = "hf",
) -> Dataset:
    """Convert a Hugging Face ``datasets.Dataset`` (format detected as in :func:`read`).

    Canonical columns (what :meth:`Dataset.to_hf` gives) are taken through Arrow as they are,
    with no Python loop over rows; other layouts are mapped like a file's records.

    Example:
        >>> import datasets, instructkit as ik
        >>> ik.from_hf(datasets.Dataset.from_list([{"instruction": "a", "output": "b"}]))[0]["id"]
        'hf:0'
    """
    table = dataset.with_format("arrow")[:] if len(dataset) else dataset.data.table
    return _from_frame(pl.from_arrow(table), format, mapping, source)  # type: ignore[arg-type]


def from_pandas(
    frame: Any, format: str | None = None, mapping: Mapping[str, str] | None = None,
    source: str = "pandas",
) -> Dataset:
    """Convert a pandas DataFrame (format detected as in :func:`read`), through Arrow.

    Example:
        >>> import pandas as pd, instructkit as ik
        >>> len(ik.from_pandas(pd.DataFrame({"question": ["q"], "answer": ["a"]})))
        1
    """
    return _from_frame(pl.from_pandas(frame), format, mapping, source)


def _from_frame(frame: pl.DataFrame, format: str | None, mapping: Mapping[str, str] | None, source: str) -> Dataset:
    start = time.perf_counter()
    if format in (None, "canonical") and not mapping and set(COLUMNS) <= set(frame.columns):
        frame = conform(frame)
        return assemble([frame], [empty_removed()], frame.height, time.perf_counter() - start, what=source)
    rows = [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
    out, removed = canonical_frame(rows, source=source, format=format, mapping=mapping, origin=source)
    return assemble([out], [removed], len(rows), time.perf_counter() - start, what=source)


def assemble(
    frames: Sequence[pl.DataFrame], removed: Sequence[pl.DataFrame], n_raw: int, seconds: float, what: str
) -> Dataset:
    """A Dataset from what a reader produced, with its ``read`` history entry; ids must be
    unique across the records and the removed rows."""
    frames = [f for f in frames if f.height] or list(frames[:1])
    if not frames:
        frame = empty_frame()
    elif all(f.schema == frames[0].schema for f in frames):
        frame = pl.concat(frames, how="vertical")
    else:  # canonical files with extra columns of their own
        frame = conform(pl.concat(frames, how="diagonal_relaxed"))
    log = pl.concat(removed, how="vertical") if removed else empty_removed()
    check_unique_ids(pl.concat([frame["id"], log["id"]]), what=what)
    return Dataset(frame, log, [read_entry(what, n_raw, frame.height, log, seconds)])


def read_entry(what: str, records_in: int, records_out: int, removed: pl.DataFrame, seconds: float) -> dict[str, Any]:
    """The ``read`` history entry of a reader (``ik.read``, or a streamed run's batch):
    records seen and kept, and the reasons of the ones it rejected.

    Example:
        >>> from instructkit.schema import empty_removed
        >>> read_entry("a.jsonl", 3, 3, empty_removed(), 0.1)["by_reason"]
        {}
    """
    return {
        "step": "read", "kind": "read", "params": what, "records_in": records_in,
        "records_out": records_out, "removed": removed.height,
        "by_reason": dict(Counter(removed["reason"].to_list()).most_common()), "seconds": seconds,
    }
