import hashlib
import json
from pathlib import Path

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
    assert "blacklisted_task" not in ds.pipe(ik.quality()).removed["reason"].to_list()  # off by default (17.7)
    out = ds.pipe(ik.quality(min_words={"instruction": 2}, blacklist="alpaca"))
    got = dict(zip(out.removed["id"], zip(out.removed["reason"], out.removed["detail"], strict=True), strict=True))
    # details follow the JSON convention of instructkit.transform.detail
    assert got["records:1"] == ("too_short", '{"field":"instruction","limit":2,"unit":"words","value":1}')
    assert got["records:2"] == ("refusal", '{"field":"output","phrase":"i\'m sorry, but i cannot"}')
    assert got["records:3"] == ("blacklisted_task", '{"field":"instruction","word":"plot"}')
    assert got["records:4"][0] == "empty_output"
    assert got["records:5"][0] == "blacklisted_task"
    assert [r["id"] for r in out] == ["records:0"]


def test_quality_lists_are_replaceable_and_bounds_checked():
    ds = ik.Dataset.from_records([{"instruction": "Draw a cat", "output": "Sure thing"}])
    assert len(ds.pipe(ik.quality())) == 1
    assert len(ds.pipe(ik.quality(blacklist="alpaca"))) == 0
    with pytest.raises(ValueError, match="blacklist takes"):
        ik.quality(blacklist="draw")
    assert len(ds.pipe(ik.quality(blacklist=None, refusals=["sure thing"]))) == 0
    assert len(ds.pipe(ik.quality(blacklist=["cat"], max_chars={"output": 5}))) == 0
    with pytest.raises(ValueError, match="unknown field"):
        ik.quality(min_chars={"answer": 3})


def test_empty_assistant_turn_is_empty_output():
    ds = ik.Dataset.from_records([{"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": " "}]}])
    out = ds.pipe(ik.quality())
    assert out.removed["reason"].to_list() == ["empty_output"]
    assert out.removed["detail"].to_list() == ['{"field":"output","turn":3}']


def _chat(*turns):
    roles = ["user", "assistant"] * len(turns)
    return {"messages": [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]}


def test_quality_rules_cover_every_turn_of_a_conversation():
    ds = ik.Dataset.from_records([
        _chat("Hello there", "Hi, how can I help?", "Draw me a horse", "Here it is."),
        _chat("Hello there", "Hi!", "What is 2+2?", "As an AI language model, I cannot count."),
        _chat("Hello there", "Hi!", "Thanks " * 30, "You are welcome."),
        _chat("Hello there", "Hi!", "What is 2+2?", "4"),
        _chat("Hello there", "Hi!", "What is 2+2?"),  # the last question is never answered
    ])
    out = ds.pipe(ik.quality(blacklist=["draw"], max_words={"instruction": 20}))
    got = dict(zip(out.removed["id"], zip(out.removed["reason"], out.removed["detail"], strict=True), strict=True))
    # each reason is found in the third turn (index 2) or the fourth (index 3), past the
    # first exchange the flat instruction/output mirror
    assert got == {
        "records:0": ("blacklisted_task", '{"field":"instruction","turn":2,"word":"draw"}'),
        "records:1": ("refusal", '{"field":"output","phrase":"as an ai language model","turn":3}'),
        "records:2": ("too_long", '{"field":"instruction","limit":20,"turn":2,"unit":"words","value":30}'),
    }
    assert [r["id"] for r in out] == ["records:3", "records:4"]
    # a conversation with no assistant turn at all has an empty output
    lone = ik.Dataset.from_records([{"messages": [{"role": "user", "content": "Anyone?"}]}])
    assert lone.pipe(ik.quality()).removed["detail"].to_list() == ['{"field":"output"}']


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


# every text step reads every turn: what makes each record special sits in turn 3 only ------

_PARIS = (
    "Je voudrais visiter Paris au printemps avec ma famille. Pouvez-vous me conseiller des "
    "quartiers calmes pour loger, des musées pour les enfants et des restaurants abordables "
    "près de la Seine ? Nous restons une semaine et nous aimons marcher."
)
_STORY = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle on a stormy "
    "night, follows its clues along the rocky coast, meets the fishermen of three villages, "
    "and in the end discovers that the message was written by his own grandfather decades ago."
)


def _three(turn3: str, turn1: str = "Hello, could you help me with something today?") -> dict:
    return {"conversations": [
        {"from": "human", "value": turn1}, {"from": "gpt", "value": "Of course, what is it?"},
        {"from": "human", "value": turn3}, {"from": "gpt", "value": "Gladly."},
    ]}


def test_dedup_exact_and_minhash_hash_the_whole_conversation():
    ds = ik.Dataset.from_records([
        _three(_STORY), _three(_PARIS), _three(_STORY), _three(_STORY, turn1="Hi, could you help me with something?"),
    ], source="c")
    exact = ds.pipe(ik.dedup.exact())
    assert exact.removed["id"].to_list() == ["c:2"]  # same first exchange, turn 3 decides
    near = ds.pipe(ik.dedup.minhash(threshold=0.7))
    assert sorted(near.removed["id"].to_list()) == ["c:2", "c:3"]


def test_langid_reads_every_user_turn():
    ds = ik.Dataset.from_records([_three(_PARIS), _three(_STORY)], source="c")
    out = ds.pipe(ik.langid(keep=["en"]))
    assert out.removed["id"].to_list() == ["c:0"]
    assert ds.pipe(ik.langid()).to_polars()["lang"].to_list() == ["fr", "en"]


def test_decontaminate_scans_every_turn():
    bench = ik.benchmarks.from_records("toy", [{"q": _STORY}], fields=["q"])
    ds = ik.Dataset.from_records([_three(_STORY), _three(_PARIS)], source="c")
    assert ds.to_polars()["instruction"][0] != _STORY  # the flat mirror is turn 1 only
    assert ds.pipe(ik.decontaminate([bench])).removed["id"].to_list() == ["c:0"]


def test_record_text_matches_single_turn_and_conversation():
    from instructkit.text import record_text, text_pieces

    flat = ik.Dataset.from_records([{"instruction": "Sum.", "input": "2 3", "output": "5"}], source="f")
    chat = ik.Dataset.from_records([{"conversations": [
        {"from": "human", "value": "Sum.\n\n2 3"}, {"from": "gpt", "value": "5"}]}], source="c")
    both = ik.concat([flat, chat]).to_polars()
    fields = ["instruction", "input", "output", "messages"]
    assert record_text(both, fields).to_list() == ["Sum.\n\n2 3\n\n5"] * 2
    assert record_text(both, ["output"]).to_list() == ["5", "5"]
    assert record_text(both, ["input"]).to_list() == ["2 3", ""]  # a chat turn holds its input
    pieces = text_pieces(both, ["instruction", "output"])
    assert pieces.rows() == [
        (0, "instruction", None, "Sum."), (0, "output", None, "5"),
        (1, "instruction", 0, "Sum.\n\n2 3"), (1, "output", 1, "5"),
    ]
    with pytest.raises(ValueError, match="unknown field"):
        record_text(both, ["answer"])


def test_steps_see_llama_factory_history_turns(tmp_path):
    import json

    path = tmp_path / "lf.json"
    rows = [
        {"instruction": "Thanks, and one more thing?", "input": "", "output": "Gladly.",
         "history": [["Hello, could you help me with something today?", "Of course, what is it?"], [turn3, "Sure."]]}
        for turn3 in (_PARIS, _STORY, _STORY)
    ]
    path.write_text(json.dumps(rows))
    ds = ik.read(path)
    if ds[0]["messages"] is None:
        pytest.skip("the reader does not yet read LLaMA-Factory 'history' into messages (issue 17.4, reader side)")
    assert ds.pipe(ik.langid(keep=["en"])).removed["id"].to_list() == ["lf:0"]
    assert ds.pipe(ik.dedup.exact()).removed["id"].to_list() == ["lf:2"]
    bench = ik.benchmarks.from_records("toy", [{"q": _STORY}], fields=["q"])
    assert ds.pipe(ik.decontaminate([bench])).removed["id"].to_list() == ["lf:1", "lf:2"]
    assert ds.pipe(ik.quality(blacklist=["seine"])).removed["id"].to_list() == ["lf:0"]


# an answer as MedQuAD's CancerGov XML holds it: the first line follows <Answer>, the rest keep
# the markup's indentation, unevenly
MEDQUAD_ANSWER = (
    "Key Points\n"
    "                    - There are different types of treatment for patients with adult ALL.\n"
    "                    - The treatment of adult ALL usually has two phases.\n"
    "                \n"
    "                \n"
    "                    There are different types of treatment for patients with adult ALL.\n"
    "                    Different types of treatment are available:\n"
    "                        - Chemotherapy\n"
    "                        - Radiation therapy\n"
)


def test_normalize_dedent_xml_text():
    ds = ik.Dataset.from_records([{"instruction": "What are the treatments for adult ALL?", "output": MEDQUAD_ANSWER}])
    kept = ds.pipe(ik.normalize())[0]["output"]
    assert "\n                    - There" in kept  # by default indentation stays (code needs it)
    common = ds.pipe(ik.normalize(dedent=True))[0]["output"]
    assert common == (
        "Key Points\n- There are different types of treatment for patients with adult ALL.\n"
        "- The treatment of adult ALL usually has two phases.\n\n"
        "There are different types of treatment for patients with adult ALL.\n"
        "Different types of treatment are available:\n    - Chemotherapy\n    - Radiation therapy"
    )
    flat = ds.pipe(ik.normalize(dedent="lines"))[0]["output"]
    assert flat == common.replace("    - ", "- ")
    chat = ik.Dataset.from_records([{"messages": [
        {"role": "user", "content": "Q"}, {"role": "assistant", "content": MEDQUAD_ANSWER}]}])
    assert chat.pipe(ik.normalize(dedent=True))[0]["messages"][1]["content"] == common
    with pytest.raises(ValueError, match="dedent must be"):
        ik.normalize(dedent="all")


LABELS = Path(__file__).parent / "data" / "quality_labels.jsonl"


def test_default_quality_rules_keep_what_a_careful_reader_keeps(shared_data):
    """200 records drawn with a seed from the two Code Alpaca files, each read and labelled
    keep/drop by hand (tests/data/quality_labels.jsonl; how: docs/filters.md). The default
    rules may remove at most 1% of the records labelled keep (issue 17.7)."""
    labels = [json.loads(line) for line in LABELS.read_text().splitlines()]
    removed_by: dict[str, dict[str, set[int]]] = {"default": {}, "alpaca_blacklist": {}}
    for name in sorted({r["file"] for r in labels}):
        ds = ik.read(shared_data / "instructions" / name)
        for r in (r for r in labels if r["file"] == name):
            digest = hashlib.sha1(ds[r["index"]]["instruction"].encode()).hexdigest()[:12]
            assert digest == r["sha1"], f"{name} record {r['index']} is not the record that was labelled"
        for rules, step in (("default", ik.quality()), ("alpaca_blacklist", ik.quality(blacklist="alpaca"))):
            ids = set(ds.pipe(step).removed["id"].to_list())
            removed_by[rules][name] = {k for k in range(len(ds)) if ds[k]["id"] in ids}
    keep = [r for r in labels if r["label"] == "keep"]
    assert len(labels) == 200 and len(keep) == 199

    def false_removals(rules: str) -> list[dict]:
        return [r for r in keep if r["index"] in removed_by[rules][r["file"]]]

    assert len(false_removals("default")) / len(keep) <= 0.01
    # the old default, Stanford Alpaca's blacklist, removed file-handling code tasks
    old = false_removals("alpaca_blacklist")
    assert len(old) / len(keep) > 0.05
    assert {r["reason"] for r in old} >= {"files"}


def test_max_tokens_counts_with_the_training_tokenizer(tmp_path) -> None:
    from tiny_llama import build_tokenizer

    tok = build_tokenizer()
    records = [{"instruction": "Name a fruit.", "output": "An apple is a fruit. " * k} for k in (1, 5, 30)]
    ds = ik.Dataset.from_records(records)
    lengths = [len(tok(r["output"], add_special_tokens=False)["input_ids"]) for r in records]
    limit = lengths[1]
    out = ds.pipe(ik.quality(max_tokens={"output": limit}, tokenizer=tok))
    assert len(out) == 2 and out.removed["id"].to_list() == ["records:2"]
    assert json.loads(out.removed["detail"][0]) == {"field": "output", "limit": limit, "unit": "tokens", "value": lengths[2]}
    tok.save_pretrained(tmp_path / "tok")
    whole = ds.pipe(ik.quality(max_tokens=limit, tokenizer=str(tmp_path / "tok")))
    assert whole.removed["id"].to_list() == ["records:1", "records:2"], "the whole record counts: instruction too"
    assert json.loads(whole.removed["detail"][0])["field"] == "record"
    with pytest.raises(ValueError, match="needs tokenizer"):
        ik.quality(max_tokens=10)
