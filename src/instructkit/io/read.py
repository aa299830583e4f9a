"""``ik.read``: files, folders and globs of instruction data into one :class:`Dataset`."""

from __future__ import annotations

import glob
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset, check_unique_ids
from instructkit.io.files import SUFFIXES, load
from instructkit.io.formats import canonical_frame, resolve
from instructkit.schema import empty_frame, empty_removed

PathLike = str | Path


def read(
    path_or_paths: PathLike | Sequence[PathLike],
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source: str | None = None,
    on_error: str = "raise",
) -> Dataset:
    """Read .json, .jsonl(.gz), .csv, .tsv or .parquet files (or folders/globs of them).

    The format (alpaca, dolly, sharegpt, messages, qa, seed, prompt_completion) is detected
    per file from its field names; ``format=`` overrides it and ``mapping`` names the fields
    of any other layout (``{"instruction": "prompt", "output": "reply"}``). Each record's
    ``source`` is ``source`` or the file's stem. With ``on_error="skip"``, a line that does
    not parse or a record that lacks a required field goes to ``removed`` (reasons
    ``parse_error``, ``missing_field``, ``invalid_record``) instead of raising.

    Example:
        >>> import tempfile, pathlib, instructkit as ik
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "qa.jsonl"
        >>> _ = p.write_text('{"question": "2+2?", "answer": "4"}\\n{bad\\n')
        >>> ds = ik.read(p, on_error="skip")
        >>> len(ds), ds.removed["reason"].to_list()
        (1, ['parse_error'])
    """
    start = time.perf_counter()
    files = expand(path_or_paths)
    frames, removed, formats, n_raw = [], [], [], 0
    for path in files:
        records, locations = load(path, on_error=on_error)
        n_raw += len(records)
        formats.append(f"{path.name}: {_format_name(records, format, mapping, path)}")
        frame, dropped = canonical_frame(
            records, source=source or _stem(path), format=format, mapping=mapping,
            origin=str(path), locations=locations, on_error=on_error,
        )
        frames.append(frame)
        removed.append(dropped)
    return assemble(frames, removed, n_raw, time.perf_counter() - start, what="; ".join(formats))


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
    records, _ = load(path, on_error="skip")
    return _format_name(records, None, None, path)


def _format_name(records: list[Any], format: str | None, mapping: Mapping[str, str] | None, path: Path) -> str:
    good = [r for r in records[:200] if isinstance(r, dict)]
    if not good:
        return "empty"
    return resolve(format, mapping, set().union(*(r.keys() for r in good)), str(path)).name


def expand(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """The data files named by a path, folder, glob or list of them, in sorted order.

    Raises ``FileNotFoundError`` naming any path that matches nothing.
    """
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    files: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            matches = [m for m in matches if m.is_file() and _supported(m)]
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).rglob("*") if p.is_file() and _supported(p))
        elif Path(text).is_file():
            matches = [Path(text)]
        else:
            raise FileNotFoundError(f"no such file or folder: {text}")
        if not matches:
            raise FileNotFoundError(f"{text}: no data files ({', '.join(SUFFIXES)}) found")
        files.extend(matches)
    return files


def from_hf(
    dataset: Any, format: str | None = None, mapping: Mapping[str, str] | None = None,
    source: str = "hf",
) -> Dataset:
    """Convert a Hugging Face ``datasets.Dataset`` (format detected as in :func:`read`).

    Example:
        >>> import datasets, instructkit as ik                      # doctest: +SKIP
        >>> ik.from_hf(datasets.Dataset.from_list([{"instruction": "a", "output": "b"}]))  # doctest: +SKIP
    """
    return _from_rows(list(dataset), format, mapping, source)


def from_pandas(
    frame: Any, format: str | None = None, mapping: Mapping[str, str] | None = None,
    source: str = "pandas",
) -> Dataset:
    """Convert a pandas DataFrame (format detected as in :func:`read`).

    Example:
        >>> import pandas as pd, instructkit as ik
        >>> len(ik.from_pandas(pd.DataFrame({"question": ["q"], "answer": ["a"]})))
        1
    """
    return _from_rows(frame.to_dict("records"), format, mapping, source)


def _from_rows(rows: list[dict[str, Any]], format: str | None, mapping: Mapping[str, str] | None, source: str) -> Dataset:
    start = time.perf_counter()
    frame, removed = canonical_frame(rows, source=source, format=format, mapping=mapping, origin=source)
    return assemble([frame], [removed], len(rows), time.perf_counter() - start, what=source)


def assemble(
    frames: Sequence[pl.DataFrame], removed: Sequence[pl.DataFrame], n_raw: int, seconds: float, what: str
) -> Dataset:
    """A Dataset from what a reader produced, with its ``read`` history entry; ids must be
    unique across the records and the removed rows."""
    frame = pl.concat(frames, how="vertical") if frames else empty_frame()
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


def _supported(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    for ext in sorted(SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem
