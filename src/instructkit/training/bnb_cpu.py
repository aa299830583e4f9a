"""Keep bitsandbytes 4-bit layers trainable on CPU.

On CPUs with AVX512-BF16, ``bitsandbytes.nn.Linear4bit`` repacks its weight into a CPU
inference layout the first time it runs a forward in eval mode without gradients (an eval
loss, a ``generate`` call). The backward pass of ``matmul_4bit`` does not understand that
layout, so every later gradient through the layer is computed against scrambled weights:
training goes on, silently wrong. :func:`disable_cpu_weight_packing` turns the repacking
off on every 4-bit layer and undoes it where it already happened.
"""

from __future__ import annotations

from typing import Any


def disable_cpu_weight_packing(model: Any) -> int:
    """Stop CPU weight repacking on every ``Linear4bit`` of ``model``; returns how many.

    Call it right after loading a 4-bit model on CPU, before any forward pass. Layers that
    were already repacked are restored to the standard NF4 layout.

    Example:
        >>> from instructkit.training.bnb_cpu import disable_cpu_weight_packing
        >>> model = load_4bit_model_on_cpu()          # doctest: +SKIP
        >>> disable_cpu_weight_packing(model)         # doctest: +SKIP
        14
    """
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    n = 0
    for module in model.modules():
        if not isinstance(module, bnb.nn.Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False
        state = getattr(module.weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                module.weight.data, state
            )
        n += 1
    return n
