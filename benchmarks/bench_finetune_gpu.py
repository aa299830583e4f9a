"""GPU check of ``ik.finetune``: 4-bit QLoRA of a random ~1B Llama, against a Trainer baseline.

Both sides train the same tokenized examples for the same number of optimizer steps with the
same recipe (NF4 + double quantization, bf16 compute, ``prepare_model_for_kbit_training``
with gradient checkpointing, LoRA r=16 on all linear layers, paged 8-bit AdamW, cosine
schedule): once through ``ik.finetune`` and once through a hand-written
``transformers.Trainer`` + ``peft`` script. Runs alternate (ik, trainer, ik, trainer, ...);
the report gives medians of tokens/s and peak GPU memory, and ik's overhead against the
baseline (the target is at most 5%).

Before timing, the 4-bit base as ``ik.finetune`` loads it is checked: every
``Linear4bit`` must hold NF4 weights and compute in bfloat16, and the run record must say
``compute_dtype: bfloat16``.

Run on a CUDA machine (skips cleanly elsewhere; ``--dry-run`` checks the data preparation,
which needs no GPU):

    HF_HUB_OFFLINE=1 python benchmarks/bench_finetune_gpu.py --steps 50 --repeats 3
    python benchmarks/bench_finetune_gpu.py --dry-run

Writes ``benchmarks/results/finetune_gpu.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "finetune_gpu.md"

# TinyLlama-1.1B's shape: 1.1e9 parameters with a 32000 vocabulary
LLAMA_1B = {
    "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
    "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
    "max_position_embeddings": 2048,
}
WORDS = ("data model train token river stone cloud apple seven blue quick answer question "
         "reason light paper music garden window number").split()


def build_model(path: Path) -> int:
    """Random-init ~1B Llama + an offline BPE tokenizer saved under ``path``; returns #params."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = bench_tokenizer()
    config = LlamaConfig(
        **LLAMA_1B, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    return n


def records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Records long enough that every one is truncated to exactly ``--seq-len`` tokens (up to
    2048), so both loops see the same tokens per step and no padding."""
    import random

    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [{"instruction": text(100), "input": "", "output": text(2000)} for _ in range(n)]


def bench_tokenizer():  # noqa: ANN201
    """The offline BPE tokenizer both loops use."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_llama import build_tokenizer

    return build_tokenizer(texts=[" ".join(WORDS)] * 8, vocab_size=512)


def prepare(data: list[dict], tokenizer, seq_len: int) -> list:  # noqa: ANN001
    """Tokenize ``data`` as both loops do (``ik.finetune``'s tokenizer) and check that
    every example is exactly ``seq_len`` tokens with a learned part."""
    from instructkit.templates.formats import get_format
    from instructkit.training.data import tokenize_records

    examples, stats = tokenize_records(
        [dict(r, id=str(i)) for i, r in enumerate(data)],
        get_format("alpaca", tokenizer=tokenizer), tokenizer, seq_len,
    )
    lengths = {len(e.input_ids) for e in examples}
    if len(examples) != len(data) or lengths != {seq_len}:
        raise SystemExit(f"data preparation: {len(examples)}/{len(data)} examples, lengths {lengths}")
    if stats.response_tokens == 0:
        raise SystemExit("data preparation: no learned tokens")
    return examples


def check_nf4_bf16(model_dir: Path) -> int:
    """Load the base as ``ik.finetune`` does on CUDA; every 4-bit layer must be NF4 with
    bfloat16 compute. Returns the number of 4-bit layers."""
    import bitsandbytes as bnb
    import torch

    from instructkit.training.model import load_base_model, resolve_dtype

    dtype = resolve_dtype("auto", "cuda", quantized=True)
    if dtype != torch.bfloat16:
        raise SystemExit(f"NF4 check: ik resolves compute dtype {dtype} on this GPU, not bfloat16")
    model = load_base_model(model_dir, "nf4", dtype, "cuda")
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    bad = [(type(m).__name__, m.compute_dtype, m.weight.quant_type) for m in layers
           if m.compute_dtype != torch.bfloat16 or m.weight.quant_type != "nf4"]
    if not layers or bad:
        raise SystemExit(f"NF4 check: {len(layers)} 4-bit layers, wrong ones: {bad[:3]}")
    del model
    torch.cuda.empty_cache()
    return len(layers)


def run_ik(model_dir: Path, data: list[dict], args: argparse.Namespace, out: Path) -> dict:
    import torch

    import instructkit as ik

    torch.cuda.reset_peak_memory_stats()
    ds = ik.Dataset.from_records(data, source="bench")
    t0 = time.perf_counter()
    result = ik.finetune(
        ds, model_dir, out, max_steps=args.steps, batch_size=args.batch_size,
        gradient_accumulation=args.grad_accum, max_seq_length=args.seq_len,
        eval_fraction=0.0, learning_rate=2e-4, lora_r=16, lora_alpha=32, lora_dropout=0.05,
        seed=0,
    )
    wall = time.perf_counter() - t0
    res = result.run["result"]
    assert result.run["resolved"]["optimizer"] == "paged_adamw_8bit"
    assert result.run["resolved"]["quantization"] == "nf4"
    assert result.run["resolved"]["compute_dtype"] == "bfloat16"
    return {
        "tokens": res["tokens"], "train_seconds": res["train_seconds"],
        "tokens_per_second": res["tokens"] / res["train_seconds"], "wall_seconds": wall,
        "peak_gpu_bytes": torch.cuda.max_memory_allocated(),
        "final_loss": res["final_train_loss"],
    }


def run_trainer(model_dir: Path, data: list[dict], args: argparse.Namespace, out: Path) -> dict:
    """The baseline: the usual hand-written QLoRA script (Trainer + peft), same examples."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = prepare(data, tokenizer, args.seq_len)
    train = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids),
              "labels": e.labels} for e in examples]
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=bnb, device_map={"": 0}, dtype=torch.bfloat16)
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    targs = TrainingArguments(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, learning_rate=2e-4,
        lr_scheduler_type="cosine", warmup_steps=math.ceil(0.03 * args.steps),
        optim="paged_adamw_8bit", bf16=True, logging_steps=1, save_strategy="no",
        report_to=[], seed=0, include_num_input_tokens_seen=True,
        dataloader_num_workers=0, remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=train,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    out_metrics = trainer.train()
    torch.cuda.synchronize()
    model.save_pretrained(out)
    wall = time.perf_counter() - t0
    tokens = trainer.state.num_input_tokens_seen
    seconds = out_metrics.metrics["train_runtime"]
    result = {
        "tokens": tokens, "train_seconds": seconds, "tokens_per_second": tokens / seconds,
        "wall_seconds": wall, "peak_gpu_bytes": torch.cuda.max_memory_allocated(),
        "final_loss": [h["loss"] for h in trainer.state.log_history if "loss" in h][-1],
    }
    del trainer, model
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--dry-run", action="store_true",
                        help="check the data preparation only (no GPU needed), write nothing")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed")
        return 0
    data = records(args.steps * args.batch_size * args.grad_accum)
    examples = prepare(data, bench_tokenizer(), args.seq_len)
    print(f"data: {len(examples)} examples of {args.seq_len} tokens")
    if args.dry_run:
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA GPU; this benchmark needs one (nothing written)")
        return 0

    import bitsandbytes
    import peft
    import transformers

    work = Path(tempfile.mkdtemp(prefix="ik_bench_ft_"))
    n_params = build_model(work / "llama1b")
    n_4bit = check_nf4_bf16(work / "llama1b")
    print(f"NF4 check: {n_4bit} Linear4bit layers, nf4 weights, bfloat16 compute", flush=True)
    runs: dict[str, list[dict]] = {"instructkit": [], "trainer": []}
    for i in range(args.repeats):
        for name, fn in (("instructkit", run_ik), ("trainer", run_trainer)):
            r = fn(work / "llama1b", data, args, work / f"{name}{i}")
            runs[name].append(r)
            print(name, i, json.dumps(r), flush=True)
            gc.collect()
            torch.cuda.empty_cache()

    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    ratio = med["instructkit"]["tokens_per_second"] / med["trainer"]["tokens_per_second"]
    overhead = 1 / ratio - 1
    cmd = "HF_HUB_OFFLINE=1 python benchmarks/bench_finetune_gpu.py " + " ".join(sys.argv[1:])
    lines = [
        "# finetune: GPU QLoRA, ik.finetune vs hand-written Trainer + peft",
        "",
        f"- command: `{cmd}`",
        f"- device: {torch.cuda.get_device_name()}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}, peft {peft.__version__}, bitsandbytes {bitsandbytes.__version__}",
        f"- model: random-init Llama, {n_params / 1e9:.2f}B parameters ({LLAMA_1B}), 4-bit NF4 "
        "+ double quant, bf16 compute, LoRA r=16 all-linear, paged 8-bit AdamW, gradient "
        "checkpointing",
        f"- NF4 check: {n_4bit} Linear4bit layers hold nf4 weights and compute in bfloat16",
        f"- {args.steps} optimizer steps of {args.batch_size}x{args.grad_accum} sequences, "
        f"max_seq_length {args.seq_len}; {args.repeats} alternating runs each, medians",
        "",
        "| loop | tokens/s | train s | peak GPU GiB | final loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in med.items():
        lines.append(f"| {name} | {m['tokens_per_second']:.0f} | {m['train_seconds']:.1f} | "
                     f"{m['peak_gpu_bytes'] / 2**30:.2f} | {m['final_loss']:.4f} |")
    lines += ["", f"ik / trainer tokens/s ratio: {ratio:.3f}; overhead {overhead * 100:+.1f}% "
              f"(target <= 5%: {'met' if overhead <= 0.05 else 'NOT met'})", ""]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
