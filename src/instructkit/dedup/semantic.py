"""Semantic dedup: drop a record whose meaning repeats one already kept (embedding cosine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup import _kernel as K
from instructkit.dedup._base import check_fields, check_keep, present_fields, repeated
from instructkit.dedup._spill import SpillFile
from instructkit.transform import Global, detail_expr

#: Up to this many records, every pair is compared (blocked matrix products).
EXACT_MAX = 20_000
#: Rows of one block of the similarity matrix.
_BLOCK = 2_048


@dataclass(frozen=True)
class Embeddings:
    """Observed state of one batch, no texts: ids, text lengths and an empty-text mask in
    RAM; the float16 embeddings (``rows x dim``) in a spill file on disk."""

    ids: pl.Series
    lengths: np.ndarray
    empty: np.ndarray
    dim: int
    spill: SpillFile

    def vectors(self) -> np.ndarray:
        """The batch's embeddings, float32 (read from the spill file)."""
        data = np.fromfile(self.spill.path, dtype=np.float16)
        return data.reshape(len(self.ids), self.dim).astype(np.float32)


class Semantic(Global):
    """Drop a record whose embedding is within ``threshold`` cosine of a record kept before it.

    The text of ``fields`` (joined; conversation turns included) is embedded with ``model``
    (see :mod:`instructkit.embed`: ``"static"``, the fast Model2Vec model distilled from
    all-MiniLM-L6-v2, ``"minilm"``, or a local model folder). ``observe`` keeps float16
    embeddings in a spill file, so streaming and Ray runs hold no texts; ``decide`` finds
    the pairs with cosine ``>= threshold``: every pair when there are at most
    :data:`EXACT_MAX` records, otherwise the pairs inside k-means cells, each record placed
    in its ``probes`` nearest of about ``sqrt(n)`` cells (seeded, deterministic; a pair
    that close almost always shares a cell, see docs/dedup.md for the measured recall).

    Records are taken in the keep order (``keep="first"``: input order; ``"longest"``:
    longest text first) and a record is dropped when it is that close to a record already
    kept: each kept record and the records dropped against it form a cluster. Removed
    records get reason ``semantic_duplicate`` and detail ``{"cluster": c, "cosine": x,
    "kept": id}``. Empty texts and upsampled copies (``meta.repeat > 0``) are left alone.
    ``threshold`` only affects ``decide``, so ``ik.sweep`` over it embeds once.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "How do I reset my password?"},
        ...     {"instruction": "How can I reset my password?"},
        ...     {"instruction": "What is the capital of France?"},
        ... ], source="faq")
        >>> out = ds.pipe(ik.dedup.semantic(threshold=0.9))  # doctest: +SKIP
        >>> out.removed["id"].to_list()                        # doctest: +SKIP
        ['faq:1']
    """

    name: ClassVar[str] = "dedup.semantic"
    decide_params: ClassVar[tuple[str, ...]] = ("threshold", "keep", "probes")

    def __init__(
        self,
        threshold: float = 0.9,
        fields: str | Sequence[str] = ("instruction", "input"),
        model: str = "static",
        keep: str = "first",
        device: str = "auto",
        probes: int = 3,
        seed: int = 0,
        spill_dir: str | Path | None = None,
    ) -> None:
        self.threshold = K._check_threshold(threshold)
        self.fields = check_fields(fields)
        self.model = model
        self.keep = check_keep(keep)
        self.device = device
        if probes < 1:
            raise ValueError(f"probes must be >= 1, got {probes}")
        self.probes = probes
        self.seed = seed
        self.spill_dir = spill_dir

    def observe(self, batch: pl.DataFrame) -> Embeddings:
        """Embeddings of a batch (upsampled copies left out), spilled to disk as float16."""
        from instructkit.embed import embed

        skip = repeated(batch)
        frame = batch.filter(pl.Series(~skip)) if skip.any() else batch
        text = K.document_text(frame, present_fields(self.fields, frame))
        texts = text.fill_null("").str.strip_chars().to_list()
        vectors = embed(texts, model=self.model, device=self.device)
        return Embeddings(
            ids=frame["id"],
            lengths=text.fill_null("").str.len_chars().cast(pl.Int64).to_numpy(),
            empty=np.array([not t for t in texts], dtype=bool),
            dim=int(vectors.shape[1]),
            spill=SpillFile.write(self.spill_dir, [vectors.astype(np.float16)]),
        )

    def pairs(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs ``(i, j)``, ``i < j``, with cosine ``>= threshold``, and their cosines."""
        n = len(vectors)
        if n <= EXACT_MAX:
            return _pairs_within(vectors, np.arange(n), self.threshold)
        cells = _cells(vectors, self.probes, self.seed)
        los, his, coss = [], [], []
        for members in cells:
            lo, hi, cos = _pairs_within(vectors[members], members, self.threshold)
            los.append(lo)
            his.append(hi)
            coss.append(cos)
        lo, hi, cos = np.concatenate(los), np.concatenate(his), np.concatenate(coss)
        key, first = np.unique(lo * n + hi, return_index=True)
        return key // n, key % n, cos[first]

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Greedy clusters in keep order over the pairs at ``threshold``."""
        empty = pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
        if not states:
            return empty
        ids = pl.concat([s.ids for s in states])
        vectors = np.concatenate([s.vectors() for s in states]) if len(ids) else np.zeros((0, 1), np.float32)
        blank = np.concatenate([s.empty for s in states])
        lengths = np.concatenate([s.lengths for s in states])
        n = len(ids)
        # rank: the keep order (first: input order; longest: longer first, then input order)
        order = np.lexsort((np.arange(n), -lengths)) if self.keep == "longest" else np.arange(n)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        # identical vectors (the same text) are searched once, through their first record in
        # keep order: a cluster of copies costs one row, not copies**2 pairs
        half = np.ascontiguousarray(vectors.astype(np.float16))
        _, first_of, group = np.unique(half[order].view(np.dtype((np.void, half.shape[1] * 2))),
                                       return_index=True, return_inverse=True)
        rep = np.empty(n, np.int64)
        rep[order] = order[first_of[group.ravel()]]
        reps = np.flatnonzero(rep == np.arange(n))
        lo, hi, cos = self.pairs(vectors[reps])
        lo, hi = reps[lo], reps[hi]
        copies = np.flatnonzero(rep != np.arange(n))
        dots = np.einsum("ij,ij->i", vectors[copies], vectors[rep[copies]]) if copies.size else np.zeros(0)
        lo = np.concatenate([lo, rep[copies]])
        hi = np.concatenate([hi, copies])
        cos = np.concatenate([cos, dots.astype(np.float64)])
        ok = ~blank[lo] & ~blank[hi]
        lo, hi, cos = lo[ok], hi[ok], cos[ok]
        a = np.where(rank[lo] < rank[hi], lo, hi)  # the one earlier in keep order
        b = np.where(rank[lo] < rank[hi], hi, lo)
        sort = np.lexsort((-cos, rank[a], rank[b]))
        a, b, cos = a[sort], b[sort], cos[sort]
        dropped = np.zeros(n, dtype=bool)
        kept = np.arange(n)
        best = np.zeros(n)
        for i, j, c in zip(a.tolist(), b.tolist(), cos.tolist(), strict=True):
            if dropped[j] or dropped[i]:
                continue
            dropped[j] = True
            kept[j] = i
            best[j] = c
        # a copy of a dropped record goes with it (its only pair was with that record)
        orphan = copies[~dropped[copies] & dropped[rep[copies]] & ~blank[copies]]
        kept[orphan] = kept[rep[orphan]]
        best[orphan] = best[rep[orphan]]
        dropped[orphan] = True
        where = np.flatnonzero(dropped)
        if where.size == 0:
            return empty
        kept_idx = kept[where]
        _, cluster = np.unique(rank[kept_idx], return_inverse=True)
        frame = pl.DataFrame({
            "id": ids.gather(where),
            "kept": ids.gather(kept_idx),
            "cosine": np.round(best[where], 4),
            "cluster": cluster.astype(np.int64),
        })
        return frame.select(
            "id",
            pl.lit("semantic_duplicate").alias("reason"),
            detail_expr(kept=pl.col("kept"), cosine=pl.col("cosine"), cluster=pl.col("cluster")).alias("detail"),
        )


def _pairs_within(vectors: np.ndarray, index: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ``vectors`` with cosine ``>= threshold``, as global ``index`` values
    ``(lo < hi)``, by blocked matrix products of the upper triangle."""
    los, his, coss = [], [], []
    m = len(vectors)
    for start in range(0, m, _BLOCK):
        block = vectors[start : start + _BLOCK] @ vectors[start:].T
        r, c = np.nonzero(block >= threshold)
        upper = c > r  # column c is row start + c; keep j > i only
        r, c = r[upper], c[upper]
        los.append(index[start + r])
        his.append(index[start + c])
        coss.append(block[r, c].astype(np.float64))
    if not los:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    lo, hi = np.concatenate(los).astype(np.int64), np.concatenate(his).astype(np.int64)
    cos = np.concatenate(coss)
    return np.minimum(lo, hi), np.maximum(lo, hi), cos


def _cells(vectors: np.ndarray, probes: int, seed: int, iterations: int = 8) -> list[np.ndarray]:
    """Members of each k-means cell (spherical k-means on a seeded sample), each record in
    its ``probes`` nearest cells."""
    # not faiss/usearch: every pair above the threshold is needed, and a row can have
    # thousands of them, so k-NN indexes (usearch) miss most; faiss IVF range search needs
    # nprobe=16 for 99% recall and is then slower than these cells
    # (bench_semantic_dedup.py --ann, benchmarks/results/semantic_dedup.md)
    n = len(vectors)
    k = max(2, int(np.sqrt(n)))
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, 64 * k), replace=False))]
    centroids = sample[np.sort(rng.choice(len(sample), size=k, replace=False))]
    for _ in range(iterations):
        assign = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        moved = norms[:, 0] > 0
        centroids[moved] = sums[moved] / norms[moved]
    near = np.empty((n, probes), np.int64)
    for start in range(0, n, 16_384):
        sims = vectors[start : start + 16_384] @ centroids.T
        near[start : start + 16_384] = np.argsort(-sims, axis=1, kind="stable")[:, :probes]
    cell = near.ravel()
    record = np.repeat(np.arange(n), probes)
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(k + 1))
    return [record[order[bounds[c] : bounds[c + 1]]] for c in range(k) if bounds[c + 1] > bounds[c]]


semantic = Semantic
