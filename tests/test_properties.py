"""Property tests for ik.split and ik.mix: partitions, invariants and edge cases over random
sources (empty ones included), random removed logs, weights, totals and fractions."""

from __future__ import annotations

import json
import warnings

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import instructkit as ik
from instructkit.sampling.mix import UpsampleWarning, _as_mapping, mix_report

NAMES = ["code", "chat", "math", "qa", "med"]


def source(name: str, n: int, dropped: int) -> ik.Dataset:
    """``n`` records of ``name``, the first ``dropped`` of them removed by an earlier step."""
    ds = ik.Dataset.from_records(
        [{"instruction": f"{name} {i}", "output": f"a{i % 3}"} for i in range(n)], source=name)
    gone = {f"{name} {i}" for i in range(min(dropped, n))}
    return ds.filter(~pl.col("instruction").is_in(list(gone)), reason="earlier")


SOURCES = st.lists(
    st.tuples(st.integers(0, 25), st.integers(0, 4)), min_size=1, max_size=5
).map(lambda sizes: {NAMES[i]: source(NAMES[i], n, d) for i, (n, d) in enumerate(sizes)})


def quiet_mix(*args, **kwargs) -> ik.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        return ik.mix(*args, **kwargs)


# mix ------------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(sources=SOURCES, data=st.data(), seed=st.integers(0, 2**16), as_one=st.booleans())
def test_mix_accounts_for_every_record(sources, data, seed, as_one):
    weights = {n: data.draw(st.integers(0, 4)) for n in sources}
    for n, ds in sources.items():
        if len(ds) == 0:
            weights[n] = 0  # a source with no records cannot have a weight
    assume(sum(weights.values()) > 0)
    total = data.draw(st.integers(0, 80))
    given_in = ik.concat(list(sources.values())) if as_one else sources
    out = quiet_mix(given_in, weights=weights, total=total, seed=seed)
    assert len(out) == total
    frame = out.to_polars()
    assert frame["id"].is_unique().all()
    report = mix_report(out)
    # every input record is in the output once or in the removed log once
    before = sum(len(d) for d in sources.values())
    earlier = pl.concat([d.removed for d in sources.values()])
    assert before + earlier.height == len(out) - report["repeated"].sum() + out.removed.height
    assert out.removed.filter(pl.col("reason") == "earlier").sort("id").equals(earlier.sort("id"))
    # what mix left out of a source is that source's
    left = out.removed.filter(pl.col("reason") == "mix_downsampled")
    for name in sources:
        kept = set(frame.filter(pl.col("source") == name)["id"].str.replace(r"#r\d+$", ""))
        dropped = set(left.filter(pl.col("source") == name)["id"])
        assert kept | dropped == set(sources[name].to_polars()["id"]) and not kept & dropped
    # shuffling only reorders
    grouped = quiet_mix(given_in, weights=weights, total=total, seed=seed, shuffle=False)
    assert sorted(grouped.to_polars()["id"]) == sorted(frame["id"])
    assert grouped.removed.equals(out.removed)


@settings(max_examples=40, deadline=None)
@given(sources=SOURCES)
def test_mix_of_one_dataset_gives_each_part_its_own_log(sources):
    whole = ik.concat(list(sources.values()))
    parts = _as_mapping(whole)
    # sources with records in order, then those whose records were all removed
    assert list(parts) == [n for n, d in sources.items() if len(d)] + [
        n for n, d in sources.items() if not len(d) and d.removed.height]
    for name, part in parts.items():
        assert part.removed.sort("id").equals(sources[name].removed.sort("id"))
        assert part.to_polars().equals(sources[name].to_polars())


@settings(max_examples=40, deadline=None)
@given(sources=SOURCES, data=st.data())
def test_a_source_left_out_of_weights_is_an_error(sources, data):
    assume(len(sources) >= 2)
    names = list(sources)
    left_out = data.draw(st.sampled_from(names))
    weights = {n: 1 for n in names if n != left_out}
    with pytest.raises(ValueError, match=rf"weights leave out source\(s\) \['{left_out}'\]"):
        ik.mix(sources, weights=weights, total=5)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), total=st.integers(0, 60), seed=st.integers(0, 99))
def test_repeats_are_marked_and_spread_evenly(n, total, seed):
    out = quiet_mix({"s": source("s", n, 0)}, total=total, seed=seed)
    frame = out.to_polars()
    originals = frame["id"].str.replace(r"#r\d+$", "")
    per = originals.value_counts()["count"]
    assert per.max() - per.min() <= 1 if len(per) else True
    for rid, meta in zip(frame["id"], frame["meta"], strict=True):
        if "#r" in rid:
            m = json.loads(meta)
            assert rid == f"{m['repeat_of']}#r{m['repeat']}"


# split ----------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(sources=SOURCES, data=st.data(), fraction=st.floats(0, 1), seed=st.integers(0, 2**16),
       stratify=st.sampled_from(["source", None]), group_by=st.sampled_from([None, "output"]))
def test_split_is_a_seeded_partition_that_keeps_groups_whole(sources, data, fraction, seed, stratify, group_by):
    weights = {n: (1 if len(d) else 0) for n, d in sources.items()}
    if sum(weights.values()):
        ds = quiet_mix(sources, weights=weights, total=data.draw(st.integers(0, 60)), seed=seed)
    else:
        ds = ik.concat(list(sources.values()))
    train, test = ik.split(ds, eval_fraction=fraction, seed=seed, stratify=stratify, group_by=group_by)
    ids = ds.to_polars()["id"].to_list()
    a, b = train.to_polars()["id"].to_list(), test.to_polars()["id"].to_list()
    assert sorted(a + b) == sorted(ids) and not set(a) & set(b)
    # input order within each part
    assert a == [i for i in ids if i in set(a)] and b == [i for i in ids if i in set(b)]
    # no repeat on the other side of its original; no group value on both sides
    base = lambda part: set(part.to_polars()["id"].str.replace(r"#r\d+$", ""))  # noqa: E731
    assert not base(train) & base(test)
    if group_by:
        assert not set(train.to_polars()[group_by]) & set(test.to_polars()[group_by])
    else:
        # without group_by, each stratum sends round(f * groups) distinct records to eval
        frame = ds.to_polars().with_columns(pl.col("id").str.replace(r"#r\d+$", "").alias("g"))
        key = stratify or pl.lit("")
        groups = frame.group_by(key if stratify else pl.lit("").alias("k")).agg(pl.col("g").n_unique())
        expected = sum(int(round(fraction * g)) for g in groups["g"])
        assert len(base(test)) == expected
    again = ik.split(ds, eval_fraction=fraction, seed=seed, stratify=stratify, group_by=group_by)
    assert again[1].to_polars().equals(test.to_polars())
    assert test.removed.equals(ds.removed) and train.removed.equals(ds.removed)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 15), seed=st.integers(0, 99))
def test_split_boundaries(n, seed):
    ds = source("s", n, 0)
    assert [len(p) for p in ik.split(ds, eval_fraction=0, seed=seed)] == [n, 0]
    assert [len(p) for p in ik.split(ds, eval_fraction=1, seed=seed)] == [0, n]
    assert sum(len(p) for p in ik.split(ds, eval_fraction=0.5, seed=seed, stratify=None)) == n


@given(fraction=st.one_of(st.floats(max_value=-1e-12), st.floats(min_value=1 + 1e-9), st.just(float("nan"))))
def test_split_refuses_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match="eval_fraction must be"):
        ik.split(source("s", 3, 0), eval_fraction=fraction)


# whitespace ------------------------------------------------------------------------------------
WHITESPACE = " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list(WHITESPACE) + list("ab.é中")), max_size=40), max_size=30))
def test_collapse_whitespace_equals_the_plain_regex(texts):
    """The fast pattern of dedup's key must give the keys of ``\\s+ -> ' '`` exactly, or
    exact dedup would group texts differently from earlier runs."""
    from instructkit.text import collapse_whitespace

    series = pl.Series(texts, dtype=pl.String)
    assert collapse_whitespace(series).to_list() == series.str.replace_all(r"\s+", " ").str.strip_chars().to_list()
