"""Workflow (c): several files -> explore -> langid -> dedup -> decontaminate -> mix -> split,
as one YAML recipe, with no train/eval leakage.

Inputs: alpaca_en_demo.json (999), alpaca_zh_demo.json (1,000), gsm8k_train_alpaca.json
(7,473), code_alpaca_seed_tasks.jsonl (21 seed tasks) and 5 GSM8K *test* items planted as a
positive control for decontamination.

Measured on ../shared/data (mix seed 0, split seed 0):
read 9,498 -> langid(keep en) removes 1,000 (998 Chinese + 2 others) -> dedup.exact 14 ->
decontaminate vs gsm8k_test 12 (the 5 planted + 7 GSM8K-train records) -> 8,472 clean:
alpaca 983, zh 2, math 7,466, seed 21, planted 0. mix 2,000 at 5/0/4/1/0: alpaca 1,000
(upsampled 1.02x), math 800, seed 200 (21 records, 9.52x: ExcessiveRepeatWarning). split
0.1: 1,802 train / 198 eval (alpaca 99, math 80, seed 19 = 2 seed tasks and their copies).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik
from instructkit.pipeline import run_recipe
from instructkit.provenance import read_run_record
from instructkit.sampling.mix import ExcessiveRepeatWarning, UpsampleWarning, mix_report


def texts(ds: ik.Dataset) -> set[tuple[str, str, str]]:
    return set(ds.to_polars().select("instruction", "input", "output").iter_rows())


def test_faq_pipeline(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "instructions"
    test_set = shared_data / "benchmarks" / "gsm8k_test.jsonl"
    planted = [json.loads(line) for line in test_set.read_text(encoding="utf-8").splitlines()[:5]]
    (tmp_path / "planted.jsonl").write_text("".join(
        json.dumps({"instruction": g["question"], "input": "", "output": g["answer"]}) + "\n"
        for g in planted))

    # explore first, as a user would
    stats = ik.read(data / "alpaca_en_demo.json").stats()
    assert stats.height > 0 and "source" in stats.columns

    recipe = f"""
inputs:
  - {{path: {data / 'alpaca_en_demo.json'}, source: alpaca, license: Apache-2.0}}
  - {{path: {data / 'alpaca_zh_demo.json'}, source: zh}}
  - {{path: {data / 'gsm8k_train_alpaca.json'}, source: math, license: CC-BY-NC-4.0}}
  - {{path: {data / 'code_alpaca_seed_tasks.jsonl'}, source: seed}}
  - {{path: planted.jsonl, source: planted, origin: gsm8k test (positive control)}}
steps:
  - normalize
  - langid: {{keep: [en]}}
  - dedup.exact
  - decontaminate: {{benchmarks: [{{gsm8k: {test_set}}}]}}
mix: {{weights: {{alpaca: 5, zh: 0, math: 4, seed: 1, planted: 0}}, total: 2000, seed: 0}}
split: {{eval_fraction: 0.1, seed: 0}}
output: {{path: out/train.jsonl}}
removed: out/removed.jsonl
"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_recipe(recipe, base=tmp_path)
    upsampled = {type(w.message): str(w.message) for w in caught if issubclass(w.category, UpsampleWarning)}
    assert "'seed' has 21 records for a target of 200: upsampled 9.52x" in upsampled[ExcessiveRepeatWarning]
    assert "'alpaca' has 983 records for a target of 1000" in upsampled[UpsampleWarning]

    report = result.dataset.report()
    assert report.select("step", "records_out").rows() == [
        ("read", 9498), ("normalize", 9498), ("langid", 8498), ("dedup.exact", 8484),
        ("decontaminate", 8472), ("mix", 2000)]
    removed = result.dataset.removed
    # the planted test items are caught
    planted_ids = set(removed.filter(pl.col("source") == "planted")["id"])
    assert len(planted_ids) == 5
    assert set(removed.filter(pl.col("source") == "planted")["reason"]) == {"contamination"}
    assert mix_report(result.dataset).select("source", "available", "target").rows() == [
        ("alpaca", 983, 1000), ("zh", 2, 0), ("math", 7466, 800), ("seed", 21, 200), ("planted", 0, 0)]

    train, test = ik.read(result.files["output"]), ik.read(result.files["eval"])
    assert (len(train), len(test)) == (1802, 198)
    assert dict(test.to_polars().group_by("source").len().rows()) == {"alpaca": 99, "math": 80, "seed": 19}
    # no eval record's text is in train, although 'seed' was repeated ~9.5 times
    assert not texts(train) & texts(test)
    # nothing lost: every record read is in train, eval or the removed log (minus the copies)
    copies = mix_report(result.dataset)["repeated"].sum()
    assert 9498 == len(train) + len(test) - copies + removed.height

    record = read_run_record(result.files["provenance"])
    assert [i.get("license") for i in record["inputs"]] == ["Apache-2.0", None, "CC-BY-NC-4.0", None, None]
    assert record["seeds"] == {"mix": 0, "split": 0}
    assert {s["step"]: s.get("by_reason") for s in record["steps"]}["decontaminate"] == {"contamination": 12}


def test_faq_pipeline_refuses_to_repeat_when_asked(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "instructions"
    recipe = f"""
inputs:
  - {{path: {data / 'alpaca_en_demo.json'}, source: alpaca}}
  - {{path: {data / 'code_alpaca_seed_tasks.jsonl'}, source: seed}}
steps: [normalize, dedup.exact]
mix: {{weights: {{alpaca: 9, seed: 1}}, total: 1000, replace: false}}
"""
    with pytest.raises(ValueError, match=r"source 'seed' has 21 records for a target of 100"):
        run_recipe(recipe, base=tmp_path)
