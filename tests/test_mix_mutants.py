"""``ik.mix``'s report, messages and edge cases, written to kill the mutants of
``sampling/mix.py`` that the behaviour tests let survive (``scripts/mutation.py``; see
benchmarks/results/mutation.md)."""

from __future__ import annotations

import json
import time
import warnings

import polars as pl
import pytest

import instructkit as ik
from instructkit.sampling.mix import (
    ExcessiveRepeatWarning,
    UpsampleWarning,
    mix_from_config,
    mix_report,
    mix_targets,
)


def _src(name: str, n: int) -> ik.Dataset:
    return ik.Dataset.from_records([{"instruction": f"{name} {i}", "output": "x"} for i in range(n)], source=name)


def _quiet_mix(*args: object, **kwargs: object) -> ik.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        return ik.mix(*args, **kwargs)  # type: ignore[arg-type]


# --- the history entry and the report -----------------------------------------------------


def test_the_history_entry_names_the_arguments_given() -> None:
    sources = {"a": _src("a", 6), "b": _src("b", 4)}
    assert ik.mix(sources).history[-1]["params"] == "mix()"
    entry = ik.mix(sources, weights={"a": 1, "b": 1}, total=4, replace=False, seed=3, shuffle=False).history[-1]
    assert entry["params"] == "mix(weights={'a': 1, 'b': 1}, total=4, replace=False, seed=3, shuffle=False)"
    entry = _quiet_mix(sources, temperature=2.0, caps=5, replace=True).history[-1]
    assert entry["params"] == "mix(temperature=2.0, caps=5, replace=True)"


def test_the_history_entry_counts_what_was_left_out_and_its_time() -> None:
    sources = {"a": _src("a", 6), "b": _src("b", 4)}
    started = time.perf_counter()
    down = ik.mix(sources, weights={"a": 1, "b": 1}, total=4)
    wall = time.perf_counter() - started
    entry = down.history[-1]
    assert entry["removed"] == 6 and entry["by_reason"] == {"mix_downsampled": 6}
    assert 0 <= entry["seconds"] <= wall
    assert ik.mix(sources).history[-1]["by_reason"] == {}


def test_an_empty_source_has_no_repeat_factor() -> None:
    empty = _src("b", 1).to_polars().clear()
    report = mix_report(ik.mix({"a": _src("a", 4), "b": ik.Dataset(empty)}, weights={"a": 1, "b": 0}))
    row = report.filter(pl.col("source") == "b")
    assert row["available"][0] == 0 and row["repeat_factor"][0] == 0.0 and row["taken"][0] == 0


def test_the_report_skips_later_steps_and_refuses_data_not_mixed() -> None:
    mixed = ik.mix({"a": _src("a", 3), "b": _src("b", 2)})
    later = mixed.pipe(ik.normalize())
    assert mix_report(later)["source"].to_list() == ["a", "b"]
    with pytest.raises(ValueError, match="not made by ik.mix"):
        mix_report(_src("a", 3))
    # an entry that says "mix" without a table (a foreign or older record) is not a report
    bare = ik.Dataset(mixed.to_polars(), mixed.removed, [*mixed.history, {**mixed.history[-1], "mix": None}])
    assert mix_report(bare)["source"].to_list() == ["a", "b"]


def test_sources_of_one_dataset_keep_their_order_of_appearance() -> None:
    names = [f"s{i:02d}" for i in range(24)][::-1]
    ds = ik.concat([_src(n, 2) for n in names])
    mixed = ik.mix(ds, shuffle=False)
    assert mix_report(mixed)["source"].to_list() == names
    assert mixed.to_polars()["source"].unique(maintain_order=True).to_list() == names


# --- warnings -------------------------------------------------------------------------------


def test_upsampling_exactly_max_repeat_warn_times_is_not_excessive() -> None:
    sources = {"a": _src("a", 2)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ik.mix(sources, total=6, max_repeat_warn=3.0)  # factor 3.0: not above
        ik.mix(sources, total=2, max_repeat_warn=1)  # 1 is allowed
    assert [type(w.message) for w in caught] == [UpsampleWarning]
    assert caught[0].filename == __file__  # points at the caller of ik.mix
    with pytest.warns(ExcessiveRepeatWarning, match=r"upsampled 3.5x .* above max_repeat_warn=3"):
        ik.mix(sources, total=7)


def test_a_recipe_mix_section_has_mix_s_defaults() -> None:
    parts = {"a": _src("a", 2), "b": _src("b", 2)}
    with pytest.warns(ExcessiveRepeatWarning, match="above max_repeat_warn=3"):
        mix_from_config(parts, {"weights": {"a": 7, "b": 1}, "total": 8})
    natural = mix_from_config(parts, {"temperature": 1.0})  # no weights: no weights check
    assert len(natural) == 4
    with pytest.raises(ValueError, match="mix.weights must map source names to numbers"):
        mix_from_config(parts, {"weights": [1, 1]})


# --- argument checks and messages ----------------------------------------------------------


def test_sources_are_a_mapping_or_a_dataset() -> None:
    with pytest.raises(TypeError, match=r"sources must be a mapping \{name: Dataset\} or a Dataset, got list"):
        ik.mix([_src("a", 2)])  # type: ignore[arg-type]


def test_targets_need_a_source_and_weights_that_map() -> None:
    with pytest.raises(ValueError, match="mix needs at least one source"):
        mix_targets({}, total=1)
    with pytest.raises(ValueError, match="weights must map source names to numbers"):
        mix_targets({"a": 2}, weights=[1], total=1)  # type: ignore[arg-type]


def test_replace_is_exactly_auto_true_or_false() -> None:
    for bad in (1, 0, "Auto"):
        with pytest.raises(ValueError, match="replace must be 'auto', True or False"):
            mix_targets({"a": 2}, total=1, replace=bad)  # type: ignore[arg-type]


def test_a_zero_weight_source_does_not_bound_the_natural_total() -> None:
    assert mix_targets({"a": 10, "b": 5}, weights={"a": 1, "b": 0}) == {"a": 10, "b": 0}
    # nor does it count among the records a total may take with replace=False
    with pytest.raises(ValueError, match=r"total=5 is above the 2 records available in the weighted sources \(a: 2\)"):
        mix_targets({"a": 2, "b": 10}, weights={"a": 1, "b": 0}, total=5, replace=False)


def test_an_empty_mixture_has_no_shares() -> None:
    report = mix_report(ik.mix({"a": _src("a", 3), "b": _src("b", 2)}, weights={"a": 1, "b": 1}, total=0))
    assert report["target"].to_list() == [0, 0] and report["share"].to_list() == [0.0, 0.0]


def test_messages_for_a_total_above_what_is_available() -> None:
    with pytest.raises(ValueError, match=r"above the 10 records available in the weighted sources \(a: 6, b: 4\)"):
        mix_targets({"a": 6, "b": 4}, weights={"a": 1, "b": 1}, total=11, replace=False)
    with pytest.raises(ValueError, match=r"above the 6 records the caps and sizes \(replace=False\) allow: a<=2, b<=4"):
        mix_targets({"a": 6, "b": 4}, weights={"a": 1, "b": 1}, total=7, replace=False, caps={"a": 2})


# --- drawing --------------------------------------------------------------------------------


def test_a_bootstrap_can_draw_every_record() -> None:
    mixed = _quiet_mix({"a": _src("a", 2)}, total=200, replace=True, max_repeat_warn=None)
    report = mix_report(mixed)
    assert report["taken"][0] == 2 and report["repeated"][0] == 198


def test_copies_keep_meta_with_the_readers_encoding() -> None:
    frame = _src("a", 1).to_polars().with_columns(pl.lit('{"z": "é", "b": 1}').alias("meta"))
    mixed = _quiet_mix({"a": ik.Dataset(frame)}, total=2, max_repeat_warn=None, shuffle=False)
    copy = mixed.to_polars()["meta"][1]
    original = frame["id"][0]
    assert copy == json.dumps({"b": 1, "repeat": 1, "repeat_of": original, "z": "é"}, ensure_ascii=False, sort_keys=True)
    long_list = json.dumps(list(range(100)))
    bad = frame.with_columns(pl.lit(long_list).alias("meta"))
    with pytest.raises(ValueError, match=r"meta is not a JSON object") as error:
        _quiet_mix({"a": ik.Dataset(bad)}, total=2)
    assert str(error.value).endswith(repr(long_list[:80]))  # the first 80 characters


def test_copies_follow_their_originals_in_input_order() -> None:
    sources = {"a": _src("a", 40)}
    mixed = _quiet_mix(sources, total=120, shuffle=False, max_repeat_warn=None)
    ids = sources["a"].to_polars()["id"].to_list()
    assert mixed.to_polars()["id"].to_list() == [*ids, *(f"{i}#r1" for i in ids), *(f"{i}#r2" for i in ids)]
