"""Fine-tuning as data: config files, a recipe's finetune: section, checks before loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import instructkit as ik
from instructkit.cli import main
from instructkit.pipeline import run_recipe

OPTIONS = {"quantization": None, "max_steps": 2, "batch_size": 4, "gradient_accumulation": 1,
           "lora_r": 4, "lora_alpha": 8, "max_seq_length": 96, "eval_fraction": 0.0, "seed": 3}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from tiny_llama import build_tiny_llama

    torch.set_num_threads(1)
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny_llama")))


def _data(folder: Path) -> Path:
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Name fruit {i}.", "output": f"Fruit {i}."}) + "\n"
                            for i in range(12)))
    return path


def test_a_missing_local_model_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ik.read(_data(tmp_path))
    with pytest.raises(FileNotFoundError, match="base model folder '.*nope' does not exist"):
        ik.finetune(ds, str(tmp_path / "nope"), tmp_path / "out")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not a local folder, and HF_HUB_OFFLINE is set"):
        ik.finetune(ds, "someorg/some-model", tmp_path / "out")


def test_a_mistyped_target_module_fails_before_weights_load(
    tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import instructkit.training.model as model

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights were loaded before target_modules was checked")

    monkeypatch.setattr(model, "load_base_model", no_load)
    with pytest.raises(ValueError, match=r"\['q_prj'\] match no linear layer.*'q_proj'"):
        ik.finetune(ik.read(_data(tmp_path)), tiny_model, tmp_path / "out", target_modules=["q_prj"])
    with pytest.raises(ValueError, match="regular expression"):
        ik.finetune(ik.read(_data(tmp_path)), tiny_model, tmp_path / "out", target_modules=r".*\.qq_proj")


def test_a_config_file_runs_as_the_command_line_does(tmp_path: Path, tiny_model: str) -> None:
    _data(tmp_path)
    config = tmp_path / "ft.yaml"
    config.write_text(yaml.safe_dump({"data": "train.jsonl", "base_model": tiny_model,
                                      "output_dir": "adapter", **OPTIONS}))
    assert main(["finetune", "--config", str(config)]) == 0
    from_config = (tmp_path / "adapter" / "adapter_model.safetensors").read_bytes()
    direct = ik.finetune(ik.read(tmp_path / "train.jsonl"), tiny_model, tmp_path / "direct", **OPTIONS)
    assert (direct.output_dir / "adapter_model.safetensors").read_bytes() == from_config
    assert main(["finetune", "--config", str(config), "--base-model", "x"]) == 2


def test_config_keys_are_checked(tmp_path: Path) -> None:
    from instructkit.training.config import load_config

    config = tmp_path / "ft.yaml"
    config.write_text("data: d.jsonl\nbase_model: m\noutput_dir: o\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['learning_rat'\]; valid: \[.*'learning_rate'"):
        load_config(config)
    config.write_text("data: d.jsonl\noutput_dir: o\n")
    with pytest.raises(ValueError, match=r"missing key\(s\) \['base_model'\]"):
        load_config(config)


def test_a_recipe_cleans_then_trains(tmp_path: Path, tiny_model: str) -> None:
    _data(tmp_path)
    recipe = {
        "inputs": [{"path": "train.jsonl"}],
        "steps": ["normalize", "dedup.exact"],
        "split": {"eval_fraction": 0.25, "seed": 0},
        "output": {"path": "clean/train.jsonl"},
        "finetune": {"base_model": tiny_model, "output_dir": "adapter", **OPTIONS},
    }
    result = run_recipe(yaml.safe_dump(recipe), base=tmp_path)
    run = json.loads((tmp_path / "adapter" / "instructkit_run.json").read_text())
    assert result.finetune.output_dir == tmp_path / "adapter"
    assert run["tokenization"]["records"] == len(result.dataset)
    links = json.dumps(run.get("data_provenance"))
    assert "instructkit_run.json" in links, "the fine-tune links the recipe's own run record"
    with pytest.raises(ValueError, match="'finetune' section: unknown key"):
        run_recipe(yaml.safe_dump({**recipe, "finetune": {**recipe["finetune"], "lora": 4}}), base=tmp_path)
