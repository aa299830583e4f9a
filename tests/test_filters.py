import json

import pytest

import instructkit as ik


def one(ds):
    return ds[0]


def test_normalize_nfc_whitespace_control_keeps_indentation():
    ds = ik.Dataset.from_records([{
        "instruction": "Cafe\u0301\u00a0time \r\n",
        "output": "def f():\r\n    return 1   \n\n\n\n# end\x00\u200b",
    }])
    row = one(ds.pipe(ik.normalize()))
    assert row["instruction"] == "Café time"
    assert row["output"] == "def f():\n    return 1\n\n# end"


def test_normalize_options_and_conversations():
    ds = ik.Dataset.from_records([{"messages": [
        {"role": "user", "content": "  a   b  "}, {"role": "assistant", "content": "ｆｕｌｌ"}]}])
    row = one(ds.pipe(ik.normalize(form="NFKC", collapse_spaces=True)))
    assert [m["content"] for m in row["messages"]] == ["a b", "full"]
    assert row["instruction"] == "a b" and row["output"] == "full"
    with pytest.raises(ValueError, match="form must be"):
        ik.normalize(form="XYZ")


def test_quality_rules_and_details():
    ds = ik.Dataset.from_records([
        {"instruction": "Write a poem about the sea", "output": "Waves."},
        {"instruction": "Short", "output": "x"},
        {"instruction": "Please explain gravity", "output": "I'm sorry, but I cannot help."},
        {"instruction": "Plot the data in a graph", "output": "done"},
        {"instruction": "Tell a story", "output": "\n "},
        {"instruction": "Describe the maps of Paris", "output": "ok"},
    ])
    out = ds.pipe(ik.quality(min_words={"instruction": 2}))
    got = dict(zip(out.removed["id"], zip(out.removed["reason"], out.removed["detail"], strict=True), strict=True))
    assert got["records:1"] == ("too_short", '{"field":"instruction","limit":2,"unit":"words","value":1}')
    assert got["records:2"][0] == "refusal"
    assert json.loads(got["records:2"][1]) == {"field": "output", "phrase": "i'm sorry, but i cannot"}
    assert got["records:3"] == ("blacklisted_task", '{"field":"instruction","word":"plot"}')
    assert got["records:4"] == ("empty_output", '{"field":"output"}')
    assert got["records:4"][0] == "empty_output"
    assert got["records:5"][0] == "blacklisted_task"
    assert [r["id"] for r in out] == ["records:0"]


def test_quality_lists_are_replaceable_and_bounds_checked():
    ds = ik.Dataset.from_records([{"instruction": "Draw a cat", "output": "Sure thing"}])
    assert len(ds.pipe(ik.quality(blacklist=None))) == 1
    assert len(ds.pipe(ik.quality(blacklist=None, refusals=["sure thing"]))) == 0
    assert len(ds.pipe(ik.quality(blacklist=["cat"], max_chars={"output": 5}))) == 0
    with pytest.raises(ValueError, match="unknown field"):
        ik.quality(min_chars={"answer": 3})


def test_empty_assistant_turn_is_empty_output():
    ds = ik.Dataset.from_records([{"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": " "}]}])
    assert ds.pipe(ik.quality()).removed["reason"].to_list() == ["empty_output"]


def test_split_exact_stratified_deterministic():
    records = [{"instruction": f"{s}{k}"} for s in "ab" for k in range(10 if s == "a" else 30)]
    a = ik.Dataset.from_records(records[:10], source="a")
    b = ik.Dataset.from_records(records[10:], source="b")
    ds = ik.concat([a, b])
    train, test = ik.split(ds, eval_fraction=0.1, seed=3)
    assert len(test) == 4 and len(train) == 36
    assert test.to_polars()["source"].value_counts(sort=True).rows() == [("b", 3), ("a", 1)]
    again = ik.split(ds, eval_fraction=0.1, seed=3)[1]
    assert again.to_polars().equals(test.to_polars())
    with pytest.raises(ValueError, match="eval_fraction"):
        ik.split(ds, eval_fraction=1.5)


def test_word_bounds_count_cjk_characters_as_words():
    ds = ik.Dataset.from_records([
        {"instruction": "给出三个保持健康的建议。", "output": "x"},
        {"instruction": "Hi there", "output": "y"},
    ])
    out = ds.pipe(ik.quality(min_words={"instruction": 3}))
    assert [r["id"] for r in out] == ["records:0"]
    assert out.removed["detail"].to_list() == ['{"field":"instruction","limit":3,"unit":"words","value":2}']
