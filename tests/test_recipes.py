"""Recipes do what they say: order (steps, then mix, then split), exact quotas from clean
records, clear errors for unknown keys, and a run record next to the output."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import polars as pl
import pytest
import yaml

import instructkit as ik
from instructkit.pipeline import Pipeline, check_recipe, run_recipe
from instructkit.provenance import FILENAME, read_run_record
from instructkit.sampling.mix import ExcessiveRepeatWarning, UpsampleWarning, mix_report
from instructkit.transform import registry

TOPICS = ["river", "garden", "market", "library", "mountain", "kitchen", "harbor", "forest",
          "station", "museum", "bridge", "village", "island", "desert", "castle", "factory"]
VERBS = ["Describe", "Explain", "Summarize", "List", "Compare", "Imagine", "Plan", "Review"]


def english(kind: str, i: int) -> dict[str, str]:
    topic, other = TOPICS[i % len(TOPICS)], TOPICS[(i // len(TOPICS)) % len(TOPICS)]
    verb = VERBS[(i // 7) % len(VERBS)]
    return {"instruction": f"{verb} the {topic} near the {other} for {kind} exercise number {i}, "
                           "with two short sentences about the weather and the people there.",
            "input": "", "output": f"The {topic} is quiet today and the people walk slowly ({i})."}


def french(i: int) -> dict[str, str]:
    return {"instruction": f"Décrivez la rivière et le jardin du village numéro {i}, avec deux "
                           "phrases courtes sur le temps qu'il fait et les gens qui y vivent.",
            "input": "", "output": f"La rivière est calme aujourd'hui ({i})."}


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def four_inputs(tmp_path: Path) -> Path:
    """code: 1,400 clean of 1,460 (40 duplicates, 20 French); chat: 700 clean of 730
    (30 duplicates): below its 900 quota; math: 1,500; other: 200 (weight 0)."""
    code = [english("code", i) for i in range(1400)]
    write_jsonl(tmp_path / "code.jsonl", code + code[:40] + [french(i) for i in range(20)])
    chat = [english("chat", i) for i in range(700)]
    (tmp_path / "chat.json").write_text(json.dumps(chat + chat[100:130]), encoding="utf-8")
    write_jsonl(tmp_path / "math.jsonl", [english("math", i) for i in range(1500)])
    write_jsonl(tmp_path / "other.jsonl", [english("other", i) for i in range(200)])
    return tmp_path


RECIPE = """
inputs:
  - {path: code.jsonl, source: code, license: CC-BY-NC-4.0, origin: "sahil280114/codealpaca"}
  - {path: chat.json, source: chat}
  - {path: math.jsonl, source: math}
  - {path: other.jsonl, source: other}
mix: {weights: {code: 40, chat: 30, math: 30, other: 0}, total: 3000, seed: 7}
steps:
  - dedup.exact
  - langid: {keep: [en]}
output: {path: out/train.jsonl}
removed: out/removed.jsonl
"""


def test_mix_applies_after_the_cleaning_steps_at_exact_quotas(four_inputs: Path) -> None:
    (four_inputs / "recipe.yaml").write_text(RECIPE)
    with pytest.warns(UpsampleWarning, match=r"'chat' has 700 records for a target of 900: upsampled 1\.29x"):
        result = run_recipe(four_inputs / "recipe.yaml")
    ds = result.dataset
    assert ds.report()["step"].to_list()[-3:] == ["dedup.exact", "langid", "mix"]
    assert len(ds) == 3000
    counts = dict(ds.to_polars().group_by("source").len().rows())
    assert counts == {"code": 1200, "chat": 900, "math": 900}
    report = mix_report(ds)
    assert report.select("source", "available", "target", "repeated").rows() == [
        ("code", 1400, 1200, 0), ("chat", 700, 900, 200), ("math", 1500, 900, 0), ("other", 200, 0, 0)]
    # the quotas come from clean records: no dropped duplicate or French record is in the mix
    reasons = dict(ds.removed.group_by("reason").len().rows())
    assert reasons == {"exact_duplicate": 70, "language": 20, "mix_downsampled": 200 + 600 + 200}
    originals = ds.to_polars().filter(pl.col("meta").is_null() | ~pl.col("meta").str.contains("repeat_of"))
    assert originals.select("instruction", "input", "output").is_unique().all()
    # nothing lost
    assert 1460 + 730 + 1500 + 200 == len(ds) - 200 + ds.removed.height
    written = ik.read(result.files["output"])
    assert len(written) == 3000
    assert result.inputs[0] == {"path": four_inputs / "code.jsonl", "source": "code",
                                "license": "CC-BY-NC-4.0", "origin": "sahil280114/codealpaca"}


def test_run_record_is_written_next_to_the_output(four_inputs: Path) -> None:
    (four_inputs / "recipe.yaml").write_text(RECIPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        result = run_recipe(four_inputs / "recipe.yaml")
        first = result.files["provenance"].read_bytes()
        again = run_recipe(four_inputs / "recipe.yaml").files["provenance"].read_bytes()
    assert first == again  # no timings: the same recipe on the same files, the same record
    path = result.files["provenance"]
    assert path == four_inputs / "out" / FILENAME
    record = read_run_record(path.parent)
    assert record["instructkit_version"] == ik.__version__
    assert record["recipe"] == RECIPE and yaml.safe_load(record["recipe"])["mix"]["total"] == 3000
    code = record["inputs"][0]
    assert code["license"] == "CC-BY-NC-4.0" and code["origin"] == "sahil280114/codealpaca"
    data = (four_inputs / "code.jsonl").read_bytes()
    assert code["files"] == [{"path": str(four_inputs / "code.jsonl"), "bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()}]
    steps = {s["step"]: s for s in record["steps"]}
    assert steps["dedup.exact"]["by_reason"] == {"exact_duplicate": 70}
    assert steps["langid"]["by_reason"] == {"language": 20}
    assert steps["mix"]["records_out"] == 3000 and steps["mix"]["added"] == 200
    assert record["records_out"] == 3000 and record["records_in"] == 1460 + 730 + 1500 + 200
    assert record["seeds"] == {"mix": 7}
    out = record["outputs"]["output"][0]
    assert out["path"] == "train.jsonl"
    assert out["sha256"] == hashlib.sha256((four_inputs / "out" / "train.jsonl").read_bytes()).hexdigest()
    assert record["outputs"]["removed"][0]["path"] == "removed.jsonl"


def test_mix_as_a_step_runs_where_it_stands(four_inputs: Path) -> None:
    recipe = RECIPE.replace("mix: {weights: {code: 40, chat: 30, math: 30, other: 0}, total: 3000, seed: 7}\n", "")
    recipe = recipe.replace("  - dedup.exact\n", "  - dedup.exact\n  - mix: {weights: {code: 2, chat: 1, math: 1, other: 0}, "
                                                  "total: 1000, replace: false}\n")
    result = run_recipe(recipe, base=four_inputs)
    assert result.dataset.report()["step"].to_list()[-3:] == ["dedup.exact", "mix", "langid"]
    # langid ran after the mix, so the mix could draw French records that langid then dropped
    code = result.dataset.to_polars().filter(pl.col("source") == "code").height
    lost = result.dataset.removed.filter(pl.col("reason") == "language").height
    assert code + lost == 500 and len(result.dataset) == 1000 - lost
    record = read_run_record(result.files["provenance"])
    assert record["seeds"] == {"steps[1].mix": 0}


@pytest.mark.filterwarnings("ignore:mix. source 'code'", "ignore:mix. source 'math'")
def test_recipe_mix_errors(four_inputs: Path) -> None:
    missing = RECIPE.replace(", other: 0", "")
    with pytest.raises(ValueError, match=r"recipe mix: weights leave out source\(s\) \['other'\]"):
        run_recipe(missing, base=four_inputs)
    strict = RECIPE.replace("seed: 7}", "seed: 7, replace: false}")
    with pytest.raises(ValueError, match=r"source 'chat' has 700 records for a target of 900"):
        run_recipe(strict, base=four_inputs)
    both = RECIPE.replace("  - dedup.exact\n", "  - dedup.exact\n  - mix: {total: 10}\n")
    with pytest.raises(ValueError, match="top-level 'mix' section and a 'mix' item"):
        run_recipe(both, base=four_inputs)
    with pytest.raises(ValueError, match="step 0 is 'mix'.*ik.mix"):
        Pipeline.from_yaml("steps: [mix]")
    with pytest.raises(ValueError, match="use the 'sample' step"):
        run_recipe("inputs: [math.jsonl]\nsteps: [mix]\nrun: {output: o}\n", base=four_inputs)
    many = RECIPE.replace("total: 3000, seed: 7", "total: 30000, seed: 7, max_repeat_warn: 10")
    with pytest.warns(ExcessiveRepeatWarning, match="'chat' has 700 records for a target of 9000"):
        run_recipe(many, base=four_inputs)


@pytest.mark.parametrize(("recipe", "message"), [
    ("steps: []\nouptut: {path: a.jsonl}\n", r"unknown recipe section\(s\) \['ouptut'\]; valid: \['card', 'finetune', 'inputs'"),
    ("inputs: [{path: a.jsonl, licence: MIT}]\nsteps: []\n",
     r"unknown key\(s\) \['licence'\] in input 0 \(a.jsonl\); valid: \[.*'license', .*'on_error', .*'origin', 'path'"),
    ("inputs: [{source: a}]\nsteps: []\n", r"input 0 has no 'path'"),
    ("inputs: [a.jsonl]\nsteps: []\noutput: {path: o.jsonl, fromat: alpaca}\n",
     r"unknown key\(s\) \['fromat'\] in the recipe's 'output' section; valid: \[.*'format'.*'path'"),
    ("inputs: [a.jsonl]\nsteps: []\noutput: {format: alpaca}\n", r"'output' needs a path"),
    ("inputs: [a.jsonl]\nsteps: []\nsplit: {fraction: 0.1}\n",
     r"unknown key\(s\) \['fraction'\] in the recipe's 'split' section; valid: \['eval_fraction', 'group_by', 'seed', 'stratify'\]"),
    ("inputs: [a.jsonl]\nsteps: []\nmix: {weight: {a: 1}}\n",
     r"unknown key\(s\) \['weight'\] in the recipe's 'mix' section; valid: \[.*'weights'\]"),
    ("inputs: [a.jsonl]\nsteps: [{mix: {totl: 3}}]\n", r"unknown key\(s\) \['totl'\] in step 0 \(mix\)"),
    ("inputs: [a.jsonl]\nsteps: []\nrun: {output: o, threads: 2}\n", r"unknown 'run:' option\(s\) \['threads'\]"),
    ("inputs: [a.jsonl]\nsteps: []\nremoved: {path: r.jsonl}\n", r"'removed' is a file path"),
])
def test_unknown_keys_are_named_with_the_valid_ones(tmp_path: Path, recipe: str, message: str) -> None:
    write_jsonl(tmp_path / "a.jsonl", [english("a", 0)])
    with pytest.raises(ValueError, match=message):
        run_recipe(recipe, base=tmp_path)


def test_output_system_is_passed_to_the_writer_or_refused_clearly(tmp_path: Path) -> None:
    import inspect

    write_jsonl(tmp_path / "a.jsonl", [english("a", 0)])
    recipe = "inputs: [a.jsonl]\nsteps: []\noutput: {path: o.jsonl, format: text, template: llama2, system: Be brief.}\n"
    if "system" in inspect.signature(ik.Dataset.write).parameters:
        out = run_recipe(recipe, base=tmp_path).files["output"]
        assert "Be brief." in out.read_text()
    else:
        with pytest.raises(ValueError, match="'output' has 'system', but this instructkit's ds.write takes no"):
            run_recipe(recipe, base=tmp_path)


def test_license_and_origin_do_not_reach_the_reader(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [english("a", i) for i in range(3)])
    result = run_recipe("inputs: [{path: a.jsonl, license: MIT, origin: 'me/repo@abc'}]\nsteps: [normalize]\n"
                        "output: {path: o.jsonl}\n", base=tmp_path)
    assert len(result.dataset) == 3
    # kept out of the records: the alpaca writer would put meta keys into every row
    assert result.dataset.to_polars()["meta"].is_null().all()
    assert read_run_record(tmp_path)["inputs"] == [{
        "path": str(tmp_path / "a.jsonl"), "license": "MIT", "origin": "me/repo@abc",
        "files": [{"path": str(tmp_path / "a.jsonl"), "bytes": (tmp_path / "a.jsonl").stat().st_size,
                   "sha256": hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()}]}]


def test_recipe_with_mix_and_split_end_to_end(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "big.jsonl", [english("big", i) for i in range(300)])
    write_jsonl(tmp_path / "tiny.jsonl", [english("tiny", i) for i in range(9)])
    recipe = ("inputs: [big.jsonl, tiny.jsonl]\nsteps: [normalize, dedup.exact]\n"
              "mix: {weights: {big: 1, tiny: 1}, total: 600, seed: 1, max_repeat_warn: 50}\n"
              "split: {eval_fraction: 0.25, seed: 2}\noutput: {path: out/train.jsonl}\n")
    with pytest.warns(UpsampleWarning, match=r"'tiny' has 9 records for a target of 300: upsampled 33\.3x"):
        result = run_recipe(recipe, base=tmp_path)
    train, test = ik.read(result.files["output"]), ik.read(result.files["eval"])
    assert result.files["eval"] == tmp_path / "out" / "train.eval.jsonl"
    assert len(train) + len(test) == 600
    texts = [set(d.to_polars().select("instruction", "input", "output").iter_rows()) for d in (train, test)]
    assert texts[1] and not texts[0] & texts[1]
    # round(0.25 * 9) = 2 tiny originals and their 64 or 66 copies; 75 of 300 big ones
    per_source = dict(test.to_polars().group_by("source").len().rows())
    assert per_source["big"] == 75 and per_source["tiny"] in (66, 67, 68)
    record = read_run_record(result.files["provenance"])
    assert record["seeds"] == {"mix": 1, "split": 2}
    assert set(record["outputs"]) == {"output", "eval"}


def test_pipeline_run_writes_a_run_record(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [english("a", i % 30) for i in range(50)])
    pipe = ik.Pipeline([ik.normalize(), ik.dedup.exact(), ik.sample(total=10, seed=3)])
    result = pipe.run(tmp_path / "a.jsonl", output=tmp_path / "out", batch_size=20)
    record = read_run_record(tmp_path / "out")
    assert record["recipe"] == pipe.to_yaml()
    assert record["inputs"][0]["files"][0]["sha256"] == hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()
    assert [s["step"] for s in record["steps"]] == result.report()["step"].to_list()
    assert {s["step"]: s["records_out"] for s in record["steps"]}["sample"] == 10
    assert record["seeds"] == {"steps[2].sample": 3}
    assert sum(f["bytes"] for f in record["outputs"]["data"]) == sum(p.stat().st_size for p in result.shards)
    # no output folder, no record
    assert pipe.run(tmp_path / "a.jsonl").output is None


def test_check_recipe_accepts_a_full_recipe() -> None:
    check_recipe(yaml.safe_load(RECIPE))
    check_recipe({"inputs": ["a.jsonl"], "steps": ["normalize", {"mix": {"total": 3}}],
                  "split": {"eval_fraction": 0.1, "group_by": ["instruction"]}})


def test_real_data_recipe_at_exact_quotas(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "instructions"
    recipe = f"""
inputs:
  - {{path: {data / 'code_alpaca_2k.json'}, source: code, license: CC-BY-NC-4.0}}
  - {{path: {data / 'alpaca_en_demo.json'}, source: alpaca, license: Apache-2.0}}
  - {{path: {data / 'gpteacher_roleplay.json'}, source: roleplay}}
  - {{path: {data / 'alpaca_zh_demo.json'}, source: zh}}
steps: [normalize, dedup.exact, {{langid: {{keep: [en]}}}}]
mix: {{weights: {{code: 40, alpaca: 30, roleplay: 30, zh: 0}}, total: 3000, seed: 0}}
split: {{eval_fraction: 0.05, seed: 0}}
output: {{path: out/train.jsonl}}
"""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpsampleWarning)  # every source has enough clean records
        result = run_recipe(recipe, base=tmp_path)
    # measured: what each source kept after normalize, dedup.exact and langid(keep=[en])
    assert mix_report(result.dataset)["available"].to_list() == [2009, 983, 3146, 2]
    both = ik.concat([result.dataset, result.eval])
    assert len(both) == 3000
    assert dict(both.to_polars().group_by("source").len().rows()) == {"code": 1200, "alpaca": 900, "roleplay": 900}
    train_text = set(result.dataset.to_polars().select("instruction", "input", "output").iter_rows())
    eval_text = set(result.eval.to_polars().select("instruction", "input", "output").iter_rows())
    assert eval_text and not train_text & eval_text
    assert (tmp_path / "out" / FILENAME).is_file()


def test_pipeline_run_record_says_why_it_has_no_recipe(tmp_path: Path) -> None:
    class Opaque(ik.Map):
        """A user step whose parameter YAML cannot hold (named after creation, so it stays
        out of the step registry that other tests walk)."""

        def __init__(self, thing: object = None) -> None:
            self.thing = thing

        def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
            return frame

    Opaque.name = "test.opaque_param"
    assert "test.opaque_param" not in registry()
    write_jsonl(tmp_path / "a.jsonl", [english("a", i) for i in range(4)])
    with pytest.warns(UserWarning, match="holds no recipe: the steps do not convert to YAML"):
        result = ik.Pipeline([Opaque(thing=object())]).run(tmp_path / "a.jsonl", output=tmp_path / "out")
    assert result.records_out == 4
    record = read_run_record(tmp_path / "out")
    assert record["recipe"] is None and "RepresenterError" in record["recipe_error"]


def test_run_record_hashes_are_computed_beside_the_run_and_errors_reach_the_caller() -> None:
    from instructkit.pipeline import _Background

    assert _Background(sum, [1, 2]).result() == 3
    with pytest.raises(ZeroDivisionError):
        _Background(lambda: 1 / 0).result()
