"""Writers and conversion: round trips, lossless alpaca <-> chat, turns, atomicity."""

from __future__ import annotations

import gzip
import json

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


def test_multi_turn_to_alpaca_needs_turns(tmp_path, conv):
    two = ik.Dataset.from_polars(conv.to_polars().head(1))
    with pytest.raises(ConversionError, match="'c1'.*2 exchanges.*turns="):
        two.write(tmp_path / "x.jsonl", format="alpaca")
    assert not (tmp_path / "x.jsonl").exists()
    first = [json.loads(x) for x in two.write(tmp_path / "f.jsonl", turns="first").read_text().splitlines()]
    assert first == [{"id": "c1", "source": "cv", "instruction": "a", "input": "", "output": "b", "system": "S", "tag": 1}]
    last = json.loads(two.write(tmp_path / "l.jsonl", turns="last").read_text())
    assert (last["instruction"], last["output"]) == ("c", "d")
    split = [json.loads(x) for x in two.write(tmp_path / "s.jsonl", turns="split").read_text().splitlines()]
    assert [(r["id"], r["instruction"], r["output"]) for r in split] == [("c1:0", "a", "b"), ("c1:1", "c", "d")]
    with pytest.raises(ConversionError, match="'observation'|'tool'"):
        ik.Dataset.from_polars(conv.to_polars().tail(1)).write(tmp_path / "t.jsonl", turns="split")


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
    monkeypatch.setattr(write_mod, "_write_alpaca_columns", lambda *a, **k: False)


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
    mixed = ik.concat([ds, ik.Dataset.from_polars(conv.to_polars().head(1))])
    with pytest.raises(ConversionError, match="'c1'.*2 exchanges"):
        write(mixed, tmp_path / f"mixed.{ext}")  # the conversation sits in the last slice
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"sliced.{ext}"]
    first = write(mixed, tmp_path / f"first.{ext}", turns="first").read_bytes()
    _row_path(monkeypatch)
    assert sliced == write(ds, tmp_path / f"rows.{ext}").read_bytes()
    assert first == write(mixed, tmp_path / f"rows_first.{ext}", turns="first").read_bytes()
