"""Loading a base model for LoRA / QLoRA training or generation, on CUDA or CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUANTIZATIONS = ("auto", "nf4", "4bit", None)
DTYPES = ("auto", "bfloat16", "float16", "float32")


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when a CUDA GPU is visible, else ``"cpu"``; explicit names pass through.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    if device != "auto":
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"device={device!r} but torch sees no CUDA GPU")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_quantization(quantization: str | None) -> str | None:
    """``"nf4"`` for ``"auto"``/``"4bit"``/``"nf4"``; ``None`` (plain LoRA) stays ``None``.

    Example:
        >>> resolve_quantization("auto"), resolve_quantization(None)
        ('nf4', None)
    """
    if isinstance(quantization, str) and quantization.lower() == "none":
        return None
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    return None if quantization is None else "nf4"


def resolve_dtype(dtype: str, device: str, quantized: bool) -> Any:
    """The compute dtype: bfloat16 where the hardware runs it natively, else float32.

    On CUDA that is ``torch.cuda.is_bf16_supported()``; on CPU, 4-bit layers compute in
    bfloat16 when the CPU has AVX512-BF16 (bitsandbytes' own test), and a plain LoRA base
    stays in float32.

    Example:
        >>> str(resolve_dtype("float32", "cpu", quantized=True))
        'torch.float32'
    """
    import torch

    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if quantized:
        from bitsandbytes.functional import has_avx512bf16

        return torch.bfloat16 if has_avx512bf16() else torch.float32
    return torch.float32


def load_tokenizer(base_model: str | Path) -> Any:
    """The base model's tokenizer; a missing pad token is set to the EOS token.

    Padding positions are masked out of attention and loss, so which id fills them does
    not change training; EOS is the usual choice for Llama-family tokenizers.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer of {base_model} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(
    base_model: str | Path,
    quantization: str | None,
    dtype: Any,
    device: str,
) -> Any:
    """Load ``base_model`` in 4-bit NF4 (double quantization) or in ``dtype`` on ``device``.

    On CPU the bitsandbytes weight-repacking that corrupts gradients is switched off
    (see :mod:`instructkit.training.bnb_cpu`).

    Example:
        >>> model = load_base_model("path/to/llama", "nf4", torch.bfloat16, "cpu")  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM

    if quantization is None:
        model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=dtype)
        return model.to(device)
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    device_map = {"": _device_index(device)}
    model = AutoModelForCausalLM.from_pretrained(
        str(base_model), quantization_config=config, device_map=device_map, dtype=dtype
    )
    if device == "cpu":
        from instructkit.training.bnb_cpu import disable_cpu_weight_packing

        disable_cpu_weight_packing(model)
    return model


def _device_index(device: str) -> Any:
    if device == "cuda":
        import torch

        return torch.cuda.current_device()
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    return device


def add_lora(
    model: Any,
    *,
    quantized: bool,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: str | list[str],
    gradient_checkpointing: bool,
    seed: int,
) -> Any:
    """Prepare ``model`` for training and wrap it with fresh LoRA adapters (seeded init).

    4-bit models go through peft's ``prepare_model_for_kbit_training`` (norms and head in
    float32, input gradients on, gradient checkpointing); plain models get gradient
    checkpointing directly when asked.
    """
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        # gradient checkpointing is switched on below, the same way for both paths
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if gradient_checkpointing:
        # transformers 5 renamed gradient_checkpointing_enable; older releases lack the new name
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.enable_input_require_grads()
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    return get_peft_model(model, config)
