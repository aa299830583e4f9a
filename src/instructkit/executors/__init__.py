"""Run a pipeline out of core: batch by batch on one machine, or on a Ray cluster.

:func:`run` is what ``Pipeline.run(...)`` calls. Both executors write the same shards (one
output shard and one removed-log shard per input batch) and keep a manifest, so an
interrupted run resumes where it stopped and a Ray run gives the same records as a local one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from instructkit.executors.local import FORMATS, RunResult, as_source, run_local
from instructkit.executors.parallel import (
    check_not_bootstrapping,
    resolve_workers,
    run_parallel,
    start_workers_context,
    worker_env,
)
from instructkit.transform import Transform

__all__ = ["run", "RunResult"]


def run(
    steps: Sequence[Transform],
    source: Any,
    executor: Literal["local", "ray"] = "local",
    *,
    batch_size: int = 100_000,
    output: str | Path | None = None,
    format: str = "parquet",
    resume: bool = True,
    address: str | None = None,
    num_cpus: int | None = None,
    workers: int = 1,
    spill: bool | None = None,
) -> RunResult:
    """Run ``steps`` over ``source`` in batches and write output shards.

    ``source`` is a path, a list of paths, ``ik.scan(...)`` (its own batch size wins), an
    ``ik.Dataset`` or a polars frame. ``output`` is a folder for ``data/part-*.{format}``,
    ``removed/part-*.parquet`` and ``manifest.json``; with ``resume=True`` a rerun skips the
    shards and global decisions the manifest lists as finished. ``output=None`` runs in a
    temporary folder and returns the records in ``result.dataset``.

    ``executor="ray"`` runs on Ray Data (``pip install instructkit[ray]``): ``address``
    names a cluster (``"auto"``, ``"ray://head:10001"``); without it a local Ray instance
    starts with ``num_cpus`` CPUs. Between passes a Ray run spills its batches to the run
    folder and starts the next pass from there, as the local executor does, when Ray
    reports one node or ``spill=True`` (a cluster whose shared filesystem is fast); else
    (``spill=False``, or ``None`` on a cluster) each pass reads the source and runs the
    steps before its global step again (see docs/scaling.md).

    ``workers`` (local executor) is the number of worker processes: Map and Filter steps
    run batch by batch on all of them, global steps observe on them and decide once on the
    driver, and every output byte is the one ``workers=1`` writes. ``-1`` uses every
    available core. The default, 1, runs in this process: no start-up cost (about a second
    per worker) and steps need not be picklable; pass ``workers=-1`` for big inputs (see
    docs/scaling.md; a recipe's ``run:`` defaults to ``-1``). No more workers start than
    there are batches; ``RunResult.workers`` says how many ran.

    Example:
        >>> import instructkit as ik
        >>> from instructkit.executors import run
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}] * 5)
        >>> result = run([ik.normalize()], ds, batch_size=2)
        >>> result.records_out, len(result.dataset)
        (5, 5)
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    steps = list(steps)
    bad = [s for s in steps if not isinstance(s, Transform)]
    if bad:
        raise TypeError(f"steps must be instructkit transforms; got {bad[0]!r}")
    if executor == "ray" and workers != 1:
        raise ValueError("workers= is for the local executor; Ray's size is set by num_cpus= or the cluster")
    if executor != "ray" and spill is not None:
        raise ValueError("spill= is for the Ray executor; the local executor always spills between passes")
    n_workers = resolve_workers(workers)
    # threads per worker follow the workers asked for, not the batches found: the server
    # that starts now reads them once, and a run with other settings would spawn its workers
    env = worker_env(n_workers)
    if executor == "local" and n_workers > 1:
        check_not_bootstrapping()
        # the workers' server loads the steps while the source is listed
        start_workers_context(steps, env)
    src = as_source(source, batch_size)
    if n_workers > 1:
        n_workers = min(n_workers, len(src.splits()))
    temporary = output is None
    out = Path(tempfile.mkdtemp(prefix="ik-run-")) if temporary else Path(output)
    try:
        if executor == "ray":
            from instructkit.executors.ray import run_ray

            result = run_ray(steps, src, out, format, resume, address=address, num_cpus=num_cpus, spill=spill)
        elif n_workers > 1:
            result = run_parallel(steps, src, out, format, resume, workers=n_workers, env=env)
        else:
            result = run_local(steps, src, out, format, resume)
        result.workers = None if executor == "ray" else n_workers
        if temporary:
            result.dataset = result.to_dataset()
            result.output, result.shards, result.removed_shards = None, [], []
    finally:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)
    return result
