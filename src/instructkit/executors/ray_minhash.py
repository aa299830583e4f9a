"""MinHash candidate pairs on Ray Data: band hashes shuffled by value, buckets on the workers.

The Ray executor's observe pass leaves one MinHash state per batch, its band hashes in a
spill file the workers wrote. :class:`BandShuffle` turns them into candidate pairs without
the driver touching a band hash:

1. **Band rows.** One Ray task per batch reads its band hashes from its spill file and
   emits a row ``(band, key, node)`` per record and band (``node``: the record's index in
   the whole corpus, batches in input order; empty texts left out).
2. **Shuffle.** ``repartition(keys=["band", "key"])`` hash-partitions the rows, so every
   bucket (records that share a band hash in one band) lands whole in one block; this is
   how Ray Data's own ``groupby().map_groups()`` is built, without a Python call per group.
3. **Buckets.** ``map_batches`` sorts each block by ``(band, key, node)`` and links every
   member of a bucket to its first (lowest) node: the pairs ``band_candidates`` finds in
   one process, so the local and the Ray executor keep the same records.

The driver then gathers the pairs (16 bytes each), verifies them against the spilled
signatures or shingle hashes, and joins them into clusters by union-find
(:meth:`~instructkit.dedup.minhash.MinHash.cluster`).

The shuffle only pays across nodes: on one machine the driver groups the band hashes itself
(:func:`~instructkit.dedup.minhash.band_candidates`, one band at a time, ~1 s for 300k
records) while the shuffle moves every band row through the object store (7.3 s there, see
docs/scaling.md). So ``where="auto"`` (the default) groups on the driver when Ray reports
one alive node and shuffles on a cluster of several; the pairs are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import ray
import ray.data

from instructkit.dedup.minhash import Bands, band_candidates
from instructkit.executors.ray import TASK_OPTIONS, alive_nodes

_NO_EDGES = pa.schema([("first", pa.int64()), ("other", pa.int64())])


@dataclass(frozen=True)
class _Part:
    """What a worker needs to read one batch's band hashes: plain values, no spill-file
    ownership (the driver's state deletes the file when it is done with it)."""

    path: str
    records: int
    band_offset: int
    offset: int  # global index of the batch's first record
    active: np.ndarray  # bool per record: takes part in the buckets


def _band_rows(batch: pa.Table, parts_ref: Any, bands: int) -> pa.Table:
    parts: list[_Part] = ray.get(parts_ref)
    out = []
    for k in batch.column("part").to_pylist():
        part = parts[k]
        nodes = part.offset + np.flatnonzero(part.active)
        for band in range(bands):
            keys = np.fromfile(part.path, np.uint64, count=part.records,
                               offset=part.band_offset + 8 * band * part.records)
            out.append(pa.table({
                "band": pa.array(np.full(nodes.size, band, np.int32)),
                "key": pa.array(keys[part.active]),
                "node": pa.array(nodes),
            }))
    return pa.concat_tables(out) if out else pa.table({
        "band": pa.array([], pa.int32()), "key": pa.array([], pa.uint64()), "node": pa.array([], pa.int64())})


def bucket_pairs(block: pa.Table) -> pa.Table:
    """``(first, other)`` pairs of a block holding whole buckets: each member of a bucket
    (rows with equal ``band`` and ``key``) linked to the bucket's lowest ``node``.

    Example:
        >>> block = pa.table({"band": [0, 0, 1, 0, 1], "key": pa.array([7, 7, 7, 7, 9], pa.uint64()),
        ...                   "node": [4, 2, 2, 9, 4]})
        >>> bucket_pairs(block).to_pydict()
        {'first': [2, 2], 'other': [4, 9]}
    """
    if block.num_rows == 0:
        return _NO_EDGES.empty_table()
    band = block.column("band").to_numpy()
    key = block.column("key").to_numpy()
    node = block.column("node").to_numpy()
    order = np.lexsort((node, key, band))
    band, key, node = band[order], key[order], node[order]
    head = np.ones(node.size, bool)
    head[1:] = (band[1:] != band[:-1]) | (key[1:] != key[:-1])
    first = node[head][np.cumsum(head) - 1]
    return pa.table({"first": pa.array(first[~head]), "other": pa.array(node[~head])}, schema=_NO_EDGES)


class BandShuffle:
    """Candidate pairs of a MinHash ``decide`` found on Ray Data (see the module doc).

    Pass it as ``candidates`` to :meth:`~instructkit.dedup.minhash.MinHash.decide`; after
    the call, ``where`` says where the band hashes were grouped (``"driver"`` or
    ``"cluster"``) and ``band_rows``, ``partitions`` and ``pairs`` what the shuffle moved
    (``partitions`` is 0 on the driver). ``where="auto"`` picks the driver when Ray reports
    one alive node (see the module doc); ``"cluster"`` and ``"driver"`` force one.

    Example:
        >>> import instructkit as ik, ray                                         # doctest: +SKIP
        >>> step = ik.dedup.minhash()                                             # doctest: +SKIP
        >>> states = [step.observe(f) for f in ik.scan("big.jsonl")]             # doctest: +SKIP
        >>> shuffle = BandShuffle(where="cluster")                                # doctest: +SKIP
        >>> drops = step.decide(states, candidates=shuffle)                       # doctest: +SKIP
        >>> shuffle.band_rows, shuffle.partitions                                 # doctest: +SKIP
        (2100000, 4)
    """

    def __init__(self, partitions: int | None = None, where: Literal["auto", "cluster", "driver"] = "auto") -> None:
        if where not in ("auto", "cluster", "driver"):
            raise ValueError(f"where must be 'auto', 'cluster' or 'driver', got {where!r}")
        self.requested = partitions
        self.requested_where = where
        self.where = ""
        self.band_rows = 0
        self.partitions = 0
        self.pairs = 0

    def __repr__(self) -> str:
        return f"BandShuffle(partitions={self.requested!r}, where={self.requested_where!r})"

    def stats(self) -> dict[str, Any]:
        """What the last call did, for the run's manifest."""
        return {"where": self.where, "band_rows": self.band_rows, "partitions": self.partitions, "pairs": self.pairs}

    def __call__(self, bands: Bands) -> tuple[np.ndarray, np.ndarray]:
        n_bands = bands.banding[0]
        where = self.requested_where
        if where == "auto":
            where = "driver" if alive_nodes() == 1 else "cluster"
        self.where = where
        if where == "driver":
            left, right = band_candidates(bands)
            self.band_rows = int(sum(bands.active(k).sum() for k in range(len(bands.parts)))) * n_bands
            self.partitions, self.pairs = 0, int(left.size)
            return left, right
        stale = [k for k, p in enumerate(bands.parts) if p.banding != bands.banding]
        if stale:
            # the executor's states are observed by the step that decides, with its banding
            raise ValueError(
                f"batches {stale[:5]} were observed with banding {bands.parts[stale[0]].banding}, "
                f"not {bands.banding}: the band shuffle reads band hashes as observed"
            )
        parts = [
            _Part(p.spill.path, len(p), p.band_offset, int(offset), bands.active(k))
            for k, (p, offset) in enumerate(zip(bands.parts, bands.offsets, strict=True))
        ]
        self.band_rows = int(sum(p.active.sum() for p in parts)) * n_bands
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.partitions = self.requested or max(1, min(4 * cpus, self.band_rows // 1_000_000 + cpus))
        parts_ref = ray.put(parts)
        rows = ray.data.from_items([{"part": k} for k in range(len(parts))],
                                   override_num_blocks=max(1, len(parts)))
        pairs = (
            rows.map_batches(_band_rows, batch_format="pyarrow", batch_size=None,
                             fn_kwargs={"parts_ref": parts_ref, "bands": n_bands}, **TASK_OPTIONS)
            .repartition(self.partitions, keys=["band", "key"])
            .map_batches(bucket_pairs, batch_format="pyarrow", batch_size=None, **TASK_OPTIONS)
        )
        first, other = [], []
        for block in pairs.iter_batches(batch_format="pyarrow", batch_size=None):
            first.append(block.column("first").to_numpy())
            other.append(block.column("other").to_numpy())
        empty = np.empty(0, np.int64)
        left = np.concatenate(first) if first else empty
        right = np.concatenate(other) if other else empty
        self.pairs = int(left.size)
        return left, right
