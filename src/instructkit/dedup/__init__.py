"""Deduplication: exact, MinHash-LSH near-duplicates, fuzzy (self-instruct ROUGE-L) and semantic.

    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}] * 2)
    >>> len(ds.pipe(ik.dedup.exact()))
    1

Every step is a :class:`~instructkit.Global` transform: ``observe`` keeps hashes or
signatures per batch, ``decide`` clusters them, so it runs out of core and a threshold
sweep reuses the signatures. See ``docs/dedup.md``.
"""

from instructkit.dedup.exact import Exact, exact
from instructkit.dedup.fuzzy import Fuzzy, fuzzy
from instructkit.dedup.minhash import MinHash, minhash
from instructkit.dedup.semantic import Semantic, semantic

__all__ = ["Exact", "MinHash", "Fuzzy", "Semantic", "exact", "minhash", "fuzzy", "semantic"]
