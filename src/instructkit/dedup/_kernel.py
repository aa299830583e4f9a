"""Vectorised kernels shared by the dedup steps: document text, shingle hashes, MinHash
signatures, LSH banding and union-find.

Nothing here loops in Python per document or per permutation:

- shingles: every word (or character) of a batch is hashed at once by polars, then the
  n-grams are folded from those hashes with numpy over the whole batch;
- signatures: ``a * h + b`` over a (shingles x permutations) block, then
  ``np.minimum.reduceat`` over each document's rows;
- banding: one sort per band; union-find: pointer jumping over all edges at once.

The permutations are datasketch's ``"affine32"`` scheme (datasketch >= 2.0), bit for bit:
``fmix32(h)`` then ``a_k * h + b_k mod 2**32`` with ``a``/``b`` drawn from
``np.random.RandomState(seed)`` exactly as ``datasketch.MinHash`` draws them. Feeding
datasketch the same 32-bit shingle hashes (:func:`shingle_hashes`) gives equal signatures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

#: Separator between the fields of one record when they are joined into one document.
FIELD_SEPARATOR = "\n\n"

_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram folding
_M64_1 = np.uint64(0xFF51AFD7ED558CCD)
_M64_2 = np.uint64(0xC4CEB9FE1A85EC53)
_M32_1 = np.uint32(0x85EBCA6B)
_M32_2 = np.uint32(0xC2B2AE35)
#: Shingles per signature block: a (texts x shingles) uint32 block of 64 KiB stays in cache.
_BLOCK = 16384


class Stacked:
    """Arrays of several batches seen as one along the first axis, without copying them
    (concatenating 1M signatures would double the peak memory).

    Example:
        >>> import numpy as np
        >>> s = Stacked([np.arange(3), np.arange(10, 12)])
        >>> len(s), s.take(np.array([4, 0, 3])).tolist()
        (5, [11, 0, 10])
    """

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *[len(p) for p in self.parts]])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (positions in the stacked array)."""
        if len(self.parts) == 1:
            return self.parts[0][index]
        which = np.searchsorted(self.offsets, index, side="right") - 1
        first = self.parts[0]
        out = np.empty((index.size, *first.shape[1:]), dtype=first.dtype)
        for k in np.unique(which).tolist():
            m = which == k
            out[m] = self.parts[k][index[m] - self.offsets[k]]
        return out

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn`` applied to each part, results concatenated."""
        return np.concatenate([fn(p) for p in self.parts])


def _stacked(a: np.ndarray | Stacked) -> Stacked:
    return a if isinstance(a, Stacked) else Stacked([a])


def document_text(frame: pl.DataFrame, fields: Sequence[str]) -> pl.Series:
    """One document per record: the fields joined by a blank line (every turn for messages).

    Example:
        >>> import polars as pl
        >>> f = pl.DataFrame({"instruction": ["Hi"], "output": ["Yo"]})
        >>> document_text(f, ["instruction", "output"]).to_list()
        ['Hi\\n\\nYo']
    """
    parts = []
    for name in fields:
        if name not in frame.columns:
            raise ValueError(f"dedup field {name!r} is not a column; columns are {frame.columns}")
        if name == "messages":
            parts.append(
                pl.col("messages")
                .list.eval(pl.element().struct.field("content"))
                .list.join(FIELD_SEPARATOR)
                .fill_null("")
            )
        else:
            parts.append(pl.col(name).cast(pl.String).fill_null(""))
    if not parts:
        raise ValueError("dedup needs at least one field")
    return frame.select(pl.concat_str(parts, separator=FIELD_SEPARATOR).alias("text"))["text"]


def tokens(texts: pl.Series, unit: str) -> pl.Series:
    """Lower-cased tokens per text: words (``\\w+`` runs) or characters (whitespace collapsed).

    Example:
        >>> import polars as pl
        >>> tokens(pl.Series(["Hello, World!"]), "word").to_list()
        [['hello', 'world']]
    """
    lower = texts.str.to_lowercase()
    if unit == "word":
        return lower.str.extract_all(r"\w+")
    if unit == "char":
        collapsed = lower.str.replace_all(r"\s+", " ").str.strip_chars()
        return collapsed.str.split("")
    raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (an avalanching bijection), in place on a uint64 array."""
    h ^= h >> np.uint64(33)
    h *= _M64_1
    h ^= h >> np.uint64(33)
    h *= _M64_2
    h ^= h >> np.uint64(33)
    return h


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme pre-mixes its input."""
    h = h ^ (h >> np.uint32(16))
    h *= _M32_1
    h ^= h >> np.uint32(13)
    h *= _M32_2
    h ^= h >> np.uint32(16)
    return h


def shingle_hashes(
    texts: pl.Series, ngram: int, unit: str = "word", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every n-gram shingle of every text, and shingle counts per text.

    A text with fewer than ``ngram`` tokens gives one shingle made of all its tokens; an
    empty text gives none. Returns ``(hashes uint32, counts int64)``; the hashes of text
    ``i`` are ``hashes[counts[:i].sum():counts[:i + 1].sum()]``.

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c d", "", "x"]), ngram=3)
        >>> c.tolist(), h.dtype.name
        ([2, 0, 1], 'uint32')
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    toks = tokens(texts.fill_null(""), unit)
    lengths = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
    # explode turns an empty list into one null row; real tokens are never null
    words = toks.explode().drop_nulls().hash(seed=seed).to_numpy().astype(np.uint64, copy=False)
    counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    total = words.size
    if total == 0:
        return np.empty(0, np.uint32), counts
    # fold the n tokens starting at every position of the batch at once; windows that run
    # past the end of their text are masked out below
    padded = np.concatenate([words, np.zeros(ngram - 1, np.uint64)])
    acc = words.copy()
    for k in range(1, ngram):
        acc *= _FOLD
        acc += padded[k : k + total]
    ends = np.cumsum(lengths)
    valid = np.ones(total, dtype=bool)
    for k in range(1, ngram):
        valid[(ends - k)[lengths >= k]] = False
    short = np.flatnonzero((lengths > 0) & (lengths < ngram))
    if short.size:
        # a text shorter than ngram is one shingle of all its tokens
        first = ends[short] - lengths[short]
        acc_s = words[first].copy()
        for k in range(1, ngram):
            inside = k < lengths[short]
            acc_s = np.where(inside, acc_s * _FOLD + padded[first + k], acc_s)
        acc[first] = acc_s
        valid[first] = True
    return (fmix64(acc[valid]) >> np.uint64(32)).astype(np.uint32), counts


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` uint32 parameters datasketch's affine32 ``MinHash(num_perm, seed)`` draws.

    Example:
        >>> a, b = permutations(4, seed=1)
        >>> bool((a % 2 == 1).all()), a.dtype.name
        (True, 'uint32')
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures(hashes: np.ndarray, counts: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures (``len(counts) x num_perm`` uint32) from :func:`shingle_hashes`.

    Rows of texts without shingles hold ``2**32 - 1`` everywhere (datasketch's empty value).

    Texts are grouped by padded shingle count and laid out as (texts x shingles) blocks,
    padded by repeating a text's last shingle (which cannot change a minimum); each
    permutation is then a multiply, an add and a contiguous ``min(axis=1)``.

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c", "a b c"]), ngram=2)
        >>> s = signatures(h, c, num_perm=8, seed=1)
        >>> s.shape, bool((s[0] == s[1]).all())
        ((2, 8), True)
    """
    a, b = permutations(num_perm, seed)
    out = np.full((counts.size, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size == 0:
        return out
    mixed = fmix32(hashes)
    starts = np.cumsum(counts) - counts
    c = counts[nonempty]
    # pad to a multiple of an eighth of the count's power of two: at most 12.5% waste
    step = np.maximum(1, (2 ** np.floor(np.log2(c))).astype(np.int64) // 8)
    padded = -(-c // step) * step
    for length in np.unique(padded).tolist():
        docs = nonempty[padded == length]
        rows = max(1, _BLOCK // length)
        cols = np.arange(length)
        tmp = np.empty((min(rows, docs.size), length), dtype=np.uint32)
        for r0 in range(0, docs.size, rows):
            d = docs[r0 : r0 + rows]
            x = mixed[starts[d, None] + np.minimum(cols[None, :], counts[d, None] - 1)]
            t = tmp[: d.size]
            sig = np.empty((d.size, num_perm), dtype=np.uint32)
            for k in range(num_perm):
                np.multiply(x, a[k], out=t)
                t += b[k]
                t.min(axis=1, out=sig[:, k])
            out[d] = sig
    return out


def minhash_signatures(
    texts: pl.Series,
    *,
    ngram: int,
    unit: str,
    num_perm: int,
    seed: int,
    keep_shingles: bool = False,
    chunk: int = 8192,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Signatures, shingle counts and (with ``keep_shingles``) the shingle hashes of many
    texts, in chunks spread over threads.

    polars string kernels and numpy ufuncs release the GIL, so chunks run on every core.

    Example:
        >>> import polars as pl
        >>> sig, counts, _ = minhash_signatures(
        ...     pl.Series(["a b c", ""]), ngram=2, unit="word", num_perm=4, seed=1)
        >>> sig.shape, counts.tolist()
        ((2, 4), [2, 0])
    """
    threads = threads or min(4, os.cpu_count() or 1)

    def one(offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        h, cnt = shingle_hashes(texts.slice(offset, chunk), ngram, unit, seed)
        return signatures(h, cnt, num_perm, seed), cnt, h if keep_shingles else None

    offsets = list(range(0, len(texts), chunk))
    if len(offsets) <= 1 or threads <= 1:
        parts = [one(o) for o in offsets]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(one, offsets))
    if not parts:
        empty = np.empty(0, np.uint32) if keep_shingles else None
        return np.empty((0, num_perm), np.uint32), np.empty(0, np.int64), empty
    sig = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    shingles = np.concatenate([p[2] for p in parts]) if keep_shingles else None
    return sig, counts, shingles


def exact_jaccard(
    shingles: np.ndarray | Stacked,
    counts: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    chunk: int = 20_000,
) -> np.ndarray:
    """True Jaccard of the shingle-hash sets of each pair ``(left[i], right[i])``.

    One sort per chunk of pairs: keys ``(pair, hash, side)`` put a repeated shingle of
    one text next to itself (counted once) and a shingle both texts share as a
    ``side 0, side 1`` neighbour pair (the intersection).

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c d", "a b c e"]), ngram=2)
        >>> exact_jaccard(h, c, np.array([0]), np.array([1])).round(2).tolist()
        [0.5]
    """
    starts = np.cumsum(counts) - counts
    shingles = _stacked(shingles)
    out = np.empty(left.size, dtype=np.float64)
    for s in range(0, left.size, chunk):
        lo, hi = left[s : s + chunk], right[s : s + chunk]
        n = lo.size
        sizes = np.stack([counts[lo], counts[hi]], axis=1).ravel()  # side-interleaved
        firsts = np.stack([starts[lo], starts[hi]], axis=1).ravel()
        total = int(sizes.sum())
        seg = np.repeat(np.arange(2 * n), sizes)
        pos = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes) + np.repeat(firsts, sizes)
        key = (
            (seg // 2).astype(np.uint64) << np.uint64(33)
            | shingles.take(pos).astype(np.uint64) << np.uint64(1)
            | (seg % 2).astype(np.uint64)
        )
        key.sort()
        fresh = np.ones(total, dtype=bool)
        fresh[1:] = key[1:] != key[:-1]
        key = key[fresh]
        pair = (key >> np.uint64(33)).astype(np.int64)
        uniq = np.bincount(pair, minlength=n)
        shared = (key[1:] >> np.uint64(1)) == (key[:-1] >> np.uint64(1))
        inter = np.bincount(pair[1:][shared], minlength=n)
        union = uniq - inter
        out[s : s + chunk] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


def false_negative(threshold: float, bands: int, rows: int) -> float:
    """Probability that a pair with Jaccard exactly ``threshold`` shares no band."""
    return (1.0 - threshold**rows) ** bands


def optimal_bands(threshold: float, num_perm: int, max_miss: float = 0.01) -> tuple[int, int]:
    """``(bands, rows)`` for recall: the most rows per band (fewest false candidates) such
    that a pair at exactly ``threshold`` is missed with probability at most ``max_miss``.

    Candidates are verified against the full signature afterwards, so false candidates
    cost a comparison while a missed pair is lost for good: this favours recall.

    Example:
        >>> optimal_bands(0.8, 128)
        (21, 6)
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if false_negative(threshold, bands, rows) <= max_miss:
            return bands, rows
    return num_perm, 1


def band_hash(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One uint64 hash per document of the ``rows`` signature values of ``band``."""
    if (band + 1) * rows > sig.shape[1]:
        raise ValueError(f"band {band} of {rows} rows exceeds num_perm = {sig.shape[1]}")
    acc = np.full(sig.shape[0], np.uint64(band + 1), dtype=np.uint64)
    for r in range(band * rows, (band + 1) * rows):
        acc *= _FOLD
        acc += sig[:, r]
        acc = fmix64(acc)
    return acc


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 hash per (document, band): ``bands x n`` (band-major, for sorting)."""
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {sig.shape[1]}")
    out = np.empty((bands, sig.shape[0]), dtype=np.uint64)
    for band in range(bands):
        out[band] = band_hash(sig, band, rows)
    return out


def bucket_edges(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(first, other)`` linking each member of a bucket (equal key) to its first
    member (lowest index). A star per bucket keeps the edge count linear."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    new = np.empty(sk.size, dtype=bool)
    if sk.size:
        new[0] = True
        new[1:] = sk[1:] != sk[:-1]
    group = np.cumsum(new) - 1
    heads = order[new]
    head_of = heads[group]
    keep = ~new
    return head_of[keep], order[keep]


def estimated_jaccard(
    sig: np.ndarray | Stacked, left: np.ndarray, right: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """Fraction of equal signature slots for each pair ``(left[i], right[i])``."""
    sig = _stacked(sig)
    out = np.empty(left.size, dtype=np.float64)
    for s in range(0, left.size, chunk):
        lo, hi = left[s : s + chunk], right[s : s + chunk]
        out[s : s + chunk] = (sig.take(lo) == sig.take(hi)).mean(axis=1)
    return out


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over ``n`` nodes and the given edges: each node's root is the smallest
    index of its connected component (hooking plus pointer jumping, all in numpy).

    Example:
        >>> import numpy as np
        >>> components(5, np.array([3, 1]), np.array([4, 3])).tolist()
        [0, 1, 2, 1, 1]
    """
    parent = np.arange(n, dtype=np.int64)
    if left.size == 0:
        return parent
    left = left.astype(np.int64)
    right = right.astype(np.int64)
    while True:
        pl_, pr = parent[left], parent[right]
        differ = pl_ != pr
        if not differ.any():
            return parent
        lo = np.minimum(pl_[differ], pr[differ])
        hi = np.maximum(pl_[differ], pr[differ])
        np.minimum.at(parent, hi, lo)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _check_threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold <= 1.0) or math.isnan(threshold):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return float(threshold)
