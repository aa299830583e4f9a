"""Unique ids across the batches of a streamed run, checked with 12 bytes per record.

Global steps answer with the ids to drop, and the removed log names records by id, so two
records sharing an id in different batches would be dropped together or logged as one.
In memory ``Dataset`` checks this on the whole frame; a streamed run never holds the
corpus, so :class:`IdLedger` keeps a sorted 64-bit hash of every id seen and the batch it
came from. A hash seen twice is confirmed on the ids themselves (the batches are read
again) before it is reported, so a hash collision is never mistaken for a repeated id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

_SEED = 0x1D5EED


def hash_ids(ids: pl.Series) -> np.ndarray:
    """64-bit hashes of ids (polars' hash with a fixed seed: the same in every process of
    one polars version, so Ray workers can hash their batch's ids; a resumed run hashed
    by another polars version could miss a repeat, never report a false one).

    Example:
        >>> a = hash_ids(pl.Series(["x:0", "x:1"]))
        >>> a.dtype.name, bool(a[0] != a[1]), bool((hash_ids(pl.Series(["x:1"])) == a[1]).all())
        ('uint64', True, True)
    """
    return ids.cast(pl.String).hash(seed=_SEED).to_numpy()


class IdLedger:
    """Raises ``ValueError`` when an id comes in two records of the batches it is shown.

    ``ids_of(index)`` gives the ids of input batch ``index`` again (to confirm a repeated
    hash) and ``where(index)`` names the batch for the message (file and lines). With
    ``keep``, each batch's hashes are also saved there (``ids-00000.npy``), so a resumed
    run can :meth:`resume` the check from the batches it does not read again.

    Example:
        >>> batches = {0: pl.Series(["a", "b"]), 1: pl.Series(["c", "a"])}
        >>> ledger = IdLedger(batches.__getitem__)
        >>> ledger.add(0, hash_ids(batches[0]))
        >>> ledger.add(1, hash_ids(batches[1]))
        Traceback (most recent call last):
        ...
        ValueError: id 'a' appears in input batch 1 and in input batch 0: ids must be unique ...
    """

    def __init__(
        self,
        ids_of: Callable[[int], pl.Series],
        where: Callable[[int], str] | None = None,
        keep: Path | None = None,
    ) -> None:
        self.ids_of = ids_of
        self.where = where or (lambda index: f"input batch {index}")
        self.keep = keep
        self.hashes = np.empty(0, np.uint64)
        self.batches = np.empty(0, np.int32)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def nbytes(self) -> int:
        """Bytes held: 8 per id hash, 4 per batch number."""
        return int(self.hashes.nbytes + self.batches.nbytes)

    def add(self, index: int, hashes: np.ndarray) -> None:
        """Record the id hashes of batch ``index``; raise if one of its ids was seen before."""
        hashes = np.sort(np.asarray(hashes, np.uint64))
        if hashes.size > 1 and (hashes[1:] == hashes[:-1]).any():
            ids = self.ids_of(index)
            repeated = ids.filter(ids.is_duplicated())
            if len(repeated):
                self._fail(str(repeated[0]), index, index)
        pos = np.searchsorted(self.hashes, hashes)
        inside = pos < self.hashes.size
        hit = np.zeros(hashes.size, bool)
        hit[inside] = self.hashes[pos[inside]] == hashes[inside]
        if hit.any():
            self._confirm(index, hashes[hit], self.batches[pos[hit]])
        merged = np.concatenate([self.hashes, hashes])
        # two sorted runs: a stable sort merges them in linear time
        order = np.argsort(merged, kind="stable")
        self.hashes = merged[order]
        self.batches = np.concatenate([self.batches, np.full(hashes.size, index, np.int32)])[order]
        if self.keep is not None:
            np.save(self._kept(index), hashes)

    def resume(self, indexes: Iterable[int]) -> None:
        """Add the hashes an earlier run kept for batches ``indexes`` (see ``keep``)."""
        if self.keep is None:
            raise ValueError("this ledger keeps no hashes to resume from (keep=None)")
        for index in sorted(indexes):
            self.add(index, np.load(self._kept(index)))

    def _kept(self, index: int) -> Path:
        assert self.keep is not None
        return self.keep / f"ids-{index:05d}.npy"

    def _confirm(self, index: int, hashes: np.ndarray, earlier: np.ndarray) -> None:
        mine = self.ids_of(index)
        mine_hashes = hash_ids(mine)
        for other in np.unique(earlier).tolist():
            suspects = mine.filter(pl.Series(np.isin(mine_hashes, hashes[earlier == other])))
            found = suspects.filter(suspects.is_in(self.ids_of(other).implode()))
            if len(found):
                self._fail(str(found[0]), index, other)

    def _fail(self, record_id: str, index: int, other: int) -> None:
        where = self.where(index) if index == other else f"{self.where(index)} and in {self.where(other)}"
        raise ValueError(
            f"id {record_id!r} appears in {where}: ids must be unique across the whole input "
            "(global steps and the removed log name records by id). Give each file its own "
            "source= or drop the input's id field so ids come from file and row."
        )
