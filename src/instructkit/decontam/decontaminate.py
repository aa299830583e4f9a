"""``Decontaminate``: drop (or flag) training records that contain benchmark items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from instructkit.decontam import ngram, semantic
from instructkit.decontam.benchmarks import Benchmark, resolve
from instructkit.text import resolve_fields, text_pieces
from instructkit.transform import Global, apply_drops, detail_expr

#: Semantic candidates below this cosine are not kept by ``observe`` (``cosine_threshold``
#: can be swept above it without observing again).
MIN_OBSERVED_COSINE = 0.5

_STATE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "benchmark": pl.String(),
    "item": pl.String(),
    "ngrams": pl.UInt32(),
    "full": pl.Boolean(),
    "cosine": pl.Float32(),
    "fuzzy": pl.Float32(),
    "numbers": pl.Float32(),
    "names": pl.Float32(),
}


class Decontaminate(Global):
    """Remove training records that overlap evaluation benchmarks.

    ``method="ngram"`` (default): a record is contaminated when it shares at least
    ``min_matches`` word ``n``-grams (after normalization, see
    :mod:`instructkit.decontam.ngram`) with one benchmark item of at least ``min_words``
    words; a text equal to an item after normalization is contamination whatever its
    length, down to 4 words (items shorter than ``n`` words match only that way).
    ``method="semantic"`` catches rephrased items: embedding cosine >= ``cosine_threshold``,
    fuzzy score >= ``fuzzy_threshold``, and at least ``number_agreement`` of the item's
    numbers present in the record (:func:`instructkit.decontam.semantic.number_agreement`;
    0 also counts questions rebuilt with other numbers), and at least ``name_agreement`` of
    its names (capitalised words inside a sentence,
    :func:`instructkit.decontam.semantic.name_agreement`); ``"both"`` runs both.

    ``action="drop"`` moves contaminated records to ``removed`` with reason
    ``contamination`` and a detail such as ``{"benchmark":"gsm8k","item":"17","ngrams":42}``;
    ``action="flag"`` keeps them and adds a ``contaminated`` (bool) and a ``contamination``
    (detail or null) column.

    ``benchmarks`` are :class:`~instructkit.decontam.benchmarks.Benchmark` objects or recipe
    entries such as ``{"gsm8k": "gsm8k_test.jsonl"}``; they are loaded and indexed once,
    when first needed, and the index is cached per ``n``.

    Example:
        >>> import instructkit as ik
        >>> bench = ik.benchmarks.from_records("toy", [{"q":
        ...     "Natalia sold clips to 48 of her friends in April and then half as many in May"}],
        ...     fields=["q"])
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "natalia sold clips to 48 of her friends in april, and then "
        ...                     "half as many in may. how many?", "output": "72"},
        ...     {"instruction": "Write a haiku about clips.", "output": "..."}])
        >>> out = ds.pipe(ik.decontaminate([bench]))
        >>> len(out), out.removed["detail"][0]
        (1, '{"benchmark":"toy","item":"0","ngrams":5}')
    """

    name: ClassVar[str] = "decontaminate"
    # a record's verdict is its own overlap with the benchmarks: executors run it batch by
    # batch, with no pass of its own
    decides_per_record: ClassVar[bool] = True
    # fuzzy_threshold, number_agreement and name_agreement choose which candidates reach
    # MiniLM in observe
    decide_params: ClassVar[tuple[str, ...]] = ("min_matches", "cosine_threshold")

    def __init__(
        self,
        benchmarks: Sequence[Benchmark | Mapping[str, Any]],
        n: int = 13,
        min_matches: int = 1,
        method: Literal["ngram", "semantic", "both"] = "ngram",
        action: Literal["drop", "flag"] = "drop",
        fields: Sequence[str] = ("instruction", "input", "output", "messages"),
        min_words: int = 8,
        cosine_threshold: float = 0.8,
        fuzzy_threshold: float = 70.0,
        number_agreement: float = 0.8,
        name_agreement: float = 0.5,
    ) -> None:
        if isinstance(benchmarks, (Benchmark, Mapping)):
            benchmarks = [benchmarks]
        if not benchmarks:
            raise ValueError("decontaminate needs at least one benchmark")
        if method not in ("ngram", "semantic", "both"):
            raise ValueError(f"method must be 'ngram', 'semantic' or 'both', got {method!r}")
        if action not in ("drop", "flag"):
            raise ValueError(f"action must be 'drop' or 'flag', got {action!r}")
        if n < 1 or min_matches < 1 or min_words < 1:
            raise ValueError("n, min_matches and min_words must be >= 1")
        if cosine_threshold < MIN_OBSERVED_COSINE:
            raise ValueError(f"cosine_threshold must be >= {MIN_OBSERVED_COSINE}")
        if not 0 <= fuzzy_threshold <= 100:
            raise ValueError(f"fuzzy_threshold must be in [0, 100], got {fuzzy_threshold}")
        if not 0 <= number_agreement <= 1:
            raise ValueError(f"number_agreement must be in [0, 1], got {number_agreement}")
        if not 0 <= name_agreement <= 1:
            raise ValueError(f"name_agreement must be in [0, 1], got {name_agreement}")
        self.benchmarks = benchmarks
        self.n = n
        self.min_matches = min_matches
        self.method = method
        self.action = action
        self.fields = fields
        self.min_words = min_words
        self.cosine_threshold = cosine_threshold
        self.fuzzy_threshold = fuzzy_threshold
        self.number_agreement = number_agreement
        self.name_agreement = name_agreement

    # the index -----------------------------------------------------------------------------
    def loaded(self) -> list[Benchmark]:
        """The benchmarks as objects (recipe entries are read from disk on first use).

        Example:
            >>> import instructkit as ik
            >>> b = ik.benchmarks.from_records("toy", [{"q": "a"}], ["q"])
            >>> ik.decontaminate([b]).loaded()[0].name
            'toy'
        """
        # a cache of the files' contents; it changes no result
        key = repr(self.benchmarks)
        cached = self.__dict__.get("_loaded")
        if cached is None or cached[0] != key:
            cached = (key, [resolve(b) for b in self.benchmarks])
            self.__dict__["_loaded"] = cached
        return cached[1]

    def index(self) -> ngram.NgramIndex:
        """The n-gram index of the benchmarks for this ``n`` (built once, then cached; on a
        worker, the one the driver built and shipped)."""
        shipped = self.__dict__.get("_shipped_index")
        if shipped is not None:
            return shipped
        return ngram.cached_index(self.loaded(), self.n, self.min_words)

    # hooks of the protocol ---------------------------------------------------------------
    def prepare(self) -> None:
        """Read the benchmark files (once, on the driver): workers get them with the step."""
        self.loaded()

    @classmethod
    def preload(cls) -> None:
        """Start numba and import the compiled n-gram scan (its own load then takes milliseconds)."""
        from instructkit.decontam import _jit  # noqa: F401 (compiles nothing: its kernels load on first call)
        from instructkit.dedup._kernel import start_numba

        start_numba()

    def shared_state(self) -> ngram.NgramIndex | None:
        """The n-gram index, built once on the driver and shipped to the workers."""
        return self.index() if self.method in ("ngram", "both") else None

    def attach_shared_state(self, state: ngram.NgramIndex) -> None:
        self.__dict__["_shipped_index"] = state

    # Global protocol ---------------------------------------------------------------------
    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Best match per (record, benchmark): ids, item ids, n-gram counts, scores; no text.

        Example:
            >>> import instructkit as ik
            >>> b = ik.benchmarks.from_records("t", [{"q": "one two three four"}], ["q"])
            >>> f = ik.Dataset.from_records([{"instruction": "one two three four"}]).to_polars()
            >>> ik.decontaminate([b], n=2, min_words=4).observe(f)["ngrams"].to_list()
            [3]
        """
        parts = []
        if self.method in ("ngram", "both"):
            parts.append(self._observe_ngrams(batch))
        if self.method in ("semantic", "both"):
            parts.append(self._observe_semantic(batch))
        return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=_STATE_SCHEMA)

    def decide(self, states: list[pl.DataFrame]) -> pl.DataFrame:
        """Contaminated records: ``id``, ``reason`` (``contamination``), ``detail``."""
        if not states:
            return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
        hits = pl.concat(states, how="vertical").with_row_index("_order")
        by_ngram = pl.col("full") | (pl.col("ngrams") >= self.min_matches)
        by_meaning = (
            (pl.col("cosine") >= self.cosine_threshold)
            & (pl.col("fuzzy") >= self.fuzzy_threshold)
            & (pl.col("numbers") >= self.number_agreement)
            & (pl.col("names") >= self.name_agreement)
        )
        found = hits.filter(by_ngram.fill_null(False) | by_meaning.fill_null(False))
        # one verdict per record: n-gram evidence first, then the strongest score
        best = (
            found.with_columns(by_ngram.fill_null(False).alias("_exact"))
            .sort(
                ["_exact", "full", "ngrams", "cosine", "_order"],
                descending=[True, True, True, True, False],
                nulls_last=True,
            )
            .unique("id", keep="first", maintain_order=True)
            .sort("_order")
        )
        bench, item = pl.col("benchmark"), pl.col("item")
        detail = (
            pl.when(pl.col("full") & pl.col("_exact"))
            .then(detail_expr(benchmark=bench, full_text=pl.lit(True), item=item))
            .when(pl.col("_exact"))
            .then(detail_expr(benchmark=bench, item=item, ngrams=pl.col("ngrams")))
            .otherwise(detail_expr(
                benchmark=bench, cosine=pl.col("cosine").cast(pl.Float64).round(3),
                fuzzy=pl.col("fuzzy").cast(pl.Float64).round(1), item=item,
                names=pl.col("names").cast(pl.Float64).round(2),
                numbers=pl.col("numbers").cast(pl.Float64).round(2),
            ))
        )
        return best.select(
            "id", pl.lit("contamination").alias("reason"), detail.alias("detail")
        )

    def apply_decision(self, frame: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
        if self.action == "drop":
            return apply_drops(frame, drops)
        flagged = frame.drop("contaminated", "contamination", strict=False).join(
            drops.select("id", pl.col("detail").alias("contamination")),
            on="id", how="left", maintain_order="left",
        )
        return flagged.with_columns(pl.col("contamination").is_not_null().alias("contaminated"))

    def report(self, dataset: Any, examples: int = 3) -> pl.DataFrame:
        """Per benchmark: records contaminated, with examples side by side.

        See :func:`instructkit.decontam.report.contamination_report`.
        """
        from instructkit.decontam.report import contamination_report

        return contamination_report(dataset, self.loaded(), examples=examples)

    # stages ------------------------------------------------------------------------------
    def _texts(self, batch: pl.DataFrame) -> tuple[list[pl.Series], list[np.ndarray]]:
        # each flat field and each conversation turn is scanned on its own: an n-gram never
        # spans two turns, and a conversation's mirrored flat fields are not scanned twice
        pieces = text_pieces(batch, resolve_fields(list(self.fields), batch))
        return [pieces["text"]], [pieces["row"].to_numpy()]

    def _observe_ngrams(self, batch: pl.DataFrame) -> pl.DataFrame:
        index = self.index()
        columns, owners = self._texts(batch)
        hits = index.scan(columns, batch.height, owners)
        codes = index.item_bench[hits["item"].to_numpy()]
        return (
            hits.with_columns(
                pl.Series("_bench", codes),
                pl.Series("item", [index.item_ids[i] for i in hits["item"].to_list()], dtype=pl.String),
            )
            .sort(["row", "_bench", "full", "ngrams"], descending=[False, False, True, True])
            .unique(["row", "_bench"], keep="first", maintain_order=True)
            .select("row", "_bench", "item", "ngrams", "full")
            .pipe(self._label, batch, index.names)
        )

    def _observe_semantic(self, batch: pl.DataFrame) -> pl.DataFrame:
        index = semantic.cached_index(self.loaded())
        prompts = batch.select(
            pl.concat_str(
                [pl.col("instruction").fill_null(""), pl.col("input").fill_null("")],
                separator="\n",
            ).str.strip_chars()
        ).to_series().to_list()
        best, cosine, fuzzy, agree, named = index.match(
            prompts, self.fuzzy_threshold, self.number_agreement, self.name_agreement
        )
        keep = np.flatnonzero(cosine >= MIN_OBSERVED_COSINE)
        frame = pl.DataFrame(
            {
                "row": keep.astype(np.uint32),
                "_bench": index.item_bench[best[keep]],
                "item": pl.Series([index.item_ids[i] for i in best[keep]], dtype=pl.String),
                "ngrams": pl.Series([0] * len(keep), dtype=pl.UInt32),
                "full": pl.Series([False] * len(keep), dtype=pl.Boolean),
                "cosine": cosine[keep],
                "fuzzy": fuzzy[keep],
                "numbers": agree[keep],
                "names": named[keep],
            }
        )
        return self._label(frame, batch, index.names)

    @staticmethod
    def _label(hits: pl.DataFrame, batch: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
        ids = batch["id"].gather(hits["row"].cast(pl.Int64))
        bench = pl.Series(names, dtype=pl.String).gather(hits["_bench"].cast(pl.Int64))
        out = hits.with_columns(pl.Series("id", ids), pl.Series("benchmark", bench))
        for col in ("cosine", "fuzzy", "numbers", "names"):
            if col not in out.columns:
                out = out.with_columns(pl.lit(None, dtype=pl.Float32).alias(col))
        return out.select([pl.col(c).cast(t) for c, t in _STATE_SCHEMA.items()])
