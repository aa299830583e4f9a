"""``ik.card``: a Hugging Face dataset card (README.md with YAML metadata) for a clean dataset.

The card is built from what the data carries: the licence and origin of each source that
``ik.read(..., license=, origin=)`` or a recipe's input keys recorded (``ds.sources``), the ``lang``
column of ``ik.langid``, the step history and the removed log. The metadata is checked by
round-tripping it through ``huggingface_hub``'s ``DatasetCard`` / ``DatasetCardData``.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: Where a source's records came from, as the card's "origin" column says.
ORIGINS = ("human-written", "templated", "synthetic", "machine-translated", "mixed", "unspecified")
_NON_COMMERCIAL = re.compile(r"(^|[-_ ])nc([-_ ]|$)|non-?commercial|research[-_ ]only", re.I)
# licences whose terms allow commercial use (SPDX ids, lower case, as the Hub writes them)
_COMMERCIAL = {
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-3.0",
    "cc-by-sa-3.0", "cc0-1.0", "odc-by", "odbl", "pddl", "unlicense", "llama2", "llama3", "openrail",
}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` records.

    Example:
        >>> size_category(999), size_category(16_423)
        ('n<1K', '10K<n<100K')
    """
    for bound, name in _SIZES:
        if n < bound:
            return name
    return "n>1B"


def is_non_commercial(license: str) -> bool:
    """True for licences that forbid commercial use (``cc-by-nc-4.0``, ``research-only``).

    Example:
        >>> is_non_commercial("cc-by-nc-4.0"), is_non_commercial("apache-2.0")
        (True, False)
    """
    return bool(_NON_COMMERCIAL.search(license))


def source_table(dataset: Dataset, sources: Mapping[str, Mapping[str, str]] | None = None) -> pl.DataFrame:
    """One row per source: records kept and removed, licence and origin.

    Licence and origin come from ``sources`` (``{name: {"license": ..., "origin": ...}}``),
    else from what the data carries (``dataset.sources``: ``ik.read(..., license=,
    origin=)`` or a recipe's input keys); ``"unspecified"`` when neither says.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": "b"}], source="mine")
        >>> source_table(ds, {"mine": {"license": "mit", "origin": "human-written"}}).row(0)
        ('mine', 1, 0, 'mit', 'human-written')
    """
    frame, removed = dataset.to_polars(), dataset.removed
    names = pl.concat([frame["source"], removed["source"]]).drop_nulls().unique(maintain_order=True)
    kept = frame.group_by("source").len("kept")
    gone = removed.group_by("source").len("removed")
    notes = {name: dict(v) for name, v in dataset.sources.items()}
    for name, given in (sources or {}).items():
        notes.setdefault(name, {}).update(given)
    table = (
        pl.DataFrame({"source": names})
        .join(kept, on="source", how="left")
        .join(gone, on="source", how="left")
        .with_columns(pl.col("kept", "removed").fill_null(0).cast(pl.Int64))
    )
    return table.with_columns(
        pl.Series(column, [notes.get(s, {}).get(column) or "unspecified" for s in table["source"]], dtype=pl.String)
        for column in ("license", "origin")
    ).select("source", "kept", "removed", "license", "origin")


def licence_warnings(table: pl.DataFrame, license: str | None) -> list[str]:
    """Warnings for mixing a non-commercial source with one marked for commercial use.

    Example:
        >>> t = pl.DataFrame({"source": ["a", "b"], "license": ["cc-by-nc-4.0", "apache-2.0"]})
        >>> licence_warnings(t, None)[0][:60]
        "source 'a' is cc-by-nc-4.0 (non-commercial), mixed with 'b' "
    """
    out = []
    nc = [(s, lic) for s, lic in table.select("source", "license").rows() if is_non_commercial(lic)]
    commercial = [(s, lic) for s, lic in table.select("source", "license").rows() if lic.lower() in _COMMERCIAL]
    for name, lic in nc:
        for other, other_lic in commercial:
            out.append(
                f"source {name!r} is {lic} (non-commercial), mixed with {other!r} ({other_lic}, "
                "commercial use allowed): the mix may only be used non-commercially"
            )
        if license and license.lower() in _COMMERCIAL:
            out.append(
                f"the card declares {license}, which allows commercial use, but source {name!r} "
                f"is {lic} (non-commercial)"
            )
    return out


def _get(entry: Any, key: str) -> Any:
    return entry[key] if isinstance(entry, Mapping) else getattr(entry, key)


def _steps_table(dataset: Dataset) -> list[str]:
    rows = ["| step | records in | records out | removed, by reason |", "|---|---|---|---|"]
    for entry in dataset.history:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in _get(entry, "by_reason").items()) or "–"
        rows.append(
            f"| `{_get(entry, 'step')}` | {_get(entry, 'records_in'):,} | "
            f"{_get(entry, 'records_out'):,} | {reasons} |"
        )
    return rows


def _benchmarks(dataset: Dataset) -> list[str]:
    names: list[str] = []
    for entry in dataset.history:
        if _get(entry, "step") == "decontaminate":
            names += re.findall(r"Benchmark\('([^']+)'", str(_get(entry, "params")))
    return list(dict.fromkeys(names))


def _removed_by(dataset: Dataset, reason: str) -> int:
    return int((dataset.removed["reason"] == reason).sum())


def _step_names(dataset: Dataset) -> list[str]:
    return [str(_get(e, "step")) for e in dataset.history]


def card(
    dataset: Dataset,
    path: str | Path | None = None,
    *,
    license: str | None = None,
    pretty_name: str | None = None,
    sources: Mapping[str, Mapping[str, str]] | None = None,
    task_categories: Sequence[str] = ("text-generation",),
    limitations: Sequence[str] = (),
) -> str:
    """A Hugging Face dataset card for ``dataset``; written to ``path`` when given.

    The YAML header has ``license``, ``language`` (from the ``lang`` column, when
    ``ik.langid`` ran; languages of at least 1% of the records), ``size_categories``, ``task_categories``, ``source_datasets`` and
    ``pretty_name``. The body has sections for the sources (licence and origin of each), the
    processing steps with their removal counts, decontamination (the benchmarks checked), PII
    handling, statistics and known limitations. Mixing a non-commercial source with one marked
    for commercial use warns (``UserWarning``) and is listed under the limitations.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Add 2 and 3.", "output": "5"}], source="math")
        >>> text = card(ds, pretty_name="Tiny math",
        ...             sources={"math": {"license": "mit", "origin": "human-written"}})
        >>> text.splitlines()[:2]
        ['---', 'license: mit']
        >>> "| math | 1 | 0 | mit | human-written |" in text
        True
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    frame = dataset.to_polars()
    table = source_table(dataset, sources)
    if license is None:
        licences = table["license"].unique(maintain_order=True).to_list()
        license = licences[0] if len(licences) == 1 and licences[0] != "unspecified" else "other"
    problems = licence_warnings(table, license)
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)
    languages = []
    if "lang" in frame.columns:
        counts = Counter(c for c in frame["lang"].drop_nulls().to_list() if c not in ("und", "mixed"))
        # a language is the data's when it is at least 1% of it, not a handful of misdetections
        languages = [code for code, n in counts.most_common() if n >= 0.01 * len(frame)]
    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name or "instructkit dataset",
        language=languages or None,
        size_categories=[size_category(len(frame))],
        task_categories=list(task_categories),
        source_datasets=table["source"].to_list(),
        tags=["instructkit"],
    )
    body = _body(dataset, table, languages, problems, list(limitations))
    text = DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body).content
    # the metadata must read back as written: the Hub parses exactly this header
    parsed = DatasetCard(text).data.to_dict()
    if parsed.get("license") != license or parsed.get("size_categories") != data.size_categories:
        raise ValueError(f"the card's metadata does not round-trip through huggingface_hub: {parsed}")
    if path is not None:
        from instructkit.io.write import atomic_file

        target = Path(path)
        with atomic_file(target) as f:
            f.write(text.encode("utf-8"))
    return text


def _body(
    dataset: Dataset, table: pl.DataFrame, languages: list[str], problems: list[str], limitations: list[str]
) -> str:
    frame = dataset.to_polars()
    lines = [f"# {len(frame):,} instruction records", ""]
    lines += ["## Sources", "", "| source | records kept | removed | licence | origin |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {k:,} | {r:,} | {lic} | {o} |" for s, k, r, lic, o in table.rows()]
    lines += ["", "## Processing", "", "Cleaned with [instructkit](https://pypi.org/project/instructkit/); each "
              "step and what it removed:", ""]
    lines += _steps_table(dataset)
    steps = _step_names(dataset)
    lines += ["", "## Decontamination", ""]
    benchmarks = _benchmarks(dataset)
    if benchmarks:
        lines.append(
            f"Checked against {', '.join(benchmarks)}; {_removed_by(dataset, 'contamination'):,} records "
            "that overlap a benchmark item were removed."
        )
    else:
        lines.append("Not decontaminated: no benchmark was checked.")
        limitations = [*limitations, "The records were not checked against evaluation benchmarks."]
    lines += ["", "## Personal data", ""]
    pii_steps = [s for s in steps if s.startswith("pii.")]
    if pii_steps:
        found = int(frame["pii_counts"].list.sum().sum()) if "pii_counts" in frame.columns and frame["pii_counts"].dtype == pl.List else None
        lines.append(
            f"Personal data was handled by {', '.join(f'`{s}`' for s in pii_steps)} (pattern "
            "recognizers: e-mail, phone, credit card, IBAN, IP, URL and more); "
            f"{_removed_by(dataset, 'pii'):,} records were removed for it."
            + (f" {found:,} entities were replaced." if found else "")
        )
    else:
        lines.append("Not scrubbed for personal data.")
        limitations = [*limitations, "The records were not scrubbed for personal data."]
    lines += ["", "## Statistics", ""]
    lines += _statistics(dataset, languages)
    lines += ["", "## Known limitations", ""]
    lines += [f"- {item}" for item in [*problems, *limitations]] or ["- None recorded."]
    return "\n".join(lines) + "\n"


def _statistics(dataset: Dataset, languages: list[str]) -> list[str]:
    stats = dataset.stats().filter(pl.col("source") == "(all)")
    rows = ["| field | non-empty | words, mean | words, p90 | words, max |", "|---|---|---|---|---|"]
    for r in stats.iter_rows(named=True):
        if not r["records"]:
            continue  # a field no record uses (no input, no system prompt)
        rows.append(
            f"| {r['field']} | {r['records']:,} | {r['words_mean']:.1f} | {r['words_p90']:.0f} | {r['words_max']:,} |"
        )
    if languages:
        rows += ["", f"Languages (by `ik.langid`, most frequent first): {', '.join(languages)}."]
    return rows
