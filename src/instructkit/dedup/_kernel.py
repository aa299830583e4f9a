"""Kernels shared by the dedup steps: document text, shingle hashes, MinHash signatures,
LSH banding, union-find and Jaccard of shingle sets.

The per-document work (tokenize, hash shingles, 128 permutation minima, band hashes) is
one compiled numba kernel, run in parallel over the texts of a batch on every core; the
texts go to it as one UTF-8 buffer with offsets, straight from Arrow. numba is imported
lazily (:mod:`instructkit.dedup._jit`), so ``import instructkit`` does not load it.

Tokens: ``unit="word"`` cuts the lower-cased text into runs of word characters (Python's
``\\w``: ``str.isalnum()`` or ``_``); ``unit="char"`` makes every lower-cased character a
token, whitespace runs (``str.isspace()``) one space, leading/trailing whitespace dropped.
A token's hash is FNV-1a over its code points, then fmix64; ``ngram`` consecutive token
hashes fold into one 64-bit value whose high 32 bits are the shingle hash.

The permutations are datasketch's ``"affine32"`` scheme (datasketch >= 2.0), bit for bit:
``fmix32(h)`` then ``a_k * h + b_k mod 2**32`` with ``a``/``b`` drawn from
``np.random.RandomState(seed)`` exactly as ``datasketch.MinHash`` draws them. Feeding
datasketch the same 32-bit shingle hashes (:func:`shingle_hashes`) gives equal signatures.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from instructkit._mix import fmix64

#: Separator between the fields of one record when they are joined into one document.
FIELD_SEPARATOR = "\n\n"
#: Texts per kernel call: bounds the buffer that receives the shingle hashes.
_CHUNK = 16384


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


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: class bits (1 = word character, 2 = whitespace) and lower case.

    Built with numpy's vectorised string predicates over all 0x110000 code points (~60 ms,
    once per process); ``lower`` keeps the first code point of ``str.lower()``.
    """
    from instructkit.dedup import _jit

    cps = np.arange(0x110000, dtype=np.uint32)
    chars = cps.view("<U1")
    klass = np.where(np.strings.isalnum(chars) | (cps == ord("_")), _jit.WORD, np.uint8(0))
    klass |= np.where(np.strings.isspace(chars), _jit.SPACE, np.uint8(0))
    lower = cps.copy()
    # no code point above U+1F000 changes case
    head = chars[:0x1F000]
    cased = np.flatnonzero(np.strings.isupper(head) | np.strings.istitle(head))
    lower[cased] = np.strings.lower(chars[cased]).view(np.uint32)
    return klass.astype(np.uint8), lower


def utf8(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The texts as one UTF-8 byte buffer and ``len + 1`` offsets (nulls are empty).

    Example:
        >>> import polars as pl
        >>> data, offsets = utf8(pl.Series(["ab", None, "é"]))
        >>> bytes(data).decode(), offsets.tolist()
        ('abé', [0, 2, 2, 4])
    """
    arr = texts.fill_null("").cast(pl.String).to_arrow()
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    _, offsets, data = arr.buffers()
    offsets = np.frombuffer(offsets, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    return data, offsets


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


@dataclass(frozen=True)
class MinHashes:
    """What :func:`minhash` computes for a batch of texts."""

    signatures: np.ndarray  # (texts x num_perm) uint32
    counts: np.ndarray  # shingles per text (int32); 0 = empty text
    band_keys: np.ndarray | None  # (bands x texts) uint64
    hashes: np.ndarray | None  # every text's shingle hashes (uint32), text after text


def minhash(
    texts: pl.Series,
    *,
    ngram: int,
    unit: str,
    num_perm: int,
    seed: int,
    bands: int = 0,
    rows: int = 0,
    keep_shingles: bool = False,
) -> MinHashes:
    """MinHash signatures, shingle counts, band hashes (``bands > 0``) and, with
    ``keep_shingles``, the shingle hashes of many texts: one compiled pass, parallel
    over the texts.

    A text with fewer than ``ngram`` tokens is one shingle made of all its tokens; an
    empty text has none, and a signature of ``2**32 - 1`` (datasketch's empty value).

    Example:
        >>> import polars as pl
        >>> m = minhash(pl.Series(["a b c", ""]), ngram=2, unit="word", num_perm=4, seed=1,
        ...             bands=2, rows=2)
        >>> m.signatures.shape, m.counts.tolist(), m.band_keys.shape
        ((2, 4), [2, 0], (2, 2))
    """
    from instructkit.dedup import _jit

    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    if bands * rows > num_perm:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {num_perm}")
    klass, lower = _tables()
    a, b = permutations(num_perm, seed)
    basis = np.uint64(0xCBF29CE484222325 ^ int(fmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF))))
    data, offsets = utf8(texts)
    n = offsets.size - 1
    sig = np.empty((n, num_perm), np.uint32)
    counts = np.empty(n, np.int32)
    band_keys = np.empty((bands, n), np.uint64)
    parts = []
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        off = offsets[lo : hi + 1]
        if keep_shingles:
            # a word takes a character and a separator, so a text of L bytes has at most
            # (L + 1) // 2 word shingles, and at most L character shingles
            room = np.diff(off) if unit == "char" else (np.diff(off) + 1) // 2
            starts = np.cumsum(room) - room
            scratch = np.empty(int(room.sum()), np.uint32)
        else:
            starts, scratch = np.empty(0, np.int64), np.empty(0, np.uint32)
        _jit.minhash_texts(
            data, off, ngram, unit == "char", basis, lower, klass, a, b, bands, rows,
            sig[lo:hi], counts[lo:hi], band_keys[:, lo:hi], scratch, starts,
        )
        if keep_shingles:
            c = counts[lo:hi]
            out = np.empty(int(c.sum()), np.uint32)
            _jit.compact(scratch, starts, c, np.cumsum(c) - c, out)
            parts.append(out)
    hashes = None
    if keep_shingles:
        hashes = np.concatenate(parts) if parts else np.empty(0, np.uint32)
    return MinHashes(sig, counts, band_keys if bands else None, hashes)


def shingle_hashes(
    texts: pl.Series, ngram: int, unit: str = "word", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every n-gram shingle of every text, and shingle counts per text.

    The hashes of text ``i`` are ``hashes[counts[:i].sum():counts[:i + 1].sum()]``.

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c d", "", "x"]), ngram=3)
        >>> c.tolist(), h.dtype.name
        ([2, 0, 1], 'uint32')
    """
    m = minhash(texts, ngram=ngram, unit=unit, num_perm=0, seed=seed, keep_shingles=True)
    return m.hashes, m.counts  # type: ignore[return-value]


def signatures(hashes: np.ndarray, counts: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures (``len(counts) x num_perm`` uint32) of given shingle hashes
    (as :func:`shingle_hashes` returns them): what ``datasketch.MinHash(num_perm,
    seed=seed, hashfunc=int).update_batch(hashes)`` gives, for every text at once.

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c", "a b c"]), ngram=2)
        >>> s = signatures(h, c, num_perm=8, seed=1)
        >>> s.shape, bool((s[0] == s[1]).all())
        ((2, 8), True)
    """
    from instructkit.dedup import _jit

    a, b = permutations(num_perm, seed)
    counts = np.asarray(counts, np.int64)
    out = np.empty((counts.size, num_perm), np.uint32)
    _jit.signatures_of(np.asarray(hashes, np.uint32), np.cumsum(counts) - counts, counts, a, b, out)
    return out


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 hash per (band, document) of the ``rows`` signature values of the band:
    ``bands x n`` (band-major, one array per band to bucket).

    Example:
        >>> import numpy as np
        >>> sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9]], np.uint32)
        >>> k = band_hashes(sig, 2, 2)
        >>> bool(k[0, 0] == k[0, 1]), bool(k[1, 0] == k[1, 1])
        (True, False)
    """
    from instructkit.dedup import _jit

    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands x rows = {bands * rows} exceeds num_perm = {sig.shape[1]}")
    out = np.empty((bands, sig.shape[0]), np.uint64)
    _jit.band_hashes(np.ascontiguousarray(sig), bands, rows, out)
    return out


def bucket_edges(keys: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(first, other)`` linking each active member of a bucket (equal key) to
    its first active member (lowest index). A star per bucket keeps the edge count linear.

    Example:
        >>> import numpy as np
        >>> first, other = bucket_edges(np.array([5, 7, 5, 5], np.uint64), np.ones(4, bool))
        >>> first.tolist(), other.tolist()
        ([0, 0], [2, 3])
    """
    from instructkit.dedup import _jit

    if keys.size >= 2**31:
        raise ValueError(f"one decide handles at most 2**31 - 1 records, got {keys.size:,}")
    first = np.empty(keys.size, np.int64)
    other = np.empty(keys.size, np.int64)
    e = _jit.bucket_edges(np.ascontiguousarray(keys, np.uint64), np.asarray(active, bool), first, other)
    return first[:e].copy(), other[:e].copy()


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of equal slots of each pair of signature rows ``(a[i], b[i])``."""
    if a.shape[0] == 0:
        return np.empty(0)
    return (a == b).mean(axis=1)


def exact_jaccard(
    hashes: np.ndarray, counts: np.ndarray, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """True Jaccard of the shingle-hash sets of each pair ``(left[i], right[i])`` of texts
    (``hashes`` and ``counts`` as :func:`shingle_hashes` returns them).

    Example:
        >>> import polars as pl
        >>> h, c = shingle_hashes(pl.Series(["a b c d", "a b c e"]), ngram=2)
        >>> exact_jaccard(h, c, np.array([0]), np.array([1])).round(2).tolist()
        [0.5]
    """
    from instructkit.dedup import _jit

    counts = np.asarray(counts, np.int64)
    out = np.empty(left.size, np.float64)
    _jit.jaccard_pairs(
        np.asarray(hashes, np.uint32), np.cumsum(counts) - counts, counts,
        np.asarray(left, np.int64), np.asarray(right, np.int64), out,
    )
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


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over ``n`` nodes and the given edges: each node's root is the smallest
    index of its connected component.

    Example:
        >>> import numpy as np
        >>> components(5, np.array([3, 1]), np.array([4, 3])).tolist()
        [0, 1, 2, 1, 1]
    """
    from instructkit.dedup import _jit

    return _jit.components(n, np.asarray(left, np.int64), np.asarray(right, np.int64))


_WARMING: list[threading.Thread] = []
_WARM_LOCK = threading.Lock()


def warm_decide_kernels() -> threading.Thread:
    """Load the compiled kernels MinHash's ``decide`` runs (bucket grouping, union-find,
    Jaccard of pairs, signatures from shingle hashes) from numba's cache, on a background
    thread, once per process; returns that thread.

    Under an executor the driver decides right after a pass during which it only waits for
    the workers: loading the kernels then costs nothing, where loading them inside ``decide``
    (about half a second) holds up every worker. Results do not change.

    Example:
        >>> warm_decide_kernels().join()
        >>> warm_decide_kernels() is warm_decide_kernels()
        True
    """
    with _WARM_LOCK:
        if not _WARMING:
            _WARMING.append(threading.Thread(target=_load_decide_kernels, name="instructkit-warm-minhash", daemon=True))
            _WARMING[0].start()
        return _WARMING[0]


def start_numba() -> None:
    """numba's one-off start in this process (about 0.5 s of CPU: its import, its
    compiler's registries, a first kernel from the cache); every later kernel then loads in
    milliseconds. It loads the union-find kernel, which is serial and takes numpy inputs, so
    the process starts no thread pool and may fork (see
    :meth:`~instructkit.transform.Transform.preload`).

    Example:
        >>> start_numba()
    """
    components(2, np.zeros(1, np.int64), np.ones(1, np.int64))


def _load_decide_kernels() -> None:
    one, two = np.zeros(1, np.int64), np.ones(1, np.int64)
    bucket_edges(np.zeros(2, np.uint64), np.ones(2, bool))
    components(2, one, two)
    exact_jaccard(np.arange(2, dtype=np.uint32), np.ones(2, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64))
    signatures(np.arange(2, dtype=np.uint32), np.ones(2, np.int64), 2, 1)
    from instructkit.dedup import _jit

    mapped = np.zeros(2, np.uint32)
    mapped.flags.writeable = False  # as the spill file's memory map is
    _jit.compact(mapped, np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64), np.empty(1, np.uint32))


def _check_threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold <= 1.0) or math.isnan(threshold):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return float(threshold)
