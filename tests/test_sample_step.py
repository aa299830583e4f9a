"""ik.sample as a step: seeds, sources, ties and an empty decision (kills the mutants that the
mix tests leave alive; see benchmarks/results/mutation.md)."""

from __future__ import annotations

import polars as pl
import pytest

import instructkit as ik
from instructkit.dataset import concat


def _sources(order: list[str], n: int) -> ik.Dataset:
    return concat([ik.Dataset.from_records([{"instruction": f"{s} task {i}", "output": "x"} for i in range(n)], source=s)
                   for s in order])


def test_the_default_seed_is_zero() -> None:
    ds = _sources(["a", "b"], 100)
    kept = lambda step: ds.pipe(step).to_polars()["id"].to_list()  # noqa: E731
    assert kept(ik.sample(total=50)) == kept(ik.sample(total=50, seed=0))
    assert kept(ik.sample(total=50, seed=0)) != kept(ik.sample(total=50, seed=1))


def test_a_record_without_a_source_is_named() -> None:
    frame = _sources(["a"], 4).to_polars().with_columns(
        pl.when(pl.col("id").is_in(["a:1", "a:3"])).then(None).otherwise(pl.col("source")).alias("source"))
    with pytest.raises(ValueError, match=r"record 'a:1' has no source"):
        ik.Dataset(frame).pipe(ik.sample(total=2))


def test_nothing_to_drop_is_an_empty_decision() -> None:
    ds = _sources(["a", "b"], 3)
    step = ik.sample(total=6)
    drops = step.decide([step.observe(ds.to_polars())])
    assert isinstance(drops, pl.DataFrame) and drops.height == 0
    assert drops.columns == ["id", "reason", "detail"]


def test_sources_count_in_order_of_first_appearance_as_mix_does() -> None:
    # 10 of 3 equal sources: the one extra record goes by order, which must be mix's order
    ds = _sources(["c", "a", "b"], 10)
    sampled = ds.pipe(ik.sample(weights={"a": 1, "b": 1, "c": 1}, total=10))
    mixed = ik.mix(ds, weights={"a": 1, "b": 1, "c": 1}, total=10, replace=False, seed=0)
    count = lambda d: dict(d.to_polars().group_by("source").len().iter_rows())  # noqa: E731
    assert count(sampled) == count(mixed)
    assert sorted(sampled.to_polars()["id"].to_list()) == sorted(mixed.to_polars()["id"].to_list())
