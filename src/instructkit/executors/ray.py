"""Run a pipeline on Ray Data, on one machine or a cluster (``pip install instructkit[ray]``).

Records flow through Ray Data as Arrow blocks:

- **Read.** A Ray ``Datasource`` has one read task per input split (one batch of one file,
  see :class:`~instructkit.io.scan.Split`); the task reads its split with the same code as
  ``ik.scan`` and yields it as one Arrow block of canonical records, so every format
  ``ik.scan`` reads works, and ids are those of the local executor. Records the reader
  rejected (``on_error="skip"``) travel in the block as rows marked with their read error.
- **Map and Filter steps** run as ``map_batches(fn, batch_format="pyarrow")``; ``fn`` turns
  the Arrow batch into a polars frame and runs the steps on it.
- **Global steps** run their ``observe`` in the same ``map_batches`` (after the steps before
  them), which returns one Arrow row per batch holding the compact state (MinHash: ids and
  counts, the signatures and band hashes in a spill file; exact dedup: 64-bit hashes;
  decontamination: index hits). ``decide`` runs on the driver over the states in input
  order, so its answer is the local executor's. A step may bring a grouping that runs on
  the cluster through :meth:`~instructkit.transform.Global.decide_options` for ``"ray"``:
  on a cluster of several nodes MinHash's band hashes are grouped by a Ray Data shuffle
  (:mod:`~instructkit.executors.ray_minhash`: band rows, a hash ``repartition`` on the band
  hash, buckets turned into candidate pairs on the workers), on one node by the driver;
  the driver verifies the pairs and joins them by union-find (connected components).
- **Spill between passes.** Like the local executor, the observe pass of a global step
  writes the batches it produced (after the steps before it) to ``state/spill-<position>``
  in the run folder, and the next pass starts from there instead of reading the source and
  running those steps again: its read tasks each yield one marker row (split index, spill
  folder) and the worker reads the spill. This is on when Ray reports one alive node, or
  with ``spill=True`` (the run folder is already shared by every node, since workers write
  the shards there; on a cluster recomputing can still beat a slow shared filesystem, so
  ``spill=None`` recomputes there); ``spill=False`` always recomputes. While a redacting
  step is still ahead nothing is spilled (see :func:`~instructkit.executors.spill.may_spill`).
- **Broadcast.** The steps, the drops decided so far and each step's
  :meth:`~instructkit.transform.Transform.shared_state` (built once, on the driver, after
  :meth:`~instructkit.transform.Transform.prepare`: decontamination's n-gram index) are put
  in the object store once per pass and fetched once per worker process, which hands each
  step its state with ``attach_shared_state``. The executor knows no particular step: a
  grouping that runs on the cluster (MinHash's band shuffle) comes from the step's
  :meth:`~instructkit.transform.Global.decide_options` for ``"ray"``.
- The last pass writes the same shards and manifest as the local executor, so a Ray run
  resumes like a local one and gives the same records, removed log and report.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

try:
    import pyarrow as pa
    import ray
    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("executor='ray' needs Ray Data: pip install 'instructkit[ray]'") from e

from instructkit.dataset import Dataset
from instructkit.dedup._spill import spill_to
from instructkit.executors._preload import class_names, preload
from instructkit.executors.ids import IdLedger, hash_ids
from instructkit.executors.local import (
    Manifest,
    RunResult,
    Source,
    fingerprint,
    from_source,
    id_ledger,
    observe_group,
    observe_plan,
    prepare,
    read_label,
    record_decisions,
    run_steps,
    write_shard,
)
from instructkit.executors.spill import drop_spill, read_spill, spill_folder, spilled, write_spill
from instructkit.schema import REMOVED_SCHEMA
from instructkit.transform import Transform

#: Column of every block: the index of the input split its rows come from.
SPLIT = "_ik_split"
#: Column of every block: seconds its read task spent reading the split.
READ_SECONDS = "_ik_read_seconds"
#: Column of a marker block (one row): the spill folder its batch is read from.
SPILL = "_ik_spill"
# read errors ride in the block as rows with these columns set (the removed log's step,
# reason and detail); records have them null
_READ = {"step": "_ik_read_step", "reason": "_ik_read_reason", "detail": "_ik_read_detail"}

# worker-side cache of broadcast objects, so each worker process deserializes them once
_CACHE: dict[str, Any] = {}


def _get(ref: Any) -> Any:
    key = ref.hex()
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = ray.get(ref)
    return _CACHE[key]


# -------------------------------------------------------------------------------------------
# records <-> Arrow blocks


def encode(index: int, frame: pl.DataFrame, removed: pl.DataFrame, seconds: float = 0.0) -> pa.Table:
    """One split as one Arrow block: its records, then its read errors as marked rows
    (``seconds``: the time reading it took, for the run's report).

    Example:
        >>> import instructkit as ik
        >>> from instructkit.schema import empty_removed
        >>> frame = ik.Dataset.from_records([{"instruction": "a"}], source="s").to_polars()
        >>> block = encode(3, frame, empty_removed())
        >>> index, dataset = decode(block)
        >>> index, dataset.to_polars().equals(frame)
        (3, True)
    """
    marks = [pl.lit(None, dtype=pl.String).alias(c) for c in _READ.values()]
    parts = [frame.with_columns(*marks)]
    if removed.height:
        parts.append(removed.rename(_READ))
    block = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
    return block.with_columns(
        pl.lit(index, dtype=pl.Int64).alias(SPLIT), pl.lit(seconds, dtype=pl.Float64).alias(READ_SECONDS)
    ).to_arrow()


def decode(batch: pa.Table, label: str | None = None) -> tuple[int | None, Dataset]:
    """The split index and the records (read errors as removed log) of a block made by
    :func:`encode`, with a ``read`` history entry naming ``label`` when given (see
    :func:`~instructkit.executors.local.from_source`); the index is None for an empty
    block (an empty split)."""
    rows = pl.from_arrow(batch)
    assert isinstance(rows, pl.DataFrame)
    if rows.height == 0:
        return None, Dataset()
    splits = rows[SPLIT].unique()
    if splits.len() != 1:
        raise RuntimeError(
            f"a Ray batch holds splits {sorted(splits.to_list())}; each batch must be one whole "
            "input split (instructkit sets DataContext.target_max_block_size=None for this)"
        )
    failed = pl.col(_READ["reason"]).is_not_null()
    frame = rows.filter(~failed).drop(SPLIT, READ_SECONDS, *_READ.values())
    removed = rows.filter(failed).select(
        [pl.col(_READ.get(c, c)).cast(t).alias(c) for c, t in REMOVED_SCHEMA.items()]
    )
    return int(splits[0]), from_source(frame, removed, float(rows[READ_SECONDS][0]), label)


class SplitDatasource(Datasource):
    """A Ray Data source with one read task, and one Arrow block, per input split.

    The :class:`~instructkit.executors.local.Source` is put in the object store once and
    read tasks fetch it, so an in-memory source is not copied into every task.

    Example:
        >>> import instructkit as ik, ray                                      # doctest: +SKIP
        >>> scan = ik.scan("big.jsonl", batch_size=100_000)                    # doctest: +SKIP
        >>> blocks = ray.data.read_datasource(                                 # doctest: +SKIP
        ...     SplitDatasource(ray.put(scan), scan.splits()))
    """

    def __init__(self, source_ref: Any, splits: Sequence[Any]) -> None:
        super().__init__()
        self.source_ref = source_ref
        self.splits = list(splits)

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        tasks = []
        for split in self.splits:
            path = getattr(split, "path", None)
            meta = BlockMetadata(
                num_rows=getattr(split, "rows", None), size_bytes=None, exec_stats=None,
                input_files=[path] if path else None,
            )
            tasks.append(ReadTask(_reader(self.source_ref, split), meta))
        return tasks


def _reader(source_ref: Any, split: Any) -> Any:
    def read() -> Iterator[pa.Table]:
        started = time.perf_counter()
        frame, removed = _get(source_ref).read_split(split)
        yield encode(split.index, frame, removed, time.perf_counter() - started)

    return read


class SpillDatasource(Datasource):
    """A Ray Data source with one read task per batch spilled by the previous pass: each
    yields one marker row (split index, spill folder), and the worker that maps it reads
    the spill (:func:`load`), so the batch never goes through the object store.

    Example:
        >>> blocks = ray.data.read_datasource(SpillDatasource("out/state/spill-2", [0, 1]))  # doctest: +SKIP
    """

    def __init__(self, folder: str, indexes: Sequence[int]) -> None:
        super().__init__()
        self.folder = folder
        self.indexes = list(indexes)

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        meta = BlockMetadata(num_rows=1, size_bytes=None, exec_stats=None, input_files=None)
        return [ReadTask(_marker(index, self.folder), meta) for index in self.indexes]


def _marker(index: int, folder: str) -> Any:
    def read() -> Iterator[pa.Table]:
        yield pa.table({SPLIT: pa.array([index], pa.int64()), SPILL: pa.array([folder], pa.string())})

    return read


def load(batch: pa.Table, label: str | None = None) -> tuple[int | None, Dataset]:
    """The split index and records of a block: a spill marker (:class:`SpillDatasource`)
    read from its spill folder, or a block of records (:func:`decode`).

    Example:
        >>> import instructkit as ik
        >>> from instructkit.schema import empty_removed
        >>> frame = ik.Dataset.from_records([{"instruction": "a"}], source="s").to_polars()
        >>> index, dataset = load(encode(3, frame, empty_removed()))
        >>> index, len(dataset)
        (3, 1)
    """
    if SPILL not in batch.column_names:
        return decode(batch, label)
    if batch.num_rows != 1:
        raise RuntimeError(f"a Ray batch holds {batch.num_rows} spill markers; each batch must be one")
    index = int(batch.column(SPLIT)[0].as_py())
    return index, read_spill(Path(batch.column(SPILL)[0].as_py()), index)


# -------------------------------------------------------------------------------------------
# what workers run


def _job(job_ref: Any) -> tuple[list[Transform], dict[int, pl.DataFrame]]:
    key = job_ref.hex()
    fresh = key not in _CACHE
    steps, drops, shared = _get(job_ref)
    if fresh:  # this worker's copy of the steps: hand each its state once
        for step, state in zip(steps, shared, strict=True):
            if state is not None:
                step.attach_shared_state(state)
    return steps, drops


def _id_hashes(dataset: Dataset, check_ids: bool) -> bytes:
    """The batch's id hashes for the driver's ledger, on the pass that checks them."""
    return hash_ids(dataset.to_polars()["id"]).tobytes() if check_ids else b""


def _observe(
    batch: pa.Table, job_ref: Any, group: list[int], start: int, scratch: str, label: str | None, check_ids: bool,
    spill: str | None,
) -> pa.Table:
    steps, drops = _job(job_ref)
    index, dataset = load(batch, label)
    if index is None:  # an empty split: the driver observes it (see _empty_split)
        return pa.table({SPLIT: pa.array([], pa.int64()), "state": pa.array([], pa.large_binary()),
                         "seconds": pa.array([], pa.large_binary()), "ids": pa.array([], pa.large_binary())})
    ids = _id_hashes(dataset, check_ids)
    dataset = run_steps(steps, dataset, drops, start=start, stop=group[0])
    with spill_to(scratch):
        states, seconds = observe_group(steps, group, dataset.to_polars())
    if spill is not None:
        write_spill(Path(spill), index, dataset)
    return pa.table({
        SPLIT: pa.array([index], pa.int64()),
        "state": pa.array([pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)], pa.large_binary()),
        "seconds": pa.array([pickle.dumps(seconds)], pa.large_binary()),
        "ids": pa.array([ids], pa.large_binary()),
    })


def _process(
    batch: pa.Table, job_ref: Any, start: int, out: str, fmt: str, label: str | None, check_ids: bool
) -> pa.Table:
    steps, drops = _job(job_ref)
    index, dataset = load(batch, label)
    if index is None:  # an empty split: the driver writes its shard (see _empty_split)
        return pa.table({SPLIT: pa.array([], pa.int64()), "entry": pa.array([], pa.string()),
                         "ids": pa.array([], pa.large_binary())})
    ids = _id_hashes(dataset, check_ids)
    entry = write_shard(run_steps(steps, dataset, drops, start=start), Path(out), index, fmt)
    return pa.table({SPLIT: pa.array([index], pa.int64()), "entry": pa.array([json.dumps(entry)], pa.string()),
                     "ids": pa.array([ids], pa.large_binary())})


# -------------------------------------------------------------------------------------------
# the driver


def run_ray(
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    fmt: str = "parquet",
    resume: bool = True,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    spill: bool | None = None,
) -> RunResult:
    """Run ``steps`` over ``source`` on Ray Data, writing shards to ``output``.

    ``output`` must be reachable by every worker (a shared filesystem on a cluster). Passes
    start from the previous pass's spill (see the module doc) when ``spill`` is True, or
    when it is None and Ray reports one alive node; else they recompute from the source.
    See :func:`instructkit.executors.run` for the public entry point.

    Example:
        >>> import instructkit as ik                                          # doctest: +SKIP
        >>> ik.Pipeline([ik.normalize()]).run("big.jsonl", executor="ray",    # doctest: +SKIP
        ...     output="out/", address="auto")
    """
    started = time.perf_counter()
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    elif address is not None:
        raise ValueError(f"Ray is already initialized; cannot connect to address={address!r} as well")
    ctx = ray.data.DataContext.get_current()
    saved = ctx.target_max_block_size, ctx.enable_progress_bars, ctx.op_resource_reservation_enabled
    # one block per split, never cut: a batch must be a whole split to become its shard
    ctx.target_max_block_size, ctx.enable_progress_bars = None, False
    # a pass is one operator (read and steps fused): the share of the CPUs Ray Data reserves
    # per operator left half of them idle as a pass started (on 2 cores one task ran alone
    # for a second); 19.5 -> 16.7 s for five steps on 1M records
    ctx.op_resource_reservation_enabled = False
    # Ray Data logs every dataset it runs at INFO; a run makes several, and prints its own report
    log = logging.getLogger("ray.data")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        if spill is None:
            spill = alive_nodes() == 1
        _warm_up(steps)
        return _run(steps, source, output, fmt, resume, started, spill)
    finally:
        ctx.target_max_block_size, ctx.enable_progress_bars, ctx.op_resource_reservation_enabled = saved
        log.setLevel(level)
        if owns_ray:
            ray.shutdown()


#: Ray options of every task of a run: read and steps, warm-up, MinHash's band shuffle
#: (:mod:`~instructkit.executors.ray_minhash`). Each task holds one CPU, so polars and
#: numba get one thread each (they read it when imported). Left alone, every worker's
#: pools take every core of its node: two tasks on two cores then run four polars and
#: four numba threads. All tasks get the same options, so a read and the steps after it
#: still fuse into one task, and the warmed-up workers are the ones used.
TASK_OPTIONS: dict[str, Any] = {
    "num_cpus": 1,
    "runtime_env": {"env_vars": {"POLARS_MAX_THREADS": "1", "NUMBA_NUM_THREADS": "1"}},
}


@ray.remote
def _preload(classes: str) -> int:
    # a warm-up only: what fails here fails again, with its context, in the pass's own task
    preload(classes)
    return os.getpid()


def _warm_up(steps: Sequence[Transform]) -> None:
    """Have the idle workers import the steps' modules and call each class's
    :meth:`~instructkit.transform.Transform.preload` (numba, the fastText model) now, while
    the driver starts the run's first Ray Data dataset (about a second on a fresh driver),
    rather than in the first pass's tasks. Not waited for."""
    classes = class_names(steps)
    cpus = int(ray.available_resources().get("CPU", 1))
    for _ in range(max(1, cpus)):
        _preload.options(**TASK_OPTIONS).remote(classes)


def alive_nodes() -> int:
    """Nodes of the connected Ray cluster that are alive (1 for a local Ray instance): on
    one node the run folder is local to every worker, and a shuffle buys nothing.

    Example:
        >>> import ray                                                            # doctest: +SKIP
        >>> ray.init(num_cpus=2); alive_nodes()                                   # doctest: +SKIP
        1
    """
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _map(data: Any, fn: Any, **fn_kwargs: Any) -> Any:
    # the read's options: a read and a map with the same options fuse into one task, so a
    # block goes from the reader to the steps without a trip through the object store
    return data.map_batches(fn, batch_format="pyarrow", batch_size=None, fn_kwargs=fn_kwargs, **TASK_OPTIONS)


def _rows(data: Any, todo: Sequence[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The output rows of a pass, one per split, as they come; checks none comes twice."""
    wanted, seen = set(todo), set()
    for block in data.iter_batches(batch_format="pyarrow", batch_size=None):
        for row in block.to_pylist():
            index = int(row.pop(SPLIT))
            if index in seen or index not in wanted:
                raise RuntimeError(f"Ray returned input split {index} twice or unasked")
            seen.add(index)
            yield index, row


def _empty_split(source: Source, split: Any) -> Dataset:
    """A split Ray Data returned nothing for: it drops empty blocks, so it must be empty."""
    frame, removed = source.read_split(split)
    if frame.height or removed.height:
        raise RuntimeError(f"Ray lost input split {split.index} ({frame.height} records); rerun to resume")
    return from_source(frame, removed, 0.0, read_label(source))


def _run(
    steps: Sequence[Transform], source: Source, output: Path, fmt: str, resume: bool, started: float,
    spill_between: bool,
) -> RunResult:
    manifest = Manifest(output, fingerprint(steps, source, fmt, executor="ray"), resume)
    prepare(steps)
    drops = manifest.drops()
    splits = {s.index: s for s in source.splits()}
    source_ref = ray.put(source)
    # built once here, shipped with the steps (see Transform.shared_state)
    shared = [step.shared_state() for step in steps]

    def records(indexes_: list[int], previous: int | None) -> Any:
        """The batches entering a pass: splits of the source, or the spill of the pass of
        the global step at ``previous``."""
        blocks = max(len(indexes_), 1)
        if previous is None:
            return ray.data.read_datasource(
                SplitDatasource(source_ref, [splits[i] for i in indexes_]), override_num_blocks=blocks,
                ray_remote_args=TASK_OPTIONS)
        folder = str(manifest.out / manifest.globals[previous]["spill"])
        return ray.data.read_datasource(SpillDatasource(folder, indexes_), override_num_blocks=blocks,
                                        ray_remote_args=TASK_OPTIONS)

    # ids are checked on the first pass over the source that this run makes in full (a
    # resumed run's passes were checked when they first ran; see executors.ids)
    ledger: IdLedger | None = id_ledger(source, steps, output)
    label = read_label(source)
    # spill files (MinHash signatures) go to the run folder, which every worker sees: a
    # killed run's are deleted when it resumes
    scratch = output / "state" / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    order = sorted(splits)
    previous: int | None = None
    for group in observe_plan(steps, manifest.globals):
        if group[0] in drops:
            ledger = None
        else:
            spill = spill_folder(output, steps, group[0]) if spill_between else None
            first = spilled(manifest, previous)
            check = ledger is not None and first is None
            job = ray.put((list(steps), drops, shared))
            observed: dict[int, list[Any]] = {}
            seconds = dict.fromkeys(group, 0.0)
            # states are unpickled as they arrive, so the driver never holds them twice
            observing = _map(records(order, first), _observe, job_ref=job, group=group,
                             start=0 if first is None else first, scratch=str(scratch), label=label,
                             check_ids=check, spill=None if spill is None else str(spill))
            for index, row in _rows(observing, order):
                if check:
                    ledger.add(index, np.frombuffer(row["ids"], np.uint64))  # type: ignore[union-attr]
                observed[index] = pickle.loads(row.pop("state"))
                for position, took in zip(group, pickle.loads(row["seconds"]), strict=True):
                    seconds[position] += took
            ledger = None
            for index in sorted(set(splits) - set(observed)):
                # an empty split (Ray Data drops empty blocks; a spill marker is never empty)
                empty = run_steps(steps, _empty_split(source, splits[index]), drops, stop=group[0])
                with spill_to(scratch):
                    observed[index], took = observe_group(steps, group, empty.to_polars())
                for position, t in zip(group, took, strict=True):
                    seconds[position] += t
                if spill is not None:
                    write_spill(spill, index, empty)
            states = {p: [observed[i][k] for i in order] for k, p in enumerate(group)}
            del observed
            with spill_to(scratch):
                record_decisions(manifest, steps, group, states, seconds, order, spill, drops, executor="ray")
        drop_spill(manifest, previous)
        previous = group[-1]

    shutil.rmtree(scratch, ignore_errors=True)
    done = set(manifest.shards)
    todo = [i for i in order if i not in done]
    first = spilled(manifest, previous)
    if ledger is not None:  # no global step: this pass is the check, as in the local executor
        ledger.resume(done)
    if todo:
        job = ray.put((list(steps), drops, shared))
        # shards are recorded as they come back, so an interrupted pass resumes from them
        processing = _map(records(todo, first), _process, job_ref=job, start=0 if first is None else first,
                          out=str(output), fmt=fmt, label=label, check_ids=ledger is not None)
        for index, row in _rows(processing, todo):
            if ledger is not None:
                ledger.add(index, np.frombuffer(row["ids"], np.uint64))
            manifest.record_shard(index, json.loads(row["entry"]))
        for index in todo:
            if index not in manifest.shards:
                dataset = run_steps(steps, _empty_split(source, splits[index]), drops)
                if ledger is not None:
                    ledger.add(index, np.empty(0, np.uint64))
                manifest.record_shard(index, write_shard(dataset, output, index, fmt))
    drop_spill(manifest, previous)
    return manifest.result(skipped=len(done), seconds=time.perf_counter() - started)
