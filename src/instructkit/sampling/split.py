"""``ik.split``: a seeded, stratified, grouped train/eval split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from instructkit.dataset import Dataset


def split(
    dataset: Dataset,
    eval_fraction: float = 0.1,
    seed: int = 0,
    stratify: str | None = "source",
    group_by: str | Sequence[str] | None = None,
) -> tuple[Dataset, Dataset]:
    """Split into (train, eval) datasets that share no group of records.

    Records are split in **groups** that never straddle the two parts:

    - a copy that ``ik.mix`` made by upsampling (``meta.repeat_of``) always goes with its
      original, so an eval record never has an identical copy in train;
    - ``group_by`` names a column (or several) whose equal values form one group, e.g.
      ``group_by="instruction"`` keeps paraphrased answers to one prompt together, or
      ``group_by=["instruction", "input", "output"]`` keeps exact duplicates together.

    Each stratum (each value of the ``stratify`` column, e.g. each source; a group belongs
    to the stratum of its first record) gives ``round(eval_fraction * g)`` of its ``g``
    groups to eval, chosen by a seeded permutation. Without repeats or ``group_by`` every
    record is its own group, so counts are exact per stratum. Records keep their input
    order within each part. Nothing is dropped: ``len(train) + len(eval) ==
    len(dataset)``. Both parts keep the removed log and history.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": str(i)} for i in range(10)])
        >>> train, test = ik.split(ds, eval_fraction=0.2, seed=1)
        >>> len(train), len(test)
        (8, 2)
        >>> qa = ik.Dataset.from_records([{"instruction": f"q{i // 2}", "output": str(i)}
        ...                               for i in range(8)])
        >>> train, test = ik.split(qa, eval_fraction=0.25, group_by="instruction")
        >>> sorted(set(test.to_polars()["instruction"]) & set(train.to_polars()["instruction"]))
        []
    """
    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, (int, float)) or not (
            0.0 <= eval_fraction <= 1.0):
        raise ValueError(f"eval_fraction must be a number within [0, 1], got {eval_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    frame = dataset.to_polars()
    columns = [group_by] if isinstance(group_by, str) else list(group_by or [])
    for name in [*columns, *([stratify] if stratify is not None else [])]:
        if not isinstance(name, str) or name not in frame.columns:
            raise ValueError(f"cannot split on unknown column {name!r}; columns: {frame.columns}")
    group = _groups(frame, columns)
    keys = frame[stratify].cast(pl.String).fill_null("") if stratify else pl.repeat("", frame.height, eager=True)
    # one row per group, in order of first appearance (so by group number), with the stratum
    # of its first record
    firsts = pl.DataFrame({"g": group, "k": keys}).unique("g", keep="first", maintain_order=True)
    strata = firsts.partition_by("k", as_dict=True, maintain_order=True)
    rng = np.random.default_rng(seed)
    eval_groups = np.zeros(firsts.height, dtype=bool)
    for key in sorted(strata, key=lambda k: k[0]):  # sorted: draws do not depend on row order
        groups = strata[key]["g"].to_numpy()
        take = int(round(eval_fraction * len(groups)))
        eval_groups[rng.permutation(groups)[:take]] = True
    mask = pl.Series(eval_groups[group]) if frame.height else pl.Series([], dtype=pl.Boolean)
    return (
        Dataset(frame.filter(~mask), dataset.removed, dataset.history),
        Dataset(frame.filter(mask), dataset.removed, dataset.history),
    )


def _groups(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """A dense group number per row (0, 1, ... in order of first appearance).

    A row's key is the value of ``columns`` (its own id when none are given); a repeat made
    by ``ik.mix`` takes the key of the record it repeats, so it lands in the same group.
    """
    if frame.height == 0:
        return np.zeros(0, dtype=np.int64)
    original = frame["meta"].str.json_path_match("$.repeat_of").fill_null(frame["id"])
    rows = pl.DataFrame({"_orig": original})
    if columns:
        own = frame.select(
            pl.col("id").alias("_orig"),
            pl.struct([pl.col(c).cast(pl.String) for c in columns]).alias("_key"),
        )
        # every repeat looks up the key of the record it repeats (its own when that record is
        # not in this dataset, e.g. removed earlier)
        rows = rows.with_columns(pl.Series("_own", own["_key"])).join(
            own, on="_orig", how="left", maintain_order="left"
        ).select(pl.coalesce("_key", "_own").alias("_k"))
    else:
        rows = rows.select(pl.col("_orig").alias("_k"))
    first_row = pl.col("_row").min().over("_k")
    rows = rows.with_row_index("_row").select(first_row.rank("dense").cast(pl.Int64) - 1)
    return rows.to_series().to_numpy()
