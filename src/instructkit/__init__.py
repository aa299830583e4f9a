"""instructkit: turn raw instruction data into a clean training set, then QLoRA-tune on it.

    >>> import instructkit as ik
    >>> ds = ik.read("data.jsonl")                                    # doctest: +SKIP
    >>> clean = ds.pipe(ik.normalize(), ik.quality(), ik.dedup.exact())  # doctest: +SKIP

Heavy dependencies (torch, transformers, peft, bitsandbytes, presidio, spaCy) load only when
the function that needs them runs, so this import stays fast. Public names resolve lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from instructkit._progress import set_quiet
from instructkit.dataset import Dataset, concat
from instructkit.transform import Filter, Global, Map, Transform

__version__ = "0.1.0"

# public name -> (module, attribute); attribute None exports the module itself (a namespace)
_LAZY: dict[str, tuple[str, str | None]] = {
    "read": ("instructkit.io.read", "read"),
    "scan": ("instructkit.io.scan", "scan"),
    "from_hf": ("instructkit.io.read", "from_hf"),
    "from_pandas": ("instructkit.io.read", "from_pandas"),
    "read_medquad": ("instructkit.io.medquad", "read_medquad"),
    "read_xml": ("instructkit.io.xml", "read_xml"),
    "Pipeline": ("instructkit.pipeline", "Pipeline"),
    "normalize": ("instructkit.filters.normalize", "Normalize"),
    "quality": ("instructkit.filters.quality", "Quality"),
    "langid": ("instructkit.filters.langid", "LangID"),
    "conversations": ("instructkit.filters.conversations", "Conversations"),
    "split": ("instructkit.sampling.split", "split"),
    "mix": ("instructkit.sampling.mix", "mix"),
    "sample": ("instructkit.sampling.sample", "Sample"),
    "dedup": ("instructkit.dedup", None),
    "pii": ("instructkit.pii", None),
    "templates": ("instructkit.templates", None),
    "benchmarks": ("instructkit.decontam.benchmarks", None),
    "decontaminate": ("instructkit.decontam", "Decontaminate"),
    "report": ("instructkit.reports.html", "report"),
    "card": ("instructkit.reports.card", "card"),
    "export": ("instructkit.io.export", "export"),
    "push_to_hub": ("instructkit.io.export", "push_to_hub"),
    "finetune": ("instructkit.training.qlora", "finetune"),
    "tokenize": ("instructkit.training.tokenize", "tokenize"),
    "generate": ("instructkit.training.generate", "generate"),
    "bench": ("instructkit.profiling.bench", "bench"),
    "sweep": ("instructkit.profiling.sweep", "sweep"),
    "synth": ("instructkit.synth", None),
    "LLM": ("instructkit.llm", "LLM"),
    "score": ("instructkit.score", None),
    "augment": ("instructkit.augment", None),
}

__all__ = ["Dataset", "concat", "Transform", "Map", "Filter", "Global", "set_quiet", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'instructkit' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # static tools see the lazy names
    from instructkit import augment, benchmarks, dedup, pii, score, synth, templates  # noqa: F401
    from instructkit.decontam import Decontaminate as decontaminate  # noqa: F401
    from instructkit.filters.conversations import Conversations as conversations  # noqa: F401
    from instructkit.filters.langid import LangID as langid  # noqa: F401
    from instructkit.filters.normalize import Normalize as normalize  # noqa: F401
    from instructkit.filters.quality import Quality as quality  # noqa: F401
    from instructkit.io.export import export, push_to_hub  # noqa: F401
    from instructkit.io.read import from_hf, from_pandas, read  # noqa: F401
    from instructkit.llm import LLM  # noqa: F401
    from instructkit.pipeline import Pipeline  # noqa: F401
    from instructkit.reports.card import card  # noqa: F401
    from instructkit.sampling.mix import mix  # noqa: F401
    from instructkit.sampling.sample import Sample as sample  # noqa: F401
    from instructkit.sampling.split import split  # noqa: F401
