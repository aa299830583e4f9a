"""Near-duplicate removal with MinHash signatures, LSH banding and union-find."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup import _kernel as K
from instructkit.dedup._base import (
    DEFAULT_FIELDS,
    check_fields,
    check_keep,
    drops_frame,
    kept_per_cluster,
    load_reference,
    present_fields,
    repeated,
)
from instructkit.transform import Global

if TYPE_CHECKING:
    from instructkit.dataset import Dataset


@dataclass(frozen=True)
class Signatures:
    """Observed state of one batch: ids, MinHash signatures, text lengths. No texts."""

    ids: pl.Series
    signatures: np.ndarray  # (records x num_perm) uint32
    shingles: np.ndarray  # shingles per record; 0 = empty text, never a duplicate
    lengths: np.ndarray  # characters, for keep="longest"
    hashes: np.ndarray | None  # every record's 32-bit shingle hashes, for verify="exact"


@dataclass(frozen=True)
class Clusters:
    """Result of clustering, before it becomes a drops frame (also used by benchmarks)."""

    ids: pl.Series
    root: np.ndarray  # smallest index of each record's cluster
    kept: np.ndarray  # index of the record kept for each record's cluster
    is_ref: np.ndarray
    jaccard: np.ndarray  # estimated Jaccard of each record with its kept record
    candidates: int  # candidate pairs from the bands
    verified: int  # candidate pairs that passed verification


class MinHash(Global):
    """Remove near-duplicates: MinHash signatures, LSH bands, verification, union-find.

    Each record's text (its ``fields`` joined, every turn for ``messages``) becomes the set
    of its ``ngram``-shingles of words (``unit="word"``) or characters (``unit="char"``,
    for CJK and short text). Signatures use datasketch's ``affine32`` permutations
    (``datasketch.MinHash(num_perm, seed=seed)`` gives the same signature for the same
    shingle hashes). ``bands x rows`` come from the threshold (chosen for recall: a pair
    at exactly ``threshold`` is missed with probability <= 1%), or are given. Candidate
    pairs are then verified: ``verify="exact"`` (or ``True``, the default) keeps a pair
    when the true Jaccard of the two shingle-hash sets reaches ``threshold``;
    ``verify="signature"`` uses the Jaccard estimated from the full signatures (lighter:
    the shingle hashes are not kept); ``verify="none"`` (or ``False``) keeps every
    candidate. Connected pairs form clusters (union-find);
    each cluster keeps its first record (``keep="first"``) or its longest one
    (``keep="longest"``).

    Removed records get reason ``near_duplicate`` and a JSON detail with the kept id, the
    cluster number and the estimated Jaccard with the kept record. Records that upsampling
    copied on purpose (``meta.repeat > 0``) are left alone, and empty texts are never
    duplicates. With ``against=`` records near a reference record are removed; the
    reference itself is not deduplicated.

    ``threshold``, ``bands``, ``rows``, ``keep`` and ``against`` only affect
    :meth:`decide`, so a threshold sweep reuses the signatures.

    Example:
        >>> import instructkit as ik
        >>> text = ("Write a short story about a robot who learns to paint. The robot lives "
        ...         "in a small town by the sea, and every morning it walks to the harbour to "
        ...         "watch the fishing boats come in with the light.")
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": text, "output": "ok"},
        ...     {"instruction": text.replace("morning", "evening"), "output": "ok"},
        ...     {"instruction": "something else entirely, with other words", "output": "no"},
        ... ], source="demo")
        >>> out = ds.pipe(ik.dedup.minhash(threshold=0.7))
        >>> len(out), out.removed["reason"].to_list()
        (2, ['near_duplicate'])
    """

    name: ClassVar[str] = "dedup.minhash"
    decide_params: ClassVar[tuple[str, ...]] = ("threshold", "bands", "rows", "keep", "against")

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        ngram: int = 5,
        unit: str = "word",
        fields: str | Sequence[str] = DEFAULT_FIELDS,
        bands: int | None = None,
        rows: int | None = None,
        verify: bool | str = "exact",
        keep: str = "first",
        against: Dataset | str | Path | None = None,
        seed: int = 1,
    ) -> None:
        self.threshold = K._check_threshold(threshold)
        if num_perm < 2:
            raise ValueError(f"num_perm must be >= 2, got {num_perm}")
        self.num_perm = num_perm
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        self.ngram = ngram
        if unit not in ("word", "char"):
            raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
        self.unit = unit
        self.fields = check_fields(fields)
        if (bands is None) != (rows is None):
            raise ValueError("give both bands and rows, or neither (then they follow the threshold)")
        if bands is not None and rows is not None and bands * rows > num_perm:
            raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.bands = bands
        self.rows = rows
        if verify not in (True, False, "exact", "signature", "none"):
            raise ValueError(f"verify must be 'exact', 'signature', 'none' or a bool, got {verify!r}")
        self.verify = verify
        self.keep = check_keep(keep)
        self.against = against
        self.seed = seed

    def banding(self) -> tuple[int, int]:
        """``(bands, rows)`` in use: the given ones, or :func:`optimal_bands` for the threshold.

        Example:
            >>> MinHash(threshold=0.8).banding()
            (21, 6)
        """
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.threshold >= 1.0:
            return 1, self.num_perm
        return K.optimal_bands(self.threshold, self.num_perm)

    def observe(self, batch: pl.DataFrame) -> Signatures:
        """MinHash signatures of a batch (records copied by upsampling are left out)."""
        skip = repeated(batch)
        frame = batch.filter(pl.Series(~skip)) if skip.any() else batch
        text = K.document_text(frame, present_fields(self.fields, frame))
        sig, shingles, hashes = K.minhash_signatures(
            text, ngram=self.ngram, unit=self.unit, num_perm=self.num_perm, seed=self.seed,
            keep_shingles=self._verify_mode() == "exact",
        )
        return Signatures(
            ids=frame["id"],
            signatures=sig,
            shingles=shingles,
            lengths=text.str.len_chars().cast(pl.Int64).to_numpy(),
            hashes=hashes,
        )

    def _verify_mode(self) -> str:
        return {True: "exact", False: "none"}.get(self.verify, self.verify)  # type: ignore[arg-type]

    def cluster(self, states: Sequence[Signatures]) -> Clusters:
        """Candidates from the bands, verified, joined by union-find (see :meth:`decide`)."""
        ref = load_reference(self.against)
        parts = list(states)
        n_ref = 0
        if ref is not None:
            ref_state = self.observe(ref.with_columns(pl.lit(None, dtype=pl.String).alias("meta")))
            n_ref = len(ref_state.ids)
            parts = [ref_state, *parts]
        if not parts:
            empty = np.empty(0, np.int64)
            return Clusters(pl.Series([], dtype=pl.String), empty, empty, np.empty(0, bool),
                            np.empty(0), 0, 0)
        ids = pl.concat([p.ids for p in parts])
        # batches stay separate arrays: stacking 1M signatures would double peak memory
        sig = K.Stacked([p.signatures for p in parts])
        shingles = np.concatenate([p.shingles for p in parts])
        lengths = np.concatenate([p.lengths for p in parts])
        n = len(sig)
        is_ref = np.zeros(n, dtype=bool)
        is_ref[:n_ref] = True

        active = shingles > 0
        bands, rows = self.banding()
        left_parts, right_parts = [], []
        for band in range(bands):
            keys = sig.map(lambda part, band=band: K.band_hash(part, band, rows))
            where = np.flatnonzero(active)
            a, b = K.bucket_edges(keys[where])
            left_parts.append(where[a])
            right_parts.append(where[b])
        left = np.concatenate(left_parts) if left_parts else np.empty(0, np.int64)
        right = np.concatenate(right_parts) if right_parts else np.empty(0, np.int64)
        # the same pair shows up in several bands: keep it once
        lo, hi = np.minimum(left, right), np.maximum(left, right)
        pair = np.unique(lo.astype(np.int64) * n + hi)
        lo, hi = pair // n, pair % n
        # the reference is not deduplicated: links inside it would only chain clusters
        keep_edge = ~(is_ref[lo] & is_ref[hi])
        lo, hi = lo[keep_edge], hi[keep_edge]
        candidates = lo.size
        mode = self._verify_mode()
        if mode == "exact" and lo.size:
            if any(p.hashes is None for p in parts):
                raise ValueError("verify='exact' needs states observed with verify='exact'")
            flat = K.Stacked([p.hashes for p in parts])  # type: ignore[misc]
            ok = K.exact_jaccard(flat, shingles, lo, hi) >= self.threshold
            lo, hi = lo[ok], hi[ok]
        elif mode == "signature" and lo.size:
            ok = K.estimated_jaccard(sig, lo, hi) >= self.threshold
            lo, hi = lo[ok], hi[ok]
        root = K.components(n, lo, hi)
        kept = kept_per_cluster(root, is_ref, lengths, self.keep)
        others = np.flatnonzero(kept != np.arange(n))
        jaccard = np.ones(n)
        if others.size:
            jaccard[others] = K.estimated_jaccard(sig, others, kept[others])
        return Clusters(ids, root, kept, is_ref, jaccard, int(candidates), int(lo.size))

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Drops: every record of a cluster but the kept one, with reason ``near_duplicate``."""
        c = self.cluster(states)
        return drops_frame(c.ids, c.root, c.kept, c.is_ref, "near_duplicate", {"jaccard": c.jaccard})


minhash = MinHash
