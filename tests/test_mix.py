"""Tests for ik.mix: exact counts, determinism, provenance, recipes and errors."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import instructkit as ik
from instructkit.provenance import entry_dict
from instructkit.sampling.mix import (
    ExcessiveRepeatWarning,
    UpsampleWarning,
    mix_from_config,
    mix_report,
    mix_targets,
)


def make(name: str, n: int) -> ik.Dataset:
    return ik.Dataset.from_records(
        [{"instruction": f"{name} task {i}", "output": f"answer {i}"} for i in range(n)],
        source=name,
    )


def counts(ds: ik.Dataset) -> dict[str, int]:
    return dict(ds.to_polars().group_by("source").len().rows())


SIZES = st.dictionaries(
    st.sampled_from(["code", "chat", "math", "qa", "med"]),
    st.integers(min_value=1, max_value=40),
    min_size=1,
    max_size=4,
)


# targets ------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    sizes=SIZES,
    data=st.data(),
    total=st.integers(min_value=0, max_value=500),
)
def test_targets_sum_exactly_to_total(sizes, data, total):
    names = list(sizes)
    weights = {
        n: data.draw(st.floats(min_value=0, max_value=10, allow_nan=False)) for n in names
    }
    if sum(weights.values()) == 0:
        weights[names[0]] = 1.0
    t = mix_targets(sizes, weights=weights, total=total)
    assert sum(t.values()) == total
    assert set(t) == set(sizes)
    # largest remainder: every target is the floor or the ceiling of its exact quota
    mass = sum(weights.values())
    for n in names:
        quota = total * weights[n] / mass
        assert abs(t[n] - quota) < 1 + 1e-9


@settings(max_examples=200, deadline=None)
@given(sizes=SIZES, data=st.data())
def test_targets_respect_caps_and_sizes(sizes, data):
    names = list(sizes)
    caps = {n: data.draw(st.integers(min_value=0, max_value=50)) for n in names}
    total = data.draw(st.integers(min_value=0, max_value=sum(min(caps[n], sizes[n]) for n in names)))
    weights = dict.fromkeys(names, 1)
    # replace=False follows the same plan as "auto" and refuses when it would repeat a record
    plan = mix_targets(sizes, weights=weights, total=total, caps=caps)
    assert sum(plan.values()) == total
    assert all(plan[n] <= caps[n] for n in names)
    short = [n for n in names if plan[n] > sizes[n]]
    if short:
        with pytest.raises(ValueError, match=f"source {short[0]!r} has {sizes[short[0]]} records"):
            mix_targets(sizes, weights=weights, total=total, caps=caps, replace=False)
    else:
        assert mix_targets(sizes, weights=weights, total=total, caps=caps, replace=False) == plan


def test_largest_remainder_ties_go_to_the_first_source():
    assert mix_targets({"a": 9, "b": 9, "c": 9}, weights={"a": 1, "b": 1, "c": 1}, total=2) == {
        "a": 1, "b": 1, "c": 0}


def test_temperature_one_is_proportional_and_large_is_flat():
    sizes = {"big": 900, "small": 100}
    assert mix_targets(sizes, temperature=1, total=100) == {"big": 90, "small": 10}
    assert mix_targets(sizes, total=100) == {"big": 90, "small": 10}
    flat = mix_targets(sizes, temperature=1e6, total=100)
    assert flat == {"big": 50, "small": 50}
    mid = mix_targets(sizes, temperature=2, total=100)  # sqrt: 30 vs 10
    assert mid == {"big": 75, "small": 25}


def test_default_total_is_largest_mix_without_repeats():
    sizes = {"code": 100, "chat": 30}
    assert mix_targets(sizes, weights={"code": 0.5, "chat": 0.5}) == {"code": 30, "chat": 30}
    assert mix_targets(sizes) == sizes
    assert mix_targets(sizes, caps=10) == {"code": 10, "chat": 10}


def test_caps_share_the_rest_by_weight():
    t = mix_targets({"a": 100, "b": 100, "c": 100}, weights={"a": 2, "b": 1, "c": 1},
                    caps={"a": 10}, total=50)
    assert t == {"a": 10, "b": 20, "c": 20}


# drawing ------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::instructkit.sampling.mix.UpsampleWarning")
@settings(max_examples=60, deadline=None)
@given(sizes=SIZES, data=st.data(), seed=st.integers(min_value=0, max_value=2**32))
def test_mix_counts_exact_and_deterministic(sizes, data, seed):
    names = list(sizes)
    weights = {n: data.draw(st.integers(min_value=0, max_value=5)) for n in names}
    if sum(weights.values()) == 0:
        weights[names[0]] = 1
    total = data.draw(st.integers(min_value=0, max_value=120))
    sources = {n: make(n, k) for n, k in sizes.items()}
    a = ik.mix(sources, weights=weights, total=total, seed=seed)
    b = ik.mix(sources, weights=weights, total=total, seed=seed)
    assert a.to_polars().equals(b.to_polars())
    assert a.removed.equals(b.removed)
    target = mix_targets(sizes, weights=weights, total=total)
    assert len(a) == total
    got = counts(a)
    assert all(got.get(n, 0) == target[n] for n in names)
    assert a.to_polars()["id"].is_unique().all()
    # nothing lost: every input record is in the output or in the removed log
    accounted = set(a.to_polars()["id"]) | set(a.removed["id"])
    for ds in sources.values():
        assert set(ds.to_polars()["id"]) <= accounted
    report = mix_report(a)
    assert report["target"].to_list() == [target[n] for n in names]
    assert (report["taken"] + report["repeated"]).to_list() == report["target"].to_list()
    assert sum(report["available"]) == len(a) - sum(report["repeated"]) + a.removed.height


def test_downsampling_draws_without_replacement_and_logs_the_rest():
    ds = ik.mix({"a": make("a", 50), "b": make("b", 50)}, weights={"a": 1, "b": 1}, total=20)
    frame = ds.to_polars()
    assert frame["id"].is_unique().all() and frame["instruction"].is_unique().all()
    assert not frame["id"].str.contains("#r").any()
    assert ds.removed.height == 80
    assert set(ds.removed["reason"]) == {"mix_downsampled"}
    assert set(ds.removed["step"]) == {"mix"}
    assert ds.removed["detail"][0] == '{"available":50,"source":"a","target":10}'
    entry = ds.history[-1]
    assert entry["step"] == "mix" and entry["removed"] == 80 and entry["records_out"] == 20
    assert ds.report()["removed"].to_list() == [80]


def test_upsampling_repeats_whole_copies_then_a_remainder():
    with pytest.warns(UpsampleWarning, match=r"source 'a' has 4 records for a target of 11: "
                      r"upsampled 2\.75x \(each record 2 or 3 times\)") as caught:
        ds = ik.mix({"a": make("a", 4), "b": make("b", 100)}, weights={"a": 1, "b": 1}, total=22)
    assert [type(w.message) for w in caught] == [UpsampleWarning]  # 2.75 is below 3
    a = ds.to_polars().filter(pl.col("source") == "a")
    assert a.height == 11  # 2 whole copies of 4 + 3 more
    per_record = a.with_columns(pl.col("id").str.replace(r"#r\d+$", "").alias("orig"))
    n = per_record.group_by("orig").len()["len"].sort().to_list()
    assert n == [2, 3, 3, 3]  # never more than needed: copies differ by at most one
    copies = a.filter(pl.col("id").str.contains("#r"))
    assert copies.height == 7
    metas = [json.loads(m) for m in copies["meta"]]
    assert {m["repeat"] for m in metas} == {1, 2}
    for cid, m in zip(copies["id"], metas, strict=True):
        assert cid == f"{m['repeat_of']}#r{m['repeat']}"
    originals = a.filter(~pl.col("id").str.contains("#r"))
    assert originals["meta"].is_null().all()
    report = mix_report(ds).row(0, named=True)
    assert report == {
        "source": "a", "available": 4, "weight": 0.5, "cap": None, "target": 11,
        "taken": 4, "repeated": 7, "repeat_factor": 2.75, "share": 0.5,
    }


def test_copies_keep_existing_meta():
    src = ik.Dataset.from_records([{"instruction": "x", "output": "y", "topic": "t"}], source="s")
    with pytest.warns(UpsampleWarning):
        ds = ik.mix({"s": src}, total=3, shuffle=False)
    metas = [json.loads(m) for m in ds.to_polars()["meta"]]
    assert metas[0] == {"topic": "t"}
    assert metas[2] == {"topic": "t", "repeat": 2, "repeat_of": "s:0"}


def test_replace_true_is_a_bootstrap_sample():
    ds = ik.mix({"a": make("a", 30)}, total=30, replace=True, seed=3)
    assert len(ds) == 30
    report = mix_report(ds).row(0, named=True)
    assert report["taken"] + report["repeated"] == 30
    assert report["repeated"] > 0  # 30 draws from 30 with replacement almost surely repeat
    assert ds.removed.height == 30 - report["taken"]


def test_seed_changes_the_draw_and_sources_draw_independently():
    a, b = make("a", 100), make("b", 100)
    one = ik.mix({"a": a, "b": b}, weights={"a": 1, "b": 1}, total=20, seed=1)
    two = ik.mix({"a": a, "b": b}, weights={"a": 1, "b": 1}, total=20, seed=2)
    assert one.to_polars()["id"].to_list() != two.to_polars()["id"].to_list()
    # adding a source does not change what an existing source draws
    c = make("c", 100)
    three = ik.mix({"a": a, "b": b, "c": c}, weights={"a": 1, "b": 1, "c": 0}, total=20, seed=1)
    assert three.to_polars().filter(pl.col("source") == "a")["id"].to_list() == (
        one.to_polars().filter(pl.col("source") == "a")["id"].to_list())


def test_mix_one_dataset_by_its_source_column():
    whole = ik.concat([make("code", 30), make("chat", 10)])
    ds = ik.mix(whole, weights={"code": 1, "chat": 1}, total=10)
    assert counts(ds) == {"code": 5, "chat": 5}
    assert len(ds) + ds.removed.height == 40


def test_history_and_removed_of_inputs_are_kept():
    a = make("a", 10).filter(pl.col("instruction") != "a task 0", reason="drop_first")
    ds = ik.mix({"a": a, "b": make("b", 10)}, total=10)
    assert [h["step"] for h in ds.history] == ["filter", "mix"]
    assert set(ds.removed["reason"]) == {"drop_first", "mix_downsampled"}


def test_mix_from_config():
    cfg = {"weights": {"code": 0.5, "chat": 0.5}, "total": 10, "seed": 0}
    with pytest.warns(UpsampleWarning, match="'chat' has 3 records for a target of 5"):
        ds = mix_from_config({"code": make("code", 20), "chat": make("chat", 3)}, cfg)
    assert counts(ds) == {"code": 5, "chat": 5}
    with pytest.raises(ValueError, match="unknown key.*'ratio'"):
        mix_from_config({"code": make("code", 2)}, {"ratio": 1})
    with pytest.raises(ValueError, match="must map source names"):
        mix_from_config({"code": make("code", 2)}, {"weights": [1]})


# errors -------------------------------------------------------------------------------------
def test_unknown_source_in_weights():
    with pytest.raises(ValueError, match=r"unknown source\(s\) \['cod'\].*\['code', 'chat'\]"):
        ik.mix({"code": make("code", 2), "chat": make("chat", 2)}, weights={"cod": 1})


def test_negative_weight():
    with pytest.raises(ValueError, match="weight of source 'chat' must be finite and >= 0, got -1"):
        ik.mix({"code": make("code", 2), "chat": make("chat", 2)}, weights={"code": 1, "chat": -1})


def test_total_above_available_without_replacement():
    with pytest.raises(ValueError, match=r"total=10 is above the 4 records available.*replace=False"):
        ik.mix({"code": make("code", 2), "chat": make("chat", 2)}, total=10, replace=False)


def test_other_bad_arguments():
    two = {"a": make("a", 2), "b": make("b", 2)}
    with pytest.raises(ValueError, match="not both"):
        ik.mix(two, weights={"a": 1}, temperature=2)
    with pytest.raises(ValueError, match="weight 0"):
        ik.mix(two, weights={"a": 0, "b": 0})
    with pytest.raises(ValueError, match="temperature must be"):
        ik.mix(two, temperature=0)
    with pytest.raises(ValueError, match="caps allow: a<=1, b<=1"):
        ik.mix(two, total=5, caps=1)
    with pytest.raises(ValueError, match="cap of source 'a'"):
        ik.mix(two, caps={"a": -1})
    with pytest.raises(ValueError, match="replace must be"):
        ik.mix(two, replace="yes")
    with pytest.raises(ValueError, match="total must be"):
        ik.mix(two, total=-1)
    with pytest.raises(TypeError, match="source 'a' must be a Dataset"):
        ik.mix({"a": [1, 2]})
    with pytest.raises(ValueError, match="have a weight but no records"):
        ik.mix({"a": make("a", 0), "b": make("b", 2)}, weights={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="not made by ik.mix"):
        mix_report(make("a", 1))


def test_duplicate_ids_across_sources_are_an_error():
    a = ik.Dataset.from_records([{"instruction": "x"}], source="same")
    b = ik.Dataset.from_records([{"instruction": "y"}], source="same")
    with pytest.raises(ValueError, match="id 'same:0' appears more than once"):
        ik.mix({"a": a, "b": b})


def test_real_data_mixture(shared_data):
    code = ik.Dataset.from_records(
        json.loads((shared_data / "instructions" / "code_alpaca_2k.json").read_text()), source="code")
    math = ik.Dataset.from_records(
        json.loads((shared_data / "instructions" / "gsm8k_train_alpaca.json").read_text()), source="math")
    with pytest.warns(UpsampleWarning, match="'code' has 2017 records for a target of 3500: upsampled 1.74x"):
        ds = ik.mix({"code": code, "math": math}, weights={"code": 0.7, "math": 0.3}, total=5000, seed=7)
    assert counts(ds) == {"code": 3500, "math": 1500}
    report = mix_report(ds)
    assert report.filter(pl.col("source") == "code")["repeated"][0] == 3500 - len(code)
    assert len(code) + len(math) == len(ds) - report["repeated"].sum() + ds.removed.height


def test_parts_of_one_dataset_share_their_history_once():
    whole = ik.concat([make("code", 6), make("chat", 6)]).filter(
        pl.col("instruction") != "code task 0", reason="drop_first")
    parts = whole.by_source()
    ds = ik.mix(parts, total=6)
    assert [h["step"] for h in ds.history] == ["filter", "mix"]
    assert len(whole) + whole.removed.height == len(ds) + ds.removed.height


# --- ik.sample: the step form, in memory and out of core -------------------------------------


def _three_sources() -> ik.Dataset:
    return ik.concat([make("a", 120), make("b", 45), make("c", 15)])


@pytest.mark.parametrize("options", [
    {"weights": {"a": 2, "b": 1, "c": 1}, "total": 60, "seed": 3},
    {"temperature": 2.0, "seed": 1},
    {"caps": {"a": 30}, "seed": 0},
])
def test_sample_keeps_what_mix_without_repeats_keeps(options: dict) -> None:
    ds = _three_sources()
    stepped = ds.pipe(ik.sample(**options))
    mixed = ik.mix(ds, replace=False, **options)
    assert sorted(stepped.to_polars()["id"]) == sorted(mixed.to_polars()["id"])
    assert stepped.removed.sort("id").select("id", "reason", "detail").equals(
        mixed.removed.sort("id").select("id", "reason", "detail"))
    # the step keeps input order
    assert stepped.to_polars()["id"].to_list() == [i for i in ds.to_polars()["id"] if i in set(stepped.to_polars()["id"])]


def test_sample_streams_to_the_in_memory_answer(tmp_path) -> None:
    from instructkit.executors import run

    ds = _three_sources()
    path = tmp_path / "mixed.jsonl"
    ds.write(path)
    step = ik.sample(weights={"a": 1, "b": 1, "c": 1}, total=45, seed=7)
    streamed = run([step], ik.scan(path, batch_size=40), output=tmp_path / "out")
    memory = ik.read(path).pipe(step)
    assert len(streamed.shards) == 5
    assert streamed.to_dataset().to_polars().equals(memory.to_polars())
    assert counts(memory) == {"a": 15, "b": 15, "c": 15}
    assert repr(ik.Pipeline.from_yaml(ik.Pipeline([step]).to_yaml()).steps[0]) == repr(step)


def test_sample_refuses_to_upsample_and_unknown_sources() -> None:
    ds = _three_sources()
    with pytest.raises(ValueError, match="replace=False forbids repeating records"):
        ds.pipe(ik.sample(total=500))
    with pytest.raises(ValueError, match=r"weights name source\(s\) \['z'\]"):
        ds.pipe(ik.sample(weights={"a": 1, "z": 1}))
    with pytest.raises(ValueError, match="weights or temperature, not both"):
        ik.sample(weights={"a": 1}, temperature=2.0)


# recipes keep their promises (issue 17.1/17.2) -----------------------------------------------
def test_a_source_left_out_of_weights_is_an_error():
    three = {"a": make("a", 5), "b": make("b", 5), "c": make("c", 5)}
    with pytest.raises(ValueError, match=r"weights leave out source\(s\) \['c'\].*0 drops"):
        ik.mix(three, weights={"a": 1, "b": 1})
    with pytest.raises(ValueError, match=r"leave out source\(s\) \['b', 'c'\]"):
        ik.mix(ik.concat(list(three.values())), weights={"a": 1})
    # weight 0 is how a source is dropped on purpose
    ds = ik.mix(three, weights={"a": 1, "b": 1, "c": 0}, total=4)
    assert counts(ds) == {"a": 2, "b": 2}
    assert ds.removed.filter(pl.col("source") == "c").height == 5


def test_replace_false_names_the_short_source_instead_of_reweighting():
    two = {"big": make("big", 100), "small": make("small", 5)}
    with pytest.raises(ValueError, match=r"source 'small' has 5 records for a target of 10 .*total=20"):
        ik.mix(two, weights={"big": 1, "small": 1}, total=20, replace=False)
    # caps still share what a capped source cannot take
    assert mix_targets({"a": 100, "b": 100}, weights={"a": 1, "b": 1}, caps={"a": 5}, total=20,
                       replace=False) == {"a": 5, "b": 15}


def test_repeats_above_max_repeat_warn_escalate():
    two = {"big": make("big", 100), "small": make("small", 2)}
    with pytest.warns(ExcessiveRepeatWarning, match=r"'small' has 2 records for a target of 10: "
                      r"upsampled 5x \(each record 5 times\), above max_repeat_warn=3"):
        ik.mix(two, weights={"big": 1, "small": 1}, total=20)
    with pytest.warns(UpsampleWarning) as caught:
        ik.mix(two, weights={"big": 1, "small": 1}, total=20, max_repeat_warn=6)
    assert [type(w.message) for w in caught] == [UpsampleWarning]
    with pytest.raises(ValueError, match="max_repeat_warn must be"):
        ik.mix(two, weights={"big": 1, "small": 1}, total=20, max_repeat_warn=0.5)
    # no warning at all when nothing is repeated
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ik.mix(two, weights={"big": 1, "small": 1}, total=4)


def test_output_is_shuffled_with_the_seed_unless_asked_not_to():
    srcs = {"a": make("a", 30), "b": make("b", 30)}
    grouped = ik.mix(srcs, total=60, shuffle=False).to_polars()
    assert grouped["source"].to_list() == ["a"] * 30 + ["b"] * 30
    one = ik.mix(srcs, total=60, seed=4).to_polars()
    assert one.equals(ik.mix(srcs, total=60, seed=4).to_polars())
    assert sorted(one["id"]) == sorted(grouped["id"])
    assert one["source"].to_list() != grouped["source"].to_list()
    # interleaved: both sources in the first third of the output
    assert set(one["source"].head(20)) == {"a", "b"}
    assert ik.mix(srcs, total=60, seed=5).to_polars()["id"].to_list() != one["id"].to_list()
    assert "shuffle=False" in entry_dict(ik.mix(srcs, total=60, shuffle=False).history[-1])["params"]


def test_mix_of_one_dataset_keeps_each_removed_row_with_its_source():
    whole = ik.concat([make("a", 6), make("b", 6), make("c", 3)]).filter(
        ~pl.col("instruction").is_in(["a task 0", "b task 1"]), reason="dropped")
    gone = whole.filter(pl.col("source") != "c", reason="no_c", step="drop_c")  # c: all removed
    from instructkit.sampling.mix import _as_mapping

    parts = _as_mapping(gone)
    assert list(parts) == ["a", "b", "c"]
    for name, part in parts.items():
        assert set(part.removed["source"]) <= {name}
    assert parts["a"].removed["id"].to_list() == ["a:0"]
    assert parts["c"].removed.height == 3 and len(parts["c"]) == 0
    ds = ik.mix(gone, weights={"a": 1, "b": 1, "c": 0}, total=6)
    # every earlier removal once, plus what mix left out, and nothing else
    assert sorted(ds.removed["id"]) == sorted([*gone.removed["id"], *ds.removed.filter(
        pl.col("reason") == "mix_downsampled")["id"]])
    assert ds.removed.filter(pl.col("reason") != "mix_downsampled").sort("id").equals(gone.removed.sort("id"))
    assert len(gone) + gone.removed.height == len(ds) - mix_report(ds)["repeated"].sum() + ds.removed.height


def test_mix_of_one_dataset_keeps_rows_without_a_source_in_the_log():
    ds = make("a", 4)
    log = pl.concat([ds.removed, pl.DataFrame({
        "id": ["bad.jsonl:3"], "step": ["read"], "reason": ["parse_error"], "detail": [None],
        "source": [None], "instruction": [None], "input": [None], "output": [None]},
        schema=ds.removed.schema)])
    mixed = ik.mix(ik.Dataset(ds.to_polars(), log), total=2)
    assert "bad.jsonl:3" in mixed.removed["id"].to_list()
    assert mixed.removed.height == 1 + 2


def test_sample_needs_a_weight_for_every_source() -> None:
    with pytest.raises(ValueError, match=r"weights leave out source\(s\) \['c'\]"):
        _three_sources().pipe(ik.sample(weights={"a": 1, "b": 1}, total=10))
