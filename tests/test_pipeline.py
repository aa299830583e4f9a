import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import instructkit as ik
from instructkit.transform import (
    REASON,
    apply_drops,
    detail_expr,
    from_config,
    parse_detail,
    registry,
)


class FirstWordDup(ik.Global):
    """Test Global step: drops records whose first instruction word was seen before."""

    name = "test.first_word_dup"

    def __init__(self, lower: bool = True):
        self.lower = lower

    def observe(self, batch):
        words = batch["instruction"].str.split(" ").list.first().fill_null("")
        if self.lower:
            words = words.str.to_lowercase()
        return batch.select("id").with_columns(words.alias("w"))

    def decide(self, states):
        allrows = pl.concat(states)
        first = allrows.group_by("w", maintain_order=True).agg(pl.col("id").first().alias("kept"))
        dropped = allrows.join(first, on="w").filter(pl.col("id") != pl.col("kept"))
        return dropped.select("id", pl.lit("dup_word").alias("reason"), detail_expr(kept=pl.col("kept")).alias("detail"))


def make(n=6):
    return ik.Dataset.from_records(
        [{"instruction": f"w{k % 3} text {k}", "output": "x" if k % 4 else ""} for k in range(n)], source="t"
    )


def test_pipe_moves_drops_to_removed_with_step_reason_detail():
    ds = make().pipe(ik.quality(), FirstWordDup())
    assert len(ds) + ds.removed.height == 6
    assert set(ds.removed["reason"]) == {"empty_output", "dup_word"}
    row = ds.removed.filter(pl.col("reason") == "dup_word").row(0, named=True)
    assert row["step"] == "test.first_word_dup" and parse_detail(row["detail"])["kept"].startswith("t:")
    assert REASON not in ds.columns


def test_report_rows_per_step():
    ds = make().pipe(ik.normalize(), ik.quality(), FirstWordDup())
    rep = ds.report()
    assert rep["step"].to_list() == ["normalize", "quality", "test.first_word_dup"]
    assert rep["records_in"].to_list() == [6, 6, 4]
    assert rep["records_out"][-1] == len(ds)
    assert rep["reasons"][1] == "empty_output=2"
    assert all(s >= 0 for s in rep["seconds"])


def test_transform_repr_params_and_config():
    q = ik.quality(min_words={"instruction": 3}, refusals=None)
    assert repr(q) == "Quality(min_words={'instruction': 3}, refusals=None)"
    assert q.get_params()["min_words"] == {"instruction": 3}
    assert q.to_config() == {"quality": {"min_words": {"instruction": 3}, "refusals": None}}
    again = from_config(q.to_config())
    assert repr(again) == repr(q)
    assert "normalize" in registry() and "quality" in registry()


def test_pipeline_yaml_round_trip(tmp_path):
    pipe = ik.Pipeline([ik.normalize(form="NFKC"), ik.quality(max_chars={"output": 100})])
    path = tmp_path / "recipe.yaml"
    pipe.to_yaml(path)
    loaded = ik.Pipeline.from_yaml(path)
    assert repr(loaded) == repr(pipe)
    ds = make()
    assert loaded(ds).to_polars().equals(pipe(ds).to_polars())


def test_recipe_errors_are_clear():
    with pytest.raises(ValueError, match="unknown step 'nope'"):
        ik.Pipeline.from_yaml("steps: [nope]")
    with pytest.raises(ValueError, match="bad parameters for step 'quality'"):
        ik.Pipeline.from_yaml("steps: [{quality: {wrong: 1}}]")
    with pytest.raises(TypeError, match="not a Transform"):
        ik.Pipeline([lambda d: d])


def test_run_recipe_reads_runs_writes(tmp_path):
    from instructkit.pipeline import run_recipe

    (tmp_path / "in.jsonl").write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": ""}\nbad\n')
    (tmp_path / "r.yaml").write_text(
        "inputs: [{path: in.jsonl, on_error: skip}]\nsteps: [normalize, quality]\n"
        "output: {path: out/clean.jsonl}\nremoved: out/removed.jsonl\n"
    )
    result = run_recipe(tmp_path / "r.yaml")
    assert len(result.dataset) == 1
    removed = pl.read_ndjson(result.files["removed"])
    assert sorted(removed["reason"].to_list()) == ["empty_output", "parse_error"]
    assert ik.read(result.files["output"])[0]["instruction"] == "a"
    with pytest.raises(ValueError, match="unknown recipe section"):
        run_recipe("steps: []\nstepz: []\n")


def test_recipe_runs_out_of_core(tmp_path):
    from instructkit.pipeline import run_recipe

    lines = [json.dumps({"instruction": f"task {i % 30}", "output": "" if i % 7 == 0 else f"answer {i % 30}"})
             for i in range(100)]
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:60]) + "\nnot json\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[60:]) + "\n")
    recipe = (
        "inputs: [{path: a.jsonl, on_error: skip}, {path: b.jsonl, on_error: skip}]\n"
        "steps: [normalize, quality, dedup.exact]\nrun: {batch_size: 25, output: clean}\n"
    )
    (tmp_path / "r.yaml").write_text(recipe)
    result = run_recipe(tmp_path / "r.yaml")
    assert result.dataset is None and result.run is not None
    assert len(result.run.shards) == 5  # 61 lines in 3 batches of a.jsonl, 40 in 2 of b.jsonl
    streamed = result.run.to_dataset()
    memory = ik.read([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], on_error="skip").pipe(
        ik.normalize(), ik.quality(), ik.dedup.exact())
    assert streamed.to_polars().equals(memory.to_polars())
    assert len(streamed) + streamed.removed.height == 101
    assert result.report()["records_out"].to_list() == memory.report()["records_out"].to_list()
    # run= overrides the section: resume=False starts over in the same folder
    again = run_recipe(tmp_path / "r.yaml", run={"resume": False})
    assert again.run.skipped == 0 and again.run.records_out == len(memory)
    with pytest.raises(ValueError, match=r"\['report'\] need the whole dataset in memory"):
        run_recipe(recipe + "report: r.html\n", base=tmp_path)
    with pytest.raises(ValueError, match="needs an output folder"):
        run_recipe("inputs: [a.jsonl]\nsteps: []\nrun: {executor: local}\n", base=tmp_path)
    with pytest.raises(ValueError, match="share their reader options"):
        run_recipe("inputs: [{path: a.jsonl, on_error: skip}, b.jsonl]\nsteps: []\nrun: {output: o}\n",
                   base=tmp_path)
    with pytest.raises(ValueError, match=r"unknown 'run:' option\(s\) \['threads'\]"):
        run_recipe("inputs: [a.jsonl]\nsteps: []\nrun: {output: o, threads: 2}\n", base=tmp_path)


def test_apply_drops_keeps_earlier_marks():
    f = pl.DataFrame({"id": ["a", "b"]})
    d = pl.DataFrame({"id": ["b"], "reason": ["dup"], "detail": ["of a"]})
    assert apply_drops(f, d)[REASON].to_list() == [None, "dup"]


def test_filter_method_and_concat_and_by_source():
    a = ik.Dataset.from_records([{"instruction": "x", "output": "1"}], source="a")
    b = ik.Dataset.from_records([{"instruction": "y", "output": ""}], source="b")
    both = ik.concat([a, b])
    assert sorted(both.by_source()) == ["a", "b"]
    kept = both.filter(pl.col("output") != "", reason="no_output")
    assert len(kept) == 1 and kept.removed["reason"].to_list() == ["no_output"]
    with pytest.raises(ValueError, match="appears more than once"):
        ik.concat([a, a])


def test_dataset_basics_and_repr():
    ds = make(3)
    assert len(ds) == 3 and len(ds.head(2)) == 2
    rows = list(ds)
    assert rows[0]["id"] == "t:0" and rows[0]["meta"] == {}
    assert isinstance(ds.to_polars(), pl.DataFrame)
    text = repr(ds)
    assert "Dataset(3 records, 0 removed" in text and "t: 3" in text


def test_batched_steps_match_unbatched(monkeypatch):
    ds = make(50)
    whole = ds.pipe(ik.quality())
    monkeypatch.setattr(ik.quality, "batch_size", 7)
    batched = ds.pipe(ik.quality())
    assert batched.to_polars().equals(whole.to_polars())
    assert batched.removed.equals(whole.removed)


record = st.fixed_dictionaries({
    "instruction": st.sampled_from(["", "Draw a map", "Say hi", "say hi", "Count", " x "]),
    "output": st.sampled_from(["", " ", "ok", "As an AI language model, no", "fine"]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, max_size=30), st.lists(st.sampled_from(["normalize", "quality", "dup"]), max_size=4))
def test_invariant_nothing_lost(records, step_names):
    steps = {"normalize": ik.normalize, "quality": ik.quality, "dup": FirstWordDup}
    ds = ik.Dataset.from_records(records, source="h")
    out = ds.pipe(*[steps[s]() for s in step_names])
    assert len(ds) == len(out) + out.removed.height
    kept, removed = set(out.to_polars()["id"]), set(out.removed["id"])
    assert not kept & removed
    assert kept | removed == set(ds.to_polars()["id"])
    assert out.removed["reason"].null_count() == 0
