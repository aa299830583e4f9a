"""``Dataset``: canonical records in a polars frame, plus the removed log and step history."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from instructkit.history import StepRecord, merge_histories
from instructkit.schema import (
    COLUMNS,
    REMOVED_SCHEMA,
    SCHEMA,
    conform,
    empty_frame,
    empty_removed,
)
from instructkit.transform import DETAIL, REASON

if TYPE_CHECKING:
    from instructkit.transform import Transform


class Dataset:
    """Instruction records with the log of what was removed from them, and why.

    Every operation returns a new ``Dataset``; the frame is never changed in place. The
    ``removed`` log and the step ``history`` travel with the data, so a pipeline's report
    is always at hand.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records(
        ...     [{"instruction": "Add 2 and 3.", "output": "5"}], source="demo")
        >>> len(ds), ds[0]["id"]
        (1, 'demo:0')
    """

    __slots__ = ("_frame", "_removed", "_history")

    def __init__(
        self,
        frame: pl.DataFrame | None = None,
        removed: pl.DataFrame | None = None,
        history: Sequence[StepRecord | Mapping[str, Any]] = (),
    ) -> None:
        self._frame = conform(frame) if frame is not None else empty_frame()
        self._removed = (
            removed.select([pl.col(c).cast(t) for c, t in REMOVED_SCHEMA.items()])
            if removed is not None
            else empty_removed()
        )
        self._history = [StepRecord.of(h) for h in history]

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls, records: Iterable[dict[str, Any]], source: str = "records", format: str | None = None
    ) -> Dataset:
        """Build from dicts in any supported input format (detected, or named by ``format``).

        Example:
            >>> Dataset.from_records([{"question": "Why?", "answer": "Because."}])[0]["instruction"]
            'Why?'
        """
        from instructkit.io.formats import canonical_frame

        frame, removed = canonical_frame(list(records), source=source, format=format, origin=source)
        return cls(frame, removed)

    @classmethod
    def from_polars(cls, frame: pl.DataFrame) -> Dataset:
        """Wrap a frame that already has the canonical columns (see :mod:`instructkit.schema`)."""
        return cls(frame)

    # basic protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self._frame.height

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self._frame.iter_rows(named=True):
            yield _decode_meta(row)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return _decode_meta(self._frame.row(index, named=True))

    def __repr__(self) -> str:
        sources = self._frame["source"].value_counts(sort=True).head(5).rows()
        src = ", ".join(f"{s}: {n}" for s, n in sources)
        more = " …" if self._frame["source"].n_unique() > 5 else ""
        head = f"Dataset({len(self)} records, {self._removed.height} removed; sources {{{src}{more}}})"
        preview = self._frame.select(
            "id", *[pl.col(c).str.slice(0, 40) for c in ("instruction", "input", "output")]
        ).head(5)
        return f"{head}\n{preview}"

    def to_polars(self) -> pl.DataFrame:
        """The records as a polars DataFrame (canonical columns first)."""
        return self._frame

    def head(self, n: int = 5) -> Dataset:
        """The first ``n`` records (the removed log and history are kept)."""
        return self._replace(self._frame.head(n))

    @property
    def removed(self) -> pl.DataFrame:
        """One row per dropped record: ``id, step, reason, detail`` and its main text fields."""
        return self._removed

    @property
    def history(self) -> list[dict[str, Any]]:
        """One entry per step run on this data: counts, removals by reason, seconds (the
        dict form of :attr:`steps`).

        Example:
            >>> import instructkit as ik
            >>> ik.Dataset.from_records([{"instruction": "a"}]).pipe(ik.normalize()).history[0]["step"]
            'normalize'
        """
        return [r.entry() for r in self._history]

    @property
    def steps(self) -> list[StepRecord]:
        """The history as typed :class:`~instructkit.history.StepRecord` objects.

        Example:
            >>> import instructkit as ik
            >>> ik.Dataset.from_records([{"instruction": "a"}]).pipe(ik.normalize()).steps[0].records_out
            1
        """
        return list(self._history)

    @property
    def columns(self) -> list[str]:
        """Column names: the canonical ones, then those transforms added."""
        return self._frame.columns

    # transforms ---------------------------------------------------------------------------
    def pipe(self, *steps: Transform) -> Dataset:
        """Run transforms one after the other.

        Example:
            >>> import instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": " hi ", "output": "x"}])
            >>> ds.pipe(ik.normalize())[0]["instruction"]
            'hi'
        """
        out = self
        for step in steps:
            out = step(out)
        return out

    def report(self) -> pl.DataFrame:
        """Per step: records in and out, removed by reason, seconds.

        Example:
            >>> import instructkit as ik
            >>> ik.Dataset.from_records([{"instruction": "a", "output": ""}]).pipe(
            ...     ik.quality()).report()["records_out"].to_list()
            [0]
        """
        rows = [
            {
                "step": h["step"],
                "records_in": h["records_in"],
                "records_out": h["records_out"],
                "removed": h["removed"],
                "reasons": ", ".join(f"{r}={n}" for r, n in h["by_reason"].items()),
                "seconds": round(h["seconds"], 4),
            }
            for h in self._history
        ]
        schema = {
            "step": pl.String, "records_in": pl.Int64, "records_out": pl.Int64,
            "removed": pl.Int64, "reasons": pl.String, "seconds": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema)

    def with_columns(self, *exprs: pl.Expr | pl.Series, **named: pl.Expr | pl.Series) -> Dataset:
        """Add or replace columns, as ``polars.DataFrame.with_columns`` (rows unchanged).

        The history gets a ``with_columns`` record naming the columns written (not the
        expressions: they may hold literal text).

        Example:
            >>> import polars as pl, instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "a"}])
            >>> ds.with_columns(n=pl.lit(1)).history[-1]["params"]
            'columns=n'
        """
        import time

        start = time.perf_counter()
        out = self._frame.with_columns(*exprs, **named)
        return self._advance_named(
            "with_columns", "map", out, time.perf_counter() - start,
            params="columns=" + ",".join([*map(_output_name, exprs), *named]),
        )

    def filter(self, predicate: pl.Expr, reason: str, step: str = "filter") -> Dataset:
        """Keep rows where ``predicate`` holds; the others go to ``removed`` with ``reason``.

        Example:
            >>> import polars as pl
            >>> ds = Dataset.from_records([{"instruction": "a", "output": "b"}])
            >>> ds.filter(pl.col("output") == "", reason="not_empty").removed["reason"].to_list()
            ['not_empty']
        """
        from instructkit.transform import mark

        marked = mark(self._frame, pl.when(~predicate.fill_null(False)).then(pl.lit(reason)))
        return self._advance_named(step, "filter", marked, 0.0, params=f"reason={reason}")

    def by_source(self) -> dict[str, Dataset]:
        """One Dataset per ``source`` value, in order of first appearance.

        Each keeps the removed rows of its own source and the shared history; a source
        whose records were all removed still appears, empty, with its removed rows.

        Example:
            >>> import instructkit as ik
            >>> a = ik.Dataset.from_records([{"instruction": "a"}], source="a")
            >>> b = ik.Dataset.from_records([{"instruction": "b"}], source="b")
            >>> sorted(ik.concat([a, b]).by_source())
            ['a', 'b']
        """
        out = {}
        names = pl.concat([self._frame["source"], self._removed["source"]]).drop_nulls()
        for name in names.unique(maintain_order=True).to_list():
            out[name] = Dataset(
                self._frame.filter(pl.col("source") == name),
                self._removed.filter(pl.col("source") == name),
                self._history,
            )
        return out

    # I/O ----------------------------------------------------------------------------------
    def write(
        self,
        path: str | Path,
        format: str = "alpaca",
        *,
        template: str | None = None,
        turns: str | None = None,
        ids: bool = True,
        tokenizer: Any = None,
        system: str | None = None,
        meta: bool = True,
        columns: Sequence[str] | None = None,
        provenance: bool = False,
    ) -> Path:
        """Write records atomically to .json, .jsonl(.gz) or .parquet.

        ``format`` is ``alpaca``, ``sharegpt``, ``messages`` or ``text`` (rendered with
        ``template``, and ``tokenizer`` for the ``chat_template`` format). Conversations
        become alpaca rows with ``history``, or as ``turns`` says (``first``, ``last``,
        ``split``). ``system`` is the system prompt of records without one; ``meta=False``
        or ``columns=`` write only the format's fields or the ones named; ``provenance=True``
        adds ``<path>.provenance.json``. See :func:`instructkit.io.write.write`.

        Example:
            >>> import tempfile, instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}])
            >>> p = ds.write(tempfile.mkdtemp() + "/out.jsonl")
            >>> ik.read(p)[0]["output"]
            'b'
        """
        from instructkit.io.write import write

        return write(
            self, path, format=format, template=template, turns=turns, ids=ids, tokenizer=tokenizer,
            system=system, meta=meta, columns=columns, provenance=provenance,
        )

    def render(self, template: str = "alpaca", *, tokenizer: Any = None, system: str | None = None) -> pl.Series:
        """Training text of every record in a prompt format (``alpaca``, ``llama2``, ...);
        ``system`` is the system prompt of records without one.

        Example:
            >>> import instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}])
            >>> ds.render("llama2")[0]
            '<s>[INST] Hi [/INST] Hello </s>'
        """
        from instructkit.templates.formats import render_column

        return render_column(self, template, tokenizer=tokenizer, system=system)

    def stats(self) -> pl.DataFrame:
        """Metrics per source and field: counts, lengths in characters and words.

        Example:
            >>> import instructkit as ik
            >>> ik.Dataset.from_records([{"instruction": "a b", "output": "c"}]).stats().height > 0
            True
        """
        from instructkit.reports.stats import stats

        return stats(self)

    def to_pandas(self) -> Any:
        """The records as a pandas DataFrame backed by Arrow (needs pandas and pyarrow).

        Columns keep their Arrow types (``messages`` stays a list of structs), with no Python
        object per row; :func:`instructkit.from_pandas` takes the frame back as it is.

        Example:
            >>> import instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}])
            >>> ik.from_pandas(ds.to_pandas()).to_polars().equals(ds.to_polars())
            True
        """
        return self._frame.to_pandas(use_pyarrow_extension_array=True)

    def to_hf(self, format: str | None = None, *, ids: bool = False, conversational: bool = False) -> Any:
        """The records as a Hugging Face ``datasets.Dataset`` (needs ``datasets``), through Arrow.

        Without ``format``: the canonical columns, which :func:`instructkit.from_hf` takes
        back. With ``format="messages"`` (system turn first; what trl's ``SFTTrainer`` reads),
        ``"prompt_completion"`` or ``"alpaca"`` (with ``history``): a trainer's form, see
        :mod:`instructkit.io.handoff`.

        Example:
            >>> import instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}])
            >>> ik.from_hf(ds.to_hf()).to_polars().equals(ds.to_polars())
            True
            >>> ds.to_hf("messages")[0]["messages"][-1]
            {'role': 'assistant', 'content': 'b'}
        """
        try:
            import datasets
        except ImportError as e:
            raise ImportError("to_hf() needs the 'datasets' package: pip install datasets") from e
        if format is None:
            return datasets.Dataset(self._frame.to_arrow())
        from instructkit.io.handoff import trainer_frame

        return datasets.Dataset(trainer_frame(self._frame, format, ids=ids, conversational=conversational).to_arrow())  # type: ignore[arg-type]

    def push_to_hub(self, repo_id: str, *, private: bool = True, **options: Any) -> str:
        """Upload as a Hub dataset repository with its card: see :func:`instructkit.push_to_hub`.

        Example:
            >>> ds.push_to_hub("me/clean-set", license="apache-2.0")  # doctest: +SKIP
        """
        from instructkit.io.export import push_to_hub

        return push_to_hub(self, repo_id, private=private, **options)

    @property
    def sources(self) -> dict[str, dict[str, str]]:
        """Licence and origin of each source, as ``ik.read(..., license=, origin=)`` or a
        recipe's input keys gave them (``{}`` when none was given).

        Example:
            >>> import instructkit as ik
            >>> ik.Dataset.from_records([{"instruction": "a"}], source="s").with_sources(
            ...     {"s": {"license": "mit"}}).sources
            {'s': {'license': 'mit'}}
        """
        out: dict[str, dict[str, str]] = {}
        for record in self._history:
            for name, notes in record.extra.get("sources", {}).items():
                out.setdefault(name, {}).update(notes)
        return out

    def with_sources(self, sources: Mapping[str, Mapping[str, str]]) -> Dataset:
        """The same data with licence / origin notes for sources, kept in the history.

        Example:
            >>> import instructkit as ik
            >>> ds = ik.Dataset.from_records([{"instruction": "a"}], source="s")
            >>> ds.with_sources({"s": {"origin": "synthetic"}}).sources["s"]["origin"]
            'synthetic'
        """
        from dataclasses import replace

        notes = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in sources.items()}
        if not self._history:
            return Dataset(self._frame, self._removed, [StepRecord(
                "sources", "read", "", len(self), len(self), 0, {}, 0.0, {"sources": notes})])
        first = self._history[0]
        merged = {**first.extra.get("sources", {}), **notes}
        head = replace(first, extra={**first.extra, "sources": merged})
        return Dataset(self._frame, self._removed, [head, *self._history[1:]])

    # internals ----------------------------------------------------------------------------
    def _replace(self, frame: pl.DataFrame) -> Dataset:
        return Dataset(frame, self._removed, self._history)

    def _advance(self, step: Transform, out: pl.DataFrame, seconds: float) -> Dataset:
        return self._advance_named(step.name, step.kind, out, seconds, params=repr(step))

    def _advance_named(
        self, name: str, kind: str, out: pl.DataFrame, seconds: float, params: str = ""
    ) -> Dataset:
        n_in = self._frame.height
        if REASON in out.columns:
            if DETAIL not in out.columns:
                out = out.with_columns(pl.lit(None, dtype=pl.String).alias(DETAIL))
            dropped_mask = out[REASON].is_not_null()
            dropped = out.filter(dropped_mask)
            kept = out.filter(~dropped_mask).drop(REASON, DETAIL)
            new_removed = dropped.select(
                "id",
                pl.lit(name).alias("step"),
                pl.col(REASON).alias("reason"),
                pl.col(DETAIL).alias("detail"),
                "source", "instruction", "input", "output",
            )
            by_reason = dict(Counter(new_removed["reason"].to_list()).most_common())
            removed = pl.concat([self._removed, new_removed], how="vertical_relaxed")
        else:
            kept, removed, by_reason = out, self._removed, {}
        entry = StepRecord(name, kind, params, n_in, kept.height, n_in - kept.height, by_reason, seconds)
        return Dataset(kept, removed, [*self._history, entry])


def concat(datasets: Sequence[Dataset]) -> Dataset:
    """Stack datasets; their removed logs and histories are kept. Ids must stay unique.

    Example:
        >>> import instructkit as ik
        >>> a = ik.Dataset.from_records([{"instruction": "a"}], source="a")
        >>> b = ik.Dataset.from_records([{"instruction": "b"}], source="b")
        >>> len(ik.concat([a, b]))
        2
    """
    if not datasets:
        return Dataset()
    frame = pl.concat([d.to_polars() for d in datasets], how="diagonal_relaxed")
    check_unique_ids(frame["id"], what="concatenated datasets")
    removed = pl.concat([d.removed for d in datasets], how="vertical_relaxed")
    # parts that ran the same steps (one read each) merge into one record per step
    return Dataset(frame, removed, merge_histories([d.steps for d in datasets]))


def check_unique_ids(ids: pl.Series, what: str) -> None:
    """Raise ``ValueError`` naming a repeated id: ids must be unique for the removed log."""
    dup = ids.filter(ids.is_duplicated())
    if len(dup):
        raise ValueError(
            f"{what}: id {dup[0]!r} appears more than once ({dup.n_unique()} repeated ids); "
            "ids must be unique. Give each file its own source= or drop the input's id field."
        )


def _output_name(expr: pl.Expr | pl.Series) -> str:
    if isinstance(expr, pl.Series):
        return expr.name
    try:
        return expr.meta.output_name()
    except pl.exceptions.ComputeError:  # several outputs (pl.all(), a regex): no one name
        return "*"


def _decode_meta(row: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("meta")
    row["meta"] = json.loads(meta) if meta else {}
    return row


__all__ = ["Dataset", "concat", "COLUMNS", "SCHEMA"]
