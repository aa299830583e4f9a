"""``ik.split``: a seeded, stratified train/eval split with exact counts."""

from __future__ import annotations

import numpy as np
import polars as pl

from instructkit.dataset import Dataset


def split(
    dataset: Dataset,
    eval_fraction: float = 0.1,
    seed: int = 0,
    stratify: str | None = "source",
) -> tuple[Dataset, Dataset]:
    """Split into (train, eval) datasets.

    Each stratum (each value of the ``stratify`` column, e.g. each source) gives
    ``round(eval_fraction * n)`` records to eval, chosen by a seeded permutation; records keep
    their input order within each part. Nothing is dropped: ``len(train) + len(eval) ==
    len(dataset)``. Both parts keep the removed log and history.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": str(i)} for i in range(10)])
        >>> train, test = ik.split(ds, eval_fraction=0.2, seed=1)
        >>> len(train), len(test)
        (8, 2)
    """
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be within [0, 1], got {eval_fraction}")
    frame = dataset.to_polars()
    if stratify is not None and stratify not in frame.columns:
        raise ValueError(f"cannot stratify on unknown column {stratify!r}; columns: {frame.columns}")
    keys = frame[stratify].cast(pl.String).fill_null("").to_list() if stratify else [""] * frame.height
    rng = np.random.default_rng(seed)
    is_eval = np.zeros(frame.height, dtype=bool)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    for key in sorted(groups):  # sorted so the draw order does not depend on row order
        rows = np.asarray(groups[key])
        take = int(round(eval_fraction * len(rows)))
        is_eval[rng.permutation(rows)[:take]] = True
    mask = pl.Series(is_eval)
    return (
        Dataset(frame.filter(~mask), dataset.removed, dataset.history),
        Dataset(frame.filter(mask), dataset.removed, dataset.history),
    )
