"""Self-instruct's ROUGE-L filter, exactly as the ``rouge-score`` package computes it, in a
compiled greedy loop.

Self-instruct (and Stanford / Code Alpaca) keep a generated instruction only when its
ROUGE-L F-measure with every instruction already in the pool (seed tasks plus the kept
ones) is at most 0.7. ``rouge_score`` tokenizes with ``lower()``, turns every run of
characters outside ``[a-z0-9]`` into a space and splits (no stemmer in the reference), and
scores the token LCS: ``P = LCS / len(pool item)``, ``R = LCS / len(new)``,
``F = 2 * P * R / (P + R)``. This module does the same, with the same floating-point
operations in the same order, so a score on the threshold compares the same way.

Pruning is exact: ``LCS <= min(m, n)`` and ``LCS <=`` the size of the token multiset
intersection, so ``F <= 2 * bound / (m + n)``; a pair whose bound cannot pass the
threshold (with a margin far above rounding error) is never scored, and a pair that cannot
beat the best score found so far for the record is skipped too. Pool items are grouped by
token count, so only the lengths that can pass are visited at all.

This module imports numba at import time; :mod:`instructkit.dedup.fuzzy` imports it inside
``decide``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numba as nb
import numpy as np

# the rouge_score tokenizer's patterns (rouge_score/tokenize.py)
_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_VALID = re.compile(r"^[a-z0-9]+$")
#: Pruning margin: bounds within this of the threshold are scored, never pruned.
_MARGIN = 1e-9


def tokenize(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer without a stemmer.

    Example:
        >>> tokenize("Write a Python function: sum(a, b)!")
        ['write', 'a', 'python', 'function', 'sum', 'a', 'b']
    """
    text = _NON_ALPHANUM.sub(" ", text.lower())
    return [t for t in _SPACES.split(text) if _VALID.match(t)]


def encode(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token ids of every text, flat, with the start and length of each text, and the same
    ids sorted within each text (for the multiset-intersection bound)."""
    vocab: dict[str, int] = {}
    flat: list[int] = []
    lengths: list[int] = []
    for text in texts:
        ids = [vocab.setdefault(t, len(vocab)) for t in tokenize(text)]
        flat.extend(ids)
        lengths.append(len(ids))
    tokens = np.asarray(flat, dtype=np.int32)
    length = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros(length.size, dtype=np.int64)
    if length.size:
        starts[1:] = np.cumsum(length)[:-1]
    ordered = tokens.copy()
    for s, n in zip(starts.tolist(), length.tolist(), strict=True):
        ordered[s : s + n].sort()
    return tokens, starts, length, ordered


@nb.njit(cache=True)
def _overlap(a, a0, an, b, b0, bn):
    """Size of the multiset intersection of two sorted token runs."""
    i = 0
    j = 0
    c = 0
    while i < an and j < bn:
        x = a[a0 + i]
        y = b[b0 + j]
        if x == y:
            c += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return c


@nb.njit(cache=True)
def _lcs(tok, s1, n1, s2, n2, row):
    """Length of the longest common subsequence of two token runs (one DP row)."""
    for j in range(n2 + 1):
        row[j] = 0
    for i in range(n1):
        prev = 0  # row[j - 1] of the previous DP row
        x = tok[s1 + i]
        for j in range(1, n2 + 1):
            cur = row[j]
            if x == tok[s2 + j - 1]:
                row[j] = prev + 1
            elif row[j - 1] > cur:
                row[j] = row[j - 1]
            prev = cur
    return row[n2]


@nb.njit(cache=True)
def greedy(tokens, starts, length, ordered, n_ref, threshold):
    """Scan records in order; the first ``n_ref`` are the reference pool. A record whose
    best ROUGE-L F against the pool is ``> threshold`` is dropped (its best pool item and
    score are returned), otherwise it joins the pool.

    Returns ``(kept, score, scored)``: the index of the pool item each dropped record
    matched (its own index when kept), that F-measure, and how many pairs were scored.
    """
    n = length.size
    maxlen = 0
    for i in range(n):
        if length[i] > maxlen:
            maxlen = length[i]
    # pool members grouped by token count: by_len[L, :count[L]]
    count = np.zeros(maxlen + 1, np.int64)
    for i in range(n):
        count[length[i]] += 1
    cap = np.zeros(maxlen + 1, np.int64)
    offs = np.zeros(maxlen + 2, np.int64)
    for L in range(maxlen + 1):
        offs[L + 1] = offs[L] + count[L]
    members = np.empty(n, np.int64)
    row = np.zeros(maxlen + 1, np.int64)
    kept = np.arange(n)
    score = np.zeros(n)
    scored = 0
    for i in range(n):
        m = length[i]
        best_j = -1
        best = 0.0
        if i >= n_ref and m > 0:
            # F <= 2 min(m, L) / (m + L): only these lengths can pass
            for L in range(1, maxlen + 1):
                if cap[L] == 0:
                    continue
                lo = m if m < L else L
                by_length = 2.0 * lo / (m + L)
                if by_length <= threshold - _MARGIN or by_length < best - _MARGIN:
                    continue
                for k in range(cap[L]):
                    j = members[offs[L] + k]
                    ov = _overlap(ordered, starts[i], m, ordered, starts[j], L)
                    bound = 2.0 * ov / (m + L)
                    if bound <= threshold - _MARGIN or bound < best - _MARGIN:
                        continue
                    lcs = _lcs(tokens, starts[j], L, starts[i], m, row)
                    scored += 1
                    if lcs == 0:
                        continue
                    # rouge_score._score_lcs(target=new, prediction=pool item)
                    precision = lcs / L
                    recall = lcs / m
                    f = 2 * precision * recall / (precision + recall)
                    if f > threshold and (f > best or (f == best and j < best_j)):
                        best = f
                        best_j = j
        if best_j >= 0:
            kept[i] = best_j
            score[i] = best
        else:
            L = m
            members[offs[L] + cap[L]] = i
            cap[L] += 1
    return kept, score, scored
