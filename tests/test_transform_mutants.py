"""The transform protocol and exact dedup, pinned down edge by edge.

Each test here kills mutants that survived the rest of the suite (scripts/mutation.py,
benchmarks/results/mutation.md): slicing of Map/Filter steps and not of Global ones, the
row-count guard, the registry, params and configs, the removal detail convention and the
empty/reference/upsampled cases of ``dedup.exact``.
"""

from __future__ import annotations

import abc
import json

import polars as pl
import pytest

import instructkit as ik
import instructkit.transform as T
from instructkit.transform import (
    DETAIL,
    REASON,
    detail,
    detail_expr,
    from_config,
    mark,
    parse_detail,
)


def records(n: int, dup_every: int = 0) -> ik.Dataset:
    rows = [{"instruction": f"q{i % dup_every if dup_every else i}", "output": "a"} for i in range(n)]
    return ik.Dataset.from_records(rows, source="s")


class CountingMap(ik.Map):
    name = ""  # unregistered: a test helper

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.sizes.append(frame.height)
        return frame.with_columns(pl.lit(1).alias("seen"))


class SeenTwice(ik.Global):
    """Drops every instruction seen before anywhere in the data: needs all rows at once."""

    name = ""

    def __init__(self) -> None:
        self.observed: list[int] = []

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.observed.append(batch.height)
        return batch.select("id", "instruction")

    def decide(self, states: list[pl.DataFrame]) -> pl.DataFrame:
        rows = pl.concat(states)
        first = rows.with_columns(pl.col("id").first().over("instruction").alias("kept"))
        dup = first.filter(pl.col("id") != pl.col("kept"))
        return dup.select("id", pl.lit("seen_twice").alias("reason"), pl.lit(None, pl.String).alias("detail"))


# slicing -------------------------------------------------------------------------------------
def test_map_runs_in_slices_of_batch_size_and_reports_the_slice_count(monkeypatch):
    totals = []

    def spy(iterable, total=None, desc="", unit=""):
        totals.append((total, desc, unit))
        return iterable

    monkeypatch.setattr(T, "progress", spy)
    monkeypatch.setattr(CountingMap, "batch_size", 3)
    step = CountingMap()
    out = records(7).pipe(step)
    assert step.sizes == [3, 3, 1]
    assert out.to_polars()["seen"].to_list() == [1] * 7
    assert out.to_polars()["id"].to_list() == [f"s:{i}" for i in range(7)]
    assert totals == [(3, "", "batch")]


def spy_progress(monkeypatch) -> list[tuple]:
    """Record the (total, desc, unit) of every progress bar transform.py opens."""
    calls: list[tuple] = []

    def spy(iterable, total=None, desc="", unit=""):
        calls.append((total, desc, unit))
        return iterable

    monkeypatch.setattr(T, "progress", spy)
    return calls


def test_map_at_batch_size_runs_in_one_piece_without_a_bar(monkeypatch):
    bars = spy_progress(monkeypatch)
    monkeypatch.setattr(CountingMap, "batch_size", 4)
    step = CountingMap()
    records(4).pipe(step)
    assert step.sizes == [4] and bars == []


def test_global_step_decides_over_every_slice_at_once(monkeypatch):
    # observed in slices (for progress), but a Global step applied per slice would miss
    # duplicates that sit in different slices
    totals = []

    def spy(iterable, total=None, desc="", unit=""):
        totals.append((total, desc, unit))
        return iterable

    monkeypatch.setattr(T, "progress", spy)
    monkeypatch.setattr(SeenTwice, "batch_size", 3)
    step = SeenTwice()
    out = records(10, dup_every=4).pipe(step)
    assert step.observed == [3, 3, 3, 1]
    assert totals == [(4, "observe ", "batch")]
    assert out.to_polars()["instruction"].to_list() == ["q0", "q1", "q2", "q3"]
    assert out.removed.height == 6 and set(out.removed["reason"]) == {"seen_twice"}


def test_global_step_at_batch_size_is_observed_once_without_a_bar(monkeypatch):
    bars = spy_progress(monkeypatch)
    monkeypatch.setattr(SeenTwice, "batch_size", 10)
    step = SeenTwice()
    records(10, dup_every=4).pipe(step)
    assert step.observed == [10] and bars == []


def test_builtin_global_steps_give_the_same_result_observed_in_slices(monkeypatch):
    rows = [{"instruction": f"Tell me about topic number {i % 4} please", "output": f"answer {i % 4}"}
            for i in range(11)]
    rows.append({"instruction": "What is 17 plus 25 exactly?", "output": "42"})
    data = ik.Dataset.from_records(rows, source="s")
    bench = ik.benchmarks.from_records("b", [{"q": "What is 17 plus 25 exactly?"}], ["q"])
    steps = [lambda: ik.dedup.exact(), lambda: ik.dedup.minhash(threshold=0.7),
             lambda: ik.dedup.fuzzy(), lambda: ik.decontaminate([bench], n=3),
             lambda: ik.sample(total=5, seed=1)]
    for make in steps:
        whole = data.pipe(make())
        step = make()
        monkeypatch.setattr(type(step), "batch_size", 2)
        sliced = data.pipe(step)
        monkeypatch.undo()
        assert sliced.to_polars().equals(whole.to_polars()), step
        assert sliced.removed.select("id", "reason", "detail").equals(
            whole.removed.select("id", "reason", "detail")), step
        assert whole.removed.height > 0, step


def test_default_slice_is_fifty_thousand_rows_and_base_steps_do_not_redact():
    assert ik.Map.batch_size == ik.Filter.batch_size == 50_000
    assert T.Transform.redacts is False and ik.normalize().redacts is False


# the row-count guard ---------------------------------------------------------------------
class DropsARow(ik.Map):
    name = ""

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.head(frame.height - 1)


def test_a_step_that_loses_rows_is_refused():
    with pytest.raises(RuntimeError, match=r"returned 2 rows for 3"):
        records(3).pipe(DropsARow())


def test_history_records_a_plausible_duration():
    out = records(3).pipe(CountingMap())
    seconds = out.history[-1]["seconds"]
    assert 0 <= seconds < 60


# the protocol's required methods -------------------------------------------------------------
def test_missing_methods_raise_type_errors():
    class NoApply(T.Transform):
        name = ""

    class NoReasons(ik.Filter):
        name = ""

    class NoObserve(ik.Global):
        name = ""

    class NoDecide(ik.Global):
        name = ""

        def observe(self, batch):
            return batch.select("id")

    frame = records(2).to_polars()
    with pytest.raises(TypeError, match="NoApply must implement apply"):
        NoApply().apply(frame)
    with pytest.raises(TypeError, match="NoReasons must implement reasons"):
        NoReasons().apply(frame)
    with pytest.raises(TypeError, match="NoObserve must implement observe"):
        NoObserve().apply(frame)
    with pytest.raises(TypeError, match="NoDecide must implement decide"):
        NoDecide().apply(frame)


def test_filter_apply_marks_and_keeps_rows():
    class Short(ik.Filter):
        name = ""

        def reasons(self, frame):
            return pl.when(pl.col("instruction") == "q1").then(pl.lit("short"))

    marked = Short().apply(records(3).to_polars())
    assert marked.height == 3 and marked[REASON].to_list() == [None, "short", None]


# the registry ----------------------------------------------------------------------------------
def test_only_named_concrete_steps_are_registered():
    class Named(ik.Map):
        name = "test.mutants_named"

        def apply(self, frame):
            return frame

    class Abstract(ik.Map, metaclass=abc.ABCMeta):
        name = "test.mutants_abstract"

        @abc.abstractmethod
        def helper(self) -> None: ...

    class Nameless(ik.Map):
        def apply(self, frame):
            return frame

    steps = T.registry()
    assert steps["test.mutants_named"] is Named
    assert "test.mutants_abstract" not in steps
    assert "" not in steps and Nameless not in steps.values()
    assert {"normalize", "quality", "dedup.exact"} <= set(steps)


# params, config and repr --------------------------------------------------------------------
class Params(ik.Map):
    name = "test.mutants_params"

    def __init__(self, required: int, fields: tuple[str, ...] = ("a", "b"), flag: bool = True,
                 unstored: int = 0, *extra: int, **options: int) -> None:
        self.required = required
        self.fields = fields
        self.flag = flag
        self.extra = extra
        self.options = options

    def apply(self, frame):
        return frame


def test_get_params_lists_stored_named_params_only():
    step = Params(5, flag=False)
    assert step.get_params() == {"required": 5, "fields": ("a", "b"), "flag": False}


def test_to_config_leaves_defaults_out_and_compares_tuples_as_lists():
    assert Params(5).to_config() == {"test.mutants_params": {"required": 5}}
    assert Params(5, fields=["a", "b"]).to_config() == {"test.mutants_params": {"required": 5}}
    changed = Params(5, fields=("c",), flag=False).to_config()
    assert changed == {"test.mutants_params": {"required": 5, "fields": ["c"], "flag": False}}


def test_repr_shows_required_and_changed_params():
    assert repr(Params(5)) == "Params(required=5)"
    assert repr(Params(5, flag=False)) == "Params(required=5, flag=False)"


def test_plain_turns_nested_tuples_into_lists():
    assert T._plain(({"k": (1, (2,))}, "s")) == [{"k": [1, [2]]}, "s"]


# from_config -----------------------------------------------------------------------------------
def test_from_config_forms_and_errors():
    assert from_config("normalize").to_config() == {"normalize": {}}
    assert from_config({"normalize": None}).to_config() == {"normalize": {}}
    step = from_config({"dedup.exact": {"keep": "longest"}})
    assert step.keep == "longest"
    with pytest.raises(ValueError, match="one {name: params} mapping"):
        from_config({"normalize": {}, "quality": {}})
    with pytest.raises(ValueError, match="one {name: params} mapping"):
        from_config({})
    with pytest.raises(ValueError, match=r"unknown step 'nope'; known steps: \[.*'normalize'"):
        from_config({"nope": {}})
    with pytest.raises(ValueError, match="bad parameters for step 'normalize'"):
        from_config({"normalize": {"no_such_param": 1}})


# the removal detail ----------------------------------------------------------------------------
def test_detail_is_compact_sorted_json_that_keeps_unicode():
    assert detail(b=1, a="é") == '{"a":"é","b":1}'
    assert parse_detail(detail(b=1, a="é")) == {"a": "é", "b": 1}


def test_detail_expr_sorts_keys():
    f = pl.DataFrame({"k": ["x"], "s": [1]})
    assert f.select(detail_expr(z=pl.col("s"), a=pl.col("k"))).item() == '{"a":"x","z":1}'


def test_parse_detail_of_nothing_and_of_non_objects():
    assert parse_detail(None) == {} and parse_detail("") == {}
    with pytest.raises(ValueError, match="a removal detail is a JSON object"):
        parse_detail("[1, 2]")


# mark and apply_drops --------------------------------------------------------------------------
def test_mark_accepts_every_reason_form():
    f = pl.DataFrame({"x": [1, 2]})
    assert mark(f, None)[REASON].to_list() == [None, None]
    assert mark(f, "all")[REASON].to_list() == ["all", "all"]
    marked = mark(f, pl.Series([None, 3]), "d")
    assert marked[REASON].to_list() == [None, "3"] and marked[DETAIL].to_list() == [None, "d"]
    with_detail = mark(f, pl.DataFrame({"reason": ["r", None], "detail": ["why", "unused"]}))
    assert with_detail[REASON].to_list() == ["r", None] and with_detail[DETAIL].to_list() == ["why", None]
    without = mark(f, pl.DataFrame({"reason": [None, "r"]}))
    assert without[REASON].to_list() == [None, "r"] and without[DETAIL].to_list() == [None, None]


def test_mark_keeps_the_first_reason_and_its_detail():
    f = mark(pl.DataFrame({"x": [1, 2]}), pl.Series(["first", None]), pl.lit("d1"))
    again = mark(f, pl.lit("second"), pl.lit("d2"))
    assert again[REASON].to_list() == ["first", "second"]
    assert again[DETAIL].to_list() == ["d1", "d2"]


def test_apply_drops_on_an_unmarked_and_a_marked_frame():
    f = pl.DataFrame({"id": ["a", "b", "c"]})
    drops = pl.DataFrame({"id": ["b", "c"], "reason": ["dup", "dup"], "detail": ['{"k":1}', None]})
    once = T.apply_drops(f, drops)
    assert once.columns == ["id", REASON, DETAIL]
    assert once[REASON].to_list() == [None, "dup", "dup"]
    earlier = mark(f, pl.Series([None, None, "older"]), "old")
    twice = T.apply_drops(earlier, drops)
    assert twice[REASON].to_list() == [None, "dup", "older"]
    assert twice[DETAIL].to_list() == [None, '{"k":1}', "old"]


# dedup.exact -----------------------------------------------------------------------------------
def test_exact_decide_with_nothing_observed_is_an_empty_drop_frame():
    drops = ik.dedup.exact().decide([])
    assert drops.height == 0 and drops.columns == ["id", "reason", "detail"]


def test_exact_default_normalizes_case_punctuation_and_spaces():
    rows = [{"instruction": "Say hi!", "output": "Hi"}, {"instruction": "say  hi", "output": "hi"},
            {"instruction": "SAY HI.", "output": "HI"}]
    out = ik.Dataset.from_records(rows, source="s").pipe(ik.dedup.exact())
    assert out.to_polars()["id"].to_list() == ["s:0"]
    assert [parse_detail(d)["kept"] for d in out.removed["detail"]] == ["s:0", "s:0"]


def test_exact_leaves_upsampled_copies_alone_and_never_keeps_them():
    rows = [
        {"instruction": "q", "output": "a", "repeat": 1},
        {"instruction": "q", "output": "a"},
        {"instruction": "q", "output": "a", "repeat": 2},
        {"instruction": "q", "output": "a"},
    ]
    out = ik.Dataset.from_records(rows, source="s").pipe(ik.dedup.exact())
    assert out.to_polars()["id"].to_list() == ["s:0", "s:1", "s:2"]
    assert out.removed["id"].to_list() == ["s:3"]
    assert json.loads(out.removed["detail"][0])["kept"] == "s:1"


def test_exact_against_reference_only_drops_the_new_records():
    ref = ik.Dataset.from_records([{"instruction": "q", "output": "a"}] * 2, source="ref")
    new = ik.Dataset.from_records(
        [{"instruction": "q", "output": "a"}, {"instruction": "other", "output": "b"}], source="new")
    out = new.pipe(ik.dedup.exact(against=ref))
    assert out.to_polars()["id"].to_list() == ["new:1"]
    assert out.removed["id"].to_list() == ["new:0"]
    assert json.loads(out.removed["detail"][0])["kept"].startswith("ref:")


def test_exact_against_reference_keeps_the_reference_even_when_shorter():
    ref = ik.Dataset.from_records([{"instruction": "q", "output": "a"}], source="ref")
    new = ik.Dataset.from_records([{"instruction": "Q!!!", "output": "A..."}], source="new")
    out = new.pipe(ik.dedup.exact(against=ref, keep="longest"))
    assert len(out) == 0 and json.loads(out.removed["detail"][0])["kept"] == "ref:0"
    assert len(new.pipe(ik.dedup.exact(keep="longest"))) == 1


def test_exact_without_normalization_compares_the_raw_text():
    rows = [{"instruction": "Say hi!", "output": "Hi"}, {"instruction": "say hi", "output": "hi"},
            {"instruction": "Say hi!", "output": "Hi"}]
    out = ik.Dataset.from_records(rows, source="s").pipe(ik.dedup.exact(normalize=False))
    assert out.to_polars()["id"].to_list() == ["s:0", "s:1"]
    assert out.removed["id"].to_list() == ["s:2"]


def test_progress_moves_on_steps_shorter_than_one_batch(monkeypatch) -> None:
    """With progress shown, a step over fewer rows than batch_size still runs in about twenty
    slices (of at least MIN_PROGRESS_SLICE rows), and gives the same result as in one."""
    import polars as pl

    import instructkit as ik
    from instructkit import _progress
    from instructkit.transform import MIN_PROGRESS_SLICE

    seen: list[int] = []

    class Upper(ik.Map):
        name = "test.upper_slices"

        def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
            seen.append(frame.height)
            return frame.with_columns(pl.col("instruction").str.to_uppercase())

    ds = ik.Dataset.from_records([{"instruction": f"task {i}", "output": "x"} for i in range(10_000)])
    quiet = ds.pipe(Upper())
    assert seen == [10_000]
    seen.clear()
    monkeypatch.setattr(_progress, "_quiet", False)
    shown = ds.pipe(Upper(), ik.dedup.exact())
    assert seen == [MIN_PROGRESS_SLICE] * 5
    assert shown.to_polars().equals(quiet.pipe(ik.dedup.exact()).to_polars())
