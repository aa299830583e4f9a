"""``ik.report``: one self-contained HTML file that shows a dataset and what was removed.

The file has inline CSS, inline SVG charts and a few lines of inline JavaScript (it marks
the page once the charts are laid out, which the browser test reads); it loads nothing from
the network. It is laid out for a 1280 px wide window and prints as well.

Sections: overview, removal waterfall, records per source, lengths per field (characters,
words, tokens with a tokenizer), languages (``lang`` column), duplicate clusters, PII by type
(``pii_counts`` column), contamination by benchmark, leading verbs and their objects, removal
reasons, sample records per source. A section whose data is absent says which step fills it.

Example:
    >>> import tempfile, instructkit as ik
    >>> ds = ik.Dataset.from_records([{"instruction": "Write a poem.", "output": "Roses..."}])
    >>> path = ik.report(ds, tempfile.mkdtemp() + "/report.html")
    >>> path.read_text().startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from instructkit.reports import sections, svg
from instructkit.reports.stats import length_frame, summarize
from instructkit.reports.verbs import leading_verbs, verb_table

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

UNITS = ("chars", "words", "tokens")


def report(
    dataset: Dataset,
    path: str | Path = "report.html",
    tokenizer: Any = None,
    *,
    title: str | None = None,
    samples: int = 3,
    top: int = 10,
    seed: int = 0,
    timings: bool = False,
) -> Path:
    """Write an HTML report of ``dataset`` to ``path`` and return the path.

    Args:
        dataset: the data, with its ``removed`` log and ``history``.
        path: where to write the HTML file (written atomically).
        tokenizer: a Hugging Face tokenizer or a callable ``str -> tokens``; adds token
            lengths (tokenizing is the slowest part of a report).
        title: heading of the page (default: ``"instructkit report"``).
        samples: sample records shown per source.
        top: duplicate clusters shown (the biggest first).
        seed: seed of the sample draw. The same inputs give the same file, byte for byte.
        timings: add each step's seconds to the step table. Off by default: times differ
            from run to run, and the report is then no longer byte-reproducible.

    Example:
        >>> import tempfile, instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "List three colours.", "output": "red"}])
        >>> "List three colours." in ik.report(ds, tempfile.mkdtemp() + "/r.html").read_text()
        True
    """
    from instructkit.dataset import Dataset

    if not isinstance(dataset, Dataset):
        raise TypeError(f"report() needs an instructkit Dataset, got {type(dataset).__name__}")
    page = render(dataset, tokenizer=tokenizer, title=title, samples=samples, top=top, seed=seed,
                  timings=timings)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def render(
    dataset: Dataset,
    tokenizer: Any = None,
    *,
    title: str | None = None,
    samples: int = 3,
    top: int = 10,
    seed: int = 0,
    timings: bool = False,
) -> str:
    """The report as an HTML string (what :func:`report` writes).

    Example:
        >>> import instructkit as ik
        >>> "<svg" in render(ik.Dataset.from_records([{"instruction": "Sort a list.", "output": "ok"}]))
        True
    """
    title = title or "instructkit report"
    frame = dataset.to_polars()
    lengths = length_frame(frame, tokenizer=tokenizer)
    table = summarize(lengths, by_source=True)
    parts = [
        ("overview", "Overview", _overview(dataset, lengths)),
        ("waterfall", "Removal waterfall", _waterfall(dataset, timings)),
        ("sources", "Sources", _sources(dataset)),
        ("lengths", "Lengths", _lengths(lengths, table)),
        ("languages", "Languages", _languages(dataset)),
        ("duplicates", "Duplicates", _duplicates(dataset, top)),
        ("pii", "PII", _pii(dataset)),
        ("contamination", "Contamination", _contamination(dataset)),
        ("verbs", "Verbs", _verbs(frame)),
        ("removed", "Removal reasons", _reasons(dataset)),
        ("samples", "Samples", _samples(dataset, samples, seed)),
    ]
    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name, _ in parts)
    body = "".join(
        f'<section id="{key}"><h2>{escape(name)}</h2>{html}</section>' for key, name, html in parts
    )
    n_sources = frame["source"].n_unique()
    subtitle = (
        f"{svg.fmt(len(dataset))} records · {n_sources} source{'s' * (n_sources != 1)} · "
        f"{svg.fmt(dataset.removed.height)} removed"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style><script>{_HEAD_JS}</script></head>"
        f"<body><header><h1>{escape(title)}</h1><p class=\"sub\">{subtitle}</p>"
        f"<nav>{nav}</nav></header><main>{body}</main>"
        "<footer>Generated by instructkit. Self-contained: no network needed.</footer>"
        f"<script>{_TAIL_JS}</script></body></html>\n"
    )


# sections ---------------------------------------------------------------------------------------
def _overview(dataset: Dataset, lengths: pl.DataFrame) -> str:
    wf = sections.waterfall(dataset)
    frame = dataset.to_polars()
    conversations = int(frame["messages"].is_not_null().sum())
    cards = [
        ("records in", svg.fmt(wf.records_in)),
        ("records out", svg.fmt(len(dataset))),
        ("removed", svg.fmt(dataset.removed.height)),
        ("sources", svg.fmt(frame["source"].n_unique())),
        ("multi-turn", svg.fmt(conversations)),
        ("steps run", svg.fmt(len(dataset.history))),
    ]
    if "lang" in frame.columns:
        cards.append(("languages", svg.fmt(frame["lang"].n_unique())))
    for unit in UNITS:
        if unit in lengths.columns:
            total = lengths[unit].sum()
            cards.append((f"{unit} (all fields)", svg.fmt(int(total or 0))))
    html = '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>'
        for k, v in cards
    ) + "</div>"
    extra = [c for c in frame.columns if c not in ("id", "source", "instruction", "input", "output",
                                                    "system", "messages", "meta")]
    if extra:
        html += f'<p class="note">Columns added by steps: {escape(", ".join(extra))}.</p>'
    return html


def _waterfall(dataset: Dataset, timings: bool) -> str:
    wf = sections.waterfall(dataset)
    if not wf.steps:
        return _note("Nothing was removed. Run steps (quality, dedup, decontamination, ...) to see "
                     "what each removes.")
    steps = [(f"{step} · {reason}", n) for step, reason, n in wf.steps]
    chart = svg.waterfall(("records in", wf.records_in), steps, ("records out", wf.records_out))
    history = dataset.report()
    if not timings:
        history = history.drop("seconds")
    table = _table(history) if history.height else ""
    return f'<div class="wide">{chart}</div>{table}'


def _sources(dataset: Dataset) -> str:
    counts = sections.source_counts(dataset)
    if counts.height == 0:
        return _note("No records.")
    shown = counts.head(30)
    chart = svg.bar_chart(
        shown["source"].to_list(), shown["records"].to_list(), title="records per source",
        notes=[f"({s:.1%})" for s in shown["share"].to_list()], width=580,
    )
    more = f'<p class="note">{counts.height - 30} smaller sources not drawn.</p>' if counts.height > 30 else ""
    table = counts.with_columns(pl.col("share").map_elements(lambda s: f"{s:.1%}", return_dtype=pl.String))
    mix = _mix_table(dataset)
    return f'<div class="row"><div>{chart}{more}</div><div>{_table(table)}</div></div>{mix}'


def _mix_table(dataset: Dataset) -> str:
    for entry in reversed(dataset.history):
        if entry.get("step") == "mix" and entry.get("mix"):
            frame = pl.DataFrame(entry["mix"])
            return "<h3>Mixture</h3>" + _table(frame.with_columns(
                pl.col("weight").round(4), pl.col("share").round(4)))
    return ""


def _lengths(lengths: pl.DataFrame, table: pl.DataFrame) -> str:
    units = [u for u in UNITS if u in lengths.columns]
    blocks = []
    for field in lengths["field"].unique(maintain_order=True).to_list():
        part = lengths.filter(pl.col("field") == field)
        charts = []
        for unit in units:
            h = sections.histogram_data(part[unit])
            if h is None:
                continue
            charts.append(svg.histogram(
                h["edges"], h["counts"], overflow=h["overflow"],
                title=f"{field}: {unit} (median {svg.fmt(round(h['median']))}, max {svg.fmt(h['max'])})",
                xlabel=unit,
            ))
        if charts:
            blocks.append(f'<div class="hists">{"".join(charts)}</div>')
    if not blocks:
        return _note("All text fields are empty.")
    overall = table.filter(pl.col("source") == "(all)").drop("source")
    cols = ["field", "records", "empty"] + [
        f"{u}_{s}" for u in units for s in ("mean", "p50", "p90", "p99", "max")
    ]
    per_source = table.filter(pl.col("source") != "(all)").select(["source", *cols])
    details = (
        f"<details><summary>Per source ({per_source['source'].n_unique()} sources)</summary>"
        f"{_table(per_source, max_rows=300)}</details>"
    )
    note = ('<p class="note">Empty fields are left out of the lengths. A word is a run of '
            "non-space characters; a conversation counts all its turns. Bars past the 99th "
            "percentile are gathered in the grey bar.</p>")
    return "".join(blocks) + note + _table(overall.select(cols)) + details


def _languages(dataset: Dataset) -> str:
    langs = sections.languages(dataset)
    if langs is None:
        return _note("No lang column: run ik.langid() to see the language distribution.")
    chart = svg.bar_chart(
        langs["lang"].to_list(), langs["records"].to_list(), title="records per language",
        notes=[f"({s:.1%})" for s in langs["share"].to_list()], width=620,
    )
    return chart


def _duplicates(dataset: Dataset, top: int) -> str:
    dup = sections.duplicate_clusters(dataset, top=top)
    if dup["by_reason"].height == 0:
        return _note("No duplicates in the removed log: run ik.dedup.exact() or "
                     "ik.dedup.minhash() to find them.")
    html = svg.bar_chart(dup["by_reason"]["reason"].to_list(), dup["by_reason"]["removed"].to_list(),
                         title="duplicates removed", color=svg.RED, width=620)
    if dup["unlinked"]:
        html += _note(f"{svg.fmt(dup['unlinked'])} removed duplicates name no kept record in their "
                      "detail, so they are not in the clusters below.")
    if dup["clusters"]:
        rows = []
        for c in dup["clusters"]:
            examples = "".join(f"<li><pre>{escape(_short(e))}</pre></li>" for e in c["examples"])
            kept = escape(_short(c["kept_text"])) if c["kept_text"] is not None else "<i>not found</i>"
            rows.append(
                f"<tr><td class=\"num\">{c['size']}</td><td><code>{escape(c['kept_id'])}</code><br>"
                f"<span class=\"muted\">{escape(', '.join(c['reasons']))}</span></td>"
                f"<td><pre>{kept}</pre></td><td><ul class=\"ex\">{examples}</ul></td></tr>"
            )
        html += (
            f"<h3>Top {len(dup['clusters'])} clusters</h3><table class=\"clusters\"><thead><tr>"
            "<th>size</th><th>kept id</th><th>kept record</th><th>removed copies (examples)</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return html


def _pii(dataset: Dataset) -> str:
    counts = sections.pii_counts(dataset)
    reasons = dataset.removed.filter(pl.col("step").str.starts_with("pii")).group_by("reason").len()
    if counts is None and reasons.height == 0:
        return _note("No pii_counts column: run ik.pii.scrub() (or detect) to count personal data.")
    html = ""
    if counts is not None:
        if counts.height == 0 or counts["found"].sum() == 0:
            html += _note("No personal data found.")
        else:
            html += svg.bar_chart(counts["type"].to_list(), counts["found"].to_list(),
                                  title="PII found by type", width=620,
                                  notes=[f"in {svg.fmt(r)} records" for r in counts["records"].to_list()])
    if reasons.height:
        html += "<h3>Removed by the PII step</h3>" + _table(reasons.rename({"len": "removed"}))
    return html


def _contamination(dataset: Dataset) -> str:
    con = sections.contamination(dataset)
    table = con["by_benchmark"]
    if table.height == 0:
        return _note("No contamination in the removed log: run ik.decontaminate(...) against "
                     "your evaluation sets.")
    html = svg.bar_chart(
        table["benchmark"].to_list(), (table["removed"] + table["flagged"]).to_list(),
        title="contaminated records per benchmark", color=svg.RED, width=620,
        notes=[f"({i} items{f', {f} flagged' if f else ''})"
               for i, f in table.select("items", "flagged").iter_rows()],
    )
    for bench, rows in con["examples"].items():
        items = "".join(
            f"<li><code>{escape(str(r['id']))}</code> ~ item <code>{escape(str(r['item']))}</code>"
            f" ({_match_strength(r)})<pre>{escape(_short(r['text']))}</pre></li>"
            for r in rows
        )
        html += f"<details><summary>{escape(bench)}: examples</summary><ul class=\"ex\">{items}</ul></details>"
    return html


def _match_strength(row: dict[str, Any]) -> str:
    """How a contamination example matched: shared n-grams, or the cosine of a rephrase."""
    if row.get("cosine") is not None and not row.get("ngrams"):
        return f"rephrase, cosine {row['cosine']:.3f}"
    return f"{row['ngrams'] if row['ngrams'] is not None else '?'} n-grams"


def _verbs(frame: pl.DataFrame) -> str:
    instructions = frame["instruction"]
    if instructions.len() == 0:
        return _note("No records.")
    found = leading_verbs(instructions)
    kinds = found["kind"].value_counts().sort(["count", "kind"], descending=[True, False])
    table = verb_table(found, top=20, objects=4)
    if table.height == 0:
        return _note("No instruction starts with a verb.")
    verbs = table.select("verb", "count").unique(maintain_order=True)
    inner = list(verbs.iter_rows())
    outer = [
        [(o, n) for o, n in table.filter(pl.col("verb") == v).select("object", "object_count").iter_rows()
         if o is not None]
        for v, _ in inner
    ]
    sun = svg.sunburst(inner, outer)
    bars = svg.bar_chart([v for v, _ in inner], [n for _, n in inner], title="top leading verbs",
                         width=520)
    total = max(instructions.len(), 1)
    share = ", ".join(f"{k} {n / total:.1%}" for k, n in kinds.iter_rows())
    note = _note(
        f"Instructions by first word: {share}. Heuristic without a parser: the first word after "
        "fillers (please, can you, ...) and a leading 'Given …,' clause is the verb unless it is "
        "a question word or a closed-class word; the object is the next content word. Inner "
        "ring: the 20 commonest verbs; outer ring: their 4 commonest objects."
    )
    return f'<div class="row"><div>{sun}</div><div>{bars}</div></div>{note}'


def _reasons(dataset: Dataset) -> str:
    table = sections.removal_reasons(dataset)
    if table.height == 0:
        return _note("Nothing was removed.")
    return _table(table.with_columns(pl.col("example").str.slice(0, 120)), max_rows=200)


def _samples(dataset: Dataset, per_source: int, seed: int) -> str:
    picked = sections.samples(dataset, per_source=per_source, seed=seed)
    if not picked:
        return _note("No records.")
    out = []
    for source, rows in picked.items():
        cards = "".join(_record_card(r) for r in rows)
        out.append(f"<details open><summary>{escape(source)}</summary><div class=\"samples\">{cards}</div></details>")
    return "".join(out)


def _record_card(row: dict[str, Any]) -> str:
    head = f"<code>{escape(row['id'])}</code>"
    if row.get("lang"):
        head += f' <span class="tag">{escape(row["lang"])}</span>'
    fields = []
    if row.get("system"):
        fields.append(("system", row["system"]))
    if row.get("messages"):
        fields.extend((m["role"], m["content"] or "") for m in row["messages"])
    else:
        fields.extend((k, row[k]) for k in ("instruction", "input", "output") if row.get(k))
    if row.get("meta"):
        fields.append(("meta", _meta_preview(row["meta"])))
    body = "".join(
        f'<div class="f"><span class="k">{escape(k)}</span><pre>{escape(_short(v, 700))}</pre></div>'
        for k, v in fields
    )
    return f'<div class="rec">{head}{body}</div>'


# helpers ------------------------------------------------------------------------------------------
def _table(frame: pl.DataFrame, max_rows: int = 50) -> str:
    shown = frame.head(max_rows)
    head = "".join(f"<th>{escape(c)}</th>" for c in shown.columns)
    numeric = [dt.is_numeric() for dt in shown.dtypes]
    rows = []
    for row in shown.iter_rows():
        cells = []
        for value, is_num in zip(row, numeric, strict=True):
            text = "" if value is None else (svg.fmt(value) if is_num else str(value))
            cells.append(f'<td class="num">{escape(text)}</td>' if is_num else f"<td>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="note">{frame.height - max_rows} more rows not shown.</p>' if frame.height > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _short(text: str | None, n: int = 300) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _meta_preview(meta: str) -> str:
    try:
        return json.dumps(json.loads(meta), ensure_ascii=False)[:300]
    except json.JSONDecodeError:
        return meta[:300]


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9}
header{background:#1d2a44;color:#fff;padding:18px 32px 10px}
header h1{margin:0;font-size:22px}
.sub{margin:4px 0 10px;color:#c9d3e6}
nav{display:flex;flex-wrap:wrap;gap:4px 14px}
nav a{color:#9fc1ff;text-decoration:none;font-size:13px}
main{max-width:1240px;margin:0 auto;padding:8px 20px 30px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;margin:16px 0;padding:14px 18px;overflow-x:auto}
h2{margin:0 0 10px;font-size:18px}
h3{font-size:15px;margin:16px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#f3f6fb;border-radius:6px;padding:10px 12px}
.card .v{font-size:22px;font-weight:600}
.card .k{color:#5b6577;font-size:12px}
.row{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:18px;align-items:start}
.hists{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:8px;margin-bottom:6px}
.wide{overflow-x:auto}
svg.chart{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0;width:100%}
th,td{border-bottom:1px solid #e8eaee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table.clusters td:nth-child(3),table.clusters td:nth-child(4){width:38%}
table.clusters pre{max-height:7.3em;overflow:auto}
ul.ex{margin:0;padding-left:16px}
ul.ex li{margin-bottom:6px}
.note{color:#5b6577;font-size:12.5px}
.muted{color:#7a8496;font-size:11px}
details{margin:8px 0}
summary{cursor:pointer;font-weight:600}
.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:10px;margin-top:8px}
.rec{border:1px solid #e2e5ea;border-radius:6px;padding:8px 10px;background:#fbfcfd}
.rec .f{margin-top:6px}
.rec .k{display:inline-block;font-size:11px;color:#fff;background:#5f6b7a;border-radius:3px;padding:0 5px;margin-bottom:2px}
.tag{font-size:11px;background:#e3ecfb;color:#2a4f8f;border-radius:3px;padding:0 5px}
footer{text-align:center;color:#7a8496;font-size:12px;padding:16px}
@media (max-width:900px){.row,.hists{grid-template-columns:minmax(0,1fr)}}
@media print{header{background:none;color:#000}nav{display:none}section{break-inside:avoid}}
"""

# Records script errors on the page, so a headless browser (and a curious reader) can see them.
_HEAD_JS = (
    "window.addEventListener('error',function(e){var d=document.documentElement;"
    "d.dataset.jsErrors=(d.dataset.jsErrors?d.dataset.jsErrors+' | ':'')+e.message;});"
)
# Marks how many charts have a laid-out, non-empty drawing: "rendered/total".
_TAIL_JS = (
    "(function(){var c=document.querySelectorAll('svg.chart'),ok=0;"
    "c.forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0&&s.childElementCount>0)ok++;});"
    "document.documentElement.dataset.charts=ok+'/'+c.length;})();"
)
