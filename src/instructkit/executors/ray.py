"""Run a pipeline on Ray Data, on one machine or a cluster (``pip install instructkit[ray]``).

The unit of work is a :class:`~instructkit.io.scan.Split` (one input batch, described by
file and byte or row range), so workers read their own part of the input from a shared
filesystem and the driver never streams records. Per pass:

- A Ray Dataset holds one split descriptor per row; ``map_batches`` reads the split on a
  worker into a polars frame and runs the steps on it.
- ``Global`` steps: ``map_batches`` calls ``observe`` per batch and returns the compact state
  (MinHash: the signatures' band hashes; decontamination: the index hits); the driver runs
  ``decide`` on the states, in batch order (MinHash: grouping by band hash and connected
  components). The pipeline's steps, a decontamination index included, are put once in the
  object store and broadcast to every worker.
- The last pass writes the same shards and manifest as the local executor, so a Ray run
  resumes like a local one and gives the same records and removed log.
"""

from __future__ import annotations

import json
import pickle
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from instructkit.executors.local import (
    Manifest,
    RunResult,
    Source,
    decide,
    fingerprint,
    global_positions,
    observe_batch,
    process_batch,
    write_shard,
)
from instructkit.transform import Transform

# a failing batch is retried this often (a lost worker), then the run stops; rerun to resume
_RETRIES = 2

# worker-side cache of broadcast objects, so each worker deserializes them once per run
_CACHE: dict[str, Any] = {}


def _get(ref: Any) -> Any:
    import ray

    key = ref.hex()
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = ray.get(ref)
    return _CACHE[key]


def _observe_batches(batch: dict[str, np.ndarray], job_ref: Any, position: int) -> dict[str, np.ndarray]:
    steps, source, splits, drops = _get(job_ref)
    states, seconds = [], []
    for index in batch["index"]:
        frame, _ = source.read_split(splits[int(index)])
        state, spent = observe_batch(steps, position, drops, frame)
        states.append(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        seconds.append(spent)
    return {
        "index": batch["index"],
        "state": np.array(states, dtype=object),
        "seconds": np.array(seconds, dtype=np.float64),
    }


def _process_batches(batch: dict[str, np.ndarray], job_ref: Any, out: str, fmt: str) -> dict[str, np.ndarray]:
    steps, source, splits, drops = _get(job_ref)
    entries = []
    for index in batch["index"]:
        split = splits[int(index)]
        frame, removed = source.read_split(split)
        dataset = process_batch(steps, drops, frame, removed)
        entries.append(json.dumps(write_shard(dataset, Path(out), split.index, fmt)))
    return {"index": batch["index"], "entry": np.array(entries, dtype=object)}


def run_ray(
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    fmt: str = "parquet",
    resume: bool = True,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
) -> RunResult:
    """Run ``steps`` over ``source`` on Ray Data, writing shards to ``output``.

    ``output`` must be reachable by every worker (a shared filesystem on a cluster). See
    :func:`instructkit.executors.run` for the public entry point.

    Example:
        >>> import instructkit as ik                                          # doctest: +SKIP
        >>> ik.Pipeline([ik.normalize()]).run("big.jsonl", executor="ray",    # doctest: +SKIP
        ...     output="out/", address="auto")
    """
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ImportError("executor='ray' needs Ray Data: pip install 'instructkit[ray]'") from e

    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    elif address is not None:
        raise ValueError(f"Ray is already initialized; cannot connect to address={address!r} as well")
    try:
        return _run(ray, steps, source, output, fmt, resume, started)
    finally:
        if owns_ray:
            ray.shutdown()


def _run(
    ray: Any,
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    fmt: str,
    resume: bool,
    started: float,
) -> RunResult:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False

    manifest = Manifest(output, fingerprint(steps, source, fmt, executor="ray"), resume)
    drops = manifest.drops()
    splits = {s.index: s for s in source.splits()}

    def descriptors(indexes: list[int]) -> Any:
        return ray.data.from_items([{"index": i} for i in indexes], override_num_blocks=max(len(indexes), 1))

    def map_batches(data: Any, fn: Any, **fn_kwargs: Any) -> Any:
        # Ray Data retries a failed map task forever by default, so a step that raises
        # would hang the run; max_retries has no named parameter in Ray 2.60 yet
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return data.map_batches(fn, batch_size=1, max_retries=_RETRIES, fn_kwargs=fn_kwargs)

    for position in global_positions(steps):
        if position in drops:
            continue
        job = ray.put((list(steps), source, splits, drops))
        rows = map_batches(
            descriptors(sorted(splits)), _observe_batches, job_ref=job, position=position
        ).take_all()
        rows.sort(key=lambda r: int(r["index"]))
        t0 = time.perf_counter()
        decided = decide(steps[position], [pickle.loads(r["state"]) for r in rows])
        seconds = sum(float(r["seconds"]) for r in rows) + time.perf_counter() - t0
        drops[position] = decided
        manifest.record_global(position, decided, {"step": steps[position].name, "seconds": seconds})
        del rows

    done = set(manifest.shards)
    todo = [i for i in sorted(splits) if i not in done]
    if todo:
        job = ray.put((list(steps), source, splits, drops))
        results = map_batches(descriptors(todo), _process_batches, job_ref=job, out=str(output), fmt=fmt)
        for row in results.iter_rows():
            manifest.record_shard(int(row["index"]), json.loads(row["entry"]))
    return manifest.result(skipped=len(done), seconds=time.perf_counter() - started)
