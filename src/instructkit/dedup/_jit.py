"""Compiled (numba) kernels of the MinHash dedup (tokenizer, shingle hashes, signatures,
band hashes, bucket edges, union-find and Jaccard of shingle sets), the normalized keys of
the exact dedup, and the 8-byte loads and stores they and the decontamination scan share.

This module imports numba at import time; :mod:`instructkit.dedup._kernel` imports it
lazily, inside the functions that need it, so ``import instructkit`` stays light. Every
function is compiled once per machine and cached on disk (``cache=True``): the first call
on a fresh install compiles for a few seconds, later processes load the cache.

Integer arithmetic wraps modulo ``2**64`` / ``2**32`` as in C, which the hashes rely on.
"""

from __future__ import annotations

import sys

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from instructkit._mix import M64_1, M64_2

FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram folding
FNV_PRIME = np.uint64(0x100000001B3)
M32_1 = np.uint32(0x85EBCA6B)
M32_2 = np.uint32(0xC2B2AE35)
EMPTY = np.uint32(0xFFFFFFFF)
WORD = np.uint8(1)
SPACE = np.uint8(2)
#: Documents per parallel work item (one token buffer is allocated per item).
_GROUP = 32
# bytewise comparisons of 8 bytes at once: ((x | HIGH) - c * ONES) & HIGH has the top bit
# of each byte b < 0x80 set where b >= c (no borrow crosses a byte)
ONES = np.uint64(0x0101010101010101)
HIGH = np.uint64(0x8080808080808080)
# c * ONES for the bytes c the kernels compare against
L20, L21, L7F = np.uint64(0x20) * ONES, np.uint64(0x21) * ONES, np.uint64(0x7F) * ONES
L30, L3A = np.uint64(0x30) * ONES, np.uint64(0x3A) * ONES
L41, L5B = np.uint64(0x41) * ONES, np.uint64(0x5B) * ONES
L61, L7B = np.uint64(0x61) * ONES, np.uint64(0x7B) * ONES


@nb.njit(inline="always")
def fmix64(h: np.uint64) -> np.uint64:
    # jitted twin of instructkit._mix.fmix64, which Python callers use (calling this compiles it)
    h ^= h >> np.uint64(33)
    h *= M64_1
    h ^= h >> np.uint64(33)
    h *= M64_2
    h ^= h >> np.uint64(33)
    return h


@nb.njit(inline="always")
def fmix32(h: np.uint32) -> np.uint32:
    h = np.uint32(h ^ (h >> np.uint32(16)))
    h = np.uint32(h * M32_1)
    h = np.uint32(h ^ (h >> np.uint32(13)))
    h = np.uint32(h * M32_2)
    return np.uint32(h ^ (h >> np.uint32(16)))


@intrinsic
def load8(typingctx, data, at):
    """The 8 bytes from ``data[at]`` (a uint8 array) as one unaligned little-endian load."""
    sig = types.uint64(data, at)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        array = context.make_array(signature.args[0])(context, builder, args[0])
        address = builder.gep(array.data, [args[1]])
        return builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)

    return sig, codegen


@intrinsic
def store8(typingctx, data, at, value):
    """Store the uint64 ``value`` at ``data[at]`` (a uint8 array) as 8 little-endian bytes,
    one unaligned store."""
    sig = types.void(data, at, types.uint64)

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        array = context.make_array(signature.args[0])(context, builder, args[0])
        address = builder.gep(array.data, [args[1]])
        builder.store(args[2], builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(inline="always")
def load_bytes(data, at):
    """The 8 bytes from ``data[at]`` as a little-endian integer, byte by byte."""
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(data[at + k]) << np.uint64(8 * k)
    return v


@nb.njit(inline="always")
def store_bytes(data, at, value):
    """Store ``value`` at ``data[at]`` as 8 little-endian bytes, byte by byte."""
    for k in range(8):
        data[at + k] = np.uint8((value >> np.uint64(8 * k)) & np.uint64(0xFF))


# one load or store where the machine is little-endian (hashes and byte masks are defined
# on little-endian words: byte k of the text is bits 8k to 8k + 7)
LOAD = load8 if sys.byteorder == "little" else load_bytes
STORE = store8 if sys.byteorder == "little" else store_bytes


@nb.njit(inline="always")
def _code_point(data, i):
    """The code point of the UTF-8 sequence starting at ``data[i]``, and where the next starts."""
    c = np.uint32(data[i])
    if c < 0x80:
        return c, i + 1
    if c < 0xE0:
        return ((c & np.uint32(0x1F)) << np.uint32(6)) | (np.uint32(data[i + 1]) & np.uint32(0x3F)), i + 2
    if c < 0xF0:
        return (
            ((c & np.uint32(0x0F)) << np.uint32(12))
            | ((np.uint32(data[i + 1]) & np.uint32(0x3F)) << np.uint32(6))
            | (np.uint32(data[i + 2]) & np.uint32(0x3F))
        ), i + 3
    return (
        ((c & np.uint32(0x07)) << np.uint32(18))
        | ((np.uint32(data[i + 1]) & np.uint32(0x3F)) << np.uint32(12))
        | ((np.uint32(data[i + 2]) & np.uint32(0x3F)) << np.uint32(6))
        | (np.uint32(data[i + 3]) & np.uint32(0x3F))
    ), i + 4


@nb.njit(inline="always")
def _tokenize(data, start, end, char_mode, basis, lower, klass, out):
    """Hash the tokens of ``data[start:end]`` (UTF-8) into ``out``; return their number.

    A token hash is FNV-1a over the lower-cased code points, then fmix64. Words are runs
    of ``klass & WORD`` code points; in char mode each code point is a token, whitespace
    runs count as one space and leading/trailing whitespace is dropped. ``out`` needs room
    for one more hash than there are tokens.
    """
    if not char_mode:
        return _tokenize_words(data, start, end, basis, lower, klass, out)
    m = 0
    pending_space = False
    i = start
    while i < end:
        c, i = _code_point(data, i)
        if klass[c] & SPACE:
            pending_space = m > 0
            continue
        if pending_space:
            out[m] = fmix64((basis ^ np.uint64(32)) * FNV_PRIME)
            m += 1
            pending_space = False
        out[m] = fmix64((basis ^ np.uint64(lower[c])) * FNV_PRIME)
        m += 1
    return m


@nb.njit(inline="always")
def _tokenize_words(data, start, end, basis, lower, klass, out):
    """:func:`_tokenize` in word mode, without a branch on where words end: a word's end is
    as unpredictable as the text, and a missed branch at each cost more than the work of
    storing the running hash at every code point and keeping it (``m`` moves on) only
    where a word ended."""
    m = 0
    h = basis
    in_word = 0
    i = start
    while i < end:
        c, i = _code_point(data, i)
        word = np.int64(klass[c] & WORD)
        out[m] = fmix64(h)
        m += in_word & (word ^ 1)
        grown = (h ^ np.uint64(lower[c])) * FNV_PRIME
        h = grown if word else basis
        in_word = word
    if in_word:
        out[m] = fmix64(h)
        m += 1
    return m


@nb.njit(inline="always")
def _shingle(tokens, i, n):
    """32-bit hash of the ``n`` tokens starting at ``i``."""
    acc = tokens[i]
    for k in range(1, n):
        acc = acc * FOLD + tokens[i + k]
    return np.uint32(fmix64(acc) >> np.uint64(32))


@nb.njit(inline="always")
def _least_permuted(xs, count, a, b, row):
    """``row[k]``: the least value of permutation ``k`` (datasketch's affine32) over the
    ``count`` mixed shingle hashes ``xs`` (``fmix32`` of each); the empty value when there
    are none. Permutation by permutation, so the minimum stays in a register while the
    shingles stream past (a loop over shingles would load and store the row once each)."""
    for k in range(a.size):
        ak = a[k]
        bk = b[k]
        least = EMPTY
        for i in range(count):
            least = min(least, np.uint32(ak * xs[i] + bk))
        row[k] = least


@nb.njit(inline="always")
def _bands(sig, bands, rows, out, d):
    for band in range(bands):
        acc = np.uint64(band + 1)
        for r in range(band * rows, (band + 1) * rows):
            acc = fmix64(acc * FOLD + np.uint64(sig[r]))
        out[band, d] = acc


@nb.njit(parallel=True, cache=True)
def minhash_texts(data, offsets, ngram, char_mode, basis, lower, klass, a, b, bands, rows,
                  sig, counts, band_keys, hashes, hash_starts):
    """MinHash of every text ``data[offsets[d]:offsets[d + 1]]``, in parallel over texts.

    Fills ``sig`` (texts x num_perm), ``counts`` (shingles per text), ``band_keys``
    (bands x texts; ``bands = 0`` skips them) and, when ``hashes`` is not empty, the
    shingle hashes of text ``d`` at ``hashes[hash_starts[d]:]`` (room for an upper bound).
    """
    n = offsets.size - 1
    keep = hashes.size > 0
    for g in nb.prange((n + _GROUP - 1) // _GROUP):
        lo = g * _GROUP
        hi = min(n, lo + _GROUP)
        longest = 0
        for d in range(lo, hi):
            longest = max(longest, offsets[d + 1] - offsets[d])
        tokens = np.empty(longest + 1, np.uint64)
        mixed = np.empty(longest + 1, np.uint32)
        for d in range(lo, hi):
            m = _tokenize(data, offsets[d], offsets[d + 1], char_mode, basis, lower, klass, tokens)
            # fewer tokens than an n-gram: one shingle of them all; none: no shingle
            width = min(m, ngram)
            count = m - width + 1 if m > 0 else 0
            for i in range(count):
                h = _shingle(tokens, i, width)
                if keep:
                    hashes[hash_starts[d] + i] = h
                mixed[i] = fmix32(h)
            _least_permuted(mixed, count, a, b, sig[d])
            counts[d] = count
            if bands > 0:
                _bands(sig[d], bands, rows, band_keys, d)


@nb.njit(parallel=True, cache=True)
def signatures_of(hashes, starts, counts, a, b, sig):
    """Signatures of given shingle hashes: text ``d`` owns ``hashes[starts[d]:][:counts[d]]``."""
    for d in nb.prange(counts.size):
        mixed = np.empty(counts[d], np.uint32)
        for i in range(counts[d]):
            mixed[i] = fmix32(hashes[starts[d] + i])
        _least_permuted(mixed, counts[d], a, b, sig[d])


@nb.njit(parallel=True, cache=True)
def band_hashes(sig, bands, rows, out):
    """``out[band, d]``: uint64 hash of the ``rows`` signature values of ``band``."""
    for d in nb.prange(sig.shape[0]):
        _bands(sig[d], bands, rows, out, d)


@nb.njit(parallel=True, cache=True)
def compact(src, src_starts, counts, out_starts, out):
    """Copy ``counts[d]`` values from ``src[src_starts[d]:]`` to ``out[out_starts[d]:]``."""
    for d in nb.prange(counts.size):
        s, o = src_starts[d], out_starts[d]
        for i in range(counts[d]):
            out[o + i] = src[s + i]


@nb.njit(cache=True, nogil=True)
def bucket_edges(keys, active, first, other):
    """Link each member of a bucket (equal key) to the bucket's first member (lowest
    index): a star per bucket keeps the edge count linear. Open addressing over a table
    twice the size of the input; returns the number of edges written."""
    n = keys.size
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table_key = np.empty(size, np.uint64)
    table_at = np.full(size, -1, np.int64)
    e = 0
    for i in range(n):
        if not active[i]:
            continue
        key = keys[i]
        slot = key & mask
        while True:
            at = table_at[slot]
            if at < 0:
                table_at[slot] = i
                table_key[slot] = key
                break
            if table_key[slot] == key:
                first[e] = at
                other[e] = i
                e += 1
                break
            slot = (slot + np.uint64(1)) & mask
    return e


@nb.njit(cache=True)
def components(n, left, right):
    """Union-find; each node's root is the smallest index of its component."""
    parent = np.arange(n)
    for e in range(left.size):
        x, y = left[e], right[e]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y
    # a parent is never above its child, so one pass in index order resolves every root
    for i in range(n):
        parent[i] = parent[parent[i]]
    return parent


@nb.njit(parallel=True, cache=True)
def jaccard_pairs(values, starts, counts, left, right, out):
    """Jaccard of the value sets of texts ``left[p]`` and ``right[p]`` (text ``d`` owns
    ``values[starts[d]:][:counts[d]]``; repeated values count once). Each pair fills a
    small open-addressing table: its slots are the union, slots marked by both sides the
    intersection. The values are hashes already, so their low bits pick the slot."""
    for p in nb.prange(left.size):
        i, j = left[p], right[p]
        size = 8
        while size < 2 * (counts[i] + counts[j]):
            size *= 2
        mask = np.uint32(size - 1)
        keys = np.empty(size, np.uint32)
        side = np.zeros(size, np.uint8)
        union = 0
        inter = 0
        for which in range(2):
            d = i if which == 0 else j
            bit = np.uint8(1 << which)
            for v in values[starts[d] : starts[d] + counts[d]]:
                slot = v & mask
                while side[slot] != 0 and keys[slot] != v:
                    slot = (slot + np.uint32(1)) & mask
                if side[slot] == 0:
                    keys[slot] = v
                    union += 1
                elif (side[slot] & bit) == 0:
                    inter += 1
                side[slot] |= bit
        out[p] = inter / union if union > 0 else 0.0


#: Byte classes of :func:`ascii_keys` (bits): dropped, written as ``lower[b]``, whitespace
#: (a run of it writes one space), not ASCII (the text is left to the caller).
DROP, KEEP, BLANK, NOT_ASCII = 0, 1, 2, 4
_FIRST = np.uint64(0x80)  # the top bit of a word's first byte


@nb.njit(cache=True, nogil=True)
def ascii_keys(data, offsets, klass, lower, out, out_offsets, ascii):
    """The normalized key of every pure-ASCII text ``data[offsets[d]:offsets[d + 1]]``.

    ``klass[b]`` says what byte ``b`` does: ``KEEP`` writes ``lower[b]``, ``DROP`` writes
    nothing, and a run of ``BLANK`` bytes (``DROP`` bytes inside it included) writes one
    space between written bytes and none at either end. ``a-z`` and ``0-9`` must be
    ``KEEP`` bytes that ``lower`` leaves alone (``A-Z`` too, unless ``lower`` maps
    ``A`` to ``a``), the space ``KEEP`` or ``BLANK``. Text ``d``'s key goes to
    ``out[out_offsets[d]:out_offsets[d + 1]]`` and ``ascii[d]`` is set; a text with a
    ``NOT_ASCII`` byte gets an empty key and ``ascii[d]`` cleared. ``out`` needs as many
    bytes as ``data``: a key is never longer than its text.
    """
    blank_space = np.uint64((klass[32] & BLANK) >> 1)  # 1 when a space is a blank
    folded = HIGH if lower[65] == 97 else np.uint64(0)  # whether A-Z is written as a-z
    m = 0
    out_offsets[0] = 0
    for d in range(offsets.size - 1):
        begin = m
        i, end = offsets[d], offsets[d + 1]
        # whether the last byte written is a blank's space, or none is written yet: then a
        # blank writes nothing (a run writes one space, a text starts with none)
        space = np.uint64(1)
        while i < end:
            if i + 8 <= end:
                # the bytes before the first one that is not a-z, 0-9, A-Z (folded) or a
                # lone space are their own key (most of prose): copied 8 at a time. The
                # word is stored whole; m moves past the bytes that belong.
                x = LOAD(data, i)
                xh = x | HIGH
                spaces = (xh - L20) & ~(xh - L21) & HIGH
                upper = (xh - L41) & ~(xh - L5B) & folded
                plain = ((xh - L61) & ~(xh - L7B)) | ((xh - L30) & ~(xh - L3A)) | upper | spaces
                stop = (
                    ((~plain | x) & HIGH)  # not plain, or not ASCII
                    | (spaces & (spaces << np.uint64(8)))  # a space after a space
                    | (spaces & (_FIRST * space))  # a space after a blank's space
                )
                STORE(out, m, x | (upper >> np.uint64(2)))  # A-Z + 0x20 is a-z
                n = 8 if stop == 0 else np.int64(trailing_zeros(stop)) >> 3
                if n > 0:
                    m += n
                    i += n
                    space = blank_space & (spaces >> np.uint64(8 * n - 1))
                    if n == 8:
                        continue
            # then one byte by the tables
            b = data[i]
            k = klass[b]
            if k & KEEP:
                out[m] = lower[b]
                m += 1
                space = np.uint64(0)
            elif k & BLANK:
                if space == 0:
                    out[m] = 32
                    m += 1
                    space = np.uint64(1)
            elif k & NOT_ASCII:
                break
            i += 1
        ascii[d] = i == end
        if not ascii[d]:
            m = begin
        elif space and m > begin:  # the text ends in a blank: no trailing space
            m -= 1
        out_offsets[d + 1] = m
