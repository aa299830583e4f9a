"""Batches between passes: the spill every executor writes after a global step's observe pass.

A streamed run observes a global step (dedup, decontamination) in one pass over every batch
and applies its decision in the next. So that the steps before it run once per record, the
observe pass writes each batch it produced to ``state/spill-<position>/`` in the run folder,
and the next pass reads it back instead of reading the source again. The local, parallel
and Ray executors share these functions, so a spill written by one is read by another and a
resumed run finds the same files.

A batch is three files: its records and its removed log as uncompressed Arrow IPC (each is
written once and read once, soon after, from the page cache: compressing them cost more
time than the disk they saved), and its history as JSON. Nothing is spilled while a
redacting step such as ``pii.scrub`` is still ahead (:func:`may_spill`), so no text from
before the scrub ever sits in a run folder, even after ``kill -9``.

Example:
    >>> import tempfile
    >>> import instructkit as ik
    >>> folder = Path(tempfile.mkdtemp())
    >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}])
    >>> write_spill(folder, 0, ds)
    >>> read_spill(folder, 0).to_polars()["instruction"].to_list()
    ['a']
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from instructkit.dataset import Dataset
from instructkit.history import as_dicts

if TYPE_CHECKING:
    from instructkit.executors.local import Manifest
    from instructkit.transform import Transform

__all__ = ["drop_spill", "may_spill", "read_spill", "spill_folder", "spilled", "write_spill"]


def may_spill(steps: Sequence[Transform], position: int) -> bool:
    """Whether a batch that has passed ``steps[:position]`` may be written to disk: not
    while a redacting step (``pii.scrub``) is still ahead.

    Example:
        >>> import instructkit as ik
        >>> may_spill([ik.dedup.exact(), ik.pii.scrub()], 1), may_spill([ik.dedup.exact()], 1)
        (False, True)
    """
    return not any(s.redacts for s in steps[position:])


def spill_folder(output: Path, steps: Sequence[Transform], position: int) -> Path | None:
    """A fresh, empty ``state/spill-<position>`` for the batches entering the global step at
    ``position`` (as its observe pass saw them), or None when they may not be written (:func:`may_spill`): the next pass
    then recomputes them from the source.

    Example:
        >>> import tempfile, instructkit as ik
        >>> run = Path(tempfile.mkdtemp())
        >>> spill_folder(run, [ik.dedup.exact()], 0).relative_to(run).as_posix()
        'state/spill-0'
    """
    spill = output / "state" / f"spill-{position}"
    shutil.rmtree(spill, ignore_errors=True)
    if not may_spill(steps, position):
        return None
    spill.mkdir(parents=True)
    return spill


def write_spill(spill: Path, index: int, dataset: Dataset) -> None:
    """Write batch ``index`` (records, removed log, history) into the folder ``spill``.

    The example is in the module's docstring.
    """
    dataset.to_polars().write_ipc(spill / f"part-{index:05d}.arrow")
    dataset.removed.write_ipc(spill / f"part-{index:05d}.removed.arrow")
    (spill / f"part-{index:05d}.history.json").write_text(json.dumps(as_dicts(dataset.steps)))


def read_spill(spill: Path, index: int) -> Dataset:
    """Batch ``index`` as :func:`write_spill` wrote it into ``spill``.

    The example is in the module's docstring.
    """
    return Dataset(
        pl.read_ipc(spill / f"part-{index:05d}.arrow"),
        pl.read_ipc(spill / f"part-{index:05d}.removed.arrow"),
        json.loads((spill / f"part-{index:05d}.history.json").read_text()),
    )


def spilled(manifest: Manifest, position: int | None) -> int | None:
    """Where the next pass starts if the pass that observed the global step at ``position``
    spilled its batches (the manifest names the folder): the position of the first step
    that pass observed, since the spill holds the batches entering it. None when it spilled
    nothing: the next pass reads the source and runs the steps before again.

    Example:
        >>> from types import SimpleNamespace
        >>> m = SimpleNamespace(globals={2: {"spill": "state/spill-2", "spill_before": 2},
        ...                              3: {"spill": "state/spill-2", "spill_before": 2},
        ...                              5: {"spill": None}})
        >>> spilled(m, 2), spilled(m, 3), spilled(m, 5), spilled(m, None)
        (2, 2, None, None)
    """
    if position is None or not manifest.globals[position].get("spill"):
        return None
    return int(manifest.globals[position].get("spill_before", position))


def drop_spill(manifest: Manifest, position: int | None) -> None:
    """Delete the spill of the global step at ``position`` (once the pass reading it is done).

    Example:
        >>> import tempfile
        >>> from types import SimpleNamespace
        >>> run = Path(tempfile.mkdtemp())
        >>> (run / "state" / "spill-2").mkdir(parents=True)
        >>> drop_spill(SimpleNamespace(out=run, globals={2: {"spill": "state/spill-2"}}), 2)
        >>> (run / "state" / "spill-2").exists()
        False
    """
    if position is not None and manifest.globals[position].get("spill"):
        shutil.rmtree(manifest.out / manifest.globals[position]["spill"], ignore_errors=True)
