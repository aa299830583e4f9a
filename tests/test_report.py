"""Tests for ds.stats(), the report sections, the SVG charts, ik.report and its CLI,
and a headless-Chromium check that the charts render without console errors."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from extras import unavailable

import instructkit as ik
from instructkit.reports import sections, svg
from instructkit.reports.cli import add_parser
from instructkit.reports.html import render
from instructkit.reports.stats import ALL, length_frame, stats, token_counts
from instructkit.reports.verbs import leading_verbs, verb_table
from instructkit.transform import detail

RECORDS = [
    {"instruction": "Write a short poem about the sea.", "output": "Waves roll in, waves roll out."},
    {"instruction": "Please list three prime numbers.", "output": "2, 3 and 5."},
    {"instruction": "What is the capital of France?", "output": "Paris."},
    {"instruction": "Translate 'hello' into French.", "input": "hello", "output": "bonjour"},
    {"instruction": "Write a story about a dragon.", "output": "Once upon a time a dragon slept."},
    {"instruction": "Given a list of numbers, sort it.", "input": "3 1 2", "output": "1 2 3"},
    {"instruction": "Explain <script>alert(1)</script> tags.", "output": "They run code."},
    {"instruction": "Summarize the text.", "input": "Long text here.", "output": ""},
]
CHAT = [
    {"conversations": [{"from": "human", "value": "Hi there, how are you?"},
                       {"from": "gpt", "value": "Fine, thanks."},
                       {"from": "human", "value": "Tell me a joke."},
                       {"from": "gpt", "value": "Why did the chicken cross the road?"}]},
]


def rich_dataset() -> ik.Dataset:
    """A dataset with everything the report reads: history, removals of each kind, ``lang``
    and ``pii_counts`` columns, two sources (one multi-turn) and a mix with repeats."""
    alpaca = ik.Dataset.from_records(RECORDS, source="alpaca")
    chat = ik.Dataset.from_records(CHAT, source="chat")
    ds = ik.concat([alpaca, chat]).pipe(ik.quality())  # drops the empty output
    ds = ik.mix(ds, total=len(ds) + 2, seed=0)  # the chat record is repeated
    frame = ds.to_polars()
    # a duplicate (JSON detail as ik.dedup writes it) and a contaminated record
    dup = frame.filter(pl.col("id") == "alpaca:4")
    con = frame.filter(pl.col("id") == "alpaca:2")
    removed = pl.concat([
        ds.removed,
        dup.select("id", pl.lit("dedup.minhash").alias("step"), pl.lit("near_duplicate").alias("reason"),
                   pl.lit('{"kept": "alpaca:0", "cluster": 0, "jaccard": 0.81}').alias("detail"),
                   "source", "instruction", "input", "output"),
        con.select("id", pl.lit("decontaminate").alias("step"), pl.lit("contamination").alias("reason"),
                   pl.lit(detail(benchmark="mmlu", item="geo/12", ngrams=9)).alias("detail"),
                   "source", "instruction", "input", "output"),
    ])
    history = [*ds.history,
               {"step": "dedup.minhash", "kind": "global", "params": "", "records_in": 9,
                "records_out": 8, "removed": 1, "by_reason": {"near_duplicate": 1}, "seconds": 0.0},
               {"step": "decontaminate", "kind": "global", "params": "", "records_in": 8,
                "records_out": 7, "removed": 1, "by_reason": {"contamination": 1}, "seconds": 0.0}]
    frame = frame.filter(~pl.col("id").is_in(["alpaca:4", "alpaca:2"])).with_columns(
        pl.when(pl.col("source") == "chat").then(pl.lit("en")).otherwise(pl.lit("en")).alias("lang"),
        pl.struct(EMAIL_ADDRESS=pl.lit(1, pl.Int64), PHONE_NUMBER=pl.lit(0, pl.Int64)).alias("pii_counts"),
    )
    return ik.Dataset(frame, removed, history)


# stats --------------------------------------------------------------------------------------
def test_stats_counts_and_lengths():
    ds = ik.Dataset.from_records(
        [{"instruction": "one two three", "output": "ab"},
         {"instruction": "four", "input": "x y", "output": "abcd"}], source="s")
    table = ds.stats()
    assert table["source"].to_list()[:5] == [ALL] * 5
    row = table.filter(source=ALL, field="instruction").row(0, named=True)
    assert (row["records"], row["empty"], row["words_total"], row["words_max"]) == (2, 0, 4, 3)
    assert (row["chars_max"], row["chars_mean"]) == (13, 8.5)
    inp = table.filter(source=ALL, field="input").row(0, named=True)
    assert (inp["records"], inp["empty"], inp["chars_mean"]) == (1, 1, 3.0)
    assert table.filter(source="s", field="output")["chars_total"][0] == 6


def test_stats_per_source_and_messages():
    ds = ik.concat([ik.Dataset.from_records(RECORDS, source="a"), ik.Dataset.from_records(CHAT, source="c")])
    table = stats(ds)
    assert set(table["source"]) == {ALL, "a", "c"}
    conv = table.filter(source="c", field="messages").row(0, named=True)
    # four turns measured together
    assert conv["records"] == 1 and conv["words_total"] == 5 + 2 + 4 + 7
    assert table.filter(source="a", field="messages")["records"][0] == 0


def test_stats_tokens_with_a_callable_and_errors():
    ds = ik.Dataset.from_records([{"instruction": "a b c", "output": "d"}])
    table = stats(ds, tokenizer=str.split)
    assert table.filter(field="instruction")["tokens_total"][0] == 3
    assert token_counts(["x y", None, "z"], str.split) == [2, None, 1]
    with pytest.raises(TypeError, match="tokenizer must be"):
        stats(ds, tokenizer=42)
    with pytest.raises(ValueError, match="unknown field"):
        stats(ds, fields=["nope"])


def test_stats_with_a_hf_tokenizer_interface():
    class FakeHF:  # the interface stats() uses: batch call, add_special_tokens, input_ids
        def batch_encode_plus(self):
            raise AssertionError

        def __call__(self, batch, add_special_tokens=True):
            assert add_special_tokens is False
            return {"input_ids": [list(t) for t in batch]}

    lf = length_frame(pl.DataFrame({"source": ["s", "s"], "output": ["abc", ""]}),
                      fields=["output"], tokenizer=FakeHF())
    assert lf["tokens"].to_list() == [3, None]


# sections -----------------------------------------------------------------------------------
def test_waterfall_balances():
    ds = rich_dataset()
    wf = sections.waterfall(ds)
    assert wf.records_in == len(RECORDS) + len(CHAT)
    assert wf.records_in + sum(n for _, _, n in wf.steps) == wf.records_out == len(ds)
    labels = [(s, r) for s, r, _ in wf.steps]
    assert labels == [("quality", "empty_output"), ("mix", "repeats"),
                      ("dedup.minhash", "near_duplicate"), ("decontaminate", "contamination")]


def test_duplicate_clusters_read_the_detail_convention():
    ds = rich_dataset()
    dup = sections.duplicate_clusters(ds)
    (cluster,) = dup["clusters"]
    assert cluster["kept_id"] == "alpaca:0" and cluster["size"] == 2
    assert cluster["kept_text"].startswith("Write a short poem")
    assert "dragon" in cluster["examples"][0]
    removed = ds.removed.with_columns(
        pl.when(pl.col("reason") == "near_duplicate").then(pl.lit(detail(kept="alpaca:1")))
        .otherwise(pl.col("detail")).alias("detail"))
    again = sections.duplicate_clusters(ik.Dataset(ds.to_polars(), removed))
    assert again["clusters"][0]["kept_id"] == "alpaca:1"
    # a detail outside the convention (free text) names no kept record: counted, not parsed
    for text in ("duplicate of alpaca:1", "no id here"):
        removed = removed.with_columns(
            pl.when(pl.col("reason") == "near_duplicate").then(pl.lit(text))
            .otherwise(pl.col("detail")).alias("detail"))
        assert sections.duplicate_clusters(ik.Dataset(ds.to_polars(), removed))["unlinked"] == 1


@pytest.mark.parametrize(
    "column",
    [
        pl.Series([{"EMAIL": 2, "PHONE": 0}, {"EMAIL": 1, "PHONE": 1}]),
        pl.Series([[{"type": "EMAIL", "count": 2}], [{"type": "EMAIL", "count": 1},
                                                      {"type": "PHONE", "count": 1}]]),
        pl.Series(['{"EMAIL": 2}', '{"EMAIL": 1, "PHONE": 1}']),
    ],
)
def test_pii_counts_in_any_layout(column):
    ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "b"}])
    table = sections.pii_counts(ds.with_columns(pii_counts=column))
    assert table.rows() == [("EMAIL", 3, 2), ("PHONE", 1, 1)]


def test_pii_counts_absent_or_integer():
    ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "b"}])
    assert sections.pii_counts(ds) is None
    assert sections.pii_counts(ds.with_columns(pii_counts=pl.Series([0, 4]))).rows() == [("(all)", 4, 1)]


def test_contamination_by_benchmark():
    con = sections.contamination(rich_dataset())
    assert con["by_benchmark"].rows() == [("mmlu", 1, 0, 1)]
    (example,) = con["examples"]["mmlu"]
    assert (example["item"], example["ngrams"]) == ("geo/12", 9)


def test_languages_merge_the_tail():
    ds = ik.Dataset.from_records([{"instruction": str(i)} for i in range(6)])
    ds = ds.with_columns(lang=pl.Series(["en", "en", "en", "fr", "de", "es"]))
    langs = sections.languages(ds, top=3)
    assert langs["lang"].to_list() == ["en", "de", "other (2)"]
    assert langs["records"].to_list() == [3, 1, 2]
    assert sections.languages(ik.Dataset.from_records([{"instruction": "a"}])) is None


def test_samples_are_per_source_and_deterministic():
    ds = ik.concat([ik.Dataset.from_records(RECORDS, source="a"), ik.Dataset.from_records(CHAT, source="c")])
    one = sections.samples(ds, per_source=2, seed=1)
    assert [len(v) for v in one.values()] == [2, 1]
    assert one == sections.samples(ds, per_source=2, seed=1)


def test_histogram_data_bins_and_overflow():
    h = sections.histogram_data(pl.Series(list(range(1, 101)) + [10_000]))
    assert sum(h["counts"]) + h["overflow"] == 101
    assert h["overflow"] >= 1 and h["edges"][-1] >= 100
    assert sections.histogram_data(pl.Series([None], dtype=pl.Int64)) is None


# verbs --------------------------------------------------------------------------------------
def test_leading_verbs_heuristic():
    out = leading_verbs(pl.Series([
        "Write a short poem about cats.",
        "Please, could you list 5 fruits?",
        "Given a list of numbers, sort it in ascending order.",
        "What is the boiling point of water?",
        "The cat sat on the mat.",
        "用中文回答",
        "   ",
        "Role-play a pirate captain.",
    ])).rows()
    assert out == [
        ("write", "poem", "verb"), ("list", "fruits", "verb"), ("sort", None, "verb"),
        (None, None, "question"), (None, None, "other"), (None, None, "other"),
        (None, None, "empty"), ("role-play", "pirate", "verb"),
    ]


def test_verb_table_orders_verbs_and_objects():
    s = pl.Series(["Write a poem.", "Write a story.", "Write a poem.", "Sort the list.", "Name a city."])
    table = verb_table(s, top=2, objects=1)
    assert table.rows() == [("write", 3, "poem", 2), ("name", 1, "city", 1)]


# charts -------------------------------------------------------------------------------------
def test_charts_are_well_formed_svg():
    charts = [
        svg.bar_chart(["a & b", "<c>"], [3, 0], title="t"),
        svg.histogram([0, 1, 2, 3], [1, 5, 2], overflow=4, xlabel="chars", title="h"),
        svg.waterfall(("in", 10), [("q · x", -3), ("mix · repeats", 2)], ("out", 9)),
        svg.sunburst([("write", 5), ("list", 1)], [[("poem", 3), ("story", 2)], [("cats", 1)]]),
    ]
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.tag.endswith("svg") and root.get("class") == "chart"
    assert "a &amp; b" in charts[0] and "&lt;c&gt;" in charts[0]
    assert "−3 (30.0%)" in charts[2] and "+2 (20.0%)" in charts[2]


# report -------------------------------------------------------------------------------------
def test_report_has_every_section_and_is_self_contained(tmp_path):
    ds = rich_dataset()
    path = ik.report(ds, tmp_path / "sub" / "report.html", title="My data", samples=10)
    page = path.read_text(encoding="utf-8")
    for section in ("overview", "waterfall", "sources", "lengths", "languages", "duplicates",
                    "pii", "contamination", "verbs", "removed", "samples"):
        assert f'<section id="{section}">' in page
    assert "<title>My data</title>" in page
    assert "alert(1)" in page and "<script>alert(1)</script>" not in page  # escaped
    # nothing is fetched: no external scripts, styles, images, fonts or imports
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page and "<link" not in page
    assert page.count('<svg class="chart"') >= 8
    assert "near_duplicate" in page and "mmlu" in page and "EMAIL_ADDRESS" in page
    assert ">+2 (22.2%)<" in page  # the mix's repeats in the waterfall
    assert "<h3>Mixture</h3>" in page


def test_report_is_deterministic_and_handles_an_empty_dataset(tmp_path):
    ds = rich_dataset()
    assert render(ds) == render(ds)
    empty = render(ik.Dataset())
    assert "No records." in empty and "Nothing was removed." in empty
    bare = render(ik.Dataset.from_records([{"instruction": "Hi"}]))
    assert "run ik.langid()" in bare and "run ik.dedup.exact()" in bare
    with pytest.raises(TypeError, match="needs an instructkit Dataset"):
        ik.report(pl.DataFrame(), tmp_path / "x.html")


def test_report_cli(tmp_path, capsys):
    from instructkit.pipeline import write_removed

    ds = ik.Dataset.from_records(RECORDS, source="demo").pipe(ik.quality())
    ds.write(tmp_path / "clean.jsonl")
    write_removed(ds.removed, tmp_path / "removed.jsonl")
    parser = argparse.ArgumentParser(prog="instructkit")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", str(tmp_path / "clean.jsonl"), "--removed",
                              str(tmp_path / "removed.jsonl"), "-o", str(tmp_path / "r.html")])
    assert args.func(args) == 0
    assert "wrote" in capsys.readouterr().out
    page = (tmp_path / "r.html").read_text()
    assert "empty_output" in page
    args = parser.parse_args(["report", str(tmp_path / "clean.jsonl"), "--removed",
                              str(tmp_path / "missing.jsonl")])
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        args.func(args)


def test_report_on_real_data(shared_data, tmp_path):
    ds = ik.read([shared_data / "instructions" / "alpaca_en_demo.json",
                  shared_data / "instructions" / "code_alpaca_2k.json"]).pipe(ik.quality())
    page = ik.report(ds, tmp_path / "r.html").read_text()
    assert "alpaca_en_demo" in page and "code_alpaca_2k" in page
    table = verb_table(ds.to_polars()["instruction"], top=5)
    assert {"write", "create", "generate"} & set(table["verb"])


# browser ------------------------------------------------------------------------------------
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-extensions",
    "--disable-sync", "--metrics-recording-only", "--mute-audio",
)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        unavailable("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return exe


def run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"chromium cannot run here: {e}")


def test_charts_render_in_headless_chromium(tmp_path):
    exe = chromium()
    path = ik.report(rich_dataset(), tmp_path / "report.html")
    done = run_chromium(exe, tmp_path / "profile", "--enable-logging=stderr", "--v=0",
                        "--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    if done.returncode != 0 or "<html" not in done.stdout:
        unavailable(f"chromium cannot run here (exit {done.returncode}): {done.stderr[-400:]}")
    head = done.stdout[: done.stdout.index(">", done.stdout.index("<html")) + 1]
    charts = re.search(r'data-charts="(\d+)/(\d+)"', head)
    assert charts, f"the page script did not run: {head}"
    rendered, total = map(int, charts.groups())
    assert total >= 8 and rendered == total, f"only {rendered} of {total} charts have a drawing"
    assert "data-js-errors" not in head
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], f"console messages: {console}"


def test_contamination_flagged_in_a_column():
    ds = ik.Dataset.from_records([{"instruction": "a"}, {"instruction": "b"}]).with_columns(
        contamination=pl.Series([None, detail(benchmark="gsm8k", item="3", ngrams=20)]))
    assert sections.contamination(ds)["by_benchmark"].rows() == [("gsm8k", 0, 1, 1)]


def test_leading_verbs_skips_subjects_and_labels():
    out = leading_verbs(pl.Series(["John has 5 apples. How many?", "Mary earned $3.",
                                   "Toolformer: enabled", "Mr Smith buys bread."]))
    assert out["kind"].to_list() == ["other", "other", "other", "other"]
