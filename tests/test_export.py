"""Hand-offs to trainers and the Hub: trainer forms, ik.export targets, the dataset card."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

import instructkit as ik
from instructkit.io.handoff import trainer_frame


def _mixed() -> ik.Dataset:
    single = ik.Dataset.from_records(
        [
            {"instruction": "Add the numbers.", "input": "2 3", "output": "5", "system": "Be brief."},
            {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        ],
        source="single",
    )
    chat = ik.Dataset.from_records(
        [
            {"conversations": [
                {"from": "system", "value": "You are kind."},
                {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                {"from": "human", "value": "How are you?"}, {"from": "gpt", "value": "Well, thanks."},
            ]},
        ],
        source="chat",
    )
    return ik.concat([single, chat])


# --- trainer forms ---------------------------------------------------------------------------


def test_messages_form_puts_the_system_turn_first() -> None:
    rows = trainer_frame(_mixed().to_polars(), "messages")["messages"].to_list()
    assert rows[0] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add the numbers.\n\n2 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert rows[1][0] == {"role": "user", "content": "Name a colour."}
    assert [t["role"] for t in rows[2]] == ["system", "user", "assistant", "user", "assistant"]
    assert rows[2][0]["content"] == "You are kind."


def test_alpaca_form_pairs_history_as_llamafactory_reads_it() -> None:
    frame = trainer_frame(_mixed().to_polars(), "alpaca")
    assert frame.columns == ["instruction", "input", "output", "system", "history"]
    assert frame.row(0) == ("Add the numbers.", "2 3", "5", "Be brief.", [])
    assert frame.row(2) == ("How are you?", "", "Well, thanks.", "You are kind.", [["Hi", "Hello!"]])


def test_prompt_completion_refuses_what_it_cannot_hold() -> None:
    ds = _mixed()
    with pytest.raises(ValueError, match="system prompt"):
        trainer_frame(ds.to_polars().filter(pl.col("source") == "single"), "prompt_completion")
    plain = ds.to_polars().filter(pl.col("id") == "single:1")
    assert trainer_frame(plain, "prompt_completion").row(0) == ("Name a colour.", "Blue.")
    chat = ds.to_polars().filter(pl.col("source") == "chat").with_columns(pl.lit(None, pl.String).alias("system"))
    with pytest.raises(ValueError, match="has 4 turns"):
        trainer_frame(chat, "prompt_completion")
    conv = trainer_frame(ds.to_polars(), "prompt_completion", conversational=True)
    assert conv["completion"].to_list()[2] == [{"role": "assistant", "content": "Well, thanks."}]
    assert [t["role"] for t in conv["prompt"].to_list()[2]] == ["system", "user", "assistant", "user"]


def test_a_conversation_must_end_with_the_assistant() -> None:
    ds = ik.Dataset.from_records([{"messages": [{"role": "user", "content": "Hi"}]}])
    with pytest.raises(ValueError, match="ends with a 'user' turn"):
        trainer_frame(ds.to_polars(), "messages")


def test_messages_form_follows_trls_conversational_convention() -> None:
    rows = trainer_frame(_mixed().to_polars(), "messages").to_dicts()
    for row in rows:
        assert set(row) == {"messages"}
        assert all(set(turn) == {"role", "content"} and isinstance(turn["content"], str) for turn in row["messages"])
    try:
        from trl.data_utils import is_conversational
    except ImportError:
        return  # trl is an optional trainer; the structure above is its documented convention
    assert all(is_conversational(row) for row in rows)


# --- LLaMA-Factory -----------------------------------------------------------------------------
# LLaMA-Factory's own reading of a dataset_info.json entry and its converters
# (src/llamafactory/data/parser.py DatasetAttr.join, converter.py Alpaca/SharegptDatasetConverter),
# restated: a record it accepts yields a non-empty prompt and one assistant response.


def _llamafactory_convert(entry: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    attr = {"prompt": "instruction", "query": "input", "response": "output", "history": None,
            "messages": "conversations", "system": None, "tools": None, "role_tag": "from",
            "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
    attr.update({k: v for k, v in entry.get("columns", {}).items()})
    attr.update(entry.get("tags", {}))
    if entry.get("formatting", "alpaca") == "alpaca":
        prompt = []
        if attr["history"] and isinstance(example[attr["history"]], list):
            for old_prompt, old_response in example[attr["history"]]:
                prompt += [{"role": "user", "content": old_prompt}, {"role": "assistant", "content": old_response}]
        query = [example[k] for k in (attr["prompt"], attr["query"]) if k and example[k]]
        prompt.append({"role": "user", "content": "\n".join(query)})
        response = [{"role": "assistant", "content": example[attr["response"]]}]
        system = example[attr["system"]] if attr["system"] else ""
        return {"_prompt": prompt, "_response": response, "_system": system}
    tags = {attr["user_tag"]: "user", attr["assistant_tag"]: "assistant", attr["observation_tag"]: "observation",
            attr["function_tag"]: "function", attr["system_tag"]: "system"}
    accept = ((attr["user_tag"], attr["observation_tag"]), (attr["assistant_tag"], attr["function_tag"]))
    messages = example[attr["messages"]]
    system = ""
    if attr["system_tag"] and messages and messages[0][attr["role_tag"]] == attr["system_tag"]:
        system, messages = messages[0][attr["content_tag"]], messages[1:]
    aligned = []
    for i, m in enumerate(messages):
        if m[attr["role_tag"]] not in accept[i % 2]:
            return {"_prompt": [], "_response": [], "_system": system}
        aligned.append({"role": tags[m[attr["role_tag"]]], "content": m[attr["content_tag"]]})
    if len(aligned) % 2 != 0:
        return {"_prompt": [], "_response": [], "_system": system}
    return {"_prompt": aligned[:-1], "_response": aligned[-1:], "_system": system}


@pytest.mark.parametrize("form", ["messages", "alpaca"])
def test_llamafactory_accepts_every_record(tmp_path: Path, form: str) -> None:
    ds = _mixed()
    (tmp_path / "dataset_info.json").write_text(json.dumps({"theirs": {"file_name": "theirs.json"}}))
    files = ik.export(ds, tmp_path, target="llamafactory", name="clean", format=form, card=False)
    info = json.loads(files["dataset_info"].read_text())
    assert set(info) == {"theirs", "clean"}, "an entry already there is kept"
    entry = info["clean"]
    examples = [json.loads(line) for line in (tmp_path / entry["file_name"]).read_text().splitlines()]
    converted = [_llamafactory_convert(entry, ex) for ex in examples]
    assert all(c["_prompt"] and c["_response"] for c in converted)
    assert [c["_system"] for c in converted] == ["Be brief.", "", "You are kind."]
    assert converted[2]["_prompt"][-1] == {"role": "user", "content": "How are you?"}
    assert converted[0]["_prompt"][-1]["content"] in ("Add the numbers.\n\n2 3", "Add the numbers.\n2 3")


def test_llamafactory_on_real_alpaca(tmp_path: Path, shared_data: Path) -> None:
    ds = ik.read(shared_data / "instructions" / "alpaca_en_demo.json").pipe(ik.dedup.exact())
    files = ik.export(ds, tmp_path, target="llamafactory", name="alpaca_clean", card=False)
    entry = json.loads(files["dataset_info"].read_text())["alpaca_clean"]
    lines = files["data"].read_text().splitlines()
    assert len(lines) == len(ds) == 985
    assert all(_llamafactory_convert(entry, json.loads(line))["_response"] for line in lines)


# --- axolotl and the Hub -------------------------------------------------------------------------


def test_axolotl_snippet_points_at_loadable_messages(tmp_path: Path) -> None:
    files = ik.export(_mixed(), tmp_path, target="axolotl", name="chat", card=False)
    config = yaml.safe_load(files["config"].read_text())
    (dataset,) = config["datasets"]
    assert dataset["type"] == "chat_template" and dataset["field_messages"] == "messages"
    assert dataset["message_property_mappings"] == {"role": "role", "content": "content"}
    import datasets

    loaded = datasets.load_dataset("json", data_files=dataset["path"], split="train")
    assert loaded.num_rows == 3 and loaded[2]["messages"][0]["role"] == "system"


def test_hf_folder_loads_with_datasets_and_has_a_card(tmp_path: Path) -> None:
    import datasets
    from huggingface_hub import DatasetCard

    files = ik.export(_mixed(), tmp_path, target="hf", license="mit", shard_rows=2)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path), split="train")
    assert loaded.num_rows == 3 and loaded.column_names == ["messages"]
    assert DatasetCard.load(files["card"]).data.license == "mit"


def test_push_to_hub_builds_the_repository_it_uploads(tmp_path: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class RecordingApi:
        def create_repo(self, repo_id: str, **kw: Any) -> None:
            calls.append(("create_repo", {"repo_id": repo_id, **kw}))

        def upload_folder(self, **kw: Any) -> Any:
            folder = Path(kw["folder_path"])
            kw["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            calls.append(("upload_folder", kw))
            return type("Info", (), {"commit_url": "https://hub.example/commit/1"})()

    url = ik.push_to_hub(_mixed(), "me/clean", license="mit", api=RecordingApi())
    assert url == "https://hub.example/commit/1"
    assert calls[0] == ("create_repo", {"repo_id": "me/clean", "repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[1][1]["files"] == ["README.md", "data/train-00000-of-00001.parquet"]


# --- the dataset card ---------------------------------------------------------------------------


def test_card_describes_sources_steps_benchmarks_and_pii(tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    bench = ik.benchmarks.from_records(
        "toyqa", [{"q": "What is the boiling point of water at sea level in degrees?"}], fields=["q"])
    code = ik.Dataset.from_records(
        [{"instruction": "Write a Python function that reverses a string.", "output": "def r(s): return s[::-1]"},
         {"instruction": "What is the boiling point of water at sea level in degrees?", "output": "100"}],
        source="code")
    chat = ik.Dataset.from_records(
        [{"instruction": "Explain why the sky is blue in two sentences.", "output": "Rayleigh scattering."}],
        source="chat")
    ds = ik.concat([code, chat]).pipe(ik.langid(), ik.decontaminate([bench]), ik.pii.scrub())
    sources = {"code": {"license": "cc-by-nc-4.0", "origin": "synthetic"},
               "chat": {"license": "apache-2.0", "origin": "human-written"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = ik.card(ds, tmp_path / "README.md", sources=sources, pretty_name="Mixed")
    assert any("non-commercial" in str(w.message) for w in caught)
    data = DatasetCard.load(tmp_path / "README.md").data
    assert data.license == "other" and data.language == ["en"]
    assert data.size_categories == ["n<1K"] and data.source_datasets == ["code", "chat"]
    assert "| code | 1 | 1 | cc-by-nc-4.0 | synthetic |" in text
    assert "Checked against toyqa" in text and "contamination: 1" in text
    assert "`pii.scrub`" in text
    assert "non-commercial" in text.split("## Known limitations")[1]


def test_card_says_what_was_not_done() -> None:
    ds = ik.Dataset.from_records([{"instruction": "Add 2 and 3.", "output": "5"}])
    text = ik.card(ds, license="mit")
    limits = text.split("## Known limitations")[1]
    assert "not checked against evaluation benchmarks" in limits
    assert "not scrubbed for personal data" in limits


def test_licences_travel_from_read_and_recipes_to_the_card(tmp_path: Path) -> None:
    (tmp_path / "code.jsonl").write_text(json.dumps({"instruction": "Reverse a string in Python.", "output": "s[::-1]"}) + "\n")
    (tmp_path / "chat.jsonl").write_text(json.dumps({"instruction": "Say hello politely.", "output": "Hello!"}) + "\n")
    code = ik.read(tmp_path / "code.jsonl", license="cc-by-nc-4.0", origin="synthetic")
    chat = ik.read(tmp_path / "chat.jsonl", license="apache-2.0", origin="human-written")
    mixed = ik.concat([code, chat]).pipe(ik.dedup.exact())
    assert mixed.sources == {"code": {"license": "cc-by-nc-4.0", "origin": "synthetic"},
                             "chat": {"license": "apache-2.0", "origin": "human-written"}}
    recipe = (
        "inputs:\n"
        "  - {path: code.jsonl, license: cc-by-nc-4.0, origin: synthetic}\n"
        "  - {path: chat.jsonl, license: apache-2.0, origin: human-written}\n"
        "steps: [dedup.exact]\n"
        "output: {path: out/clean.jsonl}\n"
        "card: {path: out/README.md, pretty_name: Mixed}\n"
    )
    from instructkit.pipeline import run_recipe

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_recipe(recipe, base=tmp_path)
    assert any("non-commercial" in str(w.message) for w in caught)
    text = result.files["card"].read_text()
    assert "| code | 1 | 0 | cc-by-nc-4.0 | synthetic |" in text
    assert "| chat | 1 | 0 | apache-2.0 | human-written |" in text
    with pytest.raises(ValueError, match="'card' section"):
        run_recipe(recipe.replace("pretty_name: Mixed", "title: Mixed"), base=tmp_path)


def test_to_hf_in_a_trainers_form() -> None:
    hf = _mixed().to_hf("messages")
    assert hf.column_names == ["messages"] and hf[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert _mixed().to_hf("alpaca", ids=True).column_names == ["id", "instruction", "input", "output", "system", "history"]


def test_prompt_completion_writer(tmp_path: Path) -> None:
    ds = ik.Dataset.from_records([{"instruction": "Add.", "input": "2 3", "output": "5"},
                                  {"instruction": "Name a colour.", "output": "Blue."}], source="pc")
    path = ds.write(tmp_path / "pc.jsonl", format="prompt_completion")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [{"id": "pc:0", "prompt": "Add.\n\n2 3", "completion": "5"},
                    {"id": "pc:1", "prompt": "Name a colour.", "completion": "Blue."}]
    back = ik.read(path)  # the reader knows the form: prompt -> instruction, completion -> output
    assert back.to_polars()["output"].to_list() == ["5", "Blue."]
    with pytest.raises(ValueError, match="system prompt"):
        ds.write(tmp_path / "s.jsonl", format="prompt_completion", system="Be brief.")
