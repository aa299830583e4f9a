import gzip
import json

import polars as pl
import pytest
from extras import require

import instructkit as ik
from instructkit.io.files import Locations, ParseError, load
from instructkit.io.formats import (
    FORMATS,
    JSON_ESCAPES,
    RecordError,
    _flat_frame,
    canonical_frame,
    canonical_frame_precise,
    json_string,
)
from instructkit.io.read import detect_format
from instructkit.transform import parse_detail


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("record", "fmt", "expected"),
    [
        ({"instruction": "I", "input": "X", "output": "O"}, "alpaca", ("I", "X", "O")),
        ({"instruction": "I", "context": "C", "response": "R", "category": "qa"}, "dolly", ("I", "C", "R")),
        ({"question": "Q", "answer": "A", "context": "C"}, "qa", ("Q", "C", "A")),
        ({"prompt": "P", "completion": "C"}, "prompt_completion", ("P", "", "C")),
        ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}, "sharegpt", ("hi", "", "yo")),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "messages", ("hi", "", "yo")),
    ],
)
def test_formats_detected_and_mapped(tmp_path, record, fmt, expected):
    path = write_jsonl(tmp_path / "data.jsonl", [record])
    assert detect_format(path) == fmt
    row = ik.read(path)[0]
    assert (row["instruction"], row["input"], row["output"]) == expected
    assert row["id"] == "data:0" and row["source"] == "data"


def test_dolly_category_goes_to_meta(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "I", "context": "", "response": "R", "category": "qa"}])
    assert ik.read(path)[0]["meta"] == {"category": "qa"}


def test_seed_tasks_expand_instances(tmp_path):
    rec = {"id": "seed_task_3", "name": "n", "instruction": "Add", "is_classification": False,
           "instances": [{"input": "1 1", "output": "2"}, {"input": "2 2", "output": "4"}]}
    ds = ik.read(write_jsonl(tmp_path / "seed.jsonl", [rec]))
    assert [r["id"] for r in ds] == ["seed_task_3:0", "seed_task_3:1"]
    assert [r["output"] for r in ds] == ["2", "4"]
    assert ds[0]["meta"] == {"name": "n", "is_classification": False}


def test_multi_turn_and_system(tmp_path):
    rec = {"conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "a"},
        {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]}
    row = ik.read(write_jsonl(tmp_path / "c.jsonl", [rec]))[0]
    assert row["system"] == "Be brief."
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    assert (row["instruction"], row["output"]) == ("a", "b")


def test_mapping_for_other_field_names(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"prompt_text": "P", "reply": "R", "lang": "en"}])
    row = ik.read(path, mapping={"instruction": "prompt_text", "output": "reply"})[0]
    assert (row["instruction"], row["output"], row["meta"]) == ("P", "R", {"lang": "en"})


def test_json_csv_parquet_gz_folder_and_glob(tmp_path):
    rows = [{"instruction": f"i{k}", "output": f"o{k}"} for k in range(3)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "c.csv").write_text("instruction,output\ni0,o0\ni1,o1\n")
    import polars as pl
    pl.DataFrame(rows).write_parquet(tmp_path / "d.parquet")
    ds = ik.read(tmp_path)
    assert len(ds) == 3 + 3 + 2 + 3
    assert sorted(ds.to_polars()["source"].unique()) == ["a", "b", "c", "d"]
    assert len(ik.read(str(tmp_path / "*.json*"))) == 6
    assert len(ik.read([tmp_path / "a.json", tmp_path / "c.csv"])) == 5


def test_own_ids_are_kept_and_must_be_unique(tmp_path):
    path = write_jsonl(tmp_path / "i.jsonl", [{"id": 7, "instruction": "a"}, {"id": "x", "instruction": "b"}])
    assert [r["id"] for r in ik.read(path)] == ["7", "x"]
    dup = write_jsonl(tmp_path / "j.jsonl", [{"id": 1, "instruction": "a"}, {"id": 1, "instruction": "b"}])
    with pytest.raises(ValueError, match="'1' appears more than once"):
        ik.read(dup)


def test_malformed_line_raises_with_file_line_and_no_excerpt(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "ok"}\n\n{"instruction": "bro\\ken"}\n')
    with pytest.raises(ParseError) as e:
        ik.read(path)
    msg = str(e.value)
    # issue 16 D3: where and what kind of error, never the line's text
    assert str(path) in msg and "line 3" in msg and "column 21" in msg and "bro" not in msg


def test_skip_sends_bad_lines_to_removed(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "ok"}\nnot json\n{"instruction": "fine"}\n')
    ds = ik.read(path, on_error="skip")
    assert [r["instruction"] for r in ds] == ["ok", "fine"]
    removed = ds.removed.row(0, named=True)
    # issue 16 D3: the detail is a JSON object (file, line, column, byte offset, error kind)
    assert removed["reason"] == "parse_error" and parse_detail(removed["detail"])["line"] == 2
    assert "not json" not in removed["detail"] and removed["instruction"] is None
    assert removed["id"] == "bad:1" and removed["step"] == "read"
    assert ds.history[0]["records_in"] == 3


def test_missing_required_field_names_field_and_found(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"instruction": "a", "output": "b"}, {"output": "c", "topic": "t"}])
    with pytest.raises(RecordError) as e:
        ik.read(path, format="alpaca")
    msg = str(e.value)
    assert "'instruction'" in msg and "['output', 'topic']" in msg and "line 2" in msg
    ds = ik.read(path, format="alpaca", on_error="skip")
    assert len(ds) == 1 and ds.removed["reason"].to_list() == ["missing_field"]


def test_non_text_field_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"instruction": "a", "output": ["x"]}])
    with pytest.raises(RecordError, match="field 'output' is a list"):
        ik.read(path)


def test_empty_file_gives_empty_dataset(tmp_path):
    for name in ("e.jsonl", "e.json", "e.csv"):
        (tmp_path / name).write_text("")
        ds = ik.read(tmp_path / name)
        assert len(ds) == 0 and ds.removed.height == 0


def test_invalid_utf8_names_byte_offset(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"instruction": "ok"}\n{"instruction": "caf\xe9"}\n')
    with pytest.raises(ParseError, match=r"invalid UTF-8 at byte offset 42"):
        ik.read(path)
    assert ik.read(path, on_error="skip").removed["reason"].to_list() == ["parse_error"]
    doc = tmp_path / "u.json"
    doc.write_bytes(b'[{"instruction": "caf\xe9"}]')
    with pytest.raises(ParseError, match="invalid UTF-8 at byte offset 21"):
        ik.read(doc)


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        ik.read(tmp_path / "nope.jsonl")
    path = write_jsonl(tmp_path / "z.jsonl", [{"foo": 1}])
    with pytest.raises(ValueError, match="cannot detect the format"):
        ik.read(path)


def test_pandas_round_trip():
    pd = require("pandas")
    ds = ik.from_pandas(pd.DataFrame({"question": ["q"], "answer": ["a"]}))
    assert ds[0]["output"] == "a"
    assert ds.to_pandas()["instruction"].tolist() == ["q"]


EXPECTED_FORMATS = {
    "alpaca_en_demo.json": "alpaca", "alpaca_zh_demo.json": "alpaca", "code_alpaca_2k.json": "alpaca",
    "code_alpaca_seed_tasks.jsonl": "seed", "gpteacher_roleplay.json": "alpaca",
    "gpteacher_toolformer.json": "alpaca", "gsm8k_train_alpaca.json": "alpaca",
    "instructionwild_seed_prompts_ch.jsonl": "alpaca", "instructionwild_seed_prompts_en.jsonl": "alpaca",
    "instructionwild_user_1.jsonl": "alpaca", "instructionwild_user_2.jsonl": "alpaca",
    "instructionwild_user_3.jsonl": "alpaca", "new_codealpaca.json": "alpaca",
    "stanford_alpaca_seed_tasks.jsonl": "seed", "vigogne_seed_tasks_fr.jsonl": "seed",
}
EXPECTED_COUNTS = {
    "code_alpaca_2k.json": 2017, "new_codealpaca.json": 4535, "code_alpaca_seed_tasks.jsonl": 21,
    "stanford_alpaca_seed_tasks.jsonl": 175, "alpaca_en_demo.json": 999, "alpaca_zh_demo.json": 1000,
    "gsm8k_train_alpaca.json": 7473, "gpteacher_roleplay.json": 3146, "gpteacher_toolformer.json": 7673,
    "vigogne_seed_tasks_fr.jsonl": 175, "instructionwild_seed_prompts_en.jsonl": 429,
    "instructionwild_seed_prompts_ch.jsonl": 429, "instructionwild_user_1.jsonl": 429,
}


def test_every_shared_instruction_file_reads(shared_data):
    files = sorted((shared_data / "instructions").iterdir())
    assert {f.name for f in files} >= set(EXPECTED_FORMATS)
    for f in files:
        assert detect_format(f) == EXPECTED_FORMATS[f.name], f.name
        ds = ik.read(f, on_error="skip")
        if f.name in EXPECTED_COUNTS:
            assert len(ds) == EXPECTED_COUNTS[f.name], f.name
            assert ds.removed.height == 0, f.name


def test_real_broken_lines(shared_data):
    for name, good, bad in (("instructionwild_user_2.jsonl", 246, 2), ("instructionwild_user_3.jsonl", 198, 3)):
        path = shared_data / "instructions" / name
        ds = ik.read(path, on_error="skip")
        assert (len(ds), ds.removed.height) == (good, bad)
        assert set(ds.removed["reason"]) == {"parse_error"}
        with pytest.raises(ParseError, match=name):
            ik.read(path)


def test_new_codealpaca_keeps_response_in_meta(shared_data):
    row = ik.read(shared_data / "instructions" / "new_codealpaca.json")[0]
    assert row["meta"]["response"] == row["output"]


def test_hf_datasets_round_trip():
    datasets = require("datasets")
    hf = datasets.Dataset.from_list([{"instruction": "a", "input": "", "output": "b", "topic": "t"}])
    ds = ik.from_hf(hf, source="hub")
    assert ds[0]["id"] == "hub:0" and ds[0]["meta"] == {"topic": "t"}
    back = ds.to_hf()
    assert back[0]["instruction"] == "a" and back.num_rows == 1


# column-wise and record-by-record paths give the same frame ---------------------------------

FAST_CASES = {
    "unicode": [{"instruction": "Ünïcode ✓ 中文 😀", "input": "\u2028\x00\x1f\\\"", "output": "é\n\t"}],
    "numbers_in_text": [{"instruction": 3, "input": 1.5, "output": 2}, {"instruction": "x", "output": 1e20}],
    "missing_optional": [{"instruction": "a"}, {"instruction": "b", "output": "o"}, {"instruction": "c", "input": "i"}],
    "extra_fields": [{"instruction": "a", "zeta": "z", "alpha": "ä\n"}, {"instruction": "b", "alpha": ""}],
    "own_ids": [{"id": 7, "instruction": "a"}, {"id": "x", "instruction": "b"}, {"id": None, "instruction": "c"}],
    "null_values": [{"instruction": "a", "input": None, "output": None, "system": None, "note": None}, {"instruction": "b"}],
    "nested_meta": [{"instruction": "a", "tags": ["x", 1], "info": {"b": 2, "a": [1.5, None]}}, {"instruction": "b", "n": 3}],
    "source_and_system": [{"instruction": "a", "source": "web", "system": "Be brief."}, {"instruction": "b", "source": 5}],
    "dolly": [{"instruction": "i", "context": "c", "response": "r", "category": "open_qa"}],
    "qa": [{"question": "q", "answer": "a", "context": "c", "flag": True}],
    "prompt_completion": [{"prompt": "p", "completion": "c", "id": 1.0}],
    "key_order": [{"output": "o", "b": "1", "instruction": "i", "a": "2"}, {"a": "3", "instruction": "j"}],
}
HANDED_OVER = {
    "list_in_text": [{"instruction": "a", "output": ["x"]}],
    # issue 16: a boolean where text belongs is an invalid record (it used to become "True")
    "boolean_in_text": [{"instruction": "a", "output": True}],
    "nan_in_text": [{"instruction": "a", "output": float("nan")}],
    "missing_required": [{"instruction": "a"}, {"output": "b"}],
    "null_required": [{"instruction": None, "output": "b"}, {"instruction": "a"}],
    "not_an_object": [{"instruction": "a"}, ["x"]],
    "parse_error_kept": [{"instruction": "a"}, ValueError("bad line")],
}


def _both(records, **kw):
    fast = canonical_frame([dict(r) if isinstance(r, dict) else r for r in records], source="s", **kw)
    precise = canonical_frame_precise([dict(r) if isinstance(r, dict) else r for r in records], source="s", **kw)
    return fast, precise


@pytest.mark.parametrize("name", sorted(FAST_CASES))
def test_column_path_equals_record_path(name):
    records = FAST_CASES[name]
    (fast, fast_removed), (precise, precise_removed) = _both(records)
    assert fast.schema == precise.schema
    assert fast.to_dicts() == precise.to_dicts()
    assert fast_removed.height == precise_removed.height == 0
    # the column path really ran: it is not the hand-over that made them equal
    assert _flat_frame(records, FORMATS.get(name, FORMATS["alpaca"]), "s") is not None


def test_column_path_with_mapping():
    records = [{"prompt_text": "P", "reply": "R", "lang": "en"}, {"prompt_text": "Q", "lang": None}]
    mapping = {"instruction": "prompt_text", "output": "reply"}
    (fast, _), (precise, _) = _both(records, mapping=mapping)
    assert fast.to_dicts() == precise.to_dicts()


def test_non_text_keys_are_handed_over():
    records = [{"instruction": "a", 1: "x", 2: True}]
    assert _flat_frame(records, FORMATS["alpaca"], "s") is None
    (fast, _), (precise, _) = _both(records)
    assert fast.to_dicts() == precise.to_dicts() and fast["meta"].to_list() == ['{"1": "x", "2": true}']


@pytest.mark.parametrize("name", sorted(HANDED_OVER))
def test_unusual_batches_are_handed_to_the_record_path(name):
    records = HANDED_OVER[name]
    assert _flat_frame(records, FORMATS["alpaca"], "s") is None
    (fast, fast_removed), (precise, precise_removed) = _both(records, format="alpaca", on_error="skip")
    assert fast.to_dicts() == precise.to_dicts()
    assert fast_removed.to_dicts() == precise_removed.to_dicts() and fast_removed.height == 1


def test_read_files_fast_and_precise_identical(tmp_path):
    rows = [r for case in ("unicode", "extra_fields", "own_ids", "nested_meta", "null_values") for r in FAST_CASES[case]]
    rows = [{**r, "id": f"r{k}"} for k, r in enumerate(rows)]
    for name, text in (("a.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)),
                       ("b.json", json.dumps(rows)), ("c.jsonl", "\n".join(json.dumps(r) for r in rows))):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        records, locations = load(path)
        precise, _ = canonical_frame_precise(records, source=path.stem, locations=list(locations))
        assert ik.read(path).to_polars().to_dicts() == precise.to_dicts()


def test_blank_lines_keep_their_line_numbers(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"instruction": "a"}\n\n  \n{"instruction": "b"}\n{"instruction": 5, "output": [1]}\n')
    with pytest.raises(RecordError, match="line 5"):
        ik.read(path)
    assert [r["id"] for r in ik.read(path, on_error="skip")] == ["b:0", "b:1"]


def test_json_escapes_match_json_orjson_and_polars():
    import orjson

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    expected = json.dumps(every, ensure_ascii=False)
    assert orjson.dumps(every).decode() == expected
    assert '"' + "".join(JSON_ESCAPES.get(ch, ch) for ch in every) + '"' == expected
    assert pl.select(json_string(pl.lit(every))).item() == expected


def test_locations_are_computed_on_demand():
    locs = Locations("line", 3, start=1)
    assert list(locs) == ["line 1", "line 2", "line 3"] and locs[-1] == "line 3" and locs == ["line 1", "line 2", "line 3"]
    with pytest.raises(IndexError):
        locs[3]
