"""``ik.bench``: what each step of a pipeline removes, how fast it runs, how much memory it adds.

Run it on a sample of a corpus to decide on a recipe before the full run: the table says,
per step, records in and out, removals by reason, records per second, the peak resident
memory the step added, and the time the step would take on the full corpus (a linear
projection from the sample).

Peak memory is measured from the kernel, not from Python's allocator, because polars,
numpy and fastText allocate outside Python (tracemalloc would miss them). Before each step
the process's peak-RSS counter is reset (writing ``5`` to ``/proc/self/clear_refs``, Linux
>= 4.0), and after it the added peak is ``VmHWM - VmRSS`` before the step. Where that
counter cannot be reset (macOS, some containers), ``peak_mb`` is null rather than a wrong
number, and :attr:`BenchResult.notes` says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset
from instructkit.transform import Transform

SCHEMA = {
    "step": pl.String,
    "kind": pl.String,
    "records_in": pl.Int64,
    "records_out": pl.Int64,
    "removed": pl.Int64,
    "reasons": pl.String,
    "seconds": pl.Float64,
    "records_per_s": pl.Float64,
    "peak_mb": pl.Float64,
    "projected_s": pl.Float64,
}


# --- memory ---------------------------------------------------------------------------------


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


@dataclass
class PeakMemory:
    """Peak resident memory added by a block of code, in MB (``None`` when not measurable).

    Example:
        >>> with peak_memory() as mem:
        ...     data = b"x" * (200 << 20)  # written, so its pages count (a zeroed buffer may not)
        >>> mem.mb is None or mem.mb >= 100  # other threads may free memory meanwhile
        True
    """

    mb: float | None = None


@contextmanager
def peak_memory() -> Iterator[PeakMemory]:
    """Measure the peak RSS a block adds (Linux: reset ``VmHWM``, read it after the block)."""
    result = PeakMemory()
    # the baseline is the peak just after the reset (the RSS then): RSS read before the reset
    # can be higher than the peak after it when another thread frees memory in between
    ok = _status_kb("VmRSS") is not None and _reset_peak()
    before = _status_kb("VmHWM") if ok else None
    try:
        yield result
    finally:
        after = _status_kb("VmHWM")
        if ok and after is not None and before is not None:
            result.mb = max(after - before, 0) / 1024


def can_measure_memory() -> bool:
    """True when :func:`peak_memory` can give numbers on this system."""
    return _status_kb("VmRSS") is not None and _reset_peak()


# --- inputs ---------------------------------------------------------------------------------


def steps_of(pipeline: Any) -> list[Transform]:
    """The steps of a Pipeline, a recipe path, a transform or a list of transforms."""
    if isinstance(pipeline, Transform):
        return [pipeline]
    if isinstance(pipeline, (str, Path)):
        from instructkit.pipeline import Pipeline

        return list(Pipeline.from_yaml(pipeline).steps)
    if hasattr(pipeline, "steps"):
        return list(pipeline.steps)
    steps = list(pipeline)
    bad = [s for s in steps if not isinstance(s, Transform)]
    if bad:
        raise TypeError(f"expected a Pipeline, a recipe path or transforms; got {bad[0]!r}")
    return steps


def load_sample(source: Any, sample: int | None) -> tuple[Dataset, int]:
    """The first ``sample`` records of ``source`` (all when None) and the source's size."""
    from instructkit.io.scan import Scan, scan

    if sample is not None and sample < 1:
        raise ValueError(f"sample must be a positive number of records, got {sample}")
    if isinstance(source, Dataset):
        total = len(source)
        return (source if sample is None or sample >= total else source.head(sample)), total
    if isinstance(source, pl.DataFrame):
        return load_sample(Dataset(source), sample)
    reader = source if isinstance(source, Scan) else scan(source, batch_size=min(sample or 100_000, 100_000))
    total = sum(s.rows for s in reader.splits())
    frames, removed, have = [], [], 0
    for _, frame, gone in reader.batches():
        frames.append(frame)
        removed.append(gone)
        have += frame.height
        if sample is not None and have >= sample:
            break
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if sample is not None:
        frame = frame.head(sample)
    return Dataset(frame, pl.concat(removed, how="vertical_relaxed")), total


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class BenchResult:
    """Per-step benchmark: a polars frame, printable, savable as JSON and as a PNG chart.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}] * 10)
        >>> ik.bench([ik.normalize()], ds).frame["records_out"].to_list()
        [10]
    """

    frame: pl.DataFrame
    sample: int
    total: int
    notes: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        """Full corpus size over sample size (1.0 when run on everything)."""
        return self.total / self.sample if self.sample else 1.0

    def __str__(self) -> str:
        shown = self.frame.with_columns(
            pl.col("seconds").round(3), pl.col("records_per_s").round(0),
            pl.col("peak_mb").round(1), pl.col("projected_s").round(1),
        )
        head = f"bench: {self.sample:,} of {self.total:,} records"
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            body = str(shown)
        total_s = self.frame["projected_s"].sum()
        tail = f"projected full-corpus time: {total_s:,.1f} s (linear in records)"
        return "\n".join([head, body, tail, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        """Plain data: sample, total, notes and one dict per step."""
        return {"sample": self.sample, "total": self.total, "notes": self.notes, "steps": self.frame.to_dicts()}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def plot(self, path: str | Path) -> Path:
        """A PNG chart: records/s and records removed per step (needs matplotlib)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = self.frame["step"].to_list()
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * len(steps) + 2))
        left.barh(steps, self.frame["records_per_s"].fill_null(0).to_list(), color="#4C72B0")
        left.set_xlabel("records / s")
        left.set_xscale("log")
        left.invert_yaxis()
        right.barh(steps, self.frame["removed"].to_list(), color="#C44E52")
        right.set_xlabel(f"removed (of {self.sample:,})")
        right.invert_yaxis()
        right.set_yticks([])
        fig.suptitle(f"instructkit bench: {self.sample:,} of {self.total:,} records")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def bench(
    pipeline: Any,
    source: Any,
    sample: int | None = None,
    *,
    json_path: str | Path | None = None,
    chart: str | Path | None = None,
) -> BenchResult:
    """Benchmark each step of ``pipeline`` on ``source`` (or its first ``sample`` records).

    ``pipeline`` is an ``ik.Pipeline``, a recipe path, a transform or a list of them;
    ``source`` a path, ``ik.scan(...)``, an ``ik.Dataset`` or a polars frame. Steps run in
    memory on the sample, one after the other as in the pipeline, each timed and measured
    on its own. ``projected_s`` scales each step's time to the full corpus linearly.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": ""},
        ...                               {"instruction": "b", "output": "c"}])
        >>> result = ik.bench([ik.quality()], ds)
        >>> result.frame.select("records_in", "records_out").row(0)
        (2, 1)
    """
    steps = steps_of(pipeline)
    data, total = load_sample(source, sample)
    n = len(data) + int((data.removed["step"] == "read").sum())
    notes = []
    if not can_measure_memory():
        notes.append("peak_mb is null: this system does not let a process reset its peak RSS "
                     "(/proc/self/clear_refs); run on Linux to measure memory")
    scale = total / n if n else 1.0
    rows = []
    for step in steps:
        start = time.perf_counter()
        with peak_memory() as mem:
            data = step(data)
        seconds = time.perf_counter() - start
        h = data.history[-1]
        rows.append({
            "step": step.name,
            "kind": step.kind,
            "records_in": h["records_in"],
            "records_out": h["records_out"],
            "removed": h["removed"],
            "reasons": ", ".join(f"{r}={c}" for r, c in h["by_reason"].items()),
            "seconds": seconds,
            "records_per_s": h["records_in"] / seconds if seconds > 0 else None,
            "peak_mb": mem.mb,
            "projected_s": seconds * scale,
        })
    if total > n:
        notes.append(f"projected_s scales the sample's time by {scale:,.1f}x; steps whose cost "
                     "grows faster than linearly (clustering many duplicates) will take longer")
    result = BenchResult(pl.DataFrame(rows, schema=SCHEMA), sample=n, total=total, notes=notes)
    if json_path is not None:
        result.to_json(json_path)
    if chart is not None:
        result.plot(chart)
    return result

