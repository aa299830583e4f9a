"""Self-instruct style fuzzy dedup: drop a short text too similar to one already kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup import _kernel as K
from instructkit.dedup._base import Against, drops_frame, repeated
from instructkit.transform import Global

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "WRatio", "QRatio")


@dataclass(frozen=True)
class FuzzyState:
    """Observed state of one batch: ids, block keys and the compared field.

    Unlike the hash-based steps, this keeps the (normalized) text of the one compared
    field: a string similarity needs the strings. The field is meant to be short (an
    instruction), so this stays small.
    """

    ids: pl.Series
    texts: pl.Series
    keys: np.ndarray  # (blocks x records) uint64 block keys


class Fuzzy(Against, Global):
    """Drop a record whose ``field`` is too similar to an earlier kept record's.

    This is the self-instruct filter (which drops an instruction whose similarity to one
    already kept is too high), with rapidfuzz's ``scorer`` as the similarity and
    ``threshold`` on a 0-1 scale. Blocking keeps it far from quadratic: only records that
    share a block are compared, and within a block each record meets at most ``window``
    earlier ones. ``blocking="minhash"`` puts records in the same block when they share a
    MinHash LSH band of character ``ngram``-shingles (tuned so pairs with shingle Jaccard
    ``blocking_threshold`` or more almost always meet); ``blocking="prefix"`` blocks on the
    first ``prefix`` characters of the normalized text. Texts are compared lower-cased
    with whitespace collapsed.

    Records are scanned in order; a record is dropped (reason ``fuzzy_duplicate``, detail
    naming the kept id and the score) when it matches a kept record. Records copied by
    upsampling (``meta.repeat > 0``) are left alone. With ``against=`` records that match
    a reference record are dropped; the reference itself is not deduplicated.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Give three tips for staying healthy.", "output": "a"},
        ...     {"instruction": "Give 3 tips for staying healthy.", "output": "b"},
        ...     {"instruction": "Name the capital of France.", "output": "Paris"},
        ... ], source="demo")
        >>> out = ds.pipe(ik.dedup.fuzzy(threshold=0.9))
        >>> len(out), out.removed["id"].to_list()
        (2, ['demo:1'])
    """

    name: ClassVar[str] = "dedup.fuzzy"
    decide_params: ClassVar[tuple[str, ...]] = ("threshold", "scorer", "window", "against")

    def __init__(
        self,
        field: str = "instruction",
        threshold: float = 0.9,
        scorer: str = "ratio",
        blocking: str = "minhash",
        blocking_threshold: float = 0.6,
        ngram: int = 3,
        num_perm: int = 64,
        prefix: int = 8,
        window: int = 20,
        against: Dataset | str | Path | None = None,
        seed: int = 1,
    ) -> None:
        self.field = field
        self.threshold = K._check_threshold(threshold)
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
        self.scorer = scorer
        if blocking not in ("minhash", "prefix"):
            raise ValueError(f"blocking must be 'minhash' or 'prefix', got {blocking!r}")
        self.blocking = blocking
        self.blocking_threshold = K._check_threshold(blocking_threshold)
        self.ngram = ngram
        self.num_perm = num_perm
        self.prefix = prefix
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.against = against
        self.seed = seed

    def observe(self, batch: pl.DataFrame) -> FuzzyState:
        """Normalized field text and block keys of a batch."""
        if self.field not in batch.columns:
            raise ValueError(f"fuzzy dedup field {self.field!r} is not a column; columns are {batch.columns}")
        skip = repeated(batch)
        frame = batch.filter(pl.Series(~skip)) if skip.any() else batch
        texts = (
            frame[self.field]
            .cast(pl.String)
            .fill_null("")
            .str.to_lowercase()
            .str.replace_all(r"\s+", " ")
            .str.strip_chars()
        )
        if self.blocking == "prefix":
            keys = texts.str.slice(0, self.prefix).hash(self.seed).to_numpy()[None, :]
        else:
            bands, rows = K.optimal_bands(self.blocking_threshold, self.num_perm) if self.blocking_threshold < 1 else (1, self.num_perm)
            keys = K.minhash(
                texts, ngram=self.ngram, unit="char", num_perm=self.num_perm, seed=self.seed,
                bands=bands, rows=rows,
            ).band_keys
        return FuzzyState(ids=frame["id"], texts=texts, keys=keys)

    def _candidates(self, keys: np.ndarray, n_ref: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``(earlier, later)`` sharing a block key, each later record meeting at most
        ``window`` earlier ones per block."""
        lefts, rights = [], []
        for band in keys:
            order = np.argsort(band, kind="stable")
            sk = band[order]
            for d in range(1, min(self.window, band.size - 1) + 1):
                same = np.flatnonzero(sk[d:] == sk[:-d])
                if same.size == 0:
                    break
                lefts.append(order[same])
                rights.append(order[same + d])
        if not lefts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        left, right = np.concatenate(lefts), np.concatenate(rights)
        lo, hi = np.minimum(left, right).astype(np.int64), np.maximum(left, right).astype(np.int64)
        n = keys.shape[1]
        pair = np.unique(lo * n + hi)
        lo, hi = pair // n, pair % n
        keep = hi >= n_ref  # the reference is not deduplicated
        return lo[keep], hi[keep]

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Score the candidate pairs with rapidfuzz, then keep records greedily in order."""
        from rapidfuzz import fuzz, process

        ref = self.reference()
        parts = list(states)
        n_ref = 0
        if ref is not None:
            ref_state = self.observe(ref.with_columns(pl.lit(None, dtype=pl.String).alias("meta")))
            n_ref = len(ref_state.ids)
            parts = [ref_state, *parts]
        if not parts:
            return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
        ids = pl.concat([p.ids for p in parts])
        texts = pl.concat([p.texts for p in parts])
        keys = np.concatenate([p.keys for p in parts], axis=1)
        n = len(ids)
        lo, hi = self._candidates(keys, n_ref)
        nonempty = texts.str.len_chars().to_numpy() > 0
        ok = nonempty[lo] & nonempty[hi]
        lo, hi = lo[ok], hi[ok]
        text_list = texts.to_list()
        scores = process.cpdist(
            [text_list[i] for i in lo.tolist()],
            [text_list[i] for i in hi.tolist()],
            scorer=getattr(fuzz, self.scorer),
            workers=-1,
        ) if lo.size else np.empty(0)
        match = np.asarray(scores, dtype=np.float64) / 100.0 >= self.threshold
        lo, hi, score = lo[match], hi[match], np.asarray(scores, dtype=np.float64)[match] / 100.0
        # greedy, in record order: a record is dropped when it matches a record still kept
        order = np.lexsort((-score, lo, hi))
        lo, hi, score = lo[order], hi[order], score[order]
        is_ref = np.zeros(n, dtype=bool)
        is_ref[:n_ref] = True
        kept = np.arange(n)
        best = np.ones(n)
        dropped = np.zeros(n, dtype=bool)
        for i, j, s in zip(lo.tolist(), hi.tolist(), score.tolist(), strict=True):
            if dropped[j] or dropped[i] or is_ref[j]:
                continue
            dropped[j] = True
            kept[j] = i
            best[j] = s
        return drops_frame(ids, kept, kept, is_ref, "fuzzy_duplicate", {"score": best})


fuzzy = Fuzzy
