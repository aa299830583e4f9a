"""Workflow (b): exact Stanford Alpaca prompts, and the self-instruct seed tasks.

The prompt strings are Stanford Alpaca's ``PROMPT_DICT`` (tatsu-lab/stanford_alpaca,
train.py), and a training text is ``source + output + eos`` as its ``SupervisedDataset``
builds it (``DEFAULT_EOS_TOKEN = "</s>"``).

Measured on ../shared/data: stanford_alpaca_seed_tasks.jsonl has 175 tasks with one
instance each (125 with an input), read as 175 records; alpaca_en_demo.json has 999 records.
"""

from __future__ import annotations

import json
from pathlib import Path

import instructkit as ik
from instructkit.templates.formats import get_format

PROMPT_DICT = {
    "prompt_input": (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
    ),
    "prompt_no_input": (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:"
    ),
}
DEFAULT_EOS_TOKEN = "</s>"


def stanford_text(example: dict) -> str:
    prompt_input, prompt_no_input = PROMPT_DICT["prompt_input"], PROMPT_DICT["prompt_no_input"]
    source = (prompt_input.format_map(example) if example.get("input", "") != ""
              else prompt_no_input.format_map(example))
    return source + f"{example['output']}{DEFAULT_EOS_TOKEN}"


def test_seed_tasks_read_exactly_and_render_as_stanford_does(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "instructions" / "stanford_alpaca_seed_tasks.jsonl"
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    ds = ik.read(path)
    assert len(tasks) == len(ds) == 175 and ds.removed.height == 0
    assert all(len(t["instances"]) == 1 for t in tasks)
    # as generate_instruction.py uses them: instruction, instances[0].input / output
    examples = [{"instruction": t["instruction"], "input": t["instances"][0]["input"],
                 "output": t["instances"][0]["output"]} for t in tasks]
    assert sum(1 for e in examples if e["input"]) == 125
    for record, example in zip(ds, examples, strict=True):
        assert {k: record[k] for k in ("instruction", "input", "output")} == example
        assert record["meta"]["name"] and isinstance(record["meta"]["is_classification"], bool)
    rendered = ds.render("alpaca").to_list()
    assert rendered == [stanford_text(e) for e in examples]
    written = ds.write(tmp_path / "seed.jsonl", format="text", template="alpaca")
    assert [json.loads(line)["text"] for line in written.read_text(encoding="utf-8").splitlines()] == rendered


def test_alpaca_demo_renders_as_stanford_does(shared_data: Path) -> None:
    path = shared_data / "instructions" / "alpaca_en_demo.json"
    examples = json.loads(path.read_text(encoding="utf-8"))
    ds = ik.read(path)
    assert len(ds) == len(examples) == 999
    assert ds.render("alpaca").to_list() == [stanford_text(e) for e in examples]
    # the prompt alone is what a generation run feeds the model
    fmt = get_format("alpaca")
    for example in examples[:50]:
        key = "prompt_input" if example["input"] else "prompt_no_input"
        assert fmt.prompt(example) == PROMPT_DICT[key].format_map(example)
