"""Workflow (a): Code Alpaca into Llama-2 chat text for a QLoRA run.

read code_alpaca_2k.json -> normalize -> quality (empty outputs only) -> dedup.exact ->
write(format="text", template="llama2"), then every written text is compared byte for byte
with the string Meta's ``llama/generation.py`` ``chat_completion`` builds (tokens ``<s>``/
``</s>`` written out), copied below.

Measured on ../shared/data: 2,017 records read, 2 removed (empty_output), 0 duplicates,
2,015 written.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import polars as pl

import instructkit as ik

# facebookresearch/llama, llama/generation.py (Llama 2)
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
BOS, EOS = "<s>", "</s>"


def meta_chat_completion_text(dialog: list[dict[str, str]]) -> str:
    """``Llama.chat_completion``'s prompt construction, with the token ids of
    ``tokenizer.encode(..., bos=True, eos=True)`` written as their strings."""
    if dialog[0]["role"] == "system":
        dialog = [{
            "role": dialog[1]["role"],
            "content": B_SYS + dialog[0]["content"] + E_SYS + dialog[1]["content"],
        }] + dialog[2:]
    assert all(m["role"] == "user" for m in dialog[::2]) and all(
        m["role"] == "assistant" for m in dialog[1::2])
    return "".join(
        BOS + f"{B_INST} {(prompt['content']).strip()} {E_INST} {(answer['content']).strip()} " + EOS
        for prompt, answer in zip(dialog[::2], dialog[1::2], strict=False)
    )


def dialog_of(record: dict, system: str | None = None) -> list[dict[str, str]]:
    user = record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]


def read_texts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_code_alpaca_to_llama2_chat(shared_data: Path, tmp_path: Path) -> None:
    raw_path = shared_data / "instructions" / "code_alpaca_2k.json"
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    ds = ik.read(raw_path).pipe(
        ik.normalize(), ik.quality(refusals=None, blacklist=None), ik.dedup.exact())
    assert len(raw) == 2017 and len(ds) == 2015
    assert ds.removed["reason"].to_list() == ["empty_output", "empty_output"]
    out = ds.write(tmp_path / "train.jsonl", format="text", template="llama2")
    rows = read_texts(out)
    assert len(rows) == 2015 and [r["id"] for r in rows] == ds.to_polars()["id"].to_list()
    for row, record in zip(rows, ds, strict=True):
        assert row["text"] == meta_chat_completion_text(dialog_of(record))
    # the first record straight from the published JSON, with no instructkit in between
    first = raw[0]
    assert rows[0]["text"] == meta_chat_completion_text(dialog_of(first))
    assert rows[0]["text"] == (
        "<s>[INST] What are the distinct values from the given list?\n\ndataList = [3, 9, 3, 5, 7, 9, 5]"
        " [/INST] The distinct values from the given list are 3, 5, 7 and 9. </s>")


def test_code_alpaca_to_llama2_chat_with_a_system_prompt(shared_data: Path, tmp_path: Path) -> None:
    system = "You are a careful Python programmer. Answer with code when you can."
    ds = ik.read(shared_data / "instructions" / "code_alpaca_2k.json").head(200)
    with_system = ds.with_columns(pl.lit(system).alias("system"))
    rows = read_texts(with_system.write(tmp_path / "sys.jsonl", format="text", template="llama2"))
    for row, record in zip(rows, ds, strict=True):
        assert row["text"] == meta_chat_completion_text(dialog_of(record, system))
    if "system" in inspect.signature(ik.Dataset.write).parameters:  # the writer's own option
        again = read_texts(ds.write(tmp_path / "opt.jsonl", format="text", template="llama2", system=system))
        assert again == rows
