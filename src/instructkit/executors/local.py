"""Streaming, resumable execution of a pipeline on one machine, batch by batch.

The local executor never holds the corpus: it reads a batch, runs the steps on it, writes
an output shard and a removed-log shard, and forgets it. ``Global`` steps (dedup,
selection) run in two phases: a pass over every batch calls ``observe`` (compact state
only: hashes, signatures, index hits), then ``decide`` turns the states into the ids to
drop, which the next pass applies like a filter. The pass that observes a global step
spills the batches it produced (:mod:`instructkit.executors.spill`), and the next pass
starts from there, so every step runs once per record. Global steps right after one
another share a pass when they can (:func:`observe_plan`). A global step that decides per
record (:attr:`~instructkit.transform.Global.decides_per_record`: decontamination) needs no
pass: it runs on each batch like a filter.

The output folder holds::

    manifest.json            format marker, fingerprint of pipeline + input, finished shards,
                             decided steps
    data/part-00000.parquet  kept records of batch 0 (or .jsonl)
    removed/part-00000.parquet  removed log of batch 0 (read errors included)
    state/global-3.parquet   rows dropped by the global step at position 3
    state/spill-3/           batches entering step 3, for the pass after the one that observed
                             it (deleted when done; not written while a redacting step such
                             as pii.scrub is still ahead)
    state/ids-00000.npy      64-bit hashes of batch 0's ids (pipelines without global steps)
    state/tmp/               spill files of global steps (MinHash signatures), while they run

Ids must be unique across the whole input (global steps drop by id): the pass that reads
the source checks them with an :class:`~instructkit.executors.ids.IdLedger`, 12 bytes per
record, and stops at the first repeated id, naming it and the two batches.

A run that stops (crash, Ctrl-C, a killed machine) resumes from the manifest: finished
shards and decided global steps are not redone. ``resume=False`` deletes only what a run
wrote: the folder must hold a manifest with the :data:`RUN_FORMAT` marker and nothing but
instructkit's own files, else it is refused.

Executors know no particular step: they call the hooks of the protocol
(:meth:`~instructkit.transform.Transform.prepare` once on the driver,
:meth:`~instructkit.transform.Global.decide_options`,
:meth:`~instructkit.transform.Global.apply_decision`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from instructkit._progress import progress
from instructkit.dataset import Dataset
from instructkit.dedup._spill import spill_to
from instructkit.executors.ids import IdLedger, hash_ids
from instructkit.executors.spill import drop_spill, read_spill, spill_folder, spilled, write_spill
from instructkit.history import StepRecord, as_dicts, merge_histories
from instructkit.io.read import read_entry
from instructkit.schema import SCHEMA, conform, empty_removed
from instructkit.transform import Global, Transform

MANIFEST = "manifest.json"
FORMATS = ("parquet", "jsonl")
#: The format marker of a run's manifest: only a folder whose manifest carries it is ever
#: cleaned up by instructkit.
RUN_FORMAT = "instructkit-run/1"
# what a run writes, relative to its folder (anything else there is not ours)
_OWN_FILES = re.compile(
    r"(data/part-\d{5}\.(parquet|jsonl)"
    r"|removed/part-\d{5}\.parquet"
    r"|state/global-\d+\.parquet"
    r"|state/ids-\d{5}\.npy"
    r"|state/spill-\d+/part-\d{5}\.(arrow|removed\.arrow|history\.json)"
    r"|state/tmp/.+"
    r"|instructkit_run\.json"  # the run's provenance record (instructkit.provenance)
    r")(\.tmp)?"
)


class Source(Protocol):
    """What an executor reads: batches in order, and single splits for parallel workers."""

    def batches(self, skip: Sequence[int] | set[int] = ()) -> Iterator[tuple[Any, pl.DataFrame, pl.DataFrame]]: ...

    def splits(self) -> list[Any]: ...

    def read_split(self, split: Any) -> tuple[pl.DataFrame, pl.DataFrame]: ...

    def fingerprint(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FrameSplit:
    """One slice of an in-memory frame (the split of a :class:`FrameSource`)."""

    index: int
    start: int
    stop: int


class FrameSource:
    """An in-memory frame (or :class:`~instructkit.Dataset`) seen as batches.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": str(i)} for i in range(5)])
        >>> [len(f) for _, f, _ in FrameSource(ds.to_polars(), batch_size=2).batches()]
        [2, 2, 1]
    """

    def __init__(self, frame: pl.DataFrame, batch_size: int, removed: pl.DataFrame | None = None) -> None:
        self.frame = conform(frame)
        self.batch_size = batch_size
        # records the reader already removed go with the first batch, so nothing is lost
        self.removed = removed if removed is not None else empty_removed()

    def splits(self) -> list[FrameSplit]:
        n, bs = self.frame.height, self.batch_size
        return [FrameSplit(k, s, min(s + bs, n)) for k, s in enumerate(range(0, max(n, 1), bs))]

    def read_split(self, split: FrameSplit) -> tuple[pl.DataFrame, pl.DataFrame]:
        removed = self.removed if split.index == 0 else empty_removed()
        return self.frame.slice(split.start, split.stop - split.start), removed

    def batches(self, skip: Sequence[int] | set[int] = ()) -> Iterator[tuple[FrameSplit, pl.DataFrame, pl.DataFrame]]:
        skip = set(skip)
        for split in self.splits():
            if split.index in skip:
                yield split, self.frame.clear(), empty_removed()
            else:
                yield split, *self.read_split(split)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "frame_rows": self.frame.height,
            "frame_hash": int(self.frame.select("id", "instruction", "input", "output").hash_rows().sum()),
            "batch_size": self.batch_size,
        }


def as_source(source: Any, batch_size: int) -> Source:
    """A :class:`Source` from a path, list of paths, :class:`~instructkit.io.scan.Scan`,
    :class:`~instructkit.Dataset` or polars frame."""
    from instructkit.io.scan import Scan, scan

    if isinstance(source, Scan):
        return source
    if isinstance(source, Dataset):
        return FrameSource(source.to_polars(), batch_size, source.removed)
    if isinstance(source, pl.DataFrame):
        return FrameSource(source, batch_size)
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, os.PathLike)) or (
        isinstance(source, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in source)
    ):
        return scan(source, batch_size=batch_size)
    raise TypeError(
        f"cannot run on a {type(source).__name__}: pass a path, a list of paths, ik.scan(...), "
        "an ik.Dataset or a polars DataFrame"
    )


# -------------------------------------------------------------------------------------------
# running steps on one batch (shared by the local and the Ray executor)


def read_label(source: Source) -> str | None:
    """What a batch's ``read`` history entry names, for sources that read files (None for an
    in-memory source: its records were read, and logged, before the run)."""
    from instructkit.io.scan import Scan

    return repr(source) if isinstance(source, Scan) else None


def from_source(frame: pl.DataFrame, removed: pl.DataFrame, seconds: float, label: str | None) -> Dataset:
    """A batch as read: its records, its read errors and (for files) its ``read`` history
    entry, so a streamed run's report starts with the reader's row as ``ik.read``'s does."""
    if label is None:
        return Dataset(frame, removed)
    return Dataset(frame, removed, [read_entry(label, frame.height + removed.height, frame.height, removed, seconds)])


def global_positions(steps: Sequence[Transform]) -> list[int]:
    """Positions of the ``Global`` steps in ``steps`` that need a pass of their own: every
    one but those that decide per record (:attr:`~instructkit.transform.Global.decides_per_record`),
    which run on each batch like a filter."""
    return [i for i, s in enumerate(steps) if needs_pass(s)]


def needs_pass(step: Transform) -> bool:
    """Whether ``step`` must observe every batch before deciding (a pass of its own)."""
    return step.kind == "global" and not getattr(step, "decides_per_record", False)


def observe_plan(steps: Sequence[Transform], decided: Mapping[int, dict[str, Any]]) -> list[list[int]]:
    """The global steps that need a pass (:func:`global_positions`), grouped by the pass
    that observes them.

    A global step joins the pass of the one right before it (nothing between them) when it
    :attr:`~instructkit.transform.Global.observes_per_record` and that one's
    ``apply_decision`` is the default (it drops, adds no column): the pass observes both on
    the same batches, and the second decides on its states
    :meth:`~instructkit.transform.Global.without` what the first dropped. ``decided`` is the
    manifest's entries of steps decided before (a resumed run): those stay grouped as
    they ran, by the spill their next pass starts from.

    Example:
        >>> import instructkit as ik
        >>> steps = [ik.normalize(), ik.dedup.exact(), ik.dedup.minhash(), ik.langid(), ik.dedup.exact()]
        >>> observe_plan(steps, {})
        [[1, 2], [4]]
    """
    groups: list[list[int]] = []
    for position in global_positions(steps):
        last = groups[-1] if groups else None
        if last is not None and last[-1] == position - 1 and _together(steps, decided, last[0], position):
            last.append(position)
        else:
            groups.append([position])
    return groups


def _together(steps: Sequence[Transform], decided: Mapping[int, dict[str, Any]], head: int, position: int) -> bool:
    if head in decided or position in decided:
        return (head in decided and position in decided
                and decided[position].get("spill_before", position) == head)
    before = steps[position - 1]
    return bool(getattr(steps[position], "observes_per_record", False)) and (
        type(before).apply_decision is Global.apply_decision
    )


def prepare(steps: Sequence[Transform]) -> None:
    """Call every step's :meth:`~instructkit.transform.Transform.prepare` once, on the
    driver, before any batch: files a step needs are read here, never on a worker."""
    for step in steps:
        step.prepare()


def run_steps(
    steps: Sequence[Transform],
    dataset: Dataset,
    drops: dict[int, pl.DataFrame],
    start: int = 0,
    stop: int | None = None,
) -> Dataset:
    """Run ``steps[start:stop]`` on one batch; global steps apply their decided ``drops``."""
    for i, step in enumerate(steps[start:stop], start=start):
        if needs_pass(step):
            start = time.perf_counter()
            frame = dataset.to_polars()
            mine = drops[i].filter(pl.col("id").is_in(frame["id"].implode()))
            out = step.apply_decision(frame, mine)
            dataset = dataset._advance(step, out, time.perf_counter() - start)
        else:
            dataset = step(dataset)
    return dataset


def observe_batch(
    steps: Sequence[Transform], position: int, drops: dict[int, pl.DataFrame], frame: pl.DataFrame
) -> tuple[Any, float]:
    """State of the global step at ``position`` for one input batch, and seconds spent."""
    before = run_steps(steps, Dataset(frame), drops, stop=position)
    start = time.perf_counter()
    state = steps[position].observe(before.to_polars())
    return state, time.perf_counter() - start


def decide(step: Transform, states: list[Any], **options: Any) -> pl.DataFrame:
    """Run ``decide`` (with ``options``, such as MinHash's ``candidates``) and check its
    answer: unique ids with a reason each."""
    drops = step.decide(states, **options)
    missing = {"id", "reason"} - set(drops.columns)
    if missing:
        raise ValueError(f"step {step.name!r}: decide() returned no {sorted(missing)} column(s)")
    if "detail" not in drops.columns:
        drops = drops.with_columns(pl.lit(None, dtype=pl.String).alias("detail"))
    return drops.select(
        pl.col("id").cast(pl.String), pl.col("reason").cast(pl.String), pl.col("detail").cast(pl.String)
    ).unique("id", keep="first", maintain_order=True)


def process_batch(
    steps: Sequence[Transform],
    drops: dict[int, pl.DataFrame],
    frame: pl.DataFrame,
    removed: pl.DataFrame,
) -> Dataset:
    """Every step on one batch; the result's ``removed`` holds the batch's read errors too."""
    return run_steps(steps, Dataset(frame, removed), drops)


def write_shard(dataset: Dataset, out: Path, index: int, fmt: str) -> dict[str, Any]:
    """Write one batch's kept records and removed log atomically; return its manifest entry."""
    data = out / "data" / f"part-{index:05d}.{fmt}"
    gone = out / "removed" / f"part-{index:05d}.parquet"
    frame = dataset.to_polars()
    _atomic(data, lambda p: frame.write_parquet(p) if fmt == "parquet" else frame.write_ndjson(p))
    _atomic(gone, lambda p: dataset.removed.write_parquet(p))
    return {
        "data": str(data.relative_to(out)),
        "removed": str(gone.relative_to(out)),
        "records_out": frame.height,
        "read_errors": int((dataset.removed["step"] == "read").sum()),
        "history": as_dicts(dataset.steps),
    }


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------------
# the run: manifest, passes, result


@dataclass
class RunResult:
    """What a run wrote and what each step did, summed over every batch.

    Example:
        >>> import instructkit as ik
        >>> from instructkit.executors import run
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}] * 3)
        >>> run([], ds).records_out
        3
    """

    output: Path | None
    shards: list[Path]
    removed_shards: list[Path]
    history: list[StepRecord]
    records_in: int
    records_out: int
    skipped: int = 0
    seconds: float = 0.0
    global_seconds: dict[str, float] = field(default_factory=dict)
    #: The records, when the run was asked for no output folder (``output=None``).
    dataset: Dataset | None = None
    #: Processes that ran the batches on the local executor (1: this process; None: Ray).
    workers: int | None = 1

    def report(self) -> pl.DataFrame:
        """Per step: records in and out, removed by reason, seconds (as ``Dataset.report``)."""
        return Dataset(history=self.history).report()

    def to_dataset(self) -> Dataset:
        """Load every output shard and removed log into one in-memory Dataset."""
        if self.dataset is not None:
            return self.dataset
        frames = [
            pl.read_parquet(p) if p.suffix == ".parquet" else _read_ndjson(p) for p in self.shards
        ]
        frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=SCHEMA)
        removed = [pl.read_parquet(p) for p in self.removed_shards]
        return Dataset(
            frame,
            pl.concat(removed, how="vertical_relaxed") if removed else empty_removed(),
            self.history,
        )

    def read(self) -> Iterator[pl.DataFrame]:
        """The kept records shard by shard, without loading them all."""
        for p in self.shards:
            yield pl.read_parquet(p) if p.suffix == ".parquet" else _read_ndjson(p)


def _read_ndjson(path: Path) -> pl.DataFrame:
    from instructkit.io.scan import scan

    frames = list(scan(path, batch_size=1 << 30))
    return frames[0] if frames else pl.DataFrame(schema=SCHEMA)


def check_marker(out: Path) -> dict[str, Any]:
    """The manifest of the run in ``out``; ``FileExistsError`` unless it carries the
    :data:`RUN_FORMAT` marker (a ``manifest.json`` instructkit did not write)."""
    manifest = out / MANIFEST
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise FileExistsError(f"{manifest} is not an instructkit run manifest ({e}); leaving {out} alone") from e
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise FileExistsError(
            f'{manifest} has no "format": "{RUN_FORMAT}" marker: {out} was not written by this '
            "version of instructkit, so it is neither resumed nor deleted; choose another output folder"
        )
    return data


def owned_files(out: Path) -> list[Path]:
    """Every file under ``out`` if the folder is a run instructkit wrote: a manifest with
    the :data:`RUN_FORMAT` marker, and only files a run writes. Raises ``FileExistsError``
    naming the manifest or the first foreign file otherwise, so nothing else is deleted.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "manifest.json").write_text('{"shards": {}}')
        >>> owned_files(folder)
        Traceback (most recent call last):
        ...
        FileExistsError: ...manifest.json has no "format": "instructkit-run/1" marker: ...
    """
    check_marker(out)
    files = []
    for path in sorted(out.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(out).as_posix()
        if rel != MANIFEST and not _OWN_FILES.fullmatch(rel):
            raise FileExistsError(
                f"{out} holds {rel!r}, which no instructkit run writes: not deleting the folder; "
                "move that file away or choose another output folder"
            )
        files.append(path)
    return files


def remove_run(out: Path) -> None:
    """Delete a run folder's files, each checked by :func:`owned_files` first (the
    manifest last, so an interrupted cleanup can be repeated), then its empty folders."""
    files = owned_files(out)
    for path in files:
        if path.name != MANIFEST or path.parent != out:
            path.unlink()
    for sub in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    (out / MANIFEST).unlink()


class Manifest:
    """The run's ledger, rewritten atomically after each finished shard."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], resume: bool) -> None:
        self.out = out
        self.path = out / MANIFEST
        self.fingerprint = fingerprint
        if self.path.exists() and resume:
            data = check_marker(out)  # a foreign manifest.json is not resumed (nor written over)
            if data.get("fingerprint") != fingerprint:
                changed = sorted(
                    k for k in set(fingerprint) | set(data.get("fingerprint", {}))
                    if fingerprint.get(k) != data.get("fingerprint", {}).get(k)
                )
                raise ValueError(
                    f"{out} holds a run of a different pipeline or input (changed: {changed}); "
                    "pass resume=False to start over, or choose another output folder"
                )
            self.shards: dict[int, dict[str, Any]] = {int(k): v for k, v in data["shards"].items()}
            self.globals: dict[int, dict[str, Any]] = {int(k): v for k, v in data["globals"].items()}
            return
        if self.path.exists():
            remove_run(out)
        elif out.exists() and any(out.iterdir()):
            raise FileExistsError(
                f"{out} is not empty and holds no {MANIFEST}: choose an empty or new folder"
            )
        for sub in ("data", "removed", "state"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        self.shards, self.globals = {}, {}
        self.save()

    def save(self) -> None:
        body = {
            "format": RUN_FORMAT,
            "fingerprint": self.fingerprint,
            "globals": {str(k): v for k, v in sorted(self.globals.items())},
            "shards": {str(k): v for k, v in sorted(self.shards.items())},
        }
        _atomic(self.path, lambda p: p.write_text(json.dumps(body, indent=1, sort_keys=True)))

    def drops(self) -> dict[int, pl.DataFrame]:
        return {i: pl.read_parquet(self.out / g["drops"]) for i, g in self.globals.items()}

    def record_global(self, position: int, drops: pl.DataFrame, entry: dict[str, Any]) -> None:
        path = self.out / "state" / f"global-{position}.parquet"
        _atomic(path, lambda p: drops.write_parquet(p))
        self.globals[position] = {**entry, "drops": str(path.relative_to(self.out))}
        self.save()

    def record_shard(self, index: int, entry: dict[str, Any]) -> None:
        self.shards[index] = entry
        self.save()

    def result(self, skipped: int, seconds: float) -> RunResult:
        ordered = [self.shards[k] for k in sorted(self.shards)]
        history = merge_history([e["history"] for e in ordered], self.globals)
        read_errors = sum(e.get("read_errors", 0) for e in ordered)
        if history and history[0].step == "read":
            records_in = history[0].records_in  # the reader's count has its errors already
        elif history:
            records_in = history[0].records_in + read_errors
        else:
            records_in = sum(e["records_out"] for e in ordered) + read_errors
        return RunResult(
            output=self.out,
            shards=[self.out / e["data"] for e in ordered],
            removed_shards=[self.out / e["removed"] for e in ordered],
            history=history,
            records_in=records_in,
            records_out=sum(e["records_out"] for e in ordered),
            skipped=skipped,
            seconds=seconds,
            global_seconds={str(k): g["seconds"] for k, g in self.globals.items()},
        )


def merge_history(per_batch: list[list[dict[str, Any]]], globals_: dict[int, dict[str, Any]]) -> list[StepRecord]:
    """One record per step from the batches' histories (see
    :func:`~instructkit.history.merge_histories`); a global step's observe and decide time
    is added to its record. The history's positions are offset by a batch's ``read``
    record, which steps' positions in the pipeline do not count."""
    if not per_batch:
        return []
    offset = 1 if per_batch[0] and per_batch[0][0]["step"] == "read" else 0
    return merge_histories(
        [[StepRecord.of(e) for e in batch] for batch in per_batch],
        {position + offset: g["seconds"] for position, g in globals_.items()},
    )


def fingerprint(steps: Sequence[Transform], source: Source, fmt: str, executor: str = "local") -> dict[str, Any]:
    """What must not change between a run and its resumption."""
    return {
        "executor": executor,
        "steps": [f"{type(s).__module__}.{type(s).__qualname__}: {s!r}" for s in steps],
        "source": json.loads(json.dumps(source.fingerprint(), default=str)),
        "format": fmt,
    }


def run_local(
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    fmt: str = "parquet",
    resume: bool = True,
) -> RunResult:
    """Run ``steps`` over ``source`` batch by batch, writing shards to ``output``.

    The steps between two global steps run once per batch: the pass that observes a global
    step spills the batches it produced (Arrow IPC under ``state/``), and the next pass starts
    from that spill instead of reading and recomputing from the source. While a redacting
    step is still ahead (:func:`~instructkit.executors.spill.may_spill`) nothing is spilled and the next pass recomputes
    from the source. See :func:`instructkit.executors.run` for the public entry point.
    """
    started = time.perf_counter()
    manifest = Manifest(output, fingerprint(steps, source, fmt), resume)
    prepare(steps)
    drops = manifest.drops()
    # ids are checked on the pass that reads the source; a pass after a decided global step
    # reads a spill of batches that were checked when it was written
    ledger = id_ledger(source, steps, output)
    # temporary files of global steps (MinHash signatures) live in the run folder: a killed
    # run's are deleted here when it resumes
    scratch = output / "state" / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    with spill_to(scratch):
        previous = _observe_passes(steps, source, output, manifest, drops, ledger)
    shutil.rmtree(scratch, ignore_errors=True)

    done = set(manifest.shards)
    first = spilled(manifest, previous)
    if previous is None:
        # this pass reads the source and checks its ids, so a resumed one checks them
        # against those of the finished shards, kept beside them
        ledger.resume(done)
    for index, dataset in progress(
        _stage_input(source, manifest, first, done, ledger if previous is None else None), desc="run", unit="batch"
    ):
        dataset = run_steps(steps, dataset, drops, start=0 if first is None else first)
        manifest.record_shard(index, write_shard(dataset, output, index, fmt))
    drop_spill(manifest, previous)
    return manifest.result(skipped=len(done), seconds=time.perf_counter() - started)


def record_decisions(
    manifest: Manifest,
    steps: Sequence[Transform],
    group: list[int],
    states: dict[int, list[Any]],
    seconds: dict[int, float],
    batches: list[int],
    spill: Path | None,
    drops: dict[int, pl.DataFrame],
    executor: str = "local",
) -> None:
    """Decide the global steps of ``group`` (one pass of :func:`observe_plan`) over their
    batches' states, in the driver and in order, each on its states without the records
    the ones before it dropped. Put the drops in ``drops`` and record them, with the time
    spent and the spill (which holds the batches entering ``group[0]``), in the manifest
    (``executor`` names the executor to the steps' ``decide_options``). ``states`` is
    emptied as it goes."""
    gone: list[pl.Series] = []
    for position in group:
        step = steps[position]
        t0 = time.perf_counter()
        mine = states.pop(position)
        if gone:
            dropped = pl.concat(gone)
            mine = [step.without(state, dropped) for state in mine]  # type: ignore[attr-defined]
        options = step.decide_options(executor)  # type: ignore[attr-defined]
        drops[position] = decide(step, mine, **options)
        del mine
        entry = {"step": step.name, "seconds": seconds[position] + time.perf_counter() - t0, "batches": batches,
                 "spill": None if spill is None else str(spill.relative_to(manifest.out)),
                 "spill_before": group[0], **step.decide_stats(options)}  # type: ignore[attr-defined]
        manifest.record_global(position, drops[position], entry)
        gone.append(drops[position]["id"])


def _observe_passes(
    steps: Sequence[Transform],
    source: Source,
    output: Path,
    manifest: Manifest,
    drops: dict[int, pl.DataFrame],
    ledger: IdLedger,
) -> int | None:
    """Observe and decide every global step not decided yet (``drops`` gets their answers);
    return the position of the last one, whose spill (if any) feeds the final pass."""
    previous: int | None = None
    checking: IdLedger | None = ledger  # ids are checked on the first pass over the source
    for group in observe_plan(steps, manifest.globals):
        if group[0] in drops:
            checking = None  # a finished pass checked them
        else:
            states: dict[int, list[Any]] = {p: [] for p in group}
            seconds = dict.fromkeys(group, 0.0)
            batches = []
            spill = spill_folder(output, steps, group[0])
            first = spilled(manifest, previous)
            for index, dataset in progress(
                _stage_input(source, manifest, first, (), checking if first is None else None),
                desc=f"observe {pass_name(steps, group)}", unit="batch",
            ):
                dataset = run_steps(steps, dataset, drops, start=0 if first is None else first, stop=group[0])
                for position, state, took in zip(group, *observe_group(steps, group, dataset.to_polars()), strict=True):
                    states[position].append(state)
                    seconds[position] += took
                if spill is not None:
                    write_spill(spill, index, dataset)
                batches.append(index)
            checking = None
            record_decisions(manifest, steps, group, states, seconds, batches, spill, drops)
        drop_spill(manifest, previous)
        previous = group[-1]

    return previous


def observe_group(steps: Sequence[Transform], group: list[int], frame: pl.DataFrame) -> tuple[list[Any], list[float]]:
    """The states of one batch for the global steps of ``group`` (one pass of
    :func:`observe_plan`), and the seconds each step took."""
    states, seconds = [], []
    for position in group:
        started = time.perf_counter()
        states.append(steps[position].observe(frame))
        seconds.append(time.perf_counter() - started)
    return states, seconds


def pass_name(steps: Sequence[Transform], group: list[int]) -> str:
    """The steps an observe pass observes, for its progress bar (``dedup.exact+dedup.minhash``)."""
    return "+".join(steps[p].name for p in group)


def _stage_input(
    source: Source,
    manifest: Manifest,
    previous: int | None,
    skip: set[int] | tuple[()],
    ledger: IdLedger | None = None,
) -> Iterator[tuple[int, Dataset]]:
    """Batches entering a pass: from the source (their ids shown to ``ledger``), or from the
    spill of the global step at ``previous``."""
    if previous is None:
        label = read_label(source)
        batches = iter(source.batches(skip=skip))
        while True:
            started = time.perf_counter()
            try:
                split, frame, removed = next(batches)
            except StopIteration:
                return
            if split.index not in skip:
                if ledger is not None:
                    ledger.add(split.index, hash_ids(frame["id"]))
                yield split.index, from_source(frame, removed, time.perf_counter() - started, label)
    spill = manifest.out / manifest.globals[previous]["spill"]
    for index in manifest.globals[previous]["batches"]:
        if index not in skip:
            yield index, read_spill(spill, index)


def id_ledger(source: Source, steps: Sequence[Transform], output: Path) -> IdLedger:
    """An :class:`~instructkit.executors.ids.IdLedger` that reads ``source``'s batches again
    to confirm a repeated id, and names a batch by its file and lines. Without a global
    step the check runs as shards are written, so it keeps each batch's hashes under
    ``state/`` for a resumed run; with one, it ends before any shard is written."""
    splits: dict[int, Any] = {}

    def split(index: int) -> Any:
        if not splits:  # only on a repeated hash: listing JSONL splits reads the files
            splits.update((s.index, s) for s in source.splits())
        return splits[index]

    def where(index: int) -> str:
        s = split(index)
        if getattr(s, "path", None) is None:
            return f"input batch {index}"
        unit = f"line {s.first_line}" if s.kind in ("jsonl", "jsonl.gz") else f"row {s.first_row}"
        return f"input batch {index} ({s.path}, {s.rows} records from {unit})"

    keep = None if global_positions(steps) else output / "state"
    return IdLedger(lambda index: source.read_split(split(index))[0]["id"], where, keep)
