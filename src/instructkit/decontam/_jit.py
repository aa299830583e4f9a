"""Compiled (numba) kernel of the n-gram scan: one pass over a slice's bytes finds the
words, hashes them, rolls the n-gram hash and keeps the n-grams that pass both bitmaps.

The hashes are exactly those of :func:`instructkit.decontam.ngram.word_hashes` and of the
prefix-sum formula of :func:`instructkit.decontam.ngram.span_hashes` (the index is built
with those): a word hash is the same 8-byte little-endian loads, mixing and finalizer as
:func:`~instructkit.decontam.ngram._hash_words`, and the n-gram hash
``sum_k w[i+k] * B**(n-1-k)`` modulo 2**64 is rolled word by word inside each text, which is
the same value modulo 2**64 (``B**-j * B**j == 1`` exactly, as ``B`` is odd).

This module imports numba at import time; :mod:`instructkit.decontam.ngram` imports it
lazily, on the first scan. Compiled once per machine and cached on disk (``cache=True``);
``nogil=True``, so the scan's slices run on threads in parallel. Integer arithmetic wraps
modulo ``2**64`` as in C.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from instructkit.dedup._jit import HIGH, L3A, L5B, L7B, L7F, L20, L30, L41, L61, LOAD, M64_1, fmix64

_LEN_SALT = np.uint64(0x9FB21C651E98DF25)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
# bytewise comparisons of 8 bytes at once (HIGH, L20 and the like: see instructkit.dedup._jit)
_GATHER = np.uint64(0x0102040810204080)  # (bytes of 0 or 1) * _GATHER >> 56: one bit per byte


@nb.njit(inline="always")
def _load(data, at, keep):
    """The first ``keep`` (1 to 8) bytes from ``data[at]`` as a little-endian integer (an
    8-byte load, masked: ``data`` has room after every word)."""
    return LOAD(data, at) & (_ALL >> np.uint64(64 - 8 * keep))


@nb.njit(inline="always")
def _word_hash(data, start, end):
    """Hash of ``data[start:end]``, as :func:`~instructkit.decontam.ngram._hash_words`."""
    length = end - start
    h = np.uint64(length) * _LEN_SALT
    h ^= _load(data, start, min(length, 8))
    where, rest = start + 8, length - 8
    while rest > 0:
        h *= M64_1
        h ^= h >> np.uint64(29)
        h ^= _load(data, where, min(rest, 8))
        where += 8
        rest -= 8
    return fmix64(h)  # murmur3's finalizer: every input bit reaches every output bit


@nb.njit(inline="always")
def _in_sorted(values, x):
    """Whether ``x`` is in the sorted array ``values``."""
    at = np.searchsorted(values, x)
    return at < len(values) and values[at] == x


@nb.njit(inline="always")
def _flush(queue, queued, flags, bitmap, top_shift, low_bitmap, low_mask, out, found):
    """Append the queued n-grams (rows of ``queue``: hash, text) that pass both
    bitmaps to ``out``; return the new count. The top bitmap is read for all of them first,
    in a loop of independent loads, so that its cache misses overlap."""
    for j in range(queued):
        top = queue[j, 0] >> top_shift
        flags[j] = (bitmap[top >> np.uint64(3)] >> (top & np.uint64(7))) & np.uint64(1)
    for j in range(queued):
        if flags[j] != 0:
            low = queue[j, 0] & low_mask
            if (low_bitmap[low >> np.uint64(3)] >> (low & np.uint64(7))) & np.uint64(1):
                out[found, 0] = queue[j, 0]
                out[found, 1] = queue[j, 1]
                found += 1
    return found


#: n-grams queued before a bitmap test
_QUEUE = 512


@nb.njit(cache=True, nogil=True)
def scan_slice(data, begin, word_byte, alnum, sep2, sep3, n, base, top_shift, bitmap, low_mask, low_bitmap):
    """Words, n-grams and bitmap survivors of one slice's bytes.

    ``data`` is the texts' lowercased bytes laid out as by
    :func:`~instructkit.decontam.ngram._text_bytes` (a space before each text, 16 spaces at
    the end) and ``begin`` where each text starts. A byte is a separator when
    ``word_byte`` says so, or when it is part of a 2- or 3-byte code listed in ``sep2`` /
    ``sep3`` (sorted) at a lead byte (>= 0xC2). ``alnum`` says that ``word_byte`` keeps
    exactly the letters and digits of the printable ASCII bytes (0x20 to 0x7E): 8 such bytes
    are then classified at once with bitwise arithmetic. Returns the words per text, the hash of
    each whole text's words (``sum_k w[k] * base**(len-1-k)``), and for each ``n``-gram
    inside a text that passes the top bitmap (bit ``h >> top_shift`` of ``bitmap``) and the
    low one (bit ``h & low_mask`` of ``low_bitmap``; both 8 bits a byte, little-endian):
    its text and its hash.
    """
    texts = len(begin)
    lens = np.zeros(texts, dtype=np.int64)
    whole = np.zeros(texts, dtype=np.uint64)
    # room for every word (a word and its separator take 2 bytes or more): growing arrays
    # in the loop would cost reference counting on every byte
    out = np.empty((len(data) // 2 + 1, 2), dtype=np.uint64)
    found = 0
    queue = np.empty((_QUEUE, 2), dtype=np.uint64)
    queued = 0
    flags = np.empty(_QUEUE, dtype=np.uint8)
    ring = np.zeros(n, dtype=np.uint64)  # the current text's last n word hashes
    base_n = np.uint64(1)  # base**n
    for _ in range(n):
        base_n *= base
    size = len(data)
    last_lead = size - 2  # multi-byte codes are looked up at lead bytes before this
    sep_until = 0  # bytes before this belong to a multi-byte separator
    text = -1
    next_begin = begin[0] if texts else size  # where the next text starts
    count = 0  # words so far in the current text
    slot = 0  # count % n
    h = np.uint64(0)  # hash of the current text's last n (or fewer) words
    total = np.uint64(0)  # hash of all the current text's words
    start = 0  # start of the word being read
    carry = np.uint64(0)  # whether the byte before the block is a word byte
    for block in range(0, size, 64):
        # one bit per byte of the block: set for a word byte
        width = min(64, size - block)
        mask = np.uint64(0)
        high = 0
        if alnum and width == 64:
            for c in range(0, 64, 8):
                x = LOAD(data, block + c)
                xh = x | HIGH
                if (x | ~(xh - L20) | (xh - L7F)) & HIGH:  # a byte outside 0x20 to 0x7E
                    for k in range(c, c + 8):
                        b = data[block + k]
                        high |= b
                        mask |= np.uint64(word_byte[b]) << np.uint64(k)
                else:
                    digit = (xh - L30) & ~(xh - L3A)
                    upper = (xh - L41) & ~(xh - L5B)
                    lower = (xh - L61) & ~(xh - L7B)
                    alnums = ((digit | upper | lower) & HIGH) >> np.uint64(7)
                    mask |= ((alnums * _GATHER) >> np.uint64(56)) << np.uint64(c)
        else:
            for k in range(width):
                b = data[block + k]
                high |= b
                mask |= np.uint64(word_byte[b]) << np.uint64(k)
        if high >= 0x80 or sep_until > block:  # multi-byte characters: look their codes up
            for k in range(width):
                i = block + k
                b = data[i]
                if b >= 0xC2 and i < last_lead:
                    two = (np.int64(b) << 8) | np.int64(data[i + 1])
                    three = (two << 8) | np.int64(data[i + 2])
                    if _in_sorted(sep2, two):
                        sep_until = max(sep_until, i + 2)
                    if _in_sorted(sep3, three):
                        sep_until = max(sep_until, i + 3)
                if i < sep_until:
                    mask &= ~(np.uint64(1) << np.uint64(k))
        # word edges: a start where a word byte follows a separator, an end the other way
        edges = mask ^ ((mask << np.uint64(1)) | carry)
        carry = mask >> np.uint64(63)
        while edges:
            k = trailing_zeros(edges)
            edges &= edges - np.uint64(1)
            i = block + k
            if (mask >> np.uint64(k)) & np.uint64(1):
                start = i
                continue
            # a word ends at i: its text is the last one that starts at or before it
            if start >= next_begin:
                if text >= 0:
                    lens[text] = count
                    whole[text] = total
                text += 1
                while text + 1 < texts and begin[text + 1] <= start:
                    text += 1
                next_begin = begin[text + 1] if text + 1 < texts else size
                count = slot = 0
                h = total = np.uint64(0)
            w = _word_hash(data, start, i)
            total = total * base + w
            h = h * base + w
            if count >= n:
                h -= ring[slot] * base_n
            ring[slot] = w
            slot += 1
            if slot == n:
                slot = 0
            count += 1
            if count >= n:
                queue[queued, 0] = h
                queue[queued, 1] = text
                queued += 1
                if queued == _QUEUE:
                    found = _flush(queue, queued, flags, bitmap, top_shift, low_bitmap, low_mask, out, found)
                    queued = 0
    if text >= 0:
        lens[text] = count
        whole[text] = total
    found = _flush(queue, queued, flags, bitmap, top_shift, low_bitmap, low_mask, out, found)
    return lens, whole, out[:found, 1].astype(np.int64), out[:found, 0].copy()
