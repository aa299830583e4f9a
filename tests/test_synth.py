"""synth.corpus: deterministic, streamed corpora with correct ground truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _records(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_corpus_truth_is_exact(tmp_path: Path) -> None:
    c = ik.synth.corpus(
        12_000, seed=3, dup_fraction=0.2, edit_fraction=0.1, languages={"en": 2, "fr": 1, "zh": 1},
        pii_rate=0.02, contamination=0.01, benchmark=["What is the boiling point of water?"],
        path=tmp_path / "c.jsonl",
    )
    recs = _records(c.path)
    assert len(recs) == 12_000 and c.n == 12_000
    dups = c.duplicates()
    assert 0.18 < len(dups) / 12_000 < 0.22
    for row in dups.head(300).iter_rows(named=True):  # true Jaccard, recomputed from the text
        a, b = recs[row["id"]], recs[row["dup_of"]]
        sa = _shingles(a["instruction"] + " " + a["output"])
        sb = _shingles(b["instruction"] + " " + b["output"])
        assert row["jaccard"] == pytest.approx(len(sa & sb) / len(sa | sb))
    assert dups.filter(pl.col("edits") == 0)["jaccard"].min() == 1.0
    pii = c.pii()
    assert len(pii) == 240 and set(pii["kind"]) <= {"email", "phone", "ip_address", "credit_card"}
    assert all(v in recs[i]["output"] for i, v in pii.select("id", "value").iter_rows())
    contam = c.contamination()
    assert len(contam) == 120
    assert all(recs[i]["instruction"] == "What is the boiling point of water?" for i in contam["id"])
    # plants stay out of duplicate pairs, so each truth table can be scored on its own
    paired = set(dups["id"]) | set(dups["dup_of"])
    assert not paired & (set(pii["id"]) | set(contam["id"]))
    langs = c.languages()
    assert set(langs["lang"]) == {"en", "fr", "zh"} and len(langs) == 12_000
    lang = dict(langs.iter_rows())
    assert all(lang[i] == lang[j] for i, j in dups.select("id", "dup_of").iter_rows())


def test_corpus_is_deterministic_and_format_independent(tmp_path: Path) -> None:
    args = dict(seed=7, dup_fraction=0.3, pii_rate=0.01)
    a = ik.synth.corpus(15_000, path=tmp_path / "a.jsonl", **args)
    b = ik.synth.corpus(15_000, path=tmp_path / "b.jsonl", **args)
    assert hashlib.sha256(a.path.read_bytes()).digest() == hashlib.sha256(b.path.read_bytes()).digest()
    assert a.duplicates().equals(b.duplicates())
    other = ik.synth.corpus(15_000, path=tmp_path / "o.jsonl", seed=8)
    assert a.path.read_bytes() != other.path.read_bytes()
    pq = ik.synth.corpus(15_000, path=tmp_path / "a.parquet", **args)
    gz = ik.synth.corpus(15_000, path=tmp_path / "a.jsonl.gz", **args)
    frames = [pl.concat(list(ik.scan(p.path, batch_size=4_000))).drop("source") for p in (a, pq, gz)]
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    # a prefix of a bigger corpus is the smaller corpus (blocks are independent)
    big = ik.synth.corpus(25_000, path=tmp_path / "big.jsonl", **args)
    assert big.path.read_bytes().startswith(a.path.read_bytes()[: a.path.read_bytes().index(b"synth:10000")])


def test_corpus_words_sets_record_length(tmp_path: Path) -> None:
    # the scaling benchmark relies on this: 220 words make ~1 KB records, 10M records ~10 GB
    sizes = {}
    for words in (50, 220):
        c = ik.synth.corpus(2_000, seed=3, languages=("en", "fr", "de"), words=words, path=tmp_path / f"w{words}.jsonl")
        records = list(_records(c.path).values())
        assert all(len((r["instruction"] + " " + r["output"]).split()) == words for r in records)
        sizes[words] = c.path.stat().st_size / len(records)
    assert 900 < sizes[220] < 1100 and 200 < sizes[50] < 320, sizes
    with pytest.raises(ValueError, match="words >= ngram"):
        ik.synth.corpus(10, words=3, path=tmp_path / "x.jsonl")


def test_corpus_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="benchmark="):
        ik.synth.corpus(10, contamination=0.1, path=tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="languages must be among"):
        ik.synth.corpus(10, languages=["xx"], path=tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match=".jsonl, .jsonl.gz or .parquet"):
        ik.synth.corpus(10, path=tmp_path / "x.csv")
    empty = ik.synth.corpus(0, path=tmp_path / "e.jsonl")
    assert empty.path.read_bytes() == b"" and len(empty.duplicates()) == 0


def test_corpus_finds_dedup_recall(tmp_path: Path) -> None:
    """The truth is usable: MinHash at 0.8 finds nearly every planted pair above 0.9."""
    c = ik.synth.corpus(3_000, seed=1, dup_fraction=0.2, path=tmp_path / "c.jsonl")
    out = ik.scan(c.path).batches()
    frame = pl.concat([f for _, f, _ in out])
    removed = ik.Dataset(frame).pipe(ik.dedup.minhash(threshold=0.8)).removed
    high = c.duplicates().filter(pl.col("jaccard") >= 0.9)
    found = high.join(removed, on="id", how="semi").height + high.join(removed.rename({"id": "dup_of"}), on="dup_of", how="semi").height
    assert found >= 0.95 * high.height
