"""Check that a step gives the same answer on every path: in memory, streamed, on Ray.

A step that follows the protocol (:mod:`instructkit.transform`) runs unchanged in memory
(``ds.pipe(step)``), on the local streaming executor (batch by batch, global steps in two
phases) and on Ray Data. :func:`check_transform` runs it all three ways on a small dataset
and compares what matters: the kept ids and their order, the columns and their values, and
the removed log (``id, step, reason, detail``). Use it in the tests of a step you write::

    from instructkit.testing import check_transform

    def test_my_step_conforms():
        check_transform(MyStep(), ik.Dataset.from_records(records), executors=("memory", "local"))

The Ray path imports the step's class on the workers by module name, so a step defined in a
test module needs that module on the workers' ``PYTHONPATH`` (``ray.init(runtime_env=...)``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset
from instructkit.transform import Transform

EXECUTORS = ("memory", "local", "ray")
_LOG_COLUMNS = ("id", "step", "reason", "detail")


class ConformanceError(AssertionError):
    """A step gave different results on two paths; the message lists every difference."""


def run_on(step: Transform, dataset: Dataset, executor: str, *, batch_size: int = 2,
           num_cpus: int | None = 2, workdir: str | Path | None = None) -> Dataset:
    """``dataset`` after ``step`` on one path: ``"memory"`` (``ds.pipe``), ``"local"`` or
    ``"ray"`` (``Pipeline([step]).run(..., batch_size=batch_size)`` into a fresh folder
    under ``workdir``, read back).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": " a ", "output": "b"}] * 3)
        >>> [r["instruction"] for r in run_on(ik.normalize(), ds, "local")]
        ['a', 'a', 'a']
    """
    if executor == "memory":
        return dataset.pipe(step)
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    from instructkit.pipeline import Pipeline

    options: dict[str, Any] = {"batch_size": batch_size}
    if executor == "ray":
        options["num_cpus"] = num_cpus
    with tempfile.TemporaryDirectory(prefix="ik-check-", dir=workdir) as tmp:
        result = Pipeline([step]).run(dataset, executor=executor, output=Path(tmp) / "run", **options)
        return result.to_dataset()


def differences(expected: Dataset, got: Dataset, limit: int = 5) -> list[str]:
    """What differs between two results of the same step: kept ids and order, columns
    and values, removed log (``id, step, reason, detail``, in any order). Empty when equal.

    Example:
        >>> import instructkit as ik
        >>> a = ik.Dataset.from_records([{"instruction": "x"}, {"instruction": "y"}])
        >>> print(differences(a, a.head(1))[0])
        kept ids: 2 expected, 1 got; missing ['records:1']
    """
    out: list[str] = []
    want, have = expected.to_polars(), got.to_polars()
    ids_w, ids_h = want["id"].to_list(), have["id"].to_list()
    if ids_w != ids_h:
        missing = [i for i in ids_w if i not in set(ids_h)]
        extra = [i for i in ids_h if i not in set(ids_w)]
        if missing or extra:
            line = f"kept ids: {len(ids_w)} expected, {len(ids_h)} got"
            if missing:
                line += f"; missing {missing[:limit]}"
            if extra:
                line += f"; unexpected {extra[:limit]}"
            out.append(line)
        else:
            at = next(k for k, (a, b) in enumerate(zip(ids_w, ids_h, strict=True)) if a != b)
            out.append(f"kept ids in another order: first at position {at}, {ids_w[at]!r} expected, {ids_h[at]!r} got")
    if want.columns != have.columns:
        out.append(f"columns: {want.columns} expected, {have.columns} got")
    elif not out:
        for column in want.columns:
            a, b = want[column], have[column]
            if a.dtype != b.dtype:
                out.append(f"column {column!r}: dtype {a.dtype} expected, {b.dtype} got")
                continue
            if a.dtype.is_nested():
                same = pl.Series([x == y for x, y in zip(a.to_list(), b.to_list(), strict=True)], dtype=pl.Boolean)
            else:
                same = a.eq_missing(b)
            if not bool(same.all()):
                at = int(same.arg_min())  # type: ignore[arg-type]
                out.append(f"column {column!r} differs at id {ids_w[at]!r}: "
                           f"{_short(a[at])} expected, {_short(b[at])} got")
    log_w = _log(expected.removed)
    log_h = _log(got.removed)
    if log_w != log_h:
        only_w = [r for r in log_w if r not in set(log_h)]
        only_h = [r for r in log_h if r not in set(log_w)]
        out.append(f"removed log: {len(log_w)} rows expected, {len(log_h)} got; "
                   f"expected only {only_w[:limit]}; got only {only_h[:limit]}")
    return out


def check_transform(
    step: Transform,
    dataset: Dataset,
    executors: Sequence[str] = EXECUTORS,
    *,
    batch_size: int = 2,
    num_cpus: int | None = 2,
    workdir: str | Path | None = None,
) -> dict[str, Dataset]:
    """Run ``step`` on ``dataset`` on each of ``executors`` and check they agree with the
    first; return each path's result. Raises :class:`ConformanceError` naming the step, the
    paths and every difference (see :func:`differences`).

    ``batch_size`` is the streamed batch size: small, so global steps see several batches.
    ``"ray"`` starts a local Ray instance with ``num_cpus`` CPUs unless one is running.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}] * 2
        ...                              + [{"instruction": "c", "output": ""}])
        >>> out = check_transform(ik.quality(), ds, executors=("memory", "local"))
        >>> [len(d) for d in out.values()]
        [2, 2]
    """
    unknown = [e for e in executors if e not in EXECUTORS]
    if unknown or not executors:
        raise ValueError(f"executors must be some of {EXECUTORS}, got {list(executors)}")
    results = {e: run_on(step, dataset, e, batch_size=batch_size, num_cpus=num_cpus, workdir=workdir)
               for e in executors}
    first = executors[0]
    problems = [
        f"  {first} vs {e}: {d}"
        for e in executors[1:]
        for d in differences(results[first], results[e])
    ]
    if problems:
        raise ConformanceError(f"step {step!r} ({step.name}) differs between paths:\n" + "\n".join(problems))
    return results


def _log(removed: pl.DataFrame) -> list[tuple[Any, ...]]:
    return sorted(removed.select(_LOG_COLUMNS).rows(), key=lambda r: tuple("" if v is None else str(v) for v in r))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["check_transform", "differences", "run_on", "ConformanceError", "EXECUTORS"]
