"""The ``instructkit finetune`` subcommand (registered by :func:`add_parser`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``finetune`` on the ``instructkit`` command's subparsers.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="instructkit")
        >>> _ = add_parser(parser.add_subparsers())
        >>> parser.parse_args(["finetune", "d.jsonl", "--base-model", "m", "--output", "o"]).lora_r
        16
    """
    p = subparsers.add_parser(
        "finetune",
        help="QLoRA / LoRA fine-tune a model on a data file",
        description="Fine-tune BASE_MODEL with LoRA adapters (4-bit QLoRA by default) on the "
        "records of DATA; the adapter, logs and loss curve go to OUTPUT.",
    )
    p.add_argument("data", nargs="*", help="data file(s), folder or glob (any format ik.read reads)")
    p.add_argument("--config", default=None,
                   help="a YAML file holding the whole run (data, base_model, output_dir and any "
                   "finetune option; see docs/finetune.md); no other option may be given with it")
    p.add_argument("--base-model", default=None, help="local model folder or hub id")
    p.add_argument("--output", default=None, help="output folder for the adapter and logs")
    p.add_argument("--format", default=None, help="input format (default: detected)")
    p.add_argument("--template", default="alpaca",
                   help="prompt format: alpaca, llama2, chatml, vicuna, chat_template or a .json")
    p.add_argument("--quantization", default="auto", choices=["auto", "nf4", "4bit", "none"],
                   help="auto/nf4/4bit: QLoRA on a 4-bit NF4 base; none: plain LoRA")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--target-modules", default="all-linear",
                   help="'all-linear' or comma-separated module names (q_proj,v_proj)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    p.add_argument("--learning-rate", "--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--gradient-accumulation", type=int, default=4)
    p.add_argument("--max-seq-length", type=int, default=1024)
    p.add_argument("--eval-fraction", type=float, default=0.05)
    p.add_argument("--eval-data", default=None, help="separate eval file (replaces --eval-fraction)")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--warmup-ratio", type=float, default=0.03)
    p.add_argument("--lr-scheduler", default="cosine",
                   choices=["cosine", "linear", "constant", "constant_with_warmup"])
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--optimizer", default="auto",
                   choices=["auto", "paged_adamw_8bit", "adamw_8bit", "adamw"])
    p.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing",
                   action="store_false")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--merge", action="store_true",
                   help="also save the base with the adapter merged in, to OUTPUT/merged")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=None,
                   help="write a resumable checkpoint every N optimizer steps")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in OUTPUT")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``finetune`` from parsed arguments; prints the run summary. Returns 0."""
    from instructkit.io.read import read
    from instructkit.training.qlora import finetune

    if args.config is not None:
        given = [f"--{k.replace('_', '-')}" for k in ("base_model", "output") if getattr(args, k)]
        if args.data or given:
            return _usage(f"--config holds the whole run; drop {args.data + given}")
        from instructkit.training.config import finetune_from_config

        return _summary(finetune_from_config(args.config))
    missing = [f for f, v in (("DATA", args.data), ("--base-model", args.base_model), ("--output", args.output)) if not v]
    if missing:
        return _usage(f"give {', '.join(missing)}, or --config FILE")

    dataset = read(args.data, format=args.format)
    eval_dataset = read(args.eval_data, format=args.format) if args.eval_data else None
    targets = args.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    result = finetune(
        dataset,
        args.base_model,
        args.output,
        template=args.template,
        quantization=None if args.quantization == "none" else args.quantization,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        gradient_accumulation=args.gradient_accumulation,
        max_seq_length=args.max_seq_length,
        eval_fraction=args.eval_fraction,
        eval_dataset=eval_dataset,
        eval_every=args.eval_every,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler=args.lr_scheduler,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        optimizer=args.optimizer,
        gradient_checkpointing=args.gradient_checkpointing,
        dtype=args.dtype,
        device=args.device,
        merge=args.merge,
        seed=args.seed,
        save_every=args.save_every,
        resume=args.resume,
        data_files=args.data,
    )
    return _summary(result)


def _usage(message: str) -> int:
    import sys

    print(f"instructkit finetune: error: {message}", file=sys.stderr)
    return 2


def _summary(result: Any) -> int:
    res = result.run["result"]
    tok = result.run["tokenization"]
    print(result)
    print(
        f"records {tok['records']}, truncated {tok['truncated']}, "
        f"skipped (no response left) {tok['skipped_no_response']}; "
        f"{res['tokens_per_second']} tokens/s; final eval loss {res['final_eval_loss']}"
    )
    print(f"adapter, training_log.json, loss_curve.png, instructkit_run.json in {result.output_dir}")
    return 0
