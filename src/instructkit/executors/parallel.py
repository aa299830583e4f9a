"""The local executor on several worker processes (``Pipeline.run(..., workers=N)``).

The passes, the manifest and the files are those of :func:`~instructkit.executors.local.run_local`;
only where a batch is processed changes. The driver lists the batches of a pass and hands
them, in order, to a pool of worker processes; each worker reads its batch (a split of the
source, or a spill of the previous pass), runs the steps, and then either observes the
global step of the pass (spilling the batch for the next pass) or writes the batch's output
and removed-log shards. The driver collects the answers in batch order: it shows the ids to
the :class:`~instructkit.executors.ids.IdLedger`, gathers the global step's states, runs
``decide`` once, and records finished shards in the manifest. Every file is the one
``workers=1`` writes, byte for byte.

Workers fork from a server process (the ``forkserver`` start method; ``spawn`` where the OS
lacks it): a plain ``fork`` of the driver would copy polars' and numba's thread pools
unsafely, and spawning imports everything again in each worker. The server starts as the
run starts, while the driver lists the source and prepares the steps; it imports the
steps' classes and calls their :meth:`~instructkit.transform.Transform.preload` (numba,
the language-ID model), so that cost is paid once, not once per worker. It lives as long
as the driver process and serves later runs that need the same thread settings; a run
that needs other settings, or a server someone else started, gets spawned workers. Each
worker gets the steps once, when it starts, with the state their
:meth:`~instructkit.transform.Transform.shared_state` built on the driver (such as
decontamination's n-gram index); decided drops are read by each worker from the run folder
(``state/global-N.parquet``) the first time a pass needs them. A worker holds one batch at
a time and at most ``2 * workers`` batches are handed out at once, so memory is bounded by
the batch size, not by the corpus.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from instructkit._progress import progress
from instructkit.dataset import Dataset
from instructkit.dedup._spill import spill_to
from instructkit.executors._preload import PRELOAD_ENV, class_names
from instructkit.executors.ids import IdLedger, hash_ids
from instructkit.executors.local import (
    FrameSource,
    Manifest,
    RunResult,
    Source,
    fingerprint,
    from_source,
    id_ledger,
    observe_group,
    observe_plan,
    pass_name,
    prepare,
    read_label,
    record_decisions,
    run_steps,
    write_shard,
)
from instructkit.executors.spill import drop_spill, read_spill, spill_folder, spilled, write_spill
from instructkit.transform import Transform

__all__ = [
    "available_cores",
    "check_not_bootstrapping",
    "check_picklable",
    "resolve_workers",
    "run_parallel",
    "start_workers_context",
    "worker_env",
]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one).

    Example:
        >>> available_cores() >= 1
        True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(workers: int) -> int:
    """The number of worker processes ``workers`` asks for: ``-1`` means every available
    core, any other value must be a positive int.

    Example:
        >>> resolve_workers(3)
        3
        >>> resolve_workers(-1) == available_cores()
        True
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int (>= 1, or -1 for every core), got {workers!r}")
    if workers == -1:
        return available_cores()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, or -1 for every core; got {workers}")
    return workers


# -------------------------------------------------------------------------------------------
# what a worker runs

_STEPS: list[Transform] = []
_SOURCE: Any = None
_LABEL: str | None = None
_DROPS: dict[int, pl.DataFrame] = {}


def _init_worker(steps: list[Transform], shared: list[Any], source: Any, label: str | None, env: dict[str, str]) -> None:
    global _SOURCE, _LABEL
    os.environ.update(env)
    for step, state in zip(steps, shared, strict=True):
        if state is not None:
            step.attach_shared_state(state)
    _STEPS[:] = steps
    _SOURCE, _LABEL = source, label
    _DROPS.clear()


def _load(spec: tuple[Any, ...]) -> Dataset:
    """A batch entering a pass: ``("split", split)`` of the source the worker holds,
    ``("frame", frame, removed)`` shipped by the driver, or ``("spill", folder, index)``."""
    kind = spec[0]
    if kind == "spill":
        return read_spill(Path(spec[1]), spec[2])
    started = time.perf_counter()
    frame, removed = _SOURCE.read_split(spec[1]) if kind == "split" else (spec[1], spec[2])
    return from_source(frame, removed, time.perf_counter() - started, _LABEL)


def _drops(paths: dict[int, str], stop: int | None) -> dict[int, pl.DataFrame]:
    for position, path in paths.items():
        if position not in _DROPS and (stop is None or position < stop):
            _DROPS[position] = pl.read_parquet(path)
    return _DROPS


def _task(
    spec: tuple[Any, ...],
    index: int,
    drop_paths: dict[int, str],
    start: int,
    observe: list[int] | None,
    check_ids: bool,
    out: str,
    fmt: str,
    spill: str | None,
    scratch: str,
) -> tuple[bytes | None, Any, list[float]]:
    """One batch of a pass. With ``observe`` set (the global steps of one pass of
    :func:`~instructkit.executors.local.observe_plan`): the batch through the steps before
    them, their states (and its spill); else through every step to its shards."""
    dataset = _load(spec)
    ids = hash_ids(dataset.to_polars()["id"]).tobytes() if check_ids else None
    drops = _drops(drop_paths, None if observe is None else observe[0])
    if observe is None:
        return ids, write_shard(run_steps(_STEPS, dataset, drops, start=start), Path(out), index, fmt), []
    dataset = run_steps(_STEPS, dataset, drops, start=start, stop=observe[0])
    with spill_to(scratch):
        states, seconds = observe_group(_STEPS, observe, dataset.to_polars())
    if spill is not None:
        write_spill(Path(spill), index, dataset)
    return ids, states, seconds


# -------------------------------------------------------------------------------------------
# the driver


def worker_env(workers: int) -> dict[str, str]:
    """Thread settings of each worker: its polars and numba get an equal share of the
    cores, not all of them each.

    Example:
        >>> worker_env(available_cores())["POLARS_MAX_THREADS"]
        '1'
    """
    threads = str(max(1, available_cores() // workers))
    return {"POLARS_MAX_THREADS": threads, "NUMBA_NUM_THREADS": threads}


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: The environment the forkserver was started with by this module (None: not by us).
_SERVER_ENV: dict[str, str] | None = None


def _server_running() -> bool:
    # multiprocessing has no public way to ask; this attribute is set while a server runs
    return getattr(forkserver._forkserver, "_forkserver_pid", None) is not None


def start_workers_context(steps: Sequence[Transform], env: Mapping[str, str]) -> BaseContext:
    """The multiprocessing context workers with thread settings ``env`` start from.

    Where the OS has ``forkserver``, the server is started now, if this module has not
    already started it: polars and numba read their thread counts when they are imported,
    so the server gets ``env``, and it calls ``preload()`` of the step classes. A server
    started with other settings, or by someone else, is not used: the workers are spawned.

    Example:
        >>> import instructkit as ik
        >>> start_workers_context([ik.normalize()], worker_env(2)).get_start_method() in ("forkserver", "spawn")
        True
    """
    global _SERVER_ENV
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    if _SERVER_ENV is None and not _server_running():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["instructkit.executors._preload"])
        with _environment({**env, PRELOAD_ENV: class_names(steps)}):
            forkserver.ensure_running()
        _SERVER_ENV = dict(env)
    if _SERVER_ENV == dict(env) and _server_running():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


@contextmanager
def _pool(steps: list[Transform], source: Source, workers: int, context: BaseContext,
          env: Mapping[str, str]) -> Iterator[ProcessPoolExecutor]:
    shared = [step.shared_state() for step in steps]
    # an in-memory source ships its batches with the tasks, not the whole frame to each worker
    held = None if isinstance(source, FrameSource) else source
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(steps, shared, held, read_label(source), dict(env)),
    )
    try:
        # start every worker now: a spawned one reads the thread settings when it imports polars
        with _environment(env):
            list(pool.map(_ping, range(workers)))
        yield pool
    except BrokenProcessPool as e:
        pool.shutdown(wait=True, cancel_futures=True)
        raise BrokenProcessPool(
            f"a worker process died ({e}) Its own error, if it had one, is printed above; the "
            "usual causes are running out of memory (lower batch_size or workers), a crash in "
            "native code, and a script that starts the run outside `if __name__ == \"__main__\":` "
            "(each worker imports the script and runs it again). The shards recorded so far stay; "
            "a rerun resumes from them."
        ) from e
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def check_picklable(steps: Sequence[Transform]) -> None:
    """Raise ``TypeError`` naming the first step that cannot be sent to a worker process."""
    for step in steps:
        try:
            pickle.dumps(step, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # pickling raises several types (PicklingError, AttributeError, TypeError)
            raise TypeError(
                f"step {step!r} cannot be sent to worker processes ({type(e).__name__}: {e}); define its "
                "class at the top level of an importable module, or run with workers=1"
            ) from e


def check_not_bootstrapping() -> None:
    """Raise ``RuntimeError`` when this process is a worker still importing the main
    script: a script that starts a run with workers outside ``if __name__ == "__main__":``
    runs again in each worker (workers import the main script to find what it defines),
    and that second run must stop with a message, not start workers of its own.

    Example:
        >>> check_not_bootstrapping()  # in a normal process: nothing to say
    """
    # the flag multiprocessing itself checks (spawn.get_preparation_data) for the same mistake
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "a run with workers > 1 was started while a worker process imported the main script: "
            'put the code that starts the run under `if __name__ == "__main__":` (each worker '
            "imports the script to find the steps it defines), or run with workers=1"
        )


def _ping(_: int) -> int:
    return os.getpid()


def _ordered(pool: ProcessPoolExecutor, tasks: Iterator[tuple[int, tuple[Any, ...]]], window: int,
             **kwargs: Any) -> Iterator[tuple[int, Any]]:
    """Results of ``_task`` per batch in the order of ``tasks``, at most ``window`` batches
    handed out at once (the bound on memory)."""
    pending: deque[tuple[int, Future[Any]]] = deque()
    for index, spec in tasks:
        pending.append((index, pool.submit(_task, spec, index, **kwargs)))
        if len(pending) >= window:
            index, future = pending.popleft()
            yield index, future.result()
    while pending:
        index, future = pending.popleft()
        yield index, future.result()


def _specs(source: Source, manifest: Manifest, previous: int | None, skip: set[int]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """The batches entering a pass, as tasks: splits of the source, or the spill of the
    global step at ``previous``."""
    if previous is None:
        for split in source.splits():
            if split.index in skip:
                continue
            if isinstance(source, FrameSource):
                yield split.index, ("frame", *source.read_split(split))
            else:
                yield split.index, ("split", split)
        return
    spill = str(manifest.out / manifest.globals[previous]["spill"])
    for index in manifest.globals[previous]["batches"]:
        if index not in skip:
            yield index, ("spill", spill, index)


def run_parallel(
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    fmt: str = "parquet",
    resume: bool = True,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
) -> RunResult:
    """Run ``steps`` over ``source`` on ``workers`` processes, writing the shards
    :func:`~instructkit.executors.local.run_local` writes, with the thread settings
    ``env`` in each worker (default :func:`worker_env` of ``workers``). See
    :func:`instructkit.executors.run` for the public entry point.

    Example:
        >>> import instructkit as ik                                                # doctest: +SKIP
        >>> ik.Pipeline([ik.normalize(), ik.dedup.exact()]).run("big.jsonl",        # doctest: +SKIP
        ...     output="out/", workers=-1)
    """
    started = time.perf_counter()
    steps = list(steps)
    check_picklable(steps)
    env = dict(env) if env is not None else worker_env(workers)
    # the worker server loads the steps while this process prepares them
    context = start_workers_context(steps, env)
    manifest = Manifest(output, fingerprint(steps, source, fmt), resume)
    prepare(steps)
    drops = manifest.drops()
    ledger: IdLedger | None = id_ledger(source, steps, output)
    scratch = output / "state" / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    window = 2 * workers
    common = {"out": str(output), "fmt": fmt, "scratch": str(scratch)}

    def drop_paths() -> dict[int, str]:
        return {i: str(output / g["drops"]) for i, g in manifest.globals.items()}

    with _pool(steps, source, workers, context, env) as pool:
        previous: int | None = None
        for group in observe_plan(steps, manifest.globals):
            if group[0] in drops:
                ledger = None
            else:
                spill = spill_folder(output, steps, group[0])
                first = spilled(manifest, previous)
                check = ledger is not None and first is None
                states: dict[int, list[Any]] = {p: [] for p in group}
                seconds = dict.fromkeys(group, 0.0)
                batches = []
                results = _ordered(
                    pool, _specs(source, manifest, first, set()), window, drop_paths=drop_paths(),
                    start=0 if first is None else first, observe=group, check_ids=check,
                    spill=None if spill is None else str(spill), **common,
                )
                for index, (ids, observed, spent) in progress(
                    results, desc=f"observe {pass_name(steps, group)}", unit="batch"
                ):
                    if check:
                        ledger.add(index, np.frombuffer(ids, np.uint64))  # type: ignore[union-attr]
                    for position, state, took in zip(group, observed, spent, strict=True):
                        states[position].append(state)
                        seconds[position] += took
                    batches.append(index)
                ledger = None
                with spill_to(scratch):
                    record_decisions(manifest, steps, group, states, seconds, batches, spill, drops)
            drop_spill(manifest, previous)
            previous = group[-1]
        shutil.rmtree(scratch, ignore_errors=True)

        done = set(manifest.shards)
        first = spilled(manifest, previous)
        check = ledger is not None and first is None
        if check:
            ledger.resume(done)  # type: ignore[union-attr]
        results = _ordered(
            pool, _specs(source, manifest, first, done), window, drop_paths=drop_paths(),
            start=0 if first is None else first, observe=None, check_ids=check, spill=None, **common,
        )
        for index, (ids, entry, _) in progress(results, desc="run", unit="batch"):
            if check:
                ledger.add(index, np.frombuffer(ids, np.uint64))  # type: ignore[union-attr]
            manifest.record_shard(index, entry)
    drop_spill(manifest, previous)
    return manifest.result(skipped=len(done), seconds=time.perf_counter() - started)
