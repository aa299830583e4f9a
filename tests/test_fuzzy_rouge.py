"""ik.dedup.fuzzy(scorer="rougeL"): self-instruct's ROUGE-L filter, checked against the
``rouge-score`` package."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

import instructkit as ik
from instructkit.dedup import _rouge

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer", reason="rouge-score is in the dev extra")


def ds(rows: list[dict], source: str = "t") -> ik.Dataset:
    return ik.Dataset.from_records(rows, source=source)


def reference_removed(pool_texts: list[str], texts: list[str], threshold: float = 0.7) -> dict[int, float]:
    """The self-instruct loop with rouge_score: index -> best F of every record it drops.

    Only pairs whose F provably cannot exceed the threshold are skipped (LCS <= the size of
    the token multiset intersection, which also bounds it by the shorter length), so the
    result is the unpruned loop's; the full unpruned loop is run in the benchmark.
    """
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = [scorer._tokenizer.tokenize(t) for t in pool_texts]
    bags = [Counter(p) for p in pool]
    removed = {}
    for i, text in enumerate(texts):
        tokens = scorer._tokenizer.tokenize(text)
        bag = Counter(tokens)
        best = 0.0
        for p, b in zip(pool, bags, strict=True):
            if tokens and p and 2 * sum((bag & b).values()) / (len(tokens) + len(p)) <= threshold - 1e-6:
                continue
            best = max(best, rouge_scorer._score_lcs(tokens, p).fmeasure)
        if best > threshold:
            removed[i] = best
            continue
        pool.append(tokens)
        bags.append(bag)
    return removed


def test_tokenizer_is_rouge_scores():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for text in ["Write a Python function: sum(a, b)!", "Ünïcödé  KELVIN \u212a İstanbul", "", "---", "naïve café's x2"]:
        assert _rouge.tokenize(text) == scorer._tokenizer.tokenize(text)


def test_scores_equal_rouge_score_fmeasure():
    rng = np.random.default_rng(0)
    words = ["a", "b", "c", "d", "e", "f"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(60)]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    step = ik.dedup.fuzzy(scorer="rougeL", threshold=1e-6)
    # with a tiny threshold every record sharing a token with the pool drops against its best member
    out = ds([{"instruction": t} for t in texts]).pipe(step)
    for row in out.removed.iter_rows(named=True):
        d = json.loads(row["detail"])
        i, k = int(row["id"].split(":")[1]), int(d["kept"].split(":")[1])
        f = rouge_scorer._score_lcs(scorer._tokenizer.tokenize(texts[i]), scorer._tokenizer.tokenize(texts[k])).fmeasure
        assert d["score"] == pytest.approx(f, abs=1e-4)


def test_greedy_pool_threshold_is_strict_and_against_seeds():
    seeds = ds([{"instruction": "Write a function to reverse a string."}], "seed")
    data = ds([
        {"instruction": "Write a function that reverses a string."},   # F(seed) = 0.8 -> drop
        {"instruction": "Sort a list of numbers in Python."},
        {"instruction": "Sort a list of numbers in Java."},            # vs kept t:1: 6/7 -> drop
        {"instruction": "one two three four five six seven"},
        {"instruction": "one two three four five six seven x y z a b c d e f g h i j"},
    ])
    out = data.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7, against=seeds))
    assert out.removed["id"].to_list() == ["t:0", "t:2"]
    assert json.loads(out.removed["detail"][0])["kept"] == "seed:0"
    assert json.loads(out.removed["detail"][1])["kept"] == "t:1"
    # F = 0.7 in exact arithmetic: rouge_score's floats give 0.7000000000000001 for lengths
    # 7 and 13 (dropped at > 0.7) but 0.7 for 10 and 10 (kept); the filter agrees with both
    for second, kept in (("a b c d e f g h i j k l m", 1), ("a b c d e f g x y z", 2)):
        first = "a b c d e f g" if kept == 1 else "a b c d e f g u v w"
        f = rouge_scorer._score_lcs(first.split(), second.split()).fmeasure
        assert (f > 0.7) == (kept == 1)
        pair = ds([{"instruction": first}, {"instruction": second}])
        assert len(pair.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7))) == kept
    with pytest.raises(ValueError, match="exactly"):
        ik.dedup.fuzzy(scorer="rougeL", blocking="minhash")


def test_rouge_matches_reference_on_random_pool():
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(25)]
    texts = [" ".join(rng.choice(vocab, size=rng.integers(0, 15))) for _ in range(400)]
    seeds = texts[:20]
    rest = texts[20:]
    for threshold in (0.5, 0.7):
        out = ds([{"instruction": t} for t in rest]).pipe(
            ik.dedup.fuzzy(scorer="rougeL", threshold=threshold, against=ds([{"instruction": s} for s in seeds], "s"))
        )
        ours = sorted(int(i.split(":")[1]) for i in out.removed["id"].to_list())
        assert ours == sorted(reference_removed(seeds, rest, threshold))


def test_rapidfuzz_exact_mode_finds_every_pair():
    data = ds([
        {"instruction": "Give three tips for staying healthy."},
        {"instruction": "Name the capital of France."},
        {"instruction": "Tips for staying healthy: give three."},
        {"instruction": "Give three tips for staying healthy!"},
    ])
    out = data.pipe(ik.dedup.fuzzy(threshold=0.9, blocking="exact"))
    assert out.removed["id"].to_list() == ["t:3"]
    assert json.loads(out.removed["detail"][0])["kept"] == "t:0"


@pytest.mark.parametrize(
    ("name", "seeds"),
    [
        ("code_alpaca_2k.json", "code_alpaca_seed_tasks.jsonl"),
        ("new_codealpaca.json", "code_alpaca_seed_tasks.jsonl"),
        ("alpaca_en_demo.json", "stanford_alpaca_seed_tasks.jsonl"),
    ],
)
def test_removed_set_equals_rouge_score_on_real_data(shared_data, name, seeds):
    data = ik.read(shared_data / "instructions" / name)
    ref = ik.read(shared_data / "instructions" / seeds)
    out = data.pipe(ik.dedup.fuzzy(scorer="rougeL", threshold=0.7, against=ref))
    expected = reference_removed(ref.to_polars()["instruction"].to_list(), data.to_polars()["instruction"].to_list())
    ids = data.to_polars()["id"].to_list()
    assert sorted(out.removed["id"].to_list(), key=ids.index) == [ids[i] for i in sorted(expected)]
    scores = {r["id"]: json.loads(r["detail"])["score"] for r in out.removed.iter_rows(named=True)}
    for i, f in expected.items():
        assert scores[ids[i]] == pytest.approx(f, abs=1e-4)
    assert len(out) + out.removed.height == len(data)
