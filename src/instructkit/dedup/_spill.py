"""Spill files: what ``decide`` reads of a MinHash batch besides its band hashes, on disk,
so the state a streaming run keeps in RAM is only its ids and per-record counts.

A batch's file holds, in order:

- with ``verify="exact"``: its shingle hashes (uint32, text after text), then its band
  hashes (``bands x records`` uint64). The signatures are not stored: the few rows
  ``decide`` needs (the Jaccard estimate of each removed record, band hashes under
  another banding) are recomputed from the shingle hashes, bit for bit the same;
- otherwise (no shingle hashes kept): its ``records x num_perm`` uint32 signatures, then
  its band hashes.

(:class:`Rows` also reads a file holding both: the signatures, then the shingle hashes.)

It is written once with plain file writes (page cache, not the process's memory) and read
by memory-mapping it for one gather at a time, then unmapping it, so the pages read never
pile up in the process's resident memory.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import NamedTuple

import numpy as np

from instructkit.dedup import _kernel as K

#: Rows per gather or band-hash recomputation: bounds the pages mapped at once.
CHUNK = 65536

# where spill files go when the step names no spill_dir: an executor points it into its
# run folder, so files a killed run leaves behind are found and deleted on resume
_DEFAULT_DIR: ContextVar[Path | None] = ContextVar("instructkit_spill_dir", default=None)


@contextmanager
def spill_to(directory: str | Path) -> Iterator[Path]:
    """Send spill files of steps without a ``spill_dir`` to ``directory`` inside the block.

    Example:
        >>> import tempfile
        >>> with spill_to(tempfile.mkdtemp()) as folder:
        ...     f = SpillFile.write(None, [np.arange(4, dtype=np.uint32)])
        ...     Path(f.path).parent == folder
        True
    """
    folder = Path(directory)
    token = _DEFAULT_DIR.set(folder)
    try:
        yield folder
    finally:
        _DEFAULT_DIR.reset(token)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class SpillFile:
    """A temporary file that this object owns: it is deleted when the object is garbage
    collected, or when the process exits.

    Pickling moves the ownership to the unpickled copy: the process that observed a batch
    (a Ray worker) drops its copy once the state is shipped, and the process that calls
    ``decide`` reads the file, then deletes it. The file must therefore be on a disk both
    processes see (one machine, or a shared ``spill_dir``).

    Example:
        >>> import numpy as np, pickle
        >>> f = SpillFile.write(None, [np.arange(4, dtype=np.uint32)])
        >>> g = pickle.loads(pickle.dumps(f))
        >>> del f
        >>> os.path.exists(g.path)
        True
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._cleanup = weakref.finalize(self, _remove, path)

    @classmethod
    def write(cls, directory: str | Path | None, arrays: Sequence[np.ndarray]) -> SpillFile:
        """A new file in ``directory`` holding ``arrays``. Without a directory: the one
        :func:`spill_to` set, else the system temp dir."""
        if directory is None:
            directory = _DEFAULT_DIR.get() or tempfile.gettempdir()
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / f"instructkit-minhash-{os.getpid()}-{uuid.uuid4().hex}.u32")
        spill = cls(path)
        with open(path, "wb") as fh:
            for a in arrays:
                np.ascontiguousarray(a).tofile(fh)
        return spill

    def __reduce__(self) -> tuple[type[SpillFile], tuple[str]]:
        self._cleanup.detach()
        return (SpillFile, (self.path,))

    def nbytes(self) -> int:
        """Size of the file in bytes."""
        return os.path.getsize(self.path)


class Part(NamedTuple):
    """Where :class:`Rows` finds the records of one batch in its spill file."""

    spill: SpillFile
    records: int
    num_perm: int
    counts: np.ndarray  # shingles per record
    has_signatures: bool  # the file starts with the signatures; else with the shingle hashes
    seed: int  # of the permutations, to recompute signatures from the shingle hashes

    @property
    def hash_offset(self) -> int:
        """Byte offset of the shingle hashes (after the signatures, when there are any)."""
        return self.records * self.num_perm * 4 if self.has_signatures else 0


class Rows:
    """Read the signatures and shingle hashes of records of several batches by their
    global index (batches in order), straight from their spill files.

    A batch whose file holds no signatures (its shingle hashes instead) gets the signature
    rows asked for recomputed from their shingle hashes: the same values ``observe``
    computed, bit for bit.

    Example:
        >>> import instructkit as ik
        >>> from instructkit.dedup import _kernel as K
        >>> frame = ik.synth.near_duplicates(50, seed=1).to_polars()
        >>> step = ik.dedup.minhash()
        >>> rows = Rows([step.observe(frame).part()])
        >>> text = K.document_text(frame, ["instruction", "input", "output"])
        >>> direct = K.minhash(text, ngram=5, unit="word", num_perm=128, seed=1).signatures
        >>> bool((rows.signatures(np.arange(50), 128) == direct).all())
        True
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *[p.records for p in self.parts]])

    def _split(self, index: np.ndarray):
        which = np.searchsorted(self.offsets, index, side="right") - 1
        for k in np.unique(which).tolist():
            mask = which == k
            yield k, mask, index[mask] - self.offsets[k]

    def _gather(self, k: int, local: np.ndarray, starts: np.ndarray, values: np.ndarray) -> None:
        """Copy the shingle hashes of records ``local`` of batch ``k`` to ``values`` (record
        ``i``'s at ``starts[i]``)."""
        from instructkit.dedup import _jit

        part = self.parts[k]
        counts = part.counts[local]
        if counts.sum() == 0:
            return
        part_starts = np.cumsum(part.counts, dtype=np.int64) - part.counts
        total = int(part_starts[-1] + part.counts[-1])
        mm = np.memmap(part.spill.path, np.uint32, "r", offset=part.hash_offset, shape=(total,))
        _jit.compact(np.asarray(mm), part_starts[local], counts, starts, values)
        del mm  # unmapped: its pages leave the resident set

    def _recompute(self, k: int, local: np.ndarray) -> np.ndarray:
        """Signature rows of records ``local`` of batch ``k``, from their shingle hashes."""
        part = self.parts[k]
        counts = part.counts[local].astype(np.int64)
        values = np.empty(int(counts.sum()), np.uint32)
        self._gather(k, local, np.cumsum(counts) - counts, values)
        return K.signatures(values, counts, part.num_perm, part.seed)

    def signatures(self, index: np.ndarray, num_perm: int) -> np.ndarray:
        """Signature rows of ``index`` (``len(index) x num_perm`` uint32)."""
        out = np.empty((index.size, num_perm), np.uint32)
        for k, mask, local in self._split(index):
            part = self.parts[k]
            if not part.has_signatures:
                out[mask] = self._recompute(k, local)
                continue
            mm = np.memmap(part.spill.path, np.uint32, "r", shape=(part.records, part.num_perm))
            out[mask] = mm[local]
            del mm  # unmapped: its pages leave the resident set
        return out

    def shingles(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shingle hashes of ``index``, record after record, and their counts."""
        splits = list(self._split(index))
        counts = np.zeros(index.size, np.int64)
        for k, mask, local in splits:
            counts[mask] = self.parts[k].counts[local]
        starts = np.cumsum(counts) - counts
        values = np.empty(int(counts.sum()), np.uint32)
        for k, mask, local in splits:
            self._gather(k, local, starts[mask], values)
        return values, counts

    def band_keys(self, k: int, bands: int, rows: int) -> np.ndarray:
        """Band hashes (``bands x records``) of batch ``k``, recomputed from its signatures
        (themselves recomputed from the shingle hashes when the file holds none)."""
        part = self.parts[k]
        n = part.records
        out = np.empty((bands, n), np.uint64)
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            if part.has_signatures:
                mm = np.memmap(part.spill.path, np.uint32, "r", offset=lo * part.num_perm * 4,
                               shape=(hi - lo, part.num_perm))
                out[:, lo:hi] = K.band_hashes(np.asarray(mm), bands, rows)
                del mm
            else:
                out[:, lo:hi] = K.band_hashes(self._recompute(k, np.arange(lo, hi)), bands, rows)
        return out

    def jaccard(self, left: np.ndarray, right: np.ndarray, exact: bool, num_perm: int) -> np.ndarray:
        """Jaccard of each pair ``(left[i], right[i])``: of the shingle-hash sets
        (``exact``), or estimated from the signatures. Pairs are read in chunks."""
        out = np.empty(left.size, np.float64)
        for s in range(0, left.size, CHUNK // 2):
            lo, hi = left[s : s + CHUNK // 2], right[s : s + CHUNK // 2]
            uniq, inv = np.unique(np.concatenate([lo, hi]), return_inverse=True)
            a, b = inv[: lo.size], inv[lo.size :]
            if exact:
                values, counts = self.shingles(uniq)
                out[s : s + lo.size] = K.exact_jaccard(values, counts, a, b)
            else:
                sig = self.signatures(uniq, num_perm)
                out[s : s + lo.size] = K.estimated_jaccard(sig[a], sig[b])
        return out
