"""``generate``: base model and base + adapter answers to the same prompts, side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from instructkit.dataset import Dataset


def generate(
    base_model: str | Path,
    prompts: str | Iterable[str | Mapping[str, Any]] | Dataset,
    adapter: str | Path | None = None,
    *,
    template: str = "alpaca",
    seed: int = 0,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    quantization: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
) -> pl.DataFrame:
    """Answer ``prompts`` with the base model and, given ``adapter``, with base + adapter.

    Prompts are instruction strings or records (dicts with ``instruction``/``input``/
    ``system`` or ``messages``; a :class:`Dataset` works too), rendered with the prompt
    format ``template`` exactly as :func:`finetune` renders the prompt part of training
    records. ``temperature=0`` decodes greedily; otherwise sampling is seeded with ``seed``
    per prompt, so every call gives the same text. Answers stop at EOS or at the format's
    stop strings. Returns a polars DataFrame with ``prompt``, ``base`` and (with an adapter)
    ``tuned``.

    Example:
        >>> import instructkit as ik
        >>> ik.generate("meta-llama/Llama-3.2-1B", ["Name a fruit."], adapter="out/")  # doctest: +SKIP
        shape: (1, 3)
        ┌───────────────┬───────────┬──────────┐
        │ prompt        ┆ base      ┆ tuned    │
        ...
    """
    import polars as pl
    import torch

    from instructkit.templates.formats import get_format
    from instructkit.training.model import (
        load_base_model,
        load_tokenizer,
        resolve_device,
        resolve_dtype,
        resolve_quantization,
    )

    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be positive, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
    records = _records(prompts)
    if not records:
        raise ValueError("generate: no prompts given")
    quant = resolve_quantization(quantization)
    dev = resolve_device(device)
    compute_dtype = resolve_dtype(dtype, dev, quantized=quant is not None)
    tokenizer = load_tokenizer(adapter if adapter is not None else base_model)
    fmt = get_format(template, tokenizer=tokenizer)
    texts = [fmt.prompt(r) for r in records]

    model = load_base_model(base_model, quant, compute_dtype, dev)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()

    def run(use_adapter: bool) -> list[str]:
        args = (model, tokenizer, texts, fmt.stop, dev, seed, max_new_tokens, temperature, top_p)
        with torch.no_grad():
            if adapter is not None and not use_adapter:
                with model.disable_adapter():
                    return _generate_all(*args)
            return _generate_all(*args)

    columns: dict[str, list[str]] = {"prompt": [_label(r) for r in records], "base": run(False)}
    if adapter is not None:
        columns["tuned"] = run(True)
    return pl.DataFrame(columns, schema={k: pl.String for k in columns})


def _records(prompts: Any) -> list[dict[str, Any]]:
    from instructkit.dataset import Dataset

    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(prompts, Dataset):
        return [dict(r) for r in prompts]
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            out.append({"instruction": p, "input": "", "output": "", "system": None})
        elif isinstance(p, Mapping):
            out.append(dict(p))
        else:
            raise TypeError(f"generate: prompt {i} is a {type(p).__name__}, expected str or dict")
    return out


def _label(record: Mapping[str, Any]) -> str:
    if record.get("messages"):
        users = [m["content"] for m in record["messages"] if m.get("role") == "user"]
        return users[-1] if users else ""
    instruction = record.get("instruction") or ""
    extra = record.get("input") or ""
    return f"{instruction}\n\n{extra}" if extra else instruction


def _generate_all(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    stop: tuple[str, ...],
    device: str,
    seed: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
) -> list[str]:
    """Generate one prompt at a time: no padding, so a prompt's answer never depends on
    which other prompts share its batch, and a per-prompt seed keeps sampling reproducible."""
    import torch

    from instructkit.training.data import encode_prompt

    answers = []
    for text in texts:
        ids = encode_prompt(text, tokenizer)
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        torch.manual_seed(seed)
        kwargs: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **kwargs,
        )
        answer = tokenizer.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)
        for s in stop:
            if s and s in answer:
                answer = answer[: answer.index(s)]
        answers.append(answer.strip())
    return answers
