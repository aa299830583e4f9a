"""Tests for ik.split: exact stratified counts, repeats and groups never straddle the parts."""

from __future__ import annotations

import json

import polars as pl
import pytest

import instructkit as ik
from instructkit.sampling.mix import UpsampleWarning


def make(name: str, n: int) -> ik.Dataset:
    return ik.Dataset.from_records(
        [{"instruction": f"{name} task {i}", "output": f"answer {i}"} for i in range(n)], source=name)


def texts(ds: ik.Dataset) -> set[tuple[str, str, str]]:
    return set(ds.to_polars().select("instruction", "input", "output").iter_rows())


def test_repeats_stay_with_their_original():
    # the case: a 9-record source repeated 44 times
    with pytest.warns(UpsampleWarning, match="upsampled 44.4x"):
        mixed = ik.mix({"big": make("big", 400), "tiny": make("tiny", 9)},
                       weights={"big": 0.5, "tiny": 0.5}, total=800, seed=1)
    train, test = ik.split(mixed, eval_fraction=0.25, seed=0)
    assert len(train) + len(test) == 800
    assert not texts(train) & texts(test)
    # the fraction counts distinct records: round(0.25 * 9) = 2 of the tiny ones
    tiny = test.to_polars().filter(pl.col("source") == "tiny")
    originals = {json.loads(m)["repeat_of"] if m else i for i, m in zip(tiny["id"], tiny["meta"], strict=True)}
    assert len(originals) == 2 and tiny.height in (88, 89, 90)
    assert test.to_polars().filter(pl.col("source") == "big").height == 100


def test_group_by_any_column_and_several():
    records = [{"instruction": f"q{i // 3}", "input": "", "output": f"a{i}"} for i in range(30)]
    ds = ik.Dataset.from_records(records)
    train, test = ik.split(ds, eval_fraction=0.2, seed=3, group_by="instruction")
    assert len(test) == 6  # 2 of 10 groups of 3
    assert not set(train.to_polars()["instruction"]) & set(test.to_polars()["instruction"])
    dup = ik.Dataset.from_records([{"instruction": f"x{i % 4}", "output": "y"} for i in range(12)])
    train, test = ik.split(dup, eval_fraction=0.5, group_by=["instruction", "input", "output"])
    assert len(test) == 6 and not texts(train) & texts(test)
    with pytest.raises(ValueError, match=r"unknown column 'nope'"):
        ik.split(ds, group_by="nope")


def test_group_by_follows_repeats_to_the_original_key():
    with pytest.warns(UpsampleWarning):
        mixed = ik.mix({"a": make("a", 5)}, total=15, seed=2)
    train, test = ik.split(mixed, eval_fraction=0.4, group_by="output", seed=1)
    assert len(test) == 6 and not set(train.to_polars()["output"]) & set(test.to_polars()["output"])


def test_stratify_none_boundaries_and_errors():
    ds = ik.concat([make("a", 7), make("b", 3)])
    train, test = ik.split(ds, eval_fraction=0.5, stratify=None, seed=0)
    assert (len(train), len(test)) == (5, 5)
    train, test = ik.split(ds, eval_fraction=0)
    assert (len(train), len(test)) == (10, 0)
    train, test = ik.split(ds, eval_fraction=1)
    assert (len(train), len(test)) == (0, 10)
    empty = ik.Dataset()
    assert [len(p) for p in ik.split(empty, eval_fraction=0.5)] == [0, 0]
    for bad in (-0.1, 1.01, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="eval_fraction must be"):
            ik.split(ds, eval_fraction=bad)
    with pytest.raises(ValueError, match="seed must be"):
        ik.split(ds, seed=-1)
    with pytest.raises(ValueError, match="unknown column 'lang'"):
        ik.split(ds, stratify="lang")


def test_parts_keep_order_removed_log_and_history():
    ds = make("a", 20).filter(pl.col("instruction") != "a task 3", reason="drop")
    train, test = ik.split(ds, eval_fraction=0.3, seed=5)
    ids = ds.to_polars()["id"].to_list()
    for part in (train, test):
        got = part.to_polars()["id"].to_list()
        assert got == [i for i in ids if i in set(got)]
        assert part.removed.equals(ds.removed) and len(part.history) == len(ds.history)
