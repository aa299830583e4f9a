"""Near-duplicate removal with MinHash signatures, LSH banding and union-find."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup import _kernel as K
from instructkit.dedup._base import (
    DEFAULT_FIELDS,
    Against,
    check_fields,
    check_keep,
    drops_frame,
    kept_per_cluster,
    present_fields,
    repeated,
)
from instructkit.dedup._spill import Part, Rows, SpillFile
from instructkit.text import record_text
from instructkit.transform import Global

if TYPE_CHECKING:
    from instructkit.dataset import Dataset


@dataclass(frozen=True)
class Signatures:
    """Observed state of one batch, no texts: in RAM the ids, shingle counts and text
    lengths; on disk (a :class:`~instructkit.dedup._spill.SpillFile`) the shingle hashes
    with ``verify="exact"``, else the full signatures (read only to verify candidate
    pairs and estimate the Jaccard of removed records; with the shingle hashes the
    signature rows needed are recomputed from them), then the band hashes of the banding
    in use when it was observed (read one band at a time by ``decide``).
    """

    ids: pl.Series
    shingles: np.ndarray  # int32 shingles per record; 0 = empty text, never a duplicate
    lengths: np.ndarray  # int32 characters, for keep="longest"
    banding: tuple[int, int]
    num_perm: int
    seed: int  # of the permutations: signatures are recomputed from the shingle hashes
    spill: SpillFile  # [signatures (records x num_perm uint32)], [shingle hashes (uint32)], band hashes
    has_hashes: bool  # the spill file holds the shingle hashes
    has_signatures: bool  # it starts with the signatures (observe stores them only without hashes)
    band_offset: int  # byte offset of the (bands x records) uint64 band hashes in the file
    left_out: np.ndarray | None = None  # bool per record: left out by MinHash.without, takes no part

    def __len__(self) -> int:
        return len(self.ids)

    def active(self) -> np.ndarray:
        """Records that take part in the buckets: an empty text is never a duplicate, and
        a record left out (:meth:`MinHash.without`) is as if it had not been observed."""
        on = self.shingles > 0
        return on if self.left_out is None else on & ~self.left_out

    def ram_bytes(self) -> int:
        """Bytes this state holds in memory (ids, shingle counts, text lengths).

        Example:
            >>> import instructkit as ik
            >>> step = ik.dedup.minhash()
            >>> state = step.observe(ik.synth.near_duplicates(1_000, seed=1).to_polars())
            >>> state.ram_bytes() / len(state) < 60
            True
            >>> bands, _ = step.banding()  # on disk: the shingle hashes, then the band hashes
            >>> state.disk_bytes() == 4 * int(state.shingles.sum()) + 8 * bands * len(state)
            True
        """
        # polars keeps a 16-byte view per string besides its bytes; estimated_size omits it
        ids = self.ids.estimated_size() + 16 * len(self.ids)
        return int(ids + self.shingles.nbytes + self.lengths.nbytes)

    def band(self, band: int) -> np.ndarray:
        """The records' uint64 hashes of ``band`` (of :attr:`banding`), read from the file."""
        n = len(self)
        return np.fromfile(self.spill.path, np.uint64, count=n, offset=self.band_offset + 8 * band * n)

    def disk_bytes(self) -> int:
        """Bytes of the spill file: ``4 x shingles`` with ``verify="exact"``, else
        ``4 x num_perm`` per record, plus ``8 x bands`` per record."""
        return self.spill.nbytes()

    def part(self) -> Part:
        """Where :class:`~instructkit.dedup._spill.Rows` finds this batch's records."""
        return Part(self.spill, len(self), self.num_perm, self.shingles,
                    has_signatures=self.has_signatures, seed=self.seed)


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


@dataclass(frozen=True)
class Bands:
    """The band hashes of every record of one ``decide``: the parts (batches, the reference
    first) in order, record ``i`` of the whole being record ``i - offset`` of its part.
    """

    parts: list[Signatures]
    reader: Rows
    banding: tuple[int, int]

    @property
    def offsets(self) -> np.ndarray:
        """Global index of each part's first record."""
        return self.reader.offsets[:-1]

    def active(self, k: int) -> np.ndarray:
        """Records of part ``k`` that take part (see :meth:`Signatures.active`)."""
        return self.parts[k].active()

    def keys(self, k: int) -> Iterator[np.ndarray]:
        """The uint64 hashes of part ``k``, one band after the other: read from its spill
        file, or recomputed from its signatures when it was observed under another banding
        (a threshold sweep)."""
        part = self.parts[k]
        if part.banding == self.banding:
            for band in range(self.banding[0]):
                yield part.band(band)
        else:
            yield from self.reader.band_keys(k, *self.banding)


#: Finds candidate pairs ``(first, other)`` (global indexes, ``first < other``) from
#: :class:`Bands`: records that share a band hash, each linked to the bucket's first record.
Candidates = Callable[[Bands], tuple[np.ndarray, np.ndarray]]


def band_candidates(bands: Bands) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs found in this process (the default): the bands are grouped on
    polars' share of the cores, as many at once as it has threads (the kernel releases the
    GIL), and their edges joined in band order."""
    active = np.concatenate([bands.active(k) for k in range(len(bands.parts))])
    per_part = [bands.keys(k) for k in range(len(bands.parts))]
    threads = pl.thread_pool_size()
    edges: list[tuple[np.ndarray, np.ndarray]] = []
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[tuple[np.ndarray, np.ndarray]]] = deque()
        for _ in range(bands.banding[0]):
            # the keys of a band are read when a thread is free for it, not all at once
            pending.append(pool.submit(K.bucket_edges, np.concatenate([next(keys) for keys in per_part]), active))
            if len(pending) >= threads:
                edges.append(pending.popleft().result())
        edges += [future.result() for future in pending]
    if not edges:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    left, right = zip(*edges, strict=True)
    return np.concatenate(left), np.concatenate(right)


class MinHash(Against, Global):
    """Remove near-duplicates: MinHash signatures, LSH bands, verification, union-find.

    Each record's text (its ``fields`` joined, every turn for ``messages``) becomes the set
    of its ``ngram``-shingles of words (``unit="word"``) or characters (``unit="char"``,
    for CJK and short text). Signatures use datasketch's ``affine32`` permutations
    (``datasketch.MinHash(num_perm, seed=seed)`` gives the same signature for the same
    shingle hashes). ``bands x rows`` come from the threshold (chosen for recall: a pair
    at exactly ``threshold`` is missed with probability <= 1%), or are given. Candidate
    pairs are then verified: ``verify="exact"`` (or ``True``, the default) keeps a pair
    when the true Jaccard of the two shingle-hash sets reaches ``threshold``;
    ``verify="signature"`` uses the Jaccard estimated from the full signatures (the
    signatures are kept instead of the shingle hashes: lighter only for texts of more
    than ``num_perm`` shingles); ``verify="none"`` (or ``False``) keeps every candidate. Connected pairs form clusters (union-find);
    each cluster keeps its first record (``keep="first"``) or its longest one
    (``keep="longest"``).

    Removed records get reason ``near_duplicate`` and a JSON detail with the kept id, the
    cluster number and the estimated Jaccard with the kept record. Records that upsampling
    copied on purpose (``meta.repeat > 0``) are left alone, and empty texts are never
    duplicates. With ``against=`` records near a reference record are removed; the
    reference itself is not deduplicated.

    ``threshold``, ``bands``, ``rows``, ``keep`` and ``against`` only affect
    :meth:`decide`, so a threshold sweep reuses the signatures.

    Memory: the state of a batch keeps in RAM only its ids and two 4-byte counts per
    record (~40 bytes per record); the band hashes (8 bytes per band) and, for
    ``verify="exact"``, the shingle hashes (4 bytes per shingle), else the full signatures
    (``4 x num_perm`` bytes per record) go to a temporary file in ``spill_dir`` (by default
    the run folder's ``state/tmp`` under an executor, else the system temp dir), read back
    by ``decide`` and deleted with the state. With the shingle hashes on disk the
    signatures are not stored: ``decide`` recomputes the rows it needs from them (the
    Jaccard estimate of each removed record, band hashes under another banding), the same
    values bit for bit. A state moved to another process (pickled, as the Ray executor
    does) takes the file along by path: ``spill_dir`` must then be on a disk that process
    sees.

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
    observes_per_record: ClassVar[bool] = True

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
        spill_dir: str | Path | None = None,
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
        self.spill_dir = spill_dir

    def prepare(self) -> None:
        """Read ``against`` (if any), and start loading the kernels of :meth:`decide` in
        the background (:func:`~instructkit.dedup._kernel.warm_decide_kernels`)."""
        super().prepare()
        K.warm_decide_kernels()

    @classmethod
    def preload(cls) -> None:
        """Start numba (:func:`~instructkit.dedup._kernel.start_numba`): the kernels of
        :meth:`observe` then load in milliseconds."""
        K.start_numba()

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
        """MinHash state of a batch (records copied by upsampling are left out)."""
        skip = repeated(batch)
        frame = batch.filter(pl.Series(~skip)) if skip.any() else batch
        text = record_text(frame, present_fields(self.fields, frame))
        bands, rows = self.banding()
        exact = self._verify_mode() == "exact"
        m = K.minhash(
            text, ngram=self.ngram, unit=self.unit, num_perm=self.num_perm, seed=self.seed,
            bands=bands, rows=rows, keep_shingles=exact,
        )
        # the shingle hashes give back any signature row, so the signatures stay off disk
        stored = m.hashes if exact else m.signatures
        arrays = [stored, m.band_keys]
        return Signatures(
            ids=frame["id"],
            shingles=m.counts,
            lengths=text.str.len_chars().cast(pl.Int32).to_numpy(),
            banding=(bands, rows),
            num_perm=self.num_perm,
            seed=self.seed,
            spill=SpillFile.write(self.spill_dir, arrays),  # type: ignore[arg-type]
            has_hashes=exact,
            has_signatures=not exact,
            band_offset=stored.nbytes,  # type: ignore[union-attr]
        )

    def without(self, state: Signatures, ids: pl.Series) -> Signatures:
        """``state`` with the records ``ids`` left out: they stay in place (the spill file
        is not rewritten) but take part in no bucket, so they join no cluster and are
        never dropped, as if they had not been observed.

        Example:
            >>> import instructkit as ik
            >>> step = ik.dedup.minhash()
            >>> frame = ik.Dataset.from_records([{"instruction": "say hello to the whole wide world", "output": "hi"}] * 3).to_polars()
            >>> state = step.observe(frame)
            >>> len(step.decide([state])), len(step.decide([step.without(state, frame["id"][:2])]))
            (2, 0)
        """
        out = state.ids.is_in(ids.implode()).to_numpy()
        if state.left_out is not None:
            out |= state.left_out
        return dataclasses.replace(state, left_out=out)

    def _verify_mode(self) -> str:
        return {True: "exact", False: "none"}.get(self.verify, self.verify)  # type: ignore[arg-type]

    def cluster(self, states: Sequence[Signatures], candidates: Candidates | None = None) -> Clusters:
        """Candidates from the bands, verified, joined by union-find (see :meth:`decide`).

        ``candidates`` finds the candidate pairs from the band hashes; the default,
        :func:`band_candidates`, groups each band's hashes in this process (the Ray
        executor passes a shuffle on Ray Data instead: same pairs, found by the workers).
        """
        ref = self.reference()
        parts = list(states)
        n_ref = 0
        if ref is not None:
            ref_state = self.observe(ref.with_columns(pl.lit(None, dtype=pl.String).alias("meta")))
            n_ref = len(ref_state)
            parts = [ref_state, *parts]
        if not parts:
            empty = np.empty(0, np.int64)
            return Clusters(pl.Series([], dtype=pl.String), empty, empty, np.empty(0, bool),
                            np.empty(0), 0, 0)
        if any(p.num_perm != self.num_perm for p in parts):
            raise ValueError(f"states were observed with num_perm={parts[0].num_perm}, not {self.num_perm}")
        ids = pl.concat([p.ids for p in parts])
        lengths = np.concatenate([p.lengths for p in parts])
        reader = Rows([p.part() for p in parts])
        n = len(ids)
        is_ref = np.zeros(n, dtype=bool)
        is_ref[:n_ref] = True

        left, right = (candidates or band_candidates)(Bands(parts, reader, self.banding()))
        # the same pair shows up in several bands: keep it once (first < other already)
        pair = np.unique(left * n + right)
        lo, hi = pair // n, pair % n
        # the reference is not deduplicated: links inside it would only chain clusters
        keep_edge = ~(is_ref[lo] & is_ref[hi])
        lo, hi = lo[keep_edge], hi[keep_edge]
        candidates_found = lo.size
        mode = self._verify_mode()
        if mode == "exact" and lo.size:
            if not all(p.has_hashes for p in parts):
                raise ValueError("verify='exact' needs states observed with verify='exact'")
            ok = reader.jaccard(lo, hi, exact=True, num_perm=self.num_perm) >= self.threshold
            lo, hi = lo[ok], hi[ok]
        elif mode == "signature" and lo.size:
            ok = reader.jaccard(lo, hi, exact=False, num_perm=self.num_perm) >= self.threshold
            lo, hi = lo[ok], hi[ok]
        root = K.components(n, lo, hi)
        kept = kept_per_cluster(root, is_ref, lengths, self.keep)
        others = np.flatnonzero(kept != np.arange(n))
        jaccard = np.ones(n)
        if others.size:
            jaccard[others] = reader.jaccard(others, kept[others], exact=False, num_perm=self.num_perm)
        return Clusters(ids, root, kept, is_ref, jaccard, int(candidates_found), int(lo.size))

    def decide_options(self, executor: str) -> dict[str, Any]:
        """On Ray, candidate pairs come from
        :class:`~instructkit.executors.ray_minhash.BandShuffle`: on a cluster of several
        nodes a Ray Data shuffle of the band hashes, grouped by the workers; on one node
        the driver's grouping, which is faster there. The same pairs either way.

        Example:
            >>> MinHash().decide_options("local")
            {}
        """
        if executor != "ray":
            return {}
        from instructkit.executors.ray_minhash import BandShuffle

        return {"candidates": BandShuffle()}

    def decide_stats(self, options: dict[str, Any]) -> dict[str, Any]:
        """What the band shuffle moved (band rows, partitions, pairs), when there was one."""
        shuffle = options.get("candidates")
        if shuffle is None:
            return {}
        return {"shuffle": shuffle.stats()}

    def decide(self, states: list[Any], candidates: Candidates | None = None) -> pl.DataFrame:
        """Drops: every record of a cluster but the kept one, with reason ``near_duplicate``
        (``candidates`` as in :meth:`cluster`)."""
        c = self.cluster(states, candidates)
        return drops_frame(c.ids, c.root, c.kept, c.is_ref, "near_duplicate", {"jaccard": c.jaccard})


minhash = MinHash
