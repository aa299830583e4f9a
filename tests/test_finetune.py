"""ik.finetune / ik.generate on a tiny random Llama, on CPU and offline."""

from __future__ import annotations

import argparse
import json
import os

import pytest
from extras import require

require("torch")
require("transformers")
require("peft")
require("bitsandbytes")

import torch  # noqa: E402

import instructkit as ik  # noqa: E402
from instructkit.training.data import (  # noqa: E402
    IGNORE_INDEX,
    Example,
    batches,
    collate,
    tokenize_records,
)
from instructkit.training.qlora import content_hash  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"
torch.set_num_threads(1)

FAST = {"batch_size": 4, "gradient_accumulation": 1, "lora_r": 8, "lora_alpha": 16,
        "lora_dropout": 0.0, "learning_rate": 5e-3, "max_seq_length": 128}


def _records(n: int = 50) -> list[dict[str, str]]:
    fruits = ["apple", "pear", "plum", "fig", "lime"]
    return [
        {"instruction": f"Name fruit number {i % 5}.", "input": "",
         "output": f"Fruit {i % 5} is the {fruits[i % 5]}."}
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tiny_llama import build_tiny_llama

    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny_llama")))


@pytest.fixture(scope="session")
def tokenizer(tiny_model: str):  # noqa: ANN201
    from instructkit.training.model import load_tokenizer

    return load_tokenizer(tiny_model)


@pytest.fixture(scope="session")
def dataset() -> ik.Dataset:
    import polars as pl

    raw = ik.Dataset.from_records(
        [*_records(50), {"instruction": "drop me", "output": ""}], source="fruits"
    )
    # a pipeline step, so the run record has a history to keep
    return raw.filter(pl.col("output") != "", reason="empty_output", step="non_empty")


@pytest.fixture(scope="session")
def qlora_run(tiny_model: str, dataset: ik.Dataset, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("qlora")
    return ik.finetune(dataset, tiny_model, out, max_steps=30, eval_fraction=0.1,
                       eval_every=10, **FAST)


# tokenization -----------------------------------------------------------------------------


def test_prompt_tokens_are_masked_and_response_kept(tokenizer) -> None:  # noqa: ANN001
    from instructkit.templates.formats import get_format

    fmt = get_format("alpaca", tokenizer=tokenizer)
    record = {"id": "r0", "instruction": "Name a fruit.", "input": "", "output": "An apple."}
    (ex,), stats = tokenize_records([record], fmt, tokenizer, max_seq_length=512)
    assert ex.input_ids[0] == tokenizer.bos_token_id and ex.labels[0] == IGNORE_INDEX
    learned = [t for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab != IGNORE_INDEX]
    assert tokenizer.decode(learned) == "An apple.</s>"
    prompt = [t for t, lab in zip(ex.input_ids[1:], ex.labels[1:], strict=True) if lab == IGNORE_INDEX]
    assert tokenizer.decode(prompt) == fmt.prompt(record)
    assert stats.truncated == 0 and stats.response_tokens == len(learned)


def test_llama2_template_bos_not_doubled(tokenizer) -> None:  # noqa: ANN001
    from instructkit.templates.formats import get_format

    fmt = get_format("llama2")
    (ex,), _ = tokenize_records([{"instruction": "Hi", "output": "Yo"}], fmt, tokenizer, 64)
    assert ex.input_ids.count(tokenizer.bos_token_id) == 1
    assert ex.input_ids[-1] == tokenizer.eos_token_id and ex.labels[-1] == tokenizer.eos_token_id


def test_truncation_is_counted_and_empty_responses_skipped(tokenizer) -> None:  # noqa: ANN001
    from instructkit.templates.formats import get_format

    fmt = get_format("alpaca", tokenizer=tokenizer)
    records = [
        {"id": "short", "instruction": "Hi", "output": "Yo"},
        {"id": "long_answer", "instruction": "Hi", "output": "word " * 200},
        {"id": "long_prompt", "instruction": "word " * 200, "output": "Yo"},
    ]
    examples, stats = tokenize_records(records, fmt, tokenizer, max_seq_length=64)
    assert [e.id for e in examples] == ["short", "long_answer"]
    assert stats.truncated == 2 and stats.truncated_ids == ["long_answer", "long_prompt"]
    assert stats.skipped_no_response == 1 and stats.skipped_ids == ["long_prompt"]
    assert max(len(e.input_ids) for e in examples) == 64 == stats.max_length


def test_collate_pads_right_and_masks() -> None:
    batch = collate([Example("a", [5, 6, 7], [-100, 6, 7]), Example("b", [5], [5])], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [5, -100, -100]]


def test_batches_are_seeded() -> None:
    exs = [Example(str(i), [i], [i]) for i in range(10)]
    order = lambda seed, epoch: [e.id for b in batches(exs, 3, seed, epoch) for e in b]  # noqa: E731
    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1) and sorted(order(0, 1)) == sorted(order(0, 0))


# QLoRA run --------------------------------------------------------------------------------


def test_qlora_loss_decreases(qlora_run) -> None:  # noqa: ANN001
    losses = qlora_run.train_loss
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    evals = [loss for _, loss in qlora_run.eval_loss]
    assert [s for s, _ in qlora_run.eval_loss] == [10, 20, 30]
    assert evals[-1] < evals[0]
    assert qlora_run.run["resolved"]["quantization"] == "nf4"
    assert qlora_run.run["resolved"]["optimizer"] == "adamw"


def test_qlora_outputs(qlora_run, dataset: ik.Dataset) -> None:  # noqa: ANN001
    out = qlora_run.output_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
                 "training_log.json", "loss_curve.png", "instructkit_run.json"):
        assert (out / name).is_file(), name
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = json.loads((out / "training_log.json").read_text())["steps"]
    assert [r["step"] for r in log] == list(range(1, 31))
    assert all(r["train_loss"] > 0 for r in log) and log[9]["eval_loss"] is not None
    run = json.loads((out / "instructkit_run.json").read_text())
    assert run["dataset"]["records"] == 50 == len(dataset)
    assert run["dataset"]["content_hash"] == content_hash(dataset)
    assert run["dataset"]["removed"] == 1
    assert [h["step"] for h in run["dataset"]["history"]] == ["non_empty"]
    assert run["dataset"]["report"][0]["reasons"] == "empty_output=1"
    hp = run["hyperparameters"]
    assert hp["lora_r"] == 8 and hp["max_steps"] == 30 and hp["template"] == "alpaca"
    assert hp["quantization"] == "auto" and hp["seed"] == 0
    assert run["split"] == {"train_examples": 45, "eval_examples": 5,
                            "eval_ids": run["split"]["eval_ids"]}
    assert run["tokenization"]["truncated"] == 0
    assert run["tokenization"]["method"] == "offsets"
    assert run["tokenization"]["boundary_merges"] == 0 == len(run["tokenization"]["boundary_merge_ids"])
    assert run["data_provenance"] is None and run["checkpoints"]["save_every"] is None


def test_adapter_reloads_with_same_eval_loss(
    qlora_run, tiny_model: str, tokenizer, dataset: ik.Dataset  # noqa: ANN001
) -> None:
    from peft import PeftModel

    from instructkit.templates.formats import get_format
    from instructkit.training.model import load_base_model
    from instructkit.training.qlora import evaluate

    run = qlora_run.run
    eval_ids = set(run["split"]["eval_ids"])
    fmt = get_format("alpaca", tokenizer=tokenizer)
    examples, _ = tokenize_records(
        [r for r in dataset if r["id"] in eval_ids], fmt, tokenizer, 128
    )
    base = load_base_model(tiny_model, "nf4", getattr(torch, run["resolved"]["compute_dtype"]), "cpu")
    model = PeftModel.from_pretrained(base, str(qlora_run.output_dir))
    loss = evaluate(model, examples, 4, tokenizer.pad_token_id, "cpu")
    assert loss == pytest.approx(run["result"]["final_eval_loss"], rel=1e-4)


def test_generate_base_and_tuned(qlora_run, tiny_model: str) -> None:  # noqa: ANN001
    prompts = ["Name fruit number 3.", {"instruction": "Name fruit number 1.", "input": ""}]
    table = ik.generate(tiny_model, prompts, adapter=qlora_run.output_dir, max_new_tokens=8)
    assert table.columns == ["prompt", "base", "tuned"]
    assert table["prompt"].to_list() == ["Name fruit number 3.", "Name fruit number 1."]
    assert table["tuned"].to_list() != table["base"].to_list()
    assert all(t.startswith("Fruit") for t in table["tuned"])  # learned the answer pattern
    again = ik.generate(tiny_model, prompts, adapter=qlora_run.output_dir, max_new_tokens=8)
    assert again.equals(table)
    sampled = ik.generate(tiny_model, prompts[:1], temperature=1.0, seed=3, max_new_tokens=6)
    assert sampled.equals(ik.generate(tiny_model, prompts[:1], temperature=1.0, seed=3,
                                      max_new_tokens=6))


# the bitsandbytes CPU packing bug ---------------------------------------------------------


def _lora_grads(model, ids) -> dict[str, torch.Tensor]:  # noqa: ANN001
    model.zero_grad(set_to_none=True)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if "lora_" in n}


@pytest.mark.parametrize("fix", ["at_load", "after_packing"])
def test_4bit_lora_gradients_match_dequantized_fp32(tiny_model: str, fix: str) -> None:
    """4-bit LoRA gradients equal those of an fp32 model holding the dequantized weights.

    Without the fix, an eval pass on an AVX512-BF16 CPU repacks the weights and the
    gradients are off by ~70% (measured); with it they agree to float rounding.
    """
    import bitsandbytes as bnb
    import bitsandbytes.functional as bf

    from instructkit.training.bnb_cpu import disable_cpu_weight_packing
    from instructkit.training.model import add_lora, load_base_model

    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear", "seed": 0}
    q = load_base_model(tiny_model, "nf4", torch.float32, "cpu")
    layers = {n: m for n, m in q.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert len(layers) == 14 and all(not m.support_avx512bf16_for_cpu for m in layers.values())
    if fix == "after_packing":
        # let the layers repack (as they do on an AVX512-BF16 CPU); the fix must undo it
        for m in layers.values():
            m.support_avx512bf16_for_cpu = bf.has_avx512bf16()
    q = add_lora(q, quantized=True, gradient_checkpointing=True, **lora)
    # LoRA B starts at zero (no gradient would reach A): use random adapters
    gen = torch.Generator().manual_seed(1)
    qp = {n: p for n, p in q.named_parameters() if "lora_" in n}
    with torch.no_grad():
        for p in qp.values():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    ids = torch.randint(4, 300, (2, 24), generator=gen)
    q.eval()
    with torch.no_grad():  # an eval pass, as finetune's eval loss runs: this is what repacks
        q(input_ids=ids)
    if fix == "after_packing":
        assert disable_cpu_weight_packing(q) == 14

    # the reference: fp32 Llama with the 4-bit weights dequantized, same adapters
    ref = load_base_model(tiny_model, None, torch.float32, "cpu")
    state = ref.state_dict()
    for name, m in layers.items():
        assert not getattr(m.weight.quant_state, "packing_format_for_cpu", False)
        state[f"{name}.weight"].copy_(bf.dequantize_4bit(m.weight.data, m.weight.quant_state))
    ref = add_lora(ref, quantized=False, gradient_checkpointing=False, **lora)
    rp = {n: p for n, p in ref.named_parameters() if "lora_" in n}
    assert qp.keys() == rp.keys() and qp
    with torch.no_grad():
        for n, p in rp.items():
            p.copy_(qp[n])

    got, want = _lora_grads(q, ids), _lora_grads(ref, ids)
    for name in want:
        err = (got[name] - want[name]).norm() / want[name].norm()
        assert err < 1e-4, f"{name}: relative gradient error {err:.3g}"


# plain LoRA + merge, CLI, determinism -----------------------------------------------------


def test_plain_lora_with_merge(tiny_model: str, dataset: ik.Dataset, tmp_path) -> None:  # noqa: ANN001
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = ik.finetune(dataset, tiny_model, tmp_path, quantization=None, max_steps=4,
                         eval_fraction=0.0, merge=True, **FAST)
    assert result.run["resolved"]["quantization"] is None
    assert result.merged_dir == tmp_path / "merged"
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    merged = AutoModelForCausalLM.from_pretrained(result.merged_dir, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(tmp_path)).eval()
        tuned_logits = tuned(input_ids=ids).logits
        merged_logits = merged(input_ids=ids).logits
    assert torch.allclose(merged_logits, tuned_logits, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)


def test_cli_matches_api_and_is_deterministic(tiny_model: str, tmp_path) -> None:  # noqa: ANN001
    import hashlib

    from instructkit.training.cli import add_parser

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records(20)))
    sidecar = tmp_path / "data.jsonl.provenance.json"
    sidecar.write_text('{"history": [{"step": "read"}]}\n')
    parser = argparse.ArgumentParser(prog="instructkit")
    add_parser(parser.add_subparsers())
    args = parser.parse_args([
        "finetune", str(data), "--base-model", tiny_model, "--output", str(tmp_path / "cli"),
        "--quantization", "none", "--max-steps", "3", "--batch-size", "4",
        "--gradient-accumulation", "2", "--lora-r", "4", "--lora-alpha", "8",
        "--max-seq-length", "96", "--eval-fraction", "0.1", "--seed", "7",
    ])
    assert args.func(args) == 0
    cli_log = json.loads((tmp_path / "cli" / "training_log.json").read_text())["steps"]
    cli_run = json.loads((tmp_path / "cli" / "instructkit_run.json").read_text())
    assert cli_run["data_provenance"] == [{
        "data_file": str(data), "provenance": str(sidecar),
        "sha256": hashlib.sha256(sidecar.read_bytes()).hexdigest()}]
    api = ik.finetune(ik.read(data), tiny_model, tmp_path / "api", quantization=None, max_steps=3,
                      batch_size=4, gradient_accumulation=2, lora_r=4, lora_alpha=8,
                      max_seq_length=96, eval_fraction=0.1, seed=7)
    assert [r["train_loss"] for r in cli_log] == api.train_loss
    assert (tmp_path / "cli" / "adapter_model.safetensors").read_bytes() == (
        tmp_path / "api" / "adapter_model.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantization": "int3"}, "quantization must be one of"),
        ({"eval_fraction": 1.5}, "eval_fraction"),
        ({"max_steps": 0}, "max_steps"),
        ({"optimizer": "sgd"}, "optimizer"),
    ],
)
def test_bad_arguments(tiny_model: str, tmp_path, kwargs: dict, message: str) -> None:  # noqa: ANN001
    ds = ik.Dataset.from_records(_records(4))
    with pytest.raises(ValueError, match=message):
        ik.finetune(ds, tiny_model, tmp_path, **kwargs)


def test_path_dataset_is_refused(tiny_model: str, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(TypeError, match="ik.read"):
        ik.finetune(str(tmp_path / "x.jsonl"), tiny_model, tmp_path)


# resume after kill -9 ---------------------------------------------------------------------

RESUME_ARGS = {"max_steps": 7, "save_every": 2, "batch_size": 4, "gradient_accumulation": 2,
               "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "learning_rate": 5e-3,
               "max_seq_length": 128, "eval_fraction": 0.1, "eval_every": 3, "seed": 3}

# The child trains with resume=True; with a kill step it SIGKILLs itself inside that step,
# after the backward passes and before the optimizer update: the work since the last
# checkpoint is lost, as with a real `kill -9`.
CHILD = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
import instructkit as ik
model, out, data, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
args = json.loads(sys.argv[5])
if kill_at:
    clip = torch.nn.utils.clip_grad_norm_
    calls = []
    def clip_then_die(*a, **k):
        calls.append(1)
        if len(calls) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return clip(*a, **k)
    torch.nn.utils.clip_grad_norm_ = clip_then_die
ik.finetune(ik.read(data), model, out, resume=True, **args)
"""


def _child(tiny_model: str, out, data, kill_at: int):  # noqa: ANN001, ANN202
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", INSTRUCTKIT_QUIET="1",
               PYTHONPATH=os.pathsep.join([str(Path(ik.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-c", CHILD, tiny_model, str(out), str(data), str(kill_at),
         json.dumps(RESUME_ARGS)],
        env=env, capture_output=True, text=True, timeout=600,
    )


def test_resume_after_kill_gives_the_same_adapter(tiny_model: str, tmp_path) -> None:  # noqa: ANN001
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records(40)))
    out = tmp_path / "killed"
    killed = _child(tiny_model, out, data, kill_at=6)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4"]
    assert not (out / "adapter_model.safetensors").exists()
    state = json.loads((out / "checkpoint-4" / "state.json").read_text())
    assert state["step"] == 4 and [r["step"] for r in state["log"]] == [1, 2, 3, 4]

    resumed = _child(tiny_model, out, data, kill_at=0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = ik.finetune(ik.read(data), tiny_model, tmp_path / "straight", **RESUME_ARGS)
    assert (out / "adapter_model.safetensors").read_bytes() == (
        straight.output_dir / "adapter_model.safetensors").read_bytes()
    log = json.loads((out / "training_log.json").read_text())["steps"]
    assert [r["train_loss"] for r in log] == straight.train_loss
    assert [r["eval_loss"] for r in log] == [r["eval_loss"] for r in straight.log]
    run = json.loads((out / "instructkit_run.json").read_text())
    assert run["checkpoints"] == {"save_every": 2, "resumed_from": "checkpoint-4",
                                  "resumed_at_step": 4}
    assert straight.run["checkpoints"]["resumed_from"] is None


def test_resume_refuses_another_run(tiny_model: str, tmp_path) -> None:  # noqa: ANN001
    ds = ik.Dataset.from_records(_records(12))
    args = dict(FAST, quantization=None, max_steps=3, save_every=2, eval_fraction=0.0)
    ik.finetune(ds, tiny_model, tmp_path, **args)
    assert (tmp_path / "checkpoint-2" / "state.json").is_file()
    with pytest.raises(ValueError, match=r"different run \(lora_r: 8 -> 4"):
        ik.finetune(ds, tiny_model, tmp_path, resume=True, **dict(args, lora_r=4))
    other = ik.Dataset.from_records(_records(13))
    with pytest.raises(ValueError, match="dataset content hash differs"):
        ik.finetune(other, tiny_model, tmp_path, resume=True, **args)


# provenance of the training data ----------------------------------------------------------


def test_data_provenance_links(tmp_path) -> None:  # noqa: ANN001
    import hashlib

    from instructkit.training.qlora import data_provenance

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    x = tmp_path / "a" / "train.jsonl"
    x.write_text("{}\n")
    sidecar = tmp_path / "a" / "train.jsonl.provenance.json"
    sidecar.write_text('{"history": []}\n')
    (tmp_path / "a" / "instructkit_run.json").write_text('{"recipe": "a"}\n')
    y = tmp_path / "b" / "other.jsonl"
    y.write_text("{}\n")
    run_json = tmp_path / "b" / "instructkit_run.json"
    run_json.write_text('{"recipe": "b"}\n')
    z = tmp_path / "loose.jsonl"
    z.write_text("{}\n")
    got = data_provenance([x, y, z])
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert got == [
        {"data_file": str(x), "provenance": str(sidecar), "sha256": sha(sidecar)},
        {"data_file": str(y), "provenance": str(run_json), "sha256": sha(run_json)},
        {"data_file": str(z), "provenance": None, "sha256": None},
    ]
    assert data_provenance(str(tmp_path / "b")) == [
        {"data_file": str(tmp_path / "b"), "provenance": str(run_json), "sha256": sha(run_json)}]
    assert [g["data_file"] for g in data_provenance(str(tmp_path / "*" / "*.jsonl"))] == [
        str(x), str(y)]


# parity with trl ---------------------------------------------------------------------------


def test_first_step_loss_and_tokens_match_trl(tiny_model: str, tokenizer, tmp_path) -> None:  # noqa: ANN001
    """The same records as prompt/completion text, completion-only loss: trl's SFTTrainer
    tokenizes them to the same ids and labels, and its loss on the batch equals ik's
    first-step loss (LoRA B starts at zero, so both are the base model's loss)."""
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from instructkit.templates.formats import get_format

    records = [dict(r, id=f"r{i}") for i, r in enumerate(_records(8))]
    records[3]["input"] = "with an input"
    fmt = get_format("alpaca", tokenizer=tokenizer)
    pairs = [fmt.split(r) for r in records]
    # the prompt carries the BOS that ik prepends (trl's tokenizer call adds none here)
    hf = datasets.Dataset.from_list(
        [{"prompt": tokenizer.bos_token + p, "completion": c} for p, c in pairs])
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    config = SFTConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=8,
                       max_steps=1, completion_only_loss=True, max_length=128, bf16=False,
                       use_cpu=True, report_to=[], dataloader_num_workers=0, seed=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=hf, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    rows = set()
    for ids, labels, mask in zip(batch["input_ids"].tolist(), batch["labels"].tolist(),
                                 batch["attention_mask"].tolist(), strict=True):
        n = sum(mask)
        rows.add((tuple(ids[:n]), tuple(labels[:n])))
    table = ik.tokenize(records, tokenizer, template="alpaca", max_seq_length=128)
    ours = {(tuple(r["input_ids"]), tuple(r["labels"])) for r in table.iter_rows(named=True)}
    assert rows == ours
    model.eval()
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(model, {k: v for k, v in batch.items()}))
    run = ik.finetune(records, tiny_model, tmp_path / "ik", quantization=None, max_steps=1,
                      batch_size=8, gradient_accumulation=1, eval_fraction=0.0,
                      lora_dropout=0.0, max_seq_length=128)
    assert run.train_loss[0] == pytest.approx(trl_loss, abs=1e-4)


def test_gpu_benchmark_data_preparation_runs_on_cpu(capsys) -> None:  # noqa: ANN001
    """The GPU benchmark imports, and its data preparation (no GPU needed) gives examples
    of exactly --seq-len tokens; without CUDA the timing part skips cleanly."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_finetune_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_finetune_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    small = ["--steps", "1", "--batch-size", "2", "--grad-accum", "1", "--seq-len", "512"]
    assert bench.main([*small, "--dry-run"]) == 0
    assert "data: 2 examples of 512 tokens" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert bench.main([*small, "--output", "/nonexistent/never_written.md"]) == 0
        assert "skipped: no CUDA GPU" in capsys.readouterr().out
