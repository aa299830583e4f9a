"""What the HTML report shows, as plain data: one function per section.

Each function reads whatever columns and log rows exist and returns frames or small lists,
so the numbers can be tested (and reused) without parsing HTML. A section whose input is
absent (no ``lang`` column, no duplicates in the removed log) returns an empty result and
the report says which step would fill it.

Example:
    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}], source="s")
    >>> source_counts(ds).rows()
    [('s', 1, 0, 1.0)]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from instructkit.transform import detail_field

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: Removed-log reasons that mean "duplicate of a kept record" (any reason ending like this).
DUPLICATE_SUFFIX = "duplicate"
#: Removed-log reasons of decontamination.
CONTAMINATION_PREFIX = "contamina"



def source_counts(dataset: Dataset) -> pl.DataFrame:
    """Per source: ``records`` kept, ``removed``, ``share`` of the kept records.

    Sources whose every record was removed are listed too (``records`` 0).
    """
    kept = dataset.to_polars().group_by("source", maintain_order=True).len("records")
    removed = dataset.removed.group_by("source", maintain_order=True).len("removed")
    out = kept.join(removed, on="source", how="full", coalesce=True, maintain_order="left_right")
    total = max(len(dataset), 1)
    return (
        out.with_columns(
            pl.col("records").fill_null(0).cast(pl.Int64),
            pl.col("removed").fill_null(0).cast(pl.Int64),
        )
        .with_columns((pl.col("records") / total).alias("share"))
        .sort(["records", "source"], descending=[True, False])
    )


@dataclass
class Waterfall:
    """Records in, the change of each (step, reason), records out."""

    records_in: int
    steps: list[tuple[str, str, int]]  # (step, reason or "repeats", signed change)
    records_out: int


def waterfall(dataset: Dataset, max_steps: int = 30) -> Waterfall:
    """The removal waterfall, from the removed log (which has every removal) and history.

    Steps come in the order they ran (``history``); steps with removals but no history entry
    (reading) come first. A ``mix`` that repeated records adds a positive ``repeats`` step.
    Beyond ``max_steps`` changes the smallest removals are merged into ``other reasons``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": ""}]).pipe(ik.quality())
        >>> w = waterfall(ds)
        >>> w.records_in, w.steps[0][0], w.records_out
        (1, 'quality', 0)
    """
    history = dataset.history
    order = {}
    for i, h in enumerate(history):
        order.setdefault(h["step"], i)
    counts = dataset.removed.group_by("step", "reason", maintain_order=True).len()
    rows = [
        (order.get(step, -1), step, reason or "(no reason)", -int(n))
        for step, reason, n in counts.iter_rows()
    ]
    for h in history:
        if h.get("added"):
            rows.append((order[h["step"]], h["step"], "repeats", int(h["added"])))
    # stable: history order, then the biggest change first
    rows.sort(key=lambda r: (r[0], -abs(r[3])))
    steps = [(s, r, n) for _, s, r, n in rows]
    if len(steps) > max_steps:
        keep = sorted(range(len(steps)), key=lambda i: -abs(steps[i][2]))[: max_steps - 1]
        rest = [steps[i] for i in range(len(steps)) if i not in set(keep) and steps[i][2] < 0]
        steps = [steps[i] for i in sorted(keep)]
        steps.append(("…", f"{len(rest)} other reasons", sum(n for _, _, n in rest)))
    added = sum(n for _, r, n in steps if n > 0)
    records_in = len(dataset) + dataset.removed.height - added
    return Waterfall(records_in, steps, len(dataset))


def languages(dataset: Dataset, top: int = 15) -> pl.DataFrame | None:
    """``lang, records, share`` from the ``lang`` column (``None`` when there is none);
    languages beyond ``top`` are summed into ``other``."""
    frame = dataset.to_polars()
    if "lang" not in frame.columns:
        return None
    counts = (
        frame.group_by(pl.col("lang").fill_null("(null)")).len("records")
        .sort(["records", "lang"], descending=[True, False])
    )
    if counts.height > top:
        rest = counts.slice(top - 1)["records"].sum()
        counts = pl.concat([
            counts.head(top - 1),
            pl.DataFrame({"lang": [f"other ({counts.height - top + 1})"], "records": [rest]},
                         schema=counts.schema),
        ])
    total = max(len(dataset), 1)
    return counts.with_columns(
        pl.col("records").cast(pl.Int64), (pl.col("records") / total).alias("share")
    )


def duplicate_clusters(dataset: Dataset, top: int = 10, examples: int = 3) -> dict[str, Any]:
    """Duplicate clusters from the removed log: rows whose reason ends in ``duplicate`` and
    whose detail names the kept record: a JSON object with a ``kept`` key (the detail
    convention, :func:`~instructkit.transform.detail`; what ``ik.dedup`` writes).

    Returns ``{"by_reason": frame[reason, removed], "clusters": [...], "unlinked": n}``; each
    cluster is ``{"kept_id", "kept_text", "size", "reasons", "examples": [texts]}``, biggest
    first (``size`` counts the kept record). ``unlinked`` counts duplicates whose detail
    names no kept id (no ``kept`` key: a step that does not follow the convention).

    Example:
        >>> import polars as pl, instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "a"}], source="s")
        >>> dropped = ds.filter(pl.col("id") != "s:1", reason="exact_duplicate")
        >>> removed = dropped.removed.with_columns(detail=pl.lit('{"kept":"s:0"}'))
        >>> duplicate_clusters(ik.Dataset(dropped.to_polars(), removed))["clusters"][0]["size"]
        2
    """
    removed = dataset.removed.filter(pl.col("reason").str.ends_with(DUPLICATE_SUFFIX))
    by_reason = removed.group_by("reason").len("removed").sort(
        ["removed", "reason"], descending=[True, False])
    linked = removed.with_columns(detail_field("kept", _json_only()).alias("kept_id"))
    unlinked = int(linked["kept_id"].is_null().sum())
    linked = linked.filter(pl.col("kept_id").is_not_null())
    sizes = (
        linked.group_by("kept_id")
        .agg(
            (pl.len() + 1).alias("size"),
            pl.col("reason").unique().sort().alias("reasons"),
            pl.col("instruction", "input", "output").head(examples),
        )
        .sort(["size", "kept_id"], descending=[True, False])
        .head(top)
    )
    kept_ids = sizes["kept_id"].to_list()
    # the kept record may itself have been removed by a later step: look in both places
    texts = dict(
        dataset.to_polars().filter(pl.col("id").is_in(kept_ids))
        .select("id", _record_text()).iter_rows()
    )
    later = dataset.removed.filter(pl.col("id").is_in(kept_ids) & ~pl.col("id").is_in(list(texts)))
    texts.update(dict(later.select("id", _record_text()).iter_rows()))
    clusters = []
    for row in sizes.iter_rows(named=True):
        clusters.append({
            "kept_id": row["kept_id"],
            "kept_text": texts.get(row["kept_id"]),
            "size": int(row["size"]),
            "reasons": row["reasons"],
            "examples": [
                _join(i, x, o) for i, x, o in zip(row["instruction"], row["input"], row["output"],
                                                  strict=True)
            ],
        })
    return {"by_reason": by_reason, "clusters": clusters, "unlinked": unlinked}


def pii_counts(dataset: Dataset) -> pl.DataFrame | None:
    """``type, found, records`` summed from the ``pii_counts`` column (``None`` without one).

    The column may be a struct of counts per type, a list of ``{type, count}`` structs, a
    JSON object string per record, or a plain integer (reported as type ``(all)``).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "b"}])
        >>> ds = ds.with_columns(pii_counts=pl.Series(['{"EMAIL_ADDRESS": 2}', None]))
        >>> pii_counts(ds).rows()
        [('EMAIL_ADDRESS', 2, 1)]
    """
    frame = dataset.to_polars()
    if "pii_counts" not in frame.columns:
        return None
    col = frame["pii_counts"]
    found: Counter[str] = Counter()
    records: Counter[str] = Counter()
    dtype = col.dtype
    if isinstance(dtype, pl.Struct):
        for f in dtype.fields:
            values = col.struct.field(f.name).cast(pl.Int64, strict=False).fill_null(0)
            found[f.name] += int(values.sum())
            records[f.name] += int((values > 0).sum())
    elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        names = [f.name for f in dtype.inner.fields]
        key = next((n for n in names if n in ("type", "entity", "entity_type", "key", "name")), names[0])
        val = next((n for n in names if n in ("count", "n", "value", "found")), names[-1])
        parts = (
            pl.DataFrame({"pii": col}).with_row_index("row").explode("pii").drop_nulls("pii")
            .select(
                "row",
                pl.col("pii").struct.field(key).cast(pl.String).alias("type"),
                pl.col("pii").struct.field(val).cast(pl.Int64).alias("count"),
            )
        )
        for t, n, r in parts.group_by("type").agg(
            pl.col("count").sum(), pl.col("row").filter(pl.col("count") > 0).n_unique()
        ).iter_rows():
            found[t] += int(n)
            records[t] += int(r)
    elif dtype == pl.String:
        for text in col.drop_nulls().filter(col.drop_nulls() != "{}").to_list():
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"pii_counts holds {text[:60]!r}, expected a JSON object of counts")
            for t, n in data.items():
                found[t] += int(n)
                records[t] += int(n) > 0
    elif dtype.is_integer():
        values = col.fill_null(0)
        found["(all)"] = int(values.sum())
        records["(all)"] = int((values > 0).sum())
    else:
        raise ValueError(f"pii_counts column has dtype {dtype}, expected a struct, list of structs, "
                         "JSON string or integer")
    rows = sorted(((t, found[t], records[t]) for t in found), key=lambda r: (-r[1], r[0]))
    return pl.DataFrame(rows, schema={"type": pl.String, "found": pl.Int64, "records": pl.Int64},
                        orient="row")


def contamination(dataset: Dataset, examples: int = 3) -> dict[str, Any]:
    """Records removed as benchmark contamination, per benchmark.

    Reads removed rows whose reason starts with ``contamina`` and, for
    ``ik.decontaminate(action="flag")``, kept records whose ``contamination`` column is set;
    details are JSON objects (``{"benchmark":"gsm8k","item":"1234","ngrams":12}``, see
    docs/pipeline.md). Returns ``{"by_benchmark":
    frame[benchmark, removed, flagged, items], "examples": {benchmark: [{id, item, ngrams,
    cosine, text}]}}`` (``cosine`` for rephrase matches, else null).
    """
    rows = dataset.removed.filter(pl.col("reason").str.starts_with(CONTAMINATION_PREFIX))
    frame = dataset.to_polars()
    if "contamination" in frame.columns and frame.schema["contamination"] == pl.String:
        # action="flag" keeps the records and writes the detail in a column instead
        flagged = frame.filter(pl.col("contamination").is_not_null()).select(
            "id", "instruction", "input", "output", pl.col("contamination").alias("detail"),
            pl.lit("flagged").alias("reason"),
        )
        rows = pl.concat([rows.select(flagged.columns), flagged])
    detail = _json_only()
    rows = rows.with_columns(
        detail_field("benchmark", detail).fill_null("(unknown)"),
        detail_field("item", detail),
        detail_field("ngrams", detail, pl.Int64),
        detail_field("cosine", detail, pl.Float64),
    )
    by_benchmark = (
        rows.group_by("benchmark")
        .agg(
            (pl.col("reason") != "flagged").sum().cast(pl.Int64).alias("removed"),
            (pl.col("reason") == "flagged").sum().cast(pl.Int64).alias("flagged"),
            pl.col("item").n_unique().cast(pl.Int64).alias("items"),
        )
        .sort(["removed", "flagged", "benchmark"], descending=[True, True, False])
    )
    shown: dict[str, list[dict[str, Any]]] = {}
    for bench in by_benchmark["benchmark"].to_list():
        part = rows.filter(pl.col("benchmark") == bench).head(examples)
        shown[bench] = [
            {"id": r["id"], "item": r["item"], "ngrams": r["ngrams"], "cosine": r["cosine"],
             "text": _join(r["instruction"], r["input"], r["output"])}
            for r in part.iter_rows(named=True)
        ]
    return {"by_benchmark": by_benchmark, "examples": shown}


def _json_only() -> pl.Expr:
    """The ``detail`` column where it is a JSON object (the convention); null elsewhere, so
    a step's free-text detail reads as "no keys" rather than failing the report."""
    detail = pl.col("detail")
    return pl.when(detail.str.starts_with("{")).then(detail)


def removal_reasons(dataset: Dataset) -> pl.DataFrame:
    """``step, reason, removed`` and one example ``detail`` per (step, reason)."""
    return (
        dataset.removed.group_by("step", "reason", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("removed"), pl.col("detail").drop_nulls().first().alias("example"))
    )


def samples(dataset: Dataset, per_source: int = 3, seed: int = 0, max_sources: int = 20) -> dict[str, list[dict[str, Any]]]:
    """A few records per source (the ``max_sources`` biggest), drawn with ``seed``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": str(i)} for i in range(9)], source="s")
        >>> [len(v) for v in samples(ds, per_source=2).values()]
        [2]
    """
    frame = dataset.to_polars()
    if frame.height == 0:
        return {}
    top = (
        frame.group_by("source").len().sort(["len", "source"], descending=[True, False])
        .head(max_sources)["source"].to_list()
    )
    part = frame.filter(pl.col("source").is_in(top))
    # a random rank within each source, reproducible from the seed
    picked = part.with_columns(
        pl.int_range(pl.len()).shuffle(seed=seed).over("source").alias("_rank")
    ).filter(pl.col("_rank") < per_source).sort("_rank")
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in top}
    keep = ["id", "source", "instruction", "input", "output", "system", "messages", "meta"]
    keep += [c for c in ("lang",) if c in picked.columns]
    for row in picked.select(keep).iter_rows(named=True):
        out[row["source"]].append(row)
    return out


def histogram_data(values: pl.Series, bins: int = 40) -> dict[str, Any] | None:
    """Bin edges up to the 99th percentile (rounded up to a round number), counts per bin
    and the count above it. ``None`` when no value is present.

    Example:
        >>> h = histogram_data(pl.Series([1, 2, 3, 4, 100]), bins=4)
        >>> h["edges"][0], sum(h["counts"]) + h["overflow"]
        (0.0, 5)
    """
    v = values.drop_nulls()
    if v.len() == 0:
        return None
    arr = v.to_numpy()
    hi = max(float(np.quantile(arr, 0.99, method="nearest")), 1.0)
    bins = int(min(bins, np.ceil(hi)))  # short lengths: one bin per integer value at most
    hi = _round_up(hi, bins)
    counts, edges = np.histogram(np.minimum(arr, hi), bins=bins, range=(0.0, hi))
    overflow = int((arr > hi).sum())
    counts[-1] -= overflow  # the clipped values landed in the last bin
    return {"edges": edges.tolist(), "counts": counts.tolist(), "overflow": overflow,
            "median": float(np.median(arr)), "max": int(arr.max()), "n": int(arr.size)}


def _round_up(x: float, bins: int) -> float:
    """A round upper edge >= x whose bin width is a 1, 2 or 5 step (integer lengths)."""
    width = x / bins
    mag = 10 ** np.floor(np.log10(width)) if width > 0 else 1
    for step in (1, 2, 5, 10):
        if step * mag >= width:
            return float(max(step * mag, 1.0) * bins)
    return float(10 * mag * bins)


def _record_text() -> pl.Expr:
    return pl.concat_str(
        [pl.col("instruction").fill_null(""), pl.col("input").fill_null(""), pl.col("output").fill_null("")],
        separator="\n",
    ).str.strip_chars().str.slice(0, 400).alias("text")


def _join(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p).strip()[:400]
