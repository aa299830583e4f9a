"""Writers and conversion: round trips, lossless alpaca <-> chat, turns, atomicity."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

import instructkit as ik
from instructkit.io import write as write_mod
from instructkit.io.convert import ConversionError, to_alpaca, to_sharegpt
from instructkit.io.write import write

SINGLE = [
    {"id": "s1", "instruction": "Sum.", "input": "2 3", "output": "5", "category": "math", "tags": ["a", 1]},
    {"id": "s2", "instruction": "Hi", "input": "", "output": "Yo", "system": "Be nice.", "category": "chat", "tags": []},
    {"id": "s3", "instruction": "Ünïcode ✓", "input": "", "output": "", "category": "misc", "tags": None},
]
CONV = [
    {"id": "c1", "system": "S", "tag": 1, "conversations": [
        {"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
        {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]},
    {"id": "c2", "tag": 2, "conversations": [
        {"from": "human", "value": "q"}, {"from": "observation", "value": "tool says"},
        {"from": "gpt", "value": "r"}]},
]
EXTS = ["json", "jsonl", "jsonl.gz", "json.gz"]


@pytest.fixture
def single():
    return ik.Dataset.from_records(SINGLE, source="al")


@pytest.fixture
def conv():
    return ik.Dataset.from_records(CONV, source="cv")


@pytest.mark.parametrize("ext", EXTS)
def test_alpaca_read_write_read_identical(tmp_path, single, ext):
    path = single.write(tmp_path / f"out.{ext}", format="alpaca")
    assert list(ik.read(path)) == list(single)
    again = ik.read(path).write(tmp_path / f"again.{ext}")
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("fmt", ["sharegpt", "messages"])
@pytest.mark.parametrize("ext", EXTS)
def test_chat_read_write_read_identical(tmp_path, conv, fmt, ext):
    path = conv.write(tmp_path / f"out.{ext}", format=fmt)
    assert list(ik.read(path)) == list(conv)


def test_parquet_round_trip(tmp_path, conv):
    path = conv.write(tmp_path / "out.parquet", format="messages")
    assert list(ik.read(path)) == list(conv)
    # alpaca rows with the same meta keys in every row come back identical too
    same_keys = ik.Dataset.from_records([{k: v for k, v in r.items() if k != "tags"} for r in SINGLE[:2]])
    path = same_keys.write(tmp_path / "a.parquet")
    assert list(ik.read(path)) == list(same_keys)


@pytest.mark.parametrize("via", ["sharegpt", "messages"])
def test_alpaca_to_chat_and_back_is_lossless(tmp_path, single, via):
    chat = single.write(tmp_path / "chat.jsonl", format=via)
    rows = [json.loads(line) for line in chat.read_text().splitlines()]
    first_user = rows[0]["conversations"][0]["value"] if via == "sharegpt" else rows[0]["messages"][0]["content"]
    assert first_user == "Sum.\n\n2 3"  # one user turn: instruction, blank line, input
    assert rows[0]["input"] == "2 3"  # kept so the merge can be undone
    back = ik.read(chat).write(tmp_path / "back.jsonl", format="alpaca")
    assert list(ik.read(back)) == list(single)


def test_sharegpt_messages_sharegpt_is_lossless(tmp_path, conv):
    m = conv.write(tmp_path / "m.jsonl", format="messages")
    s = ik.read(m).write(tmp_path / "s.jsonl", format="sharegpt")
    assert list(ik.read(s)) == list(conv)
    row = json.loads(s.read_text().splitlines()[1])
    assert [t["from"] for t in row["conversations"]] == ["human", "observation", "gpt"]


def test_multi_turn_to_alpaca_writes_history_or_the_turns_asked_for(tmp_path, conv):
    two = ik.Dataset.from_polars(conv.to_polars().head(1))
    # issue 17.4: a conversation is one alpaca row in LLaMA-Factory's layout (it used to need turns=)
    row = json.loads(two.write(tmp_path / "h.jsonl", format="alpaca").read_text())
    assert row == {"id": "c1", "source": "cv", "instruction": "c", "input": "", "output": "d",
                   "system": "S", "history": [["a", "b"]], "tag": 1}
    first = [json.loads(x) for x in two.write(tmp_path / "f.jsonl", turns="first").read_text().splitlines()]
    assert first == [{"id": "c1", "source": "cv", "instruction": "a", "input": "", "output": "b", "system": "S", "tag": 1}]
    last = json.loads(two.write(tmp_path / "l.jsonl", turns="last").read_text())
    assert (last["instruction"], last["output"]) == ("c", "d")
    split = [json.loads(x) for x in two.write(tmp_path / "s.jsonl", turns="split").read_text().splitlines()]
    assert [(r["id"], r["instruction"], r["output"]) for r in split] == [("c1:0", "a", "b"), ("c1:1", "c", "d")]
    with pytest.raises(ConversionError, match="'observation'|'tool'"):
        ik.Dataset.from_polars(conv.to_polars().tail(1)).write(tmp_path / "t.jsonl", turns="split")
    with pytest.raises(ConversionError, match="'tool'"):
        ik.Dataset.from_polars(conv.to_polars().tail(1)).write(tmp_path / "t.jsonl")
    assert not (tmp_path / "t.jsonl").exists()


def test_text_format(tmp_path, single):
    path = single.write(tmp_path / "t.jsonl", format="text", template="llama2")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows[1] == {"id": "s2", "text": "<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Yo </s>"}
    assert list(rows[0]) == ["id", "text"]
    with pytest.raises(ValueError, match="template="):
        single.write(tmp_path / "t2.jsonl", format="text")


def test_ids_false_and_json_array_layout(tmp_path, single):
    path = single.write(tmp_path / "o.json", ids=False)
    data = json.loads(path.read_text())
    assert data[0] == {"instruction": "Sum.", "input": "2 3", "output": "5", "category": "math", "tags": ["a", 1]}
    assert json.loads(single.head(0).write(tmp_path / "empty.json").read_text()) == []


def test_gzip_output_is_deterministic(tmp_path, single):
    a = single.write(tmp_path / "a.jsonl.gz").read_bytes()
    b = single.write(tmp_path / "b.jsonl.gz").read_bytes()
    assert a == b
    assert gzip.decompress(a).decode().count("\n") == 3


def test_crash_leaves_previous_file_and_no_temp(tmp_path, single, monkeypatch):
    path = tmp_path / "out.jsonl"
    path.write_text("previous\n")
    calls = {"n": 0}
    real = write_mod.orjson.dumps

    def flaky(obj, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(obj, *a, **k)

    monkeypatch.setattr(write_mod.orjson, "dumps", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(single, path)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_bad_arguments(tmp_path, single):
    with pytest.raises(ValueError, match="extension"):
        single.write(tmp_path / "out.txt")
    with pytest.raises(ValueError, match="unknown output format"):
        single.write(tmp_path / "out.jsonl", format="csv")
    clash = ik.Dataset.from_records([{"conversations": [{"from": "human", "value": "a"}], "instruction": "x"}])
    with pytest.raises(ConversionError, match="'instruction'.*clashes"):
        clash.write(tmp_path / "c.jsonl", format="alpaca")


def test_row_converters_directly():
    rec = {"id": "a", "source": "s", "instruction": "Do.", "input": "", "output": "Done.",
           "system": None, "messages": None, "meta": {}}
    assert to_sharegpt(rec, ids=False) == {"conversations": [{"from": "human", "value": "Do."}, {"from": "gpt", "value": "Done."}]}
    assert to_alpaca(rec, ids=False) == [{"instruction": "Do.", "input": "", "output": "Done."}]


def test_added_columns_are_written(tmp_path, single):
    import polars as pl

    tagged = single.with_columns(pl.lit("en").alias("lang"), pl.lit(1).alias("_ik_internal"))
    row = json.loads(tagged.write(tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert row["lang"] == "en" and "_ik_internal" not in row


# column-wise alpaca writer == row-by-row writer, byte for byte ------------------------------

def _row_path(monkeypatch):
    monkeypatch.setattr(write_mod, "_write_alpaca_columns", lambda *a, **k: None)


def _varied():
    import polars as pl

    records = [
        *SINGLE,
        {"id": 5, "instruction": "Ünïcode ✓ 😀 \u2028", "input": "\x00\x1f\\\"", "output": "é\n\t", "n": 1.5},
        {"instruction": "no meta", "output": "x", "system": "sys\n"},
        {"instruction": "nested", "info": {"b": 2, "a": [1.5, None]}, "flag": True, "z": None},
    ]
    ds = ik.Dataset.from_records(records, source="v")
    return ds.with_columns(
        pl.Series("lang", ["en", None, "fr", "de", "es", None]),
        pl.Series("score", [0.5, 1.0, None, 1e-7, 3.25, 2.0]),
        pl.Series("count", [1, 2, None, 4, 5, 6], dtype=pl.Int32),
        pl.Series("ok", [True, False, None, True, True, False]),
        pl.Series("words", [["a"], [], None, ["b", "c"], ["d"], ["e"]]),
    )


@pytest.mark.parametrize("ext", [*EXTS, "parquet"])
@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("data", ["single", "varied", "plain"])
def test_column_writer_equals_row_writer(tmp_path, monkeypatch, ext, ids, data):
    ds = {"single": ik.Dataset.from_records(SINGLE, source="al"), "varied": _varied(),
          "plain": ik.Dataset.from_records(
              [{"instruction": f"i{k}", "output": "o", **({"system": "s"} if k == 2 else {})} for k in range(4)],
              source="p")}[data]

    def outcome(name):  # the bytes written, or the error raised (the same in both paths)
        path = tmp_path / f"{name}.{ext}"
        try:
            return write(ds, path, ids=ids).read_bytes()
        except ValueError as e:
            return str(e).replace(str(path), "<path>")

    fast = outcome("fast")
    _row_path(monkeypatch)
    assert fast == outcome("rows")


def test_column_writer_runs_for_single_turn_and_hands_over_otherwise(tmp_path, conv):
    import polars as pl

    from instructkit.io.convert import alpaca_frame, alpaca_json_rows

    varied = _varied().to_polars()
    assert alpaca_json_rows(varied) is not None
    assert alpaca_frame(varied) is None  # meta and added columns: Parquet goes row by row
    assert alpaca_json_rows(conv.to_polars()) is None  # conversations need the converter
    clash = ik.Dataset.from_records([{"instruction": "a", "tag": "t"}]).with_columns(pl.lit("x").alias("tag"))
    assert alpaca_json_rows(clash.to_polars()) is None
    with pytest.raises(ConversionError, match="'tag'.*clashes"):
        clash.write(tmp_path / "c.jsonl")


def test_column_writer_crash_leaves_previous_file(tmp_path, single, monkeypatch):
    path = tmp_path / "out.jsonl"
    path.write_text("previous\n")

    def crash(f, lines, kind):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(write_mod, "_write_lines", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(single, path)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


@pytest.mark.parametrize("ext", EXTS)
def test_column_writer_in_slices_and_hand_over_midway(tmp_path, monkeypatch, conv, ext):
    monkeypatch.setattr(write_mod, "_SLICE", 2)
    ds = _varied()
    sliced = write(ds, tmp_path / f"sliced.{ext}").read_bytes()
    tool = ik.concat([ds, ik.Dataset.from_polars(conv.to_polars().tail(1))])
    with pytest.raises(ConversionError, match="'c2'.*'tool'"):
        write(tool, tmp_path / f"tool.{ext}")  # the tool conversation sits in the last slice
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"sliced.{ext}"]
    mixed = ik.concat([ds, ik.Dataset.from_polars(conv.to_polars().head(1))])
    history = write(mixed, tmp_path / f"history.{ext}").read_bytes()
    first = write(mixed, tmp_path / f"first.{ext}", turns="first").read_bytes()
    _row_path(monkeypatch)
    assert sliced == write(ds, tmp_path / f"rows.{ext}").read_bytes()
    assert history == write(mixed, tmp_path / f"rows_history.{ext}").read_bytes()
    assert first == write(mixed, tmp_path / f"rows_first.{ext}", turns="first").read_bytes()


# conversations in the input's own shape (issue 17.4) -------------------------------------------

def _history_record(**extra):
    """A record as the reader makes it of a LLaMA-Factory alpaca row with ``history``."""
    return {
        "id": "h1", "source": "lf", "instruction": "And in French?", "input": "cat", "output": "chat",
        "system": "You translate.", "meta": {"_format": "alpaca_history", "lang": "fr", **extra},
        "messages": [
            {"role": "user", "content": "Translate to German."}, {"role": "assistant", "content": "Which word?"},
            {"role": "user", "content": "And in French?\ncat"}, {"role": "assistant", "content": "chat"},
        ],
    }


def test_alpaca_history_is_written_in_llama_factory_layout():
    row, = to_alpaca(_history_record())
    # LLaMA-Factory joins instruction and input with one newline; the flat fields give them back
    assert row == {
        "id": "h1", "source": "lf", "instruction": "And in French?", "input": "cat", "output": "chat",
        "system": "You translate.", "history": [["Translate to German.", "Which word?"]], "lang": "fr",
    }
    assert list(row) == ["id", "source", "instruction", "input", "output", "system", "history", "lang"]
    # a history-shaped record with one exchange keeps its (empty) history; the shape mark is never written
    one = {**_history_record(), "messages": None}
    assert to_alpaca(one, ids=False) == [{"instruction": "And in French?", "input": "cat", "output": "chat",
                                          "system": "You translate.", "history": [], "lang": "fr"}]
    assert "_format" not in to_alpaca(one, meta=False, ids=False)[0]


def _reader_reads_history(tmp_path) -> bool:
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps([{"instruction": "b", "output": "c", "history": [["x", "y"]]}]))
    return ik.read(probe)[0]["messages"] is not None


LF_ALPACA = [
    {"instruction": "And in French?", "input": "cat", "output": "chat", "system": "You translate.",
     "history": [["Translate to German.", "Which word?"], ["The word cat.", "Katze"]], "lang": "fr"},
    {"instruction": "Sum.", "input": "2 3", "output": "5", "history": [], "lang": "en"},
    {"instruction": "Hi", "input": "", "output": "Yo", "history": [["Hello", "Hey"]], "lang": "en"},
]


@pytest.mark.parametrize("ext", EXTS)
def test_llama_factory_alpaca_history_round_trips(tmp_path, ext):
    if not _reader_reads_history(tmp_path):
        pytest.skip("the reader does not yet read LLaMA-Factory 'history' into messages (issue 17.4, reader side)")
    src = tmp_path / "lf.json"
    src.write_text(json.dumps(LF_ALPACA, ensure_ascii=False))
    ds = ik.read(src)
    assert ds[0]["messages"] is not None and len(ds[0]["messages"]) == 6
    out = ds.write(tmp_path / f"out.{ext}", ids=False)
    rows = json.loads(gzip.decompress(out.read_bytes()) if ext.endswith("gz") else out.read_bytes()) \
        if ext.startswith("json.") or ext == "json" else None
    if rows is not None:
        assert rows == LF_ALPACA  # the input's own shape, field for field
    back = ik.read(out, source="lf")
    assert list(back) == list(ds)


SHAREGPT_TOOLS = [
    {"id": "t1", "system": "You can call tools.", "tools": '[{"name": "weather", "parameters": {}}]',
     "conversations": [
         {"from": "human", "value": "Weather in Paris?"},
         {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
         {"from": "observation", "value": '{"temp": 21}'},
         {"from": "gpt", "value": "21 degrees."}]},
    {"id": "t2", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
]


@pytest.mark.parametrize("fmt", ["sharegpt", "messages"])
def test_sharegpt_tools_and_function_turns_are_written_back(tmp_path, fmt):
    ds = ik.Dataset.from_records(SHAREGPT_TOOLS, source="tools")
    assert ds[0]["meta"]["tools"] == SHAREGPT_TOOLS[0]["tools"]
    for meta in (True, False):
        path = ds.write(tmp_path / f"o{meta}.jsonl", format=fmt, meta=meta)
        row = json.loads(path.read_text().splitlines()[0])
        assert row["tools"] == SHAREGPT_TOOLS[0]["tools"]  # a field of the format: kept with meta=False too
        assert list(ik.read(path)) == list(ds)
    row = json.loads(ds.write(tmp_path / "s.jsonl", format="sharegpt").read_text().splitlines()[0])
    assert row == {"id": "t1", "source": "tools", **{k: v for k, v in SHAREGPT_TOOLS[0].items() if k != "id"}}


# read(write(ds, fmt)) for every writer format (issue 17.5) ----------------------------------------

def _mixed():
    flat = ik.Dataset.from_records([
        {"id": "m1", "instruction": "Sum.", "input": "2 3", "output": "5", "category": "math"},
        {"id": "m2", "instruction": "Hi", "input": "", "output": "Yo", "system": "Be nice.", "category": "chat"},
    ], source="flat")
    chat = ik.Dataset.from_records([
        {"id": "m3", "system": "S", "category": "chat", "conversations": [
            {"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
            {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]},
    ], source="chat")
    return ik.concat([flat, chat])


def _view(record):
    """What a record says, whatever shape holds it: ids, system, turns and meta (less the keys
    that only record a shape: the chat writers' ``input`` and the reader's ``_format``)."""
    from instructkit.templates.formats import conversation

    meta = {k: v for k, v in record["meta"].items() if k not in ("input", "_format")}
    return record["id"], record["source"], *conversation(record), meta


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
@pytest.mark.parametrize("ext", EXTS)
def test_every_writer_format_reads_back_the_same_records(tmp_path, fmt, ext):
    ds = _mixed()
    if fmt == "alpaca" and not _reader_reads_history(tmp_path):
        pytest.skip("the reader does not yet read LLaMA-Factory 'history' into messages (issue 17.4, reader side)")
    path = ds.write(tmp_path / f"out.{ext}", format=fmt)
    back = ik.read(path)
    assert [_view(r) for r in back] == [_view(r) for r in ds]
    # and the file is a fixed point: writing what was read gives the same bytes
    assert back.write(tmp_path / f"again.{ext}", format=fmt).read_bytes() == path.read_bytes()
    # records that are already in the format's own shape come back equal, field for field
    native = [r for r in ds if (r["messages"] is None) == (fmt == "alpaca")]
    assert [r for r in back if r["id"] in {n["id"] for n in native}] == native


# exports that tools accept (issue 17.6) ------------------------------------------------------------

def webui_generate_prompt(data_point: dict, format_data: dict) -> str:
    """text-generation-webui's ``generate_prompt`` (modules/training.py), as published: the
    format key whose field set equals the record's keys with non-empty string values."""
    for options, data in format_data.items():
        if set(options.split(",")) == {k for k, v in data_point.items() if isinstance(v, str) and len(v.strip()) > 0}:
            for key, val in data_point.items():
                if isinstance(val, str):
                    data = data.replace(f"%{key}%", val)
            return data
    raise RuntimeError(f'Data-point "{data_point}" has no keyset match within format "{list(format_data.keys())}"')


WEBUI_ALPACA = {  # training/formats/alpaca-format.json
    "instruction,output": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n%instruction%\n\n### Response:\n%output%",
    "instruction,input,output": "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n%instruction%\n\n### Input:\n%input%\n\n### Response:\n%output%",
}


def test_webui_accepts_meta_false_and_columns(tmp_path, single):
    data = single.filter(pl.col("output") != "", reason="empty")
    # the default keeps meta and ids (so the file reads back as the same records): webui rejects it
    rows = json.loads(data.write(tmp_path / "all.json").read_text())
    with pytest.raises(RuntimeError, match="no keyset match"):
        webui_generate_prompt(rows[0], WEBUI_ALPACA)
    # meta=False keeps the alpaca fields, system included (webui's alpaca format has no system key)
    rows = json.loads(data.write(tmp_path / "own.json", meta=False, ids=False).read_text())
    assert rows == [{"instruction": "Sum.", "input": "2 3", "output": "5"},
                    {"instruction": "Hi", "input": "", "output": "Yo", "system": "Be nice."}]
    with_system = {**WEBUI_ALPACA, "instruction,output,system": "%system%\n\n### Instruction:\n%instruction%\n\n### Response:\n%output%"}
    prompts = [webui_generate_prompt(r, with_system) for r in rows]
    assert prompts[0].endswith("### Instruction:\nSum.\n\n### Input:\n2 3\n\n### Response:\n5")
    assert prompts[1] == "Be nice.\n\n### Instruction:\nHi\n\n### Response:\nYo"
    # columns= picks exactly the fields a format file names
    rows = json.loads(data.write(tmp_path / "webui.json", columns=["instruction", "input", "output"]).read_text())
    assert [list(r) for r in rows] == [["instruction", "input", "output"]] * 2
    prompts = [webui_generate_prompt(r, WEBUI_ALPACA) for r in rows]
    assert "### Input" not in prompts[1] and prompts[1].endswith("### Instruction:\nHi\n\n### Response:\nYo")
    with pytest.raises(ValueError, match=r"columns= names \['answer'\]"):
        data.write(tmp_path / "bad.json", columns=["instruction", "answer"])
    assert not (tmp_path / "bad.json").exists()


def test_system_option_fills_records_without_one(tmp_path, single):
    text = single.write(tmp_path / "t.jsonl", format="text", template="llama2", system="Be brief.")
    rows = [json.loads(x) for x in text.read_text().splitlines()]
    assert rows[0]["text"].startswith("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nSum.")
    assert "Be nice." in rows[1]["text"] and "Be brief." not in rows[1]["text"]  # its own stays
    assert single.render("llama2", system="Be brief.")[0] == rows[0]["text"]
    msgs = json.loads(single.write(tmp_path / "m.jsonl", format="messages", system="Be brief.").read_text().splitlines()[2])
    assert msgs["messages"][0] == {"role": "system", "content": "Be brief."}
    alpaca = [json.loads(x) for x in single.write(tmp_path / "a.jsonl", system="Be brief.").read_text().splitlines()]
    assert [r["system"] for r in alpaca] == ["Be brief.", "Be nice.", "Be brief."]


def test_provenance_sidecar(tmp_path, single):
    clean = single.pipe(ik.quality())
    path = clean.write(tmp_path / "train.jsonl", provenance=True)
    side = tmp_path / "train.jsonl.provenance.json"
    info = json.loads(side.read_text())
    import hashlib

    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["records"] == len(clean) == 2 and info["rows"] == 2 and info["file"] == "train.jsonl"
    assert info["instructkit"] == ik.__version__
    assert [h["step"] for h in info["history"]] == [h["step"] for h in clean.history]
    assert info["removed"] == [{"step": "quality", "reason": "empty_output", "records": 1}]
    # deterministic: no clock in it
    again = clean.write(tmp_path / "b" / "train.jsonl", provenance=True)
    assert (again.parent / side.name).read_bytes() == side.read_bytes()
    assert not (tmp_path / "plain.jsonl.provenance.json").exists()
    clean.write(tmp_path / "plain.jsonl")
    assert not (tmp_path / "plain.jsonl.provenance.json").exists()


def test_killed_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path, single):
    """D18: a process killed mid-write cannot clean up; its temporary file has a fixed name
    per target, and the next write to that target removes it."""
    import subprocess
    import sys

    target = tmp_path / "out.jsonl"
    script = (
        "import os, instructkit as ik\n"
        "from instructkit.io import write as w\n"
        "ds = ik.Dataset.from_records([{'instruction': 'a', 'output': 'b'}] * 10)\n"
        "real = w._write_lines\n"
        "def die(f, lines, kind):\n"
        "    real(f, lines, kind); f.flush(); os._exit(9)\n"
        "w._write_lines = die\n"
        f"ds.write({str(target)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    stale = tmp_path / ".out.jsonl.ik-tmp"
    assert stale.exists() and not target.exists()  # killed: nothing could clean up
    single.write(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    assert len(ik.read(target)) == len(single)


def test_report_reads_the_text_format(tmp_path, single):
    """issue 17.6: ``instructkit report`` reads every file a recipe writes, ``format: text`` too."""
    from instructkit.cli import main

    path = single.write(tmp_path / "train.jsonl", format="text", template="alpaca")
    back = ik.read(path)
    assert [r["instruction"] for r in back] == single.render("alpaca").to_list()
    assert [r["id"] for r in back] == [r["id"] for r in single]
    assert main(["report", str(path), "-o", str(tmp_path / "report.html")]) == 0
    assert "train" in (tmp_path / "report.html").read_text()
