"""Workflow (d): plain NLP data (AG News topic prompts from self-instruct's T0 templates)
turned into varied instructions with ``ik.templates.classify``.

The published file holds ``prompt`` (article + "What label best describes this news
article?") and ``completion`` (label + ``<|endoftext|>``). A user strips the fixed question
and the end marker, keeps the article as ``input``, and lets ``classify`` write the
instruction from its phrasings with AG News's four classes as choices.

Measured on ../shared/data: 200 records (122 "Science and technology", 78 "Business"), all
ending with the fixed question; the 9 built-in phrasings all occur with seed 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

import instructkit as ik
from instructkit.templates.formats import get_format

QUESTION = "\nWhat label best describes this news article?\n"
END = "<|endoftext|>"
LABELS = ["World", "Sports", "Business", "Science and technology"]


def test_ag_news_into_classification_instructions(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "raw" / "ag_news_t0_classify.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    ds = ik.read(path)
    assert len(ds) == len(raw) == 200
    frame = ds.to_polars()
    assert frame["instruction"].str.ends_with(QUESTION).all() and frame["output"].str.ends_with(END).all()
    plain = ds.with_columns(
        pl.col("instruction").str.strip_suffix(QUESTION).alias("input"),
        pl.lit("").alias("instruction"),
        pl.col("output").str.strip_suffix(END),
    )
    step = ik.templates.classify(labels=LABELS, seed=0)
    out = plain.pipe(step)
    assert len(out) == 200 and out.removed.height == 0
    assert step.distinct_instructions_ == 9
    got = out.to_polars()
    assert dict(got.group_by("output").len().rows()) == {"Science and technology": 122, "Business": 78}
    assert got["instruction"].str.contains("World").all()
    assert got["instruction"].str.contains("Science and technology").all()
    assert not got["input"].str.contains("What label best describes", literal=True).any()
    assert not got["output"].str.contains(END, literal=True).any()
    for record, published in zip(out, raw, strict=True):
        assert record["input"] + QUESTION == published["prompt"]
        assert record["output"] + END == published["completion"]
    # the same seed gives the same instructions; a different seed other phrasings
    assert plain.pipe(ik.templates.classify(labels=LABELS, seed=0)).to_polars().equals(got)
    other = plain.pipe(ik.templates.classify(labels=LABELS, seed=1)).to_polars()
    assert (other["instruction"] != got["instruction"]).sum() > 100

    written = out.write(tmp_path / "ag_news_alpaca.json", format="alpaca", ids=False)
    back = ik.read(written)
    assert back.to_polars().select("instruction", "input", "output").equals(got.select("instruction", "input", "output"))
    first = out[0]
    assert get_format("alpaca").prompt(first) == (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n"
        f"### Instruction:\n{first['instruction']}\n\n### Input:\n{first['input']}\n\n### Response:")
