"""Task templates: phrasings, determinism, field references, errors, recipes."""

from __future__ import annotations

import pytest

import instructkit as ik
from instructkit.templates.tasks import (
    Classify,
    ClosedQA,
    Custom,
    ExtractiveQA,
    Summarize,
    TemplateFieldError,
    Translate,
)
from instructkit.transform import _REGISTRY, from_config


def registry() -> dict:
    # the catalog may not import templates yet; importing ik.templates registers them
    return dict(_REGISTRY)

QA = [{"question": f"What is item {i}?", "context": f"Item {i} is a thing.", "answer": f"a thing {i}"} for i in range(200)]


@pytest.mark.parametrize("cls", [ExtractiveQA, ClosedQA, Summarize, Translate, Classify])
def test_each_task_has_at_least_eight_distinct_phrasings(cls):
    assert len(set(cls.default_phrasings)) >= 8


def test_extractive_qa_defaults_and_distinct_count():
    ds = ik.Dataset.from_records(QA, source="qa")
    step = ExtractiveQA(seed=3)
    out = ds.pipe(step)
    first = out[0]
    assert "What is item 0?" in first["instruction"]
    assert (first["input"], first["output"]) == ("Item 0 is a thing.", "a thing 0")
    assert step.distinct_instructions_ == 200  # the question is part of each instruction
    phrasings_used = {
        next(i for i, p in enumerate(ExtractiveQA.default_phrasings)
             if r["instruction"] == p.replace("{question}", f"What is item {n}?"))
        for n, r in enumerate(out)
    }
    assert len(phrasings_used) == len(ExtractiveQA.default_phrasings)


def test_summarize_reports_distinct_instructions_and_is_deterministic():
    recs = [{"instruction": "", "input": f"doc {i}", "output": f"sum {i}"} for i in range(300)]
    ds = ik.Dataset.from_records(recs)
    step = Summarize(seed=7)
    a = ds.pipe(step)
    assert step.distinct_instructions_ == len(Summarize.default_phrasings)
    b = ds.pipe(Summarize(seed=7))
    assert a.to_polars().equals(b.to_polars())
    c = ds.pipe(Summarize(seed=8))
    assert not a.to_polars()["instruction"].equals(c.to_polars()["instruction"])


def test_choice_depends_on_record_id_not_row_order():
    ds = ik.Dataset.from_records(QA, source="qa")
    rev = ik.Dataset.from_polars(ds.to_polars().reverse())
    a = {r["id"]: r["instruction"] for r in ds.pipe(ClosedQA(seed=1))}
    b = {r["id"]: r["instruction"] for r in rev.pipe(ClosedQA(seed=1))}
    assert a == b


def test_batches_give_the_same_result(monkeypatch):
    ds = ik.Dataset.from_records(QA, source="qa")
    whole = ds.pipe(ExtractiveQA()).to_polars()
    monkeypatch.setattr(ExtractiveQA, "batch_size", 7)
    step = ExtractiveQA()
    batched = ds.pipe(step)
    assert batched.to_polars().equals(whole)
    assert step.distinct_instructions_ == 200


def test_meta_fields_are_named_and_consumed():
    ds = ik.Dataset.from_records([{"instruction": "x", "passage": "P.", "q": "Why?", "a": "Because.", "topic": "t"}])
    out = ds.pipe(ExtractiveQA(fields={"context": "passage", "question": "meta.q", "answer": "a"}))[0]
    assert (out["input"], out["output"]) == ("P.", "Because.")
    assert "Why?" in out["instruction"]
    assert out["meta"] == {"topic": "t"}
    kept = ds.pipe(ExtractiveQA(fields={"context": "passage", "question": "q", "answer": "a"}, keep_meta=True))[0]
    assert kept["meta"]["passage"] == "P."


def test_missing_field_names_field_and_record():
    ds = ik.Dataset.from_records([{"instruction": "x", "passage": "P.", "id": "rec-7"}])
    with pytest.raises(TemplateFieldError, match=r"record 'rec-7' has no field 'summary_text'"):
        ds.pipe(Summarize(fields={"document": "passage", "summary": "summary_text"}))
    with pytest.raises(ValueError, match="unknown field role"):
        ds.pipe(Summarize(fields={"doc": "passage"}))


def test_conversations_become_single_turn():
    ds = ik.Dataset.from_records([{"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}])
    out = ds.pipe(ClosedQA(phrasings=["{question}"]))[0]
    assert out["messages"] is None
    assert (out["instruction"], out["output"]) == ("Q?", "A.")


def test_translate_constants_codes_and_per_record_languages():
    ds = ik.Dataset.from_records([{"instruction": "", "input": "Bonjour", "output": "Hello", "src": "fr", "tgt": "English"}])
    out = ds.pipe(Translate(source_lang="fr", target_lang="en", phrasings=["From {source_lang} to {target_lang}."]))[0]
    assert out["instruction"] == "From French to English."
    out = ds.pipe(Translate(fields={"source_lang": "src", "target_lang": "tgt"}, phrasings=["{source_lang}>{target_lang}"]))[0]
    assert out["instruction"] == "French>English"
    with pytest.raises(ValueError, match="target_lang is missing"):
        ds.pipe(Translate(source_lang="fr"))
    default = ds.pipe(Translate(source_lang="French", target_lang="English"))[0]["instruction"]
    assert "French" in default and "English" in default


def test_classify_lists_choices_and_maps_labels():
    recs = [{"instruction": "", "input": f"text {i}", "output": str(i % 2)} for i in range(4)]
    ds = ik.Dataset.from_records(recs)
    out = ds.pipe(Classify(labels={"0": "sports", "1": "world"}, phrasings=["Pick one of: {choices}.", "Options:\n{choices_lines}"]))
    assert [r["output"] for r in out] == ["sports", "world", "sports", "world"]
    assert {r["instruction"] for r in out} <= {"Pick one of: sports, world.", "Options:\n- sports\n- world"}
    bad = ik.Dataset.from_records([{"instruction": "", "input": "t", "output": "7", "id": "r3"}])
    with pytest.raises(TemplateFieldError, match=r"record 'r3'.*label '7'"):
        bad.pipe(Classify(labels=["0", "1"]))


def test_custom_format_string_and_jinja():
    ds = ik.Dataset.from_records([{"instruction": "", "word": "chat", "output": "cat", "lang": "French"}])
    out = ds.pipe(Custom('What does the {lang} word "{word}" mean?', input="", output="It means {output}."))[0]
    assert out["instruction"] == 'What does the French word "chat" mean?'
    assert out["output"] == "It means cat."
    assert out["meta"] == {}
    out = ds.pipe(Custom("Translate {{ w | upper }}{% if lang %} from {{ lang }}{% endif %}.", fields={"w": "word"}))[0]
    assert out["instruction"] == "Translate CHAT from French."
    assert out["output"] == "cat"  # output=None leaves the column as it was
    with pytest.raises(TemplateFieldError, match="no field 'missing'"):
        ds.pipe(Custom("{missing}"))
    with pytest.raises(TemplateFieldError, match="no field 'nope'"):
        ds.pipe(Custom("{{ nope }}"))


def test_braces_in_record_text_stay_literal():
    ds = ik.Dataset.from_records([{"question": "Format {x} in Python?", "answer": "Use f-strings."}])
    assert ds.pipe(ClosedQA(phrasings=["Q: {question}"]))[0]["instruction"] == "Q: Format {x} in Python?"


def test_recipes_and_public_names():
    step = from_config({"template.qa": {"seed": 2, "fields": {"context": "passage"}}})
    assert isinstance(step, ExtractiveQA) and step.seed == 2
    assert step.to_config() == {"template.qa": {"fields": {"context": "passage"}, "seed": 2}}
    names = set(registry())
    assert {"template.qa", "template.closed_qa", "template.summarize", "template.translate",
            "template.classify", "template.custom"} <= names
    assert ik.templates.qa is ExtractiveQA and ik.templates.custom is Custom
