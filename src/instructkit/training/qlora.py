"""``finetune``: QLoRA (4-bit NF4 + LoRA) or plain LoRA on a cleaned :class:`Dataset`.

A thin, deterministic training loop: records are rendered with a prompt format, the loss
counts response tokens only, gradients are accumulated with token-exact averaging, and
everything needed to reproduce the run is written next to the adapter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructkit.dataset import Dataset
from instructkit.schema import COLUMNS
from instructkit.training.data import IGNORE_INDEX, Example, batches, collate, tokenize_records

OPTIMIZERS = ("auto", "paged_adamw_8bit", "adamw_8bit", "adamw")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")


@dataclass
class FinetuneResult:
    """What :func:`finetune` produced: paths, the per-step log and the run record."""

    output_dir: Path
    log: list[dict[str, Any]]
    run: dict[str, Any]
    merged_dir: Path | None = None

    @property
    def train_loss(self) -> list[float]:
        """Train loss of every optimizer step."""
        return [row["train_loss"] for row in self.log]

    @property
    def eval_loss(self) -> list[tuple[int, float]]:
        """``(step, eval loss)`` wherever the eval set was scored."""
        return [(r["step"], r["eval_loss"]) for r in self.log if r["eval_loss"] is not None]

    def __repr__(self) -> str:
        losses = self.train_loss
        first, last = (losses[0], losses[-1]) if losses else (float("nan"), float("nan"))
        return (
            f"FinetuneResult({self.output_dir}, {len(losses)} steps, "
            f"train loss {first:.4f} -> {last:.4f})"
        )


def finetune(
    dataset: Dataset | Iterable[dict[str, Any]],
    base_model: str | Path,
    output_dir: str | Path,
    *,
    template: str = "alpaca",
    quantization: str | None = "auto",
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = "all-linear",
    epochs: int = 1,
    max_steps: int | None = None,
    learning_rate: float = 2e-4,
    batch_size: int = 4,
    gradient_accumulation: int = 4,
    max_seq_length: int = 1024,
    eval_fraction: float = 0.05,
    eval_dataset: Dataset | Iterable[dict[str, Any]] | None = None,
    eval_every: int | None = None,
    warmup_ratio: float = 0.03,
    lr_scheduler: str = "cosine",
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    optimizer: str = "auto",
    gradient_checkpointing: bool = True,
    dtype: str = "auto",
    device: str = "auto",
    merge: bool = False,
    seed: int = 0,
    save_every: int | None = None,
    resume: bool = False,
    data_files: str | Path | Sequence[str | Path] | None = None,
) -> FinetuneResult:
    """Fine-tune ``base_model`` on ``dataset`` with LoRA adapters; write them to ``output_dir``.

    ``quantization="auto"`` (or ``"nf4"``) loads the base in 4-bit NF4 with double
    quantization (QLoRA), on CUDA and on CPU; ``None`` trains plain LoRA on a full-precision
    base. Records are rendered with the prompt format ``template`` (``"alpaca"``,
    ``"llama2"``, ``"chat_template"`` for the tokenizer's own, or a template file); only
    response tokens count in the loss. Sequences longer than ``max_seq_length`` tokens are
    truncated and counted. ``max_steps`` (optimizer steps) overrides ``epochs``. Each step
    sees ``batch_size * gradient_accumulation`` sequences. Unless ``eval_dataset`` is given,
    ``eval_fraction`` of the records (chosen with ``seed``) is held out and scored every
    ``eval_every`` steps (default: ten times per run) and at the end.

    ``output_dir`` receives ``adapter_model.safetensors``, ``adapter_config.json``, the
    tokenizer, ``training_log.json`` (train and eval loss per step), ``loss_curve.png`` and
    ``instructkit_run.json`` (the dataset's pipeline report, record count, content hash and
    every hyperparameter). ``merge=True`` also writes the base with the adapter merged in,
    in full precision, to ``output_dir/merged``.

    ``save_every=N`` writes a checkpoint every N optimizer steps to
    ``output_dir/checkpoint-<step>`` (the adapter, optimizer, scheduler, RNG and data-order
    state; only the latest is kept). ``resume=True`` continues from the latest checkpoint
    in ``output_dir`` (after a crash or ``kill -9``) and reaches the same final adapter as
    an uninterrupted run; it refuses a checkpoint of a different run (other data or
    hyperparameters) and starts from step 0, with a warning, where there is none.

    ``data_files`` names the file(s) the dataset was read from: the run record then links
    each file's provenance (``X.provenance.json`` next to file ``X``, else
    ``instructkit_run.json`` in its folder) with its SHA-256. The CLI passes its inputs.

    Records are tokenized by :func:`instructkit.tokenize` (whole text, labels by character
    offsets); ``instructkit_run.json`` counts the tokens that straddle a prompt/response
    boundary (``tokenization.boundary_merges``).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.read("clean.jsonl")                                         # doctest: +SKIP
        >>> run = ik.finetune(ds, "meta-llama/Llama-3.2-1B", "out/", max_steps=200)  # doctest: +SKIP
        >>> run.train_loss[-1] < run.train_loss[0]                              # doctest: +SKIP
        True
    """
    hyperparameters = {k: v for k, v in locals().items()
                       if k not in ("dataset", "eval_dataset", "data_files")}
    hyperparameters["base_model"] = str(base_model)
    hyperparameters["output_dir"] = str(output_dir)
    _check_args(hyperparameters)
    from instructkit.training.config import check_base_model, check_target_modules

    # before anything heavy loads: a bad path or module name fails in a second, not after a load
    check_base_model(base_model)
    if Path(str(base_model)).expanduser().exists():
        check_target_modules(base_model, target_modules)

    import torch

    from instructkit.templates.formats import get_format
    from instructkit.training.model import (
        add_lora,
        load_base_model,
        load_tokenizer,
        resolve_device,
        resolve_dtype,
        resolve_quantization,
    )

    dataset = _as_dataset(dataset, "dataset")
    if len(dataset) == 0:
        raise ValueError("finetune: the dataset has no records")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    quant = resolve_quantization(quantization)
    dev = resolve_device(device)
    compute_dtype = resolve_dtype(dtype, dev, quantized=quant is not None)
    opt_name = optimizer if optimizer != "auto" else (
        "paged_adamw_8bit" if dev.startswith("cuda") else "adamw"
    )

    tokenizer = load_tokenizer(base_model)
    fmt = get_format(template, tokenizer=tokenizer)
    examples, stats = tokenize_records(dataset, fmt, tokenizer, max_seq_length)
    if eval_dataset is not None:
        eval_ds = _as_dataset(eval_dataset, "eval_dataset")
        train_examples = examples
        eval_examples, eval_stats = tokenize_records(eval_ds, fmt, tokenizer, max_seq_length)
    else:
        eval_ds = None
        train_examples, eval_examples = _split(examples, eval_fraction, seed)
        eval_stats = None
    provenance = data_provenance(data_files) if data_files is not None else None
    if not train_examples:
        raise ValueError(
            f"finetune: no trainable example left out of {len(dataset)} records "
            f"({stats.skipped_no_response} lost their whole response to "
            f"max_seq_length={max_seq_length})"
        )

    micro_per_epoch = math.ceil(len(train_examples) / batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / gradient_accumulation)
    total_steps = max_steps if max_steps is not None else epochs * steps_per_epoch
    warmup_steps = math.ceil(warmup_ratio * total_steps)
    eval_interval = eval_every or max(1, total_steps // 10)

    fingerprint = _fingerprint(hyperparameters, dataset, eval_ds)
    checkpoint = _latest_checkpoint(output_dir) if resume else None
    if resume and checkpoint is None:
        warnings.warn(f"finetune: resume=True but {output_dir} holds no checkpoint; "
                      "starting from step 0", stacklevel=2)

    torch.manual_seed(seed)
    model = load_base_model(base_model, quant, compute_dtype, dev)
    model = add_lora(
        model,
        quantized=quant is not None,
        r=lora_r,
        alpha=lora_alpha,
        dropout=lora_dropout,
        target_modules=target_modules,
        gradient_checkpointing=gradient_checkpointing,
        seed=seed,
    )
    model.config.use_cache = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(opt_name, params, learning_rate, weight_decay)
    from transformers import get_scheduler

    scheduler = get_scheduler(
        lr_scheduler, opt, num_warmup_steps=warmup_steps, num_training_steps=total_steps
    )

    from instructkit._progress import progress

    log: list[dict[str, Any]] = []
    train_seconds = 0.0
    tokens_seen = 0
    start_step = 0
    steps = _steps(train_examples, batch_size, gradient_accumulation, seed)
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, fingerprint, model, opt, scheduler, dev)
        log, start_step = state["log"], state["step"]
        train_seconds, tokens_seen = state["train_seconds"], state["tokens_seen"]
        for _ in range(start_step):  # the data order is a function of the seed: replay it
            epoch, _micro = next(steps)
        if start_step and epoch != state["epoch"]:
            raise ValueError(f"finetune: checkpoint {checkpoint} is at epoch {state['epoch']}, "
                             f"the replayed data order at epoch {epoch}")
    else:
        torch.manual_seed(seed)  # dropout masks: same seed, same run
    model.train()
    pad_id = tokenizer.pad_token_id
    for step in progress(range(start_step + 1, total_steps + 1), total=total_steps - start_step,
                         desc="finetune", unit="step"):
        epoch, micro = next(steps)
        t0 = time.perf_counter()
        n_targets = sum(_n_targets(e) for mb in micro for e in mb)
        loss_sum = 0.0
        step_tokens = 0
        for mb in micro:
            batch = {k: v.to(dev) for k, v in collate(mb, pad_id).items()}
            step_tokens += int(batch["attention_mask"].sum())
            loss = _loss_sum(model, batch) / n_targets
            loss.backward()
            loss_sum += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
        lr = scheduler.get_last_lr()[0]
        opt.step()
        scheduler.step()
        opt.zero_grad(set_to_none=True)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t0
        tokens_seen += step_tokens
        row = {
            "step": step,
            "epoch": epoch,
            "train_loss": loss_sum,
            "eval_loss": None,
            "learning_rate": lr,
            "grad_norm": grad_norm,
            "tokens": step_tokens,
            "target_tokens": n_targets,
        }
        if eval_examples and (step % eval_interval == 0 or step == total_steps):
            row["eval_loss"] = evaluate(model, eval_examples, batch_size, pad_id, dev)
        log.append(row)
        if save_every and step % save_every == 0 and step < total_steps:
            _save_checkpoint(output_dir, model, opt, scheduler, {
                "step": step, "epoch": epoch, "log": log, "train_seconds": train_seconds,
                "tokens_seen": tokens_seen, "fingerprint": fingerprint,
            })

    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    merged_dir = None
    if merge:
        merged_dir = merge_adapter(base_model, output_dir, output_dir / "merged", dtype=dtype)

    import instructkit

    resolved = {
        "quantization": quant,
        "device": dev,
        "compute_dtype": str(compute_dtype).removeprefix("torch."),
        "optimizer": opt_name,
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup_steps,
        "eval_every": eval_interval,
        "pad_token": tokenizer.pad_token,
        "trainable_parameters": sum(p.numel() for p in params),
        "total_parameters": sum(p.numel() for p in model.parameters()),
    }
    run = {
        "instructkit_version": instructkit.__version__,
        "base_model": str(base_model),
        "hyperparameters": hyperparameters,
        "resolved": resolved,
        "dataset": _dataset_record(dataset),
        "eval_dataset": _dataset_record(eval_ds) if eval_ds is not None else None,
        "data_provenance": provenance,
        "checkpoints": {"save_every": save_every,
                        "resumed_from": checkpoint.name if checkpoint is not None else None,
                        "resumed_at_step": start_step if checkpoint is not None else None},
        "tokenization": stats.as_dict(),
        "eval_tokenization": eval_stats.as_dict() if eval_stats is not None else None,
        "split": {"train_examples": len(train_examples), "eval_examples": len(eval_examples),
                  "eval_ids": sorted(e.id for e in eval_examples)},
        "result": {
            "steps": len(log),
            "first_train_loss": log[0]["train_loss"],
            "final_train_loss": log[-1]["train_loss"],
            "final_eval_loss": next(
                (r["eval_loss"] for r in reversed(log) if r["eval_loss"] is not None), None
            ),
            "train_seconds": round(train_seconds, 3),
            "tokens": tokens_seen,
            "tokens_per_second": round(tokens_seen / train_seconds, 2) if train_seconds else None,
            "peak_gpu_memory_bytes": (
                torch.cuda.max_memory_allocated() if dev.startswith("cuda") else None
            ),
        },
        "environment": _environment(),
        "files": {
            "adapter": "adapter_model.safetensors",
            "adapter_config": "adapter_config.json",
            "training_log": "training_log.json",
            "loss_curve": "loss_curve.png",
            "merged": "merged" if merged_dir is not None else None,
        },
    }
    _write_json(output_dir / "training_log.json", {"steps": log})
    from instructkit.training.plot import plot_loss

    plot_loss(log, output_dir / "loss_curve.png", title=f"{Path(str(base_model)).name} · {template}")
    _write_json(output_dir / "instructkit_run.json", run)
    return FinetuneResult(output_dir=output_dir, log=log, run=run, merged_dir=merged_dir)


def evaluate(
    model: Any, examples: Sequence[Example], batch_size: int, pad_token_id: int, device: str
) -> float:
    """Mean loss per response token of ``model`` on ``examples`` (eval mode, no gradients).

    Example:
        >>> evaluate(model, examples, 4, tokenizer.pad_token_id, "cpu")  # doctest: +SKIP
        2.31
    """
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for mb in batches(examples, batch_size, seed=0, epoch=0, shuffle=False):
            batch = {k: v.to(device) for k, v in collate(mb, pad_token_id).items()}
            total += float(_loss_sum(model, batch))
            count += sum(_n_targets(e) for e in mb)
    if was_training:
        model.train()
    return total / count


def merge_adapter(
    base_model: str | Path, adapter: str | Path, output_dir: str | Path, dtype: str = "auto"
) -> Path:
    """Merge a LoRA adapter into a full-precision copy of its base and save the result.

    A 4-bit base cannot hold merged weights without a second rounding, so the base is
    reloaded unquantized (bfloat16 on a bf16 GPU, else float32) before merging.

    Example:
        >>> merge_adapter("meta-llama/Llama-3.2-1B", "out/", "out/merged")  # doctest: +SKIP
        PosixPath('out/merged')
    """
    from peft import PeftModel

    from instructkit.training.model import (
        load_base_model,
        load_tokenizer,
        resolve_device,
        resolve_dtype,
    )

    dev = resolve_device("auto")
    base = load_base_model(base_model, None, resolve_dtype(dtype, dev, quantized=False), dev)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir)
    load_tokenizer(adapter).save_pretrained(output_dir)
    return output_dir


# internals --------------------------------------------------------------------------------


def _check_args(h: dict[str, Any]) -> None:
    positive = ("lora_r", "lora_alpha", "epochs", "batch_size", "gradient_accumulation",
                "max_seq_length")
    for name in positive:
        if not isinstance(h[name], int) or h[name] < 1:
            raise ValueError(f"finetune: {name} must be a positive integer, got {h[name]!r}")
    if h["max_steps"] is not None and (not isinstance(h["max_steps"], int) or h["max_steps"] < 1):
        raise ValueError(f"finetune: max_steps must be a positive integer, got {h['max_steps']!r}")
    if h["save_every"] is not None and (not isinstance(h["save_every"], int) or h["save_every"] < 1):
        raise ValueError(f"finetune: save_every must be a positive integer, got {h['save_every']!r}")
    if h["eval_every"] is not None and h["eval_every"] < 1:
        raise ValueError(f"finetune: eval_every must be positive, got {h['eval_every']!r}")
    if not 0.0 <= h["eval_fraction"] < 1.0:
        raise ValueError(f"finetune: eval_fraction must be in [0, 1), got {h['eval_fraction']}")
    if not 0.0 <= h["lora_dropout"] < 1.0:
        raise ValueError(f"finetune: lora_dropout must be in [0, 1), got {h['lora_dropout']}")
    if not 0.0 <= h["warmup_ratio"] <= 1.0:
        raise ValueError(f"finetune: warmup_ratio must be in [0, 1], got {h['warmup_ratio']}")
    if h["learning_rate"] <= 0:
        raise ValueError(f"finetune: learning_rate must be positive, got {h['learning_rate']}")
    if h["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"finetune: optimizer must be one of {OPTIMIZERS}, got {h['optimizer']!r}")
    if h["lr_scheduler"] not in SCHEDULERS:
        raise ValueError(
            f"finetune: lr_scheduler must be one of {SCHEDULERS}, got {h['lr_scheduler']!r}"
        )


def _as_dataset(data: Dataset | Iterable[dict[str, Any]], what: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, Path)):
        raise TypeError(f"finetune: {what} is a path ({data}); read it first with ik.read()")
    return Dataset.from_records(data, source=what)


def _split(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    if fraction <= 0 or len(examples) < 2:
        return examples, []
    import numpy as np

    n_eval = min(len(examples) - 1, max(1, round(len(examples) * fraction)))
    order = np.random.default_rng([seed, 1]).permutation(len(examples))
    held = set(order[:n_eval].tolist())
    train = [e for i, e in enumerate(examples) if i not in held]
    evals = [e for i, e in enumerate(examples) if i in held]
    return train, evals


def _steps(
    examples: Sequence[Example], batch_size: int, accumulation: int, seed: int
) -> Iterator[tuple[int, list[list[Example]]]]:
    """Endless ``(epoch, micro-batches of one optimizer step)``; each epoch reshuffled."""
    epoch = 0
    while True:
        micro = list(batches(examples, batch_size, seed=seed, epoch=epoch))
        for start in range(0, len(micro), accumulation):
            yield epoch, micro[start : start + accumulation]
        epoch += 1


def _n_targets(example: Example) -> int:
    # the first token is never predicted, so a label there does not count
    return sum(1 for x in example.labels[1:] if x != IGNORE_INDEX)


def _loss_sum(model: Any, batch: dict[str, Any]) -> Any:
    """Summed next-token cross-entropy over response tokens of one batch."""
    import torch.nn.functional as F

    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1, :].float()
    labels = batch["labels"][:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def _optimizer(name: str, params: list[Any], lr: float, weight_decay: float) -> Any:
    if name == "adamw":
        import torch

        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    import bitsandbytes as bnb

    if name == "paged_adamw_8bit":
        return bnb.optim.PagedAdamW8bit(params, lr=lr, weight_decay=weight_decay)
    return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay)


def content_hash(dataset: Dataset) -> str:
    """A stable hash of the records' canonical columns (xxh3-128 over sorted-key JSON lines).

    Example:
        >>> import instructkit as ik
        >>> content_hash(ik.Dataset.from_records([{"instruction": "a", "output": "b"}]))[:8]
        'xxh3_128'
    """
    import xxhash

    h = xxhash.xxh3_128()
    for row in dataset.to_polars().select(COLUMNS).iter_rows(named=True):
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        h.update(b"\n")
    return f"xxh3_128:{h.hexdigest()}"


def _dataset_record(dataset: Dataset) -> dict[str, Any]:
    report = dataset.report()
    return {
        "records": len(dataset),
        "content_hash": content_hash(dataset),
        "removed": dataset.removed.height,
        "sources": dict(
            dataset.to_polars()["source"].value_counts(sort=True).iter_rows()
        ),
        "report": report.to_dicts(),
        "history": dataset.history,
    }


def _environment() -> dict[str, Any]:
    import platform

    import torch
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__}
    for name in ("peft", "bitsandbytes", "accelerate"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    if torch.cuda.is_available():
        versions["gpu"] = torch.cuda.get_device_name()
    versions["torch_threads"] = torch.get_num_threads()
    return versions


CHECKPOINT_PREFIX = "checkpoint-"
# hyperparameters that change neither the trained adapter nor the data order
_NOT_FINGERPRINTED = ("resume", "save_every", "merge", "output_dir", "eval_every")


def _fingerprint(
    hyperparameters: dict[str, Any], dataset: Dataset, eval_ds: Dataset | None
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the data and the training recipe."""
    hp = {k: v for k, v in hyperparameters.items() if k not in _NOT_FINGERPRINTED}
    return json.loads(json.dumps({
        "hyperparameters": hp,
        "dataset": content_hash(dataset),
        "eval_dataset": content_hash(eval_ds) if eval_ds is not None else None,
    }, default=str))


def _latest_checkpoint(output_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step (``state.json`` is written last)."""
    found = []
    for path in output_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX):]
        if suffix.isdigit() and (path / "state.json").is_file():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


def _save_checkpoint(output_dir: Path, model: Any, opt: Any, scheduler: Any,
                     state: dict[str, Any]) -> Path:
    """Write ``checkpoint-<step>`` atomically (a temporary folder renamed into place), then
    drop older checkpoints: a kill at any moment leaves one complete checkpoint."""
    import torch
    from safetensors.torch import save_file

    final = output_dir / f"{CHECKPOINT_PREFIX}{state['step']}"
    tmp = output_dir / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(tmp)  # a loadable adapter, for looking at a run midway
    trainable = {n: p.detach().to("cpu").contiguous()
                 for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, str(tmp / "trainable.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
               tmp / "training_state.pt")
    _write_json(tmp / "state.json", state)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in output_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        if old != final and old.name[len(CHECKPOINT_PREFIX):].isdigit():
            shutil.rmtree(old)
    return final


def _load_checkpoint(path: Path, fingerprint: dict[str, Any], model: Any, opt: Any,
                     scheduler: Any, device: str) -> dict[str, Any]:
    """Restore trainable weights, optimizer, scheduler and RNG from ``path``; returns its
    ``state.json``. A checkpoint of another run (data or recipe) is refused, naming what differs."""
    import torch
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text())
    if state["fingerprint"] != fingerprint:
        saved, now = state["fingerprint"], fingerprint
        diffs = [f"{k}: {saved['hyperparameters'].get(k)!r} -> {v!r}"
                 for k, v in now["hyperparameters"].items()
                 if saved["hyperparameters"].get(k) != v]
        diffs += [f"{k} content hash differs" for k in ("dataset", "eval_dataset")
                  if saved[k] != now[k]]
        raise ValueError(f"finetune: cannot resume from {path}: it belongs to a different run "
                         f"({'; '.join(diffs) or 'fingerprint differs'})")
    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in saved)
    if missing or set(saved) - set(params):
        raise ValueError(f"finetune: checkpoint {path} does not fit the model "
                         f"(missing {missing[:3]}, unexpected {sorted(set(saved) - set(params))[:3]})")
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor.to(device))
    blob = torch.load(path / "training_state.pt", map_location=device, weights_only=True)
    opt.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng"]["cpu"].cpu())
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in blob["rng"]["cuda"]])
    return state


def data_provenance(data_files: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """The provenance file of each training data file, with its SHA-256.

    For a file ``X`` that is ``X.provenance.json`` (written by ``ds.write(...,
    provenance=True)``), else ``instructkit_run.json`` in X's folder (written by
    ``instructkit run``); a folder is looked into for ``instructkit_run.json`` and a glob
    is expanded. A file without one is listed with ``provenance: None``.

    Example:
        >>> data_provenance("missing/train.jsonl")
        [{'data_file': 'missing/train.jsonl', 'provenance': None, 'sha256': None}]
    """
    import glob

    from instructkit.io.write import file_sha256

    items = [data_files] if isinstance(data_files, (str, Path)) else list(data_files)
    paths: list[Path] = []
    for item in items:
        text = str(item)
        matched = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        paths += [Path(m) for m in matched]
    out = []
    for path in paths:
        if path.is_dir():
            candidates = [path / "instructkit_run.json"]
        else:
            candidates = [path.with_name(path.name + ".provenance.json"),
                          path.parent / "instructkit_run.json"]
        found = next((c for c in candidates if c.is_file()), None)
        out.append({
            "data_file": str(path),
            "provenance": str(found) if found is not None else None,
            "sha256": file_sha256(found) if found is not None else None,
        })
    return out


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
