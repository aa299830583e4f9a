"""ik.mix's argument checks and edge cases (mutants that the behaviour tests leave alive)."""

from __future__ import annotations

import polars as pl
import pytest

import instructkit as ik
from instructkit.sampling.mix import mix_from_config, mix_targets


def _two(n_a: int = 6, n_b: int = 4) -> ik.Dataset:
    a = ik.Dataset.from_records([{"instruction": f"a {i}", "output": "x"} for i in range(n_a)], source="a")
    b = ik.Dataset.from_records([{"instruction": f"b {i}", "output": "x"} for i in range(n_b)], source="b")
    return ik.concat([a, b])


def test_max_repeat_warn_takes_any_number_from_one() -> None:
    with pytest.warns(UserWarning):
        assert len(ik.mix(_two(), weights={"a": 1, "b": 1}, total=20, max_repeat_warn=1.5)) == 20
    with pytest.raises(ValueError, match="max_repeat_warn must be a number >= 1"):
        ik.mix(_two(), weights={"a": 1, "b": 1}, total=4, max_repeat_warn=0.5)


@pytest.mark.parametrize("size", [-1, 2.5])
def test_source_sizes_are_counts(size: float) -> None:
    with pytest.raises(ValueError, match="must be a count >= 0"):
        mix_targets({"a": size}, total=1)  # type: ignore[dict-item]


def test_an_empty_source_gets_nothing_under_temperature() -> None:
    assert mix_targets({"a": 10, "b": 0}, total=5, temperature=2.0) == {"a": 5, "b": 0}


def test_weights_must_be_numbers() -> None:
    with pytest.raises(ValueError, match="weight of source 'a' must be a number"):
        ik.mix(_two(), weights={"a": "1", "b": 1}, total=4)


@pytest.mark.parametrize("seed", [-1, True])
def test_seeds_are_counts(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        ik.mix(_two(), weights={"a": 1, "b": 1}, total=4, seed=seed)  # type: ignore[arg-type]


def test_a_record_without_a_source_is_named() -> None:
    frame = _two().to_polars().with_columns(
        pl.when(pl.col("id").is_in(["a:2", "b:1"])).then(None).otherwise(pl.col("source")).alias("source"))
    with pytest.raises(ValueError, match=r"record 'a:2' has no source"):
        ik.mix(ik.Dataset(frame), weights={"a": 1, "b": 1}, total=4)


def test_source_names_are_strings() -> None:
    with pytest.raises(TypeError, match="source names must be strings"):
        ik.mix({1: _two()}, total=4)  # type: ignore[dict-item]


def test_a_recipe_mix_section_is_a_mapping_and_shuffles_by_default() -> None:
    with pytest.raises(ValueError, match="must be a mapping"):
        mix_from_config(_two().by_source(), ["weights"])  # type: ignore[arg-type]
    config = {"weights": {"a": 1, "b": 1}, "total": 10}
    from_config = mix_from_config(_two().by_source(), config)
    direct = ik.mix(_two().by_source(), weights={"a": 1, "b": 1}, total=10, shuffle=True)
    assert from_config.to_polars()["id"].to_list() == direct.to_polars()["id"].to_list()
    unshuffled = ik.mix(_two().by_source(), weights={"a": 1, "b": 1}, total=10, shuffle=False)
    assert from_config.to_polars()["id"].to_list() != unshuffled.to_polars()["id"].to_list()
