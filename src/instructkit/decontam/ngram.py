"""Hashed word n-gram index of benchmark items, and a compiled scanner for training text.

Normalization follows lm-eval's janitor (and GPT-3's decontamination): lowercase, punctuation
removed, whitespace collapsed, then split into words. One difference: punctuation becomes a
space rather than vanishing, so ``a+b`` and ``a + b`` give the same words (code is full of
such spacing changes). The punctuation set is ASCII punctuation plus common Unicode quotes,
dashes and spaces.

Hashing is two-level and never builds a word or n-gram string:

1. every word is hashed from its lowercased UTF-8 bytes, 8 bytes at a time (unaligned
   little-endian loads, mixed, then murmur3's finalizer: a 64-bit hash);
2. the hash of the n words starting at position ``i`` is the polynomial
   ``sum_k w[i+k] * B**(n-1-k)`` modulo 2**64 (B odd).

The index is built with numpy passes (:func:`word_hashes`: the texts lowercased by polars
and laid end to end in one byte array, separators found with a 256-entry byte table plus a
lookup of the few multi-byte Unicode ones; :func:`span_hashes`: every n-gram from one
prefix sum, with ``c[j] = w[j] * B**-j``, ``h(i) = B**(n-1+i) * (C[i+n] - C[i])``).

The benchmark n-grams are kept as a sorted array of unique hashes with, for each hash, the
items that contain it (CSR postings), and two bitmaps: a bit per value of the hashes' top 24
bits, and one per value of their low 26 bits. A scan lays a slice's lowercased texts end to end the same way,
then one compiled pass (:func:`instructkit.decontam._jit.scan_slice`, numba) over the bytes
classifies them with the same separators, hashes each word as above, rolls the n-gram hash
word by word inside each text (the same value modulo 2**64, so n-grams never cross a text,
nor a field boundary) and tests it against the top table (~95% of n-grams stop there) and the
low bitmap (~99.9% have stopped after it); only the survivors leave the kernel, and a binary
search confirms them. The kernel also gives each text's word count and whole-text hash, for
the whole-text matches of short items. Slices of :data:`SCAN_CHUNK` texts (a few MB, so the
arrays stay in cache) run on a thread per core: polars and the kernel release the GIL.

Example:
    >>> from instructkit.decontam.benchmarks import from_records
    >>> from instructkit.decontam.ngram import NgramIndex
    >>> import polars as pl
    >>> b = from_records("toy", [{"q": "one two three four five six seven eight"}], ["q"])
    >>> index = NgramIndex.build([b], n=5)
    >>> index.scan([pl.Series(["Say: One, two, THREE four five!"])], 1)["ngrams"].to_list()
    [1]
"""

from __future__ import annotations

import string
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from instructkit._mix import M64_1, fmix64
from instructkit.decontam.benchmarks import Benchmark

_UNICODE_PUNCT = "‘’‚‛“”„‟«»‹›–—―‐‑‒…•·¿¡、。，．！？：；（）【】「」『』〈〉《》"
_SPACES = "\n\t\r\x0b\x0c\u00a0\u2000\u2001\u2002\u2003\u2009\u200b\u2028\u2029\u3000"
_PATTERNS = list(string.punctuation) + list(_UNICODE_PUNCT) + list(_SPACES)
_SPACE_FOR_EACH = [" "] * len(_PATTERNS)

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible modulo 2**64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))
# n-gram prefilters: a bit per value of the top 24 bits (2 MB, ~5% of training n-grams pass
# with 887k benchmark n-grams), then a bit per value of the low 26 bits (8 MB, ~1.3%)
_TOP_BITS, _LOW_BITS = 24, 26
_TOP_SHIFT = np.uint64(64 - _TOP_BITS)
_LOW_MASK = np.uint64((1 << _LOW_BITS) - 1)

#: Rows per slice a scan hands to each worker thread.
SCAN_CHUNK = 8_192
#: A training text equal to a benchmark item (after normalization) is a match down to this
#: many words, whatever ``min_words`` says: ``min_words`` guards partial matches only.
WHOLE_MIN_WORDS = 4


def normalize(texts: pl.Series) -> pl.Series:
    """Lowercase, punctuation to spaces, whitespace collapsed (strings, for display).

    Example:
        >>> normalize(pl.Series(["Hello,   World!\\n"])).to_list()
        ['hello world']
    """
    return (
        texts.str.to_lowercase()
        .str.replace_many(_PATTERNS, _SPACE_FOR_EACH)
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .list.join(" ")
    )


def _separator_table() -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Whether each byte value can be part of a word (all but the one-byte separators; as
    bytes, which np.take gathers fastest), and the UTF-8 codes of the multi-byte separators
    by length."""
    word_byte = np.ones(256, dtype=np.uint8)
    multi: dict[int, list[int]] = {2: [], 3: []}
    for char in [" ", *_PATTERNS]:
        code = char.encode()
        if len(code) == 1:
            word_byte[code[0]] = 0
        else:
            multi[len(code)].append(int.from_bytes(code, "big"))
    return word_byte, {k: np.array(sorted(v), dtype=np.int64) for k, v in multi.items()}


_WORD_BYTE, _MULTI_SEP = _separator_table()
# the printable ASCII word bytes are the letters and digits (the scan kernel's fast path)
_ALNUM = all(bool(_WORD_BYTE[c]) == chr(c).isalnum() for c in range(0x20, 0x7F))
# bytes kept when only the first r bytes of a little-endian 8-byte load belong to the word
_TAIL_MASK = np.array([(1 << (8 * r)) - 1 for r in range(9)], dtype=np.uint64)
_LEN_SALT = np.uint64(0x9FB21C651E98DF25)
_S29 = np.uint64(29)


def _text_bytes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Lowercased UTF-8 bytes of all texts, each after a space (so words never run from one
    text into the next) with 16 spaces at the end, and where each text starts in them."""
    lowered = texts.cast(pl.String).fill_null("").str.to_lowercase()
    room = lowered.str.len_bytes().to_numpy().astype(np.int64) + 1
    begin = np.cumsum(room) - room + 1
    # "" first and 15 spaces last: the join adds the leading space and the 16th at the end
    padded = pl.concat([pl.Series([""]), lowered, pl.Series([" " * 15])])
    data = np.frombuffer(padded.str.join(" ").cast(pl.Binary).item(), dtype=np.uint8)
    return data, begin


def _word_bytes(data: np.ndarray) -> np.ndarray:
    """Whether each byte belongs to a word: separators are ASCII punctuation and whitespace,
    and the listed Unicode punctuation and spaces (every byte of their UTF-8 code)."""
    word = np.take(_WORD_BYTE, data).view(bool)
    if data.max(initial=0) >= 0xC2:  # multi-byte characters: look their codes up
        lead = np.flatnonzero(data[:-2] >= 0xC2)
        b0, b1, b2 = (data[lead + k].astype(np.int64) for k in range(3))
        two = lead[np.isin((b0 << 8) | b1, _MULTI_SEP[2])]
        three = lead[np.isin((b0 << 16) | (b1 << 8) | b2, _MULTI_SEP[3])]
        for width, at in ((2, two), (3, three)):
            for k in range(width):
                word[at + k] = False
    return word


def _words(texts: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bytes (see :func:`_text_bytes`), each word's start and end in them, words per text."""
    data, begin = _text_bytes(texts)
    word = _word_bytes(data)
    # data starts and ends with a space, so the edges alternate: start, end, start, ...
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    lens = np.diff(np.searchsorted(starts, begin), append=len(starts))
    return data, starts, ends, lens


def _hash_words(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hash of each word's bytes, 8 bytes at a time (unaligned loads, no strings)."""
    loads = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    length = ends - starts
    with np.errstate(over="ignore"):
        h = length.view(np.uint64) * _LEN_SALT
        h ^= loads[starts] & np.take(_TAIL_MASK, np.minimum(length, 8))
        # the rest of the long words (~10%), 8 bytes a round
        todo = np.flatnonzero(length > 8)
        where, rest = starts[todo] + 8, length[todo] - 8
        while len(todo):
            mixed = h[todo] * M64_1
            mixed ^= mixed >> _S29
            h[todo] = mixed ^ (loads[where] & np.take(_TAIL_MASK, np.minimum(rest, 8)))
            more = rest > 8
            todo, where, rest = todo[more], where[more] + 8, rest[more] - 8
    return fmix64(h)


def word_hashes(
    texts: pl.Series, trivial: bool = False
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hash of every normalized word of every text, and the number of words per text.

    Works on the texts' lowercased UTF-8 bytes: separators (see :func:`normalize`) split
    words, and each word's bytes are hashed in place, so no word string is ever built.
    With ``trivial``, also a flag per word: a single character or a number.

    Example:
        >>> h, lens = word_hashes(pl.Series(["a b", None, "A, B!"]))
        >>> lens.tolist(), bool(h[0] == h[2])
        ([2, 0, 2], True)
    """
    data, starts, ends, lens = _words(texts)
    hashes = _hash_words(data, starts, ends)
    if not trivial:
        return hashes, lens
    # characters = bytes that are not UTF-8 continuation bytes
    chars = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum((data & 0xC0) != 0x80, out=chars[1:])
    other = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum((data < ord("0")) | (data > ord("9")), out=other[1:])
    flags = ((chars[ends] - chars[starts]) == 1) | ((other[ends] - other[starts]) == 0)
    return hashes, lens, flags


class _Powers:
    """``B**i`` and ``B**-i`` modulo 2**64 for i < size, grown on demand (shared, locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fwd = np.ones(1, dtype=np.uint64)
        self.inv = np.ones(1, dtype=np.uint64)

    def get(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if len(self.fwd) < size:
                size = max(size, 2 * len(self.fwd))
                with np.errstate(over="ignore"):
                    fwd = np.full(size, _BASE, dtype=np.uint64)
                    inv = np.full(size, _BASE_INV, dtype=np.uint64)
                    fwd[0] = inv[0] = 1
                    self.fwd, self.inv = np.cumprod(fwd), np.cumprod(inv)
            return self.fwd, self.inv


_POWERS = _Powers()


def span_hashes(
    hashes: np.ndarray, starts: np.ndarray, length: int | np.ndarray
) -> np.ndarray:
    """Polynomial hash of the ``length`` words from each of ``starts`` in ``hashes``.

    Example:
        >>> h = np.array([5, 7, 5, 7], dtype=np.uint64)
        >>> s = span_hashes(h, np.array([0, 2]), 2)
        >>> bool(s[0] == s[1])
        True
    """
    total = len(hashes)
    fwd, inv = _POWERS.get(total + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(hashes * inv[:total], out=prefix[1:])
        ends = starts + length
        return (prefix[ends] - prefix[starts]) * fwd[ends - 1]


def ngram_hashes(
    hashes: np.ndarray, lens: np.ndarray, n: int, trivial: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every word n-gram inside each text, and the text each one belongs to.

    With ``trivial`` (a flag per word), n-grams made only of flagged words are left out.

    Example:
        >>> g, owner = ngram_hashes(np.arange(5, dtype=np.uint64), np.array([3, 2]), 2)
        >>> owner.tolist()
        [0, 0, 1]
    """
    owner = np.repeat(np.arange(len(lens)), lens)
    first = np.cumsum(lens) - lens  # position of each text's first word
    pos = np.arange(len(hashes)) - first[owner]
    inside = pos + n <= lens[owner]
    if trivial is not None:
        run = np.zeros(len(hashes) + 1, dtype=np.int64)
        np.cumsum(trivial, out=run[1:])
        end = np.minimum(np.arange(len(hashes)) + n, len(hashes))
        inside &= (run[end] - run[: len(hashes)]) < n
    starts = np.flatnonzero(inside)
    return span_hashes(hashes, starts, n), owner[starts]


def _postings(
    keys: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique keys and, per key, the items holding it (CSR offsets + items)."""
    order = np.lexsort((items, keys))
    keys, items = keys[order], items[order]
    # drop repeated (key, item) pairs: an n-gram counts once per item
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (items[1:] != items[:-1])
    keys, items = keys[first], items[first]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    offsets = np.append(starts, len(keys)).astype(np.int64)
    return keys[starts], offsets, items.astype(np.int32)


def _lookup(sorted_keys: np.ndarray, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``probe`` found in ``sorted_keys`` and the key index of each."""
    if len(sorted_keys) == 0 or len(probe) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    at = np.searchsorted(sorted_keys, probe)
    at[at == len(sorted_keys)] = 0
    found = np.flatnonzero(sorted_keys[at] == probe)
    return found, at[found]


@dataclass(frozen=True, eq=False)
class NgramIndex:
    """The hashed n-grams of benchmark items, ready to scan text against.

    N-grams made only of numbers and single characters (``0 1 2 3 ... a b c``) are not
    indexed: they occur in any corpus. Two kinds of match:

    - whole text: a training text equal to an item after normalization, for every item of
      :data:`WHOLE_MIN_WORDS` (4) words or more that n-grams cannot match (fewer than ``n``
      words, or fewer than ``min_words``);
    - partial: an item of ``min_words`` words or more (and at least ``n``) inside a longer
      text, through its ``n``-grams.

    Items under :data:`WHOLE_MIN_WORDS` words are too generic to attribute and are skipped
    (``skipped`` counts them per benchmark).
    """

    n: int
    min_words: int
    names: tuple[str, ...]  # benchmark name per benchmark code
    item_bench: np.ndarray  # benchmark code per global item
    item_ids: tuple[str, ...]  # item id per global item
    item_ngrams: np.ndarray  # distinct n-grams per global item
    keys: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    bitmap: np.ndarray  # top bits of the keys (packed bits)
    low_bitmap: np.ndarray  # low bits of the keys (packed bits)
    short_keys: np.ndarray
    short_offsets: np.ndarray
    short_items: np.ndarray
    skipped: dict[str, int]

    @classmethod
    def build(cls, benchmarks: Sequence[Benchmark], n: int = 13, min_words: int = 8) -> NgramIndex:
        """Index every item of ``benchmarks``.

        Example:
            >>> from instructkit.decontam.benchmarks import from_records
            >>> b = from_records("t", [{"q": "one two three four"}, {"q": "one two"}], ["q"])
            >>> NgramIndex.build([b], n=3, min_words=2).skipped  # under 4 words: never matched
            {'t': 1}
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        names = tuple(b.name for b in benchmarks)
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique, got {list(names)}")
        texts = [t for b in benchmarks for t in b.texts]
        item_bench = np.repeat(
            np.arange(len(benchmarks), dtype=np.int32), [len(b) for b in benchmarks]
        )
        item_ids = tuple(i for b in benchmarks for i in b.ids)
        hashes, lens, trivial = word_hashes(pl.Series(texts, dtype=pl.String), trivial=True)
        # n-grams of only digits and single letters ("0 1 2 ... a b c") are in any corpus
        grams, owner = ngram_hashes(hashes, lens, n, trivial)
        partial = lens[owner] >= min_words  # min_words guards partial matches only
        grams, owner = grams[partial], owner[partial]
        keys, offsets, items = _postings(grams, owner)
        item_ngrams = np.bincount(items, minlength=len(texts)).astype(np.int64)
        is_short = (lens >= WHOLE_MIN_WORDS) & ((lens < n) | (lens < min_words))
        short_pos = np.flatnonzero(is_short)
        first = np.cumsum(lens) - lens
        short_hash = span_hashes(hashes, first[short_pos], lens[short_pos])
        short_keys, short_offsets, short_items = _postings(short_hash, short_pos)
        too_short = lens < WHOLE_MIN_WORDS
        skipped = {
            name: int(too_short[item_bench == code].sum()) for code, name in enumerate(names)
        }
        bitmap, low_bitmap = _top_bitmap(keys), _low_bitmap(keys)
        return cls(
            n, min_words, names, item_bench, item_ids, item_ngrams, keys, offsets, items,
            bitmap, low_bitmap, short_keys, short_offsets, short_items, skipped,
        )

    def __repr__(self) -> str:
        return (
            f"NgramIndex(n={self.n}, benchmarks={list(self.names)}, items={len(self.item_ids)}, "
            f"ngrams={len(self.keys)}, short_items={len(self.short_keys)}, skipped={self.skipped})"
        )

    def scan(
        self, columns: Sequence[pl.Series], rows: int, owners: Sequence[np.ndarray] | None = None,
        workers: int | None = None,
    ) -> pl.DataFrame:
        """Match texts against the index.

        ``columns`` are text series; text ``j`` of ``columns[c]`` belongs to row
        ``owners[c][j]`` (default: row ``j``). Returns one line per (row, item) pair that
        shares at least one n-gram or a whole-text match: ``row`` (UInt32), ``item``
        (Int32, global item), ``ngrams`` (distinct shared n-grams, UInt32) and ``full``
        (Boolean, a short item equals one of the row's texts).

        Example:
            >>> from instructkit.decontam.benchmarks import from_records
            >>> b = from_records("t", [{"q": "one two three four"}], ["q"])
            >>> NgramIndex.build([b], n=3, min_words=4).scan([pl.Series(["x one two three four"])], 1)["ngrams"][0]
            2
        """
        if owners is None:
            owners = [np.arange(len(c)) for c in columns]
        texts = pl.concat([c.cast(pl.String) for c in columns]) if columns else pl.Series([], dtype=pl.String)
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        if len(texts) != len(owner):
            raise ValueError("scan: one owner row per text is needed")
        bounds = list(range(0, len(texts), SCAN_CHUNK)) or [0]
        workers = workers or min(pl.thread_pool_size(), len(bounds))

        def one(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            return self._scan_slice(texts.slice(start, SCAN_CHUNK), owner[start:start + SCAN_CHUNK])

        if workers > 1:
            # polars and the compiled kernel release the GIL: slices run truly in parallel
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(one, bounds))
        else:
            parts = [one(b) for b in bounds]
        row = np.concatenate([p[0] for p in parts])
        item = np.concatenate([p[1] for p in parts])
        key = np.concatenate([p[2] for p in parts])
        full_row = np.concatenate([p[3] for p in parts])
        full_item = np.concatenate([p[4] for p in parts]) if parts else np.zeros(0)
        grams = (
            pl.DataFrame({"row": row.astype(np.uint32), "item": item, "key": key})
            .unique()
            .group_by("row", "item")
            .agg(pl.len().cast(pl.UInt32).alias("ngrams"))
        )
        full = pl.DataFrame(
            {"row": full_row.astype(np.uint32), "item": full_item.astype(np.int32)}
        ).unique().with_columns(pl.lit(True).alias("full"))
        return (
            grams.join(full, on=["row", "item"], how="full", coalesce=True)
            .with_columns(pl.col("ngrams").fill_null(0), pl.col("full").fill_null(False))
            .sort("row", "item")
        )

    def _scan_slice(self, texts: pl.Series, owner: np.ndarray):  # noqa: ANN202 (tuple of arrays)
        from instructkit.decontam import _jit  # numba: imported on the first scan only

        data, begin = _text_bytes(texts)
        n = self.n
        # words, their hashes, the rolled n-gram hashes and both bitmap tests in one pass:
        # only the n-grams inside a text that pass both bitmaps come back
        lens, whole, text_of, grams = _jit.scan_slice(
            data, begin, _WORD_BYTE, _ALNUM, _MULTI_SEP[2], _MULTI_SEP[3], n, _BASE, _TOP_SHIFT,
            self.bitmap, _LOW_MASK, self.low_bitmap,
        )
        rows = items = keys = np.zeros(0, dtype=np.int64)
        if lens.sum() >= n:  # (the arrays' dtypes as when a slice has no n-gram at all)
            found, key = _lookup(self.keys, grams)
            rows, items, at = _expand(self.offsets, self.items, key)
            rows = owner[text_of[found[rows]]]
            keys = key[at]
        # whole-text matches for items n-grams cannot match
        full_rows = full_items = np.zeros(0, dtype=np.int64)
        if len(self.short_keys):
            cand = np.flatnonzero((lens >= WHOLE_MIN_WORDS) & ((lens < n) | (lens < self.min_words)))
            f_found, f_key = _lookup(self.short_keys, whole[cand])
            f_rows, full_items, _ = _expand(self.short_offsets, self.short_items, f_key)
            full_rows = owner[cand[f_found[f_rows]]]
        return rows, items, keys, full_rows, full_items


def _packed_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """A bit per value below ``2**bits``, set for ``values``, packed in bytes (little-endian
    within each byte: value ``v`` is bit ``v & 7`` of byte ``v >> 3``)."""
    bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
    np.bitwise_or.at(bitmap, values >> np.uint64(3), np.left_shift(1, values & np.uint64(7)).astype(np.uint8))
    return bitmap


def _top_bitmap(keys: np.ndarray) -> np.ndarray:
    """A bit per value of the keys' top :data:`_TOP_BITS` bits (2 MB: mostly in cache)."""
    return _packed_bits(keys >> _TOP_SHIFT, _TOP_BITS)


def _low_bitmap(keys: np.ndarray) -> np.ndarray:
    """A bit per value of the keys' low :data:`_LOW_BITS` bits."""
    return _packed_bits(keys & _LOW_MASK, _LOW_BITS)


def _expand(
    offsets: np.ndarray, items: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each found key, every item in its postings: (index into ``key``, item, index)."""
    width = offsets[key + 1] - offsets[key]
    at = np.repeat(np.arange(len(key)), width)
    within = np.arange(len(at)) - np.repeat(np.cumsum(width) - width, width)
    return at, items[offsets[key][at] + within], at


_CACHE: OrderedDict[tuple, NgramIndex] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def cached_index(benchmarks: Sequence[Benchmark], n: int, min_words: int) -> NgramIndex:
    """The index for these benchmarks and ``n``, built once per process (LRU of 8).

    A cache, not state: the index depends only on its key, so results never change.

    Example:
        >>> from instructkit.decontam.benchmarks import from_records
        >>> b = from_records("t", [{"q": "a b c"}], ["q"])
        >>> cached_index([b], 2, 8) is cached_index([b], 2, 8)
        True
    """
    key = (tuple(b.fingerprint for b in benchmarks), n, min_words)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    index = NgramIndex.build(benchmarks, n=n, min_words=min_words)
    with _CACHE_LOCK:
        _CACHE[key] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index
