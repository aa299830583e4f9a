"""Fuzzy dedup: drop a short text too similar to one already kept; with ``scorer="rougeL"``
exactly self-instruct's ROUGE-L filter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup import _kernel as K
from instructkit.dedup._base import Against, drops_frame, repeated
from instructkit.text import collapse_whitespace
from instructkit.transform import Global

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: rapidfuzz scorers (character level, 0-1 scale, a record drops at ``score >= threshold``)
SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "WRatio", "QRatio")
#: ROUGE-L F-measure of the token LCS, as ``rouge-score`` computes it (drops at ``> threshold``)
ROUGE = "rougeL"
BLOCKINGS = ("minhash", "prefix", "exact")
#: Cells of one all-pairs chunk in exact mode with a rapidfuzz scorer (float32 each).
_EXACT_CELLS = 8_000_000


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

    Records are scanned in order; a record is dropped (reason ``fuzzy_duplicate``, detail
    ``{"cluster": c, "kept": id, "score": s}``) when it matches a record kept so far (a
    greedy pool: a kept record joins the pool). With ``against=`` the reference records
    (seed tasks) start the pool; the reference itself is not deduplicated. Records copied by
    upsampling (``meta.repeat > 0``) are left alone.

    ``scorer="rougeL"`` is self-instruct's filter (Stanford and Code Alpaca's
    ``generate_instruction.py``): the ``rouge-score`` tokenizer (lower-case, every run of
    characters outside ``[a-z0-9]`` becomes a space, split; no stemmer), the ROUGE-L
    F-measure of the token LCS, and a record drops when its best F against the pool is
    ``> threshold`` (strict, as in the reference; 0.7 there). It always runs exactly: the
    only pairs never scored are those whose length or token-overlap bound proves they
    cannot pass, so the removed set is the reference's.

    The other scorers are rapidfuzz's, on the lower-cased text with whitespace collapsed,
    on a 0-1 scale; a record drops at ``score >= threshold``. They are character-level
    (``ratio`` is ``2 * matching chars / total chars``), so ``ratio >= 0.7`` is far looser
    than ROUGE-L > 0.7 on short instructions (see docs/dedup.md). ``blocking="exact"``
    compares every pair (rapidfuzz prunes by length); ``blocking="minhash"`` only compares
    records sharing a MinHash LSH band of character ``ngram``-shingles (pairs with shingle
    Jaccard ``blocking_threshold`` or more almost always meet), ``blocking="prefix"`` those
    whose first ``prefix`` characters agree; within a block each record meets at most
    ``window`` earlier ones. Blocking is approximate: it can miss real pairs.

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
        >>> out = ds.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7))
        >>> out.removed["id"].to_list(), out.removed["detail"][0]
        (['demo:1'], '{"cluster":0,"kept":"demo:0","score":0.8333}')
    """

    name: ClassVar[str] = "dedup.fuzzy"
    decide_params: ClassVar[tuple[str, ...]] = ("threshold", "window", "against")

    def __init__(
        self,
        field: str = "instruction",
        threshold: float = 0.9,
        scorer: str = "ratio",
        blocking: str | None = None,
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
        if scorer not in (*SCORERS, ROUGE):
            raise ValueError(f"scorer must be one of {(*SCORERS, ROUGE)}, got {scorer!r}")
        self.scorer = scorer
        if blocking is not None and blocking not in BLOCKINGS:
            raise ValueError(f"blocking must be one of {BLOCKINGS} or None, got {blocking!r}")
        if scorer == ROUGE and blocking not in (None, "exact"):
            raise ValueError(
                f"scorer='rougeL' always runs exactly (it prunes only pairs that provably cannot "
                f"pass); blocking={blocking!r} does not apply: leave it None or 'exact'"
            )
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
        mode = self._mode()
        texts = frame[self.field].cast(pl.String).fill_null("")
        if mode != "rouge":  # rouge keeps the raw text: its tokenizer is rouge_score's own
            texts = collapse_whitespace(texts.str.to_lowercase())
        if mode in ("exact", "rouge"):
            keys = np.empty((0, texts.len()), np.uint64)
        elif mode == "prefix":
            keys = texts.str.slice(0, self.prefix).hash(self.seed).to_numpy()[None, :]
        else:
            bands, rows = K.optimal_bands(self.blocking_threshold, self.num_perm) if self.blocking_threshold < 1 else (1, self.num_perm)
            keys = K.minhash(
                texts, ngram=self.ngram, unit="char", num_perm=self.num_perm, seed=self.seed,
                bands=bands, rows=rows,
            ).band_keys
        return FuzzyState(ids=frame["id"], texts=texts, keys=keys)

    def _mode(self) -> str:
        if self.scorer == ROUGE:
            return "rouge"
        return self.blocking or "minhash"

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
        if self._mode() == "rouge":
            return self._rouge(ids, texts, n_ref)
        lo, hi = self._candidates(keys, n_ref)
        nonempty = texts.str.len_chars().to_numpy() > 0
        ok = nonempty[lo] & nonempty[hi]
        lo, hi = lo[ok], hi[ok]
        text_list = texts.to_list()
        if self._mode() == "exact":
            lo, hi, score = self._exact_pairs(text_list, n_ref, nonempty)
        else:
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

    def _exact_pairs(
        self, texts: list[str], n_ref: int, nonempty: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair ``(earlier, later)`` scoring at least the threshold, the later one not
        a reference record, computed in row chunks of the all-pairs matrix."""
        from rapidfuzz import fuzz, process

        n = len(texts)
        cutoff = self.threshold * 100.0
        step = max(1, _EXACT_CELLS // max(n, 1))
        los, his, scores = [], [], []
        for start in range(n_ref, n, step):
            stop = min(n, start + step)
            block = process.cdist(
                texts[start:stop], texts[:stop], scorer=getattr(fuzz, self.scorer),
                score_cutoff=cutoff, dtype=np.float32, workers=-1,
            )
            r, c = np.nonzero(block)
            r = r + start
            ok = (c < r) & nonempty[c] & nonempty[r]
            # recompute in float64: the cutoff is applied on the exact score
            r, c = r[ok], c[ok]
            exact = np.asarray(
                process.cpdist([texts[i] for i in c.tolist()], [texts[i] for i in r.tolist()],
                               scorer=getattr(fuzz, self.scorer), workers=-1), dtype=np.float64,
            ) / 100.0 if r.size else np.empty(0)
            keep = exact >= self.threshold
            los.append(c[keep].astype(np.int64))
            his.append(r[keep].astype(np.int64))
            scores.append(exact[keep])
        if not los:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        return np.concatenate(los), np.concatenate(his), np.concatenate(scores)

    def _rouge(self, ids: pl.Series, texts: pl.Series, n_ref: int) -> pl.DataFrame:
        from instructkit.dedup import _rouge

        tokens, starts, length, ordered = _rouge.encode(texts.to_list())
        kept, score, _ = _rouge.greedy(tokens, starts, length, ordered, n_ref, float(self.threshold))
        is_ref = np.zeros(len(ids), dtype=bool)
        is_ref[:n_ref] = True
        return drops_frame(ids, kept, kept, is_ref, "fuzzy_duplicate", {"score": score})


fuzzy = Fuzzy
