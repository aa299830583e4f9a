"""Tests for ik.dedup (exact, minhash, fuzzy), its kernels and the synthetic corpus."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import instructkit as ik
from instructkit.dedup import _kernel as K
from instructkit.transform import from_config

STORY = (
    "Write a short story about a robot who learns to paint. The robot lives in a small "
    "town by the sea, and every morning it walks to the harbour to watch the fishing boats "
    "come in with the light."
)


def ds(rows: list[dict], source: str = "t") -> ik.Dataset:
    return ik.Dataset.from_records(rows, source=source)


def detail(out: ik.Dataset, i: int = 0) -> dict:
    return json.loads(out.removed["detail"][i])


# exact ---------------------------------------------------------------------------------------
def test_exact_normalizes_and_names_the_kept_record():
    data = ds([
        {"instruction": "Say hi.", "output": "Hi!"},
        {"instruction": "say   HI", "output": "hi"},
        {"instruction": "Say bye.", "output": "Bye!"},
    ])
    out = data.pipe(ik.dedup.exact())
    assert [r["id"] for r in out] == ["t:0", "t:2"]
    assert out.removed["reason"].to_list() == ["exact_duplicate"]
    assert detail(out)["kept"] == "t:0"
    assert len(out) + out.removed.height == len(data)


@pytest.mark.parametrize(
    ("option", "second"),
    [("lowercase", "SAY HI"), ("strip_punctuation", "say hi!!"), ("collapse_whitespace", "say  hi")],
)
def test_exact_each_normalization_can_be_switched_off(option, second):
    data = ds([{"instruction": "say hi"}, {"instruction": second}])
    assert len(data.pipe(ik.dedup.exact())) == 1
    assert len(data.pipe(ik.dedup.exact(**{option: False}))) == 2
    assert len(data.pipe(ik.dedup.exact(normalize=False))) == 2


def test_exact_keep_longest():
    data = ds([{"instruction": "hi", "output": "x"}, {"instruction": "Hi!!!", "output": "X."}])
    out = data.pipe(ik.dedup.exact(keep="longest"))
    assert [r["id"] for r in out] == ["t:1"]
    assert detail(out)["kept"] == "t:1"


def test_exact_counts_every_turn_of_a_conversation():
    def conv(last: str) -> dict:
        return {"conversations": [
            {"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi"},
            {"from": "human", "value": "Tell me a joke"}, {"from": "gpt", "value": last},
        ]}
    data = ds([conv("Knock knock."), conv("Why did the chicken cross?"), conv("Knock knock.")])
    assert data.to_polars()["messages"][0] is not None
    out = data.pipe(ik.dedup.exact())
    assert out.removed["id"].to_list() == ["t:2"]


def test_upsampled_copies_are_left_alone():
    rows = [
        {"instruction": "A question", "output": "An answer"},
        {"instruction": "A question", "output": "An answer", "repeat": 1},
        {"instruction": "A question", "output": "An answer"},
    ]
    data = ds(rows)
    assert json.loads(data.to_polars()["meta"][1])["repeat"] == 1
    for step in (ik.dedup.exact(), ik.dedup.minhash(threshold=0.5), ik.dedup.fuzzy()):
        out = data.pipe(step)
        assert out.removed["id"].to_list() == ["t:2"], step


def test_exact_against_a_reference_leaves_the_reference_alone(tmp_path):
    ref = ds([{"instruction": "Known task", "output": "x"}, {"instruction": "known task", "output": "x"}], "ref")
    new = ds([{"instruction": "KNOWN task", "output": "x"}, {"instruction": "New task", "output": "y"},
              {"instruction": "New task", "output": "y"}], "new")
    out = new.pipe(ik.dedup.exact(against=ref))
    assert out.removed["id"].to_list() == ["new:0", "new:2"]
    first = detail(out, 0)
    assert first["kept"] == "ref:0" and first["reference"] is True
    assert detail(out, 1)["kept"] == "new:1"
    # the recipe world: a path read with ik.read
    path = tmp_path / "ref.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": "Known task", "output": "x"}) for _ in range(1)))
    out2 = new.pipe(from_config({"dedup.exact": {"against": str(path)}}))
    assert out2.removed["id"].to_list() == ["new:0", "new:2"]


def test_recipe_names_and_round_trip():
    for name in ("dedup.exact", "dedup.minhash", "dedup.fuzzy"):
        step = from_config({name: {}})
        assert step.name == name and step.kind == "global"
    step = ik.dedup.minhash(threshold=0.7, unit="char", ngram=3)
    assert from_config(step.to_config()).get_params() == step.get_params()


def test_bad_field_is_named():
    with pytest.raises(ValueError, match="nope"):
        ds([{"instruction": "a"}]).pipe(ik.dedup.exact(fields=("nope",)))
    with pytest.raises(ValueError, match="keep"):
        ik.dedup.minhash(keep="last")


# exact keys: the compiled ASCII path against key_expr() -------------------------------------
# pieces that exercise every branch of the kernel: whitespace runs of each kind (0x1C-0x1F are
# not regex whitespace, NUL and DEL are kept), punctuation runs inside and around them, case
_ASCII_PIECES = [
    *(chr(b) for b in range(128)),
    "word", "Word", "WORDS", "abcdefgh", "plain lowercase words", "x9", "  ", "   ", " \t ", "\r\n",
    "\n\n", "\x0b\x0c", " - ", "...", "!!", "?!", " (a) ", '"q"', "\x1c\x1d", "\x1e \x1f", "\x7f", "\x00",
]
# Unicode punctuation and symbols, letters that change case, NBSP and other Unicode
# whitespace, CJK, emoji, a combining mark
_OTHER_PIECES = ["\u201c", "\u201d", "\u2014", "\u00e9", "\u00c9", "\u00a0", "\u2003", "\u3000", "\u0085",
                 "\u4e2d\u6587", "\U0001f600", "\u00bf", "\u00b1", "e\u0301", "\u0130", "\u03a3"]


def _random_texts(rng: np.random.Generator, n: int, pieces: list[str]) -> list[str]:
    texts = []
    for _ in range(n):
        parts = rng.choice(len(pieces), size=int(rng.integers(0, 24)))
        texts.append("".join(pieces[i] for i in parts))
    return texts


def _regex_keys(step: ik.dedup.Exact, texts: pl.Series) -> pl.Series:
    return pl.DataFrame({"text": texts}).select(step.key_expr())["text"]


_SWITCHES = [
    {},
    {"lowercase": False},
    {"strip_punctuation": False},
    {"collapse_whitespace": False},
    {"lowercase": False, "strip_punctuation": False, "collapse_whitespace": False},
    {"normalize": False},
]


@pytest.mark.parametrize("switches", _SWITCHES)
def test_exact_keys_equal_the_regex_keys_on_random_ascii(switches):
    step = ik.dedup.exact(**switches)
    rng = np.random.default_rng(7)
    texts = pl.Series(_random_texts(rng, 3_000, _ASCII_PIECES), dtype=pl.String)
    assert all(t.isascii() for t in texts)
    got, want = step.keys(texts), _regex_keys(step, texts)
    assert got.to_list() == want.to_list()
    # and so the hashes observe keeps
    assert got.hash(11).equals(want.hash(11))


@pytest.mark.parametrize("switches", _SWITCHES[:4])
def test_exact_keys_equal_the_regex_keys_on_mixed_batches(switches):
    step = ik.dedup.exact(**switches)
    rng = np.random.default_rng(8)
    texts = _random_texts(rng, 2_000, _ASCII_PIECES + _OTHER_PIECES)
    texts[::97] = [None] * len(texts[::97])
    series = pl.Series(texts, dtype=pl.String)
    assert 0 < sum(t is not None and not t.isascii() for t in texts) < len(texts) - 200
    assert step.keys(series).to_list() == _regex_keys(step, series).to_list()
    # a slice (offsets that do not start at 0) and several chunks
    parts = pl.concat([series[:700], series[700:1_500], series[1_500:]], rechunk=False)
    for sub in (series[333:1_444], parts):
        assert step.keys(sub).to_list() == _regex_keys(step, sub).to_list()


def test_exact_keys_edge_cases():
    step = ik.dedup.exact()
    texts = ["", " ", "\t\r\n", "!!", " a ", "A\x1cB", "\x1c", " \x1f ", "a\x7f b", "\x00 \x00", "a - b",
             "a -b", "- a -", "x" * 8 + " " + "y" * 8, "abcdefg ", " abcdefgh ", "ABCDEFGH  IJ",
             "a\u00a0b", "\u00a0a\u00a0", "caf\u00e9 \u2014 ok", None]
    series = pl.Series(texts, dtype=pl.String)
    assert step.keys(series).to_list() == _regex_keys(step, series).to_list()
    assert step.keys(pl.Series([], dtype=pl.String)).to_list() == []
    assert step.keys(pl.Series([None, None], dtype=pl.String)).to_list() == [None, None]


def test_exact_byte_classes_agree_with_the_regexes_on_every_ascii_char():
    import unicodedata

    step = ik.dedup.exact()
    chars = [chr(b) for b in range(128)]
    got = _regex_keys(step, pl.Series([f"x{c}y" for c in chars])).to_list()
    dropped = [c for c, k in zip(chars, got, strict=True) if k == "xy"]
    blank = [c for c, k in zip(chars, got, strict=True) if k == "x y"]
    assert dropped == [c for c in chars if unicodedata.category(c)[0] in "PS"]
    assert len(dropped) == 32
    # the regex \s: Unicode White_Space, not str.isspace() (which also takes 0x1C-0x1F)
    assert "".join(blank) == "\t\n\x0b\x0c\r "


def test_exact_drops_the_same_records_as_the_regex_keys(tmp_path, monkeypatch):
    corpus = ik.synth.corpus(5_000, seed=1, languages=("en", "fr", "ru"), path=tmp_path / "c.jsonl")
    frame = ik.read(corpus.path).to_polars()
    # exact copies that differ in case, punctuation and whitespace, some of them twice
    rng = np.random.default_rng(1)
    picked = frame[rng.choice(frame.height, 600, replace=False).tolist()]
    variants = picked.with_columns(
        pl.col("id") + "-v",
        pl.col("instruction").str.to_uppercase() + "?!",
        ("  " + pl.col("output").str.replace_all(" ", "\t ", literal=True) + " ...").alias("output"),
    )
    data = ik.Dataset(pl.concat([frame, variants, variants[:100].with_columns(pl.col("id") + "2")]))
    for switches in ({}, {"lowercase": False}, {"keep": "longest"}):
        out = data.pipe(ik.dedup.exact(**switches))
        with monkeypatch.context() as m:  # exact dedup as it was: every key by the regexes
            m.setattr(ik.dedup.Exact, "keys", lambda self, text: _regex_keys(self, text).alias("key"))
            want = data.pipe(ik.dedup.exact(**switches))
        assert out.removed.height >= 100
        assert out.removed.select("id", "reason", "detail").equals(want.removed.select("id", "reason", "detail"))
        assert [r["id"] for r in out] == [r["id"] for r in want]


def test_eight_byte_stores_are_little_endian():
    import numba as nb

    from instructkit.dedup import _jit

    @nb.njit
    def stores(out, at, value):  # noqa: ANN001, ANN202
        _jit.store8(out, at, value)
        _jit.store_bytes(out, at + 8, value)

    out = np.zeros(24, np.uint8)
    stores(out, 3, np.uint64(0x0807060504030201))
    assert out[3:19].tolist() == list(range(1, 9)) * 2
    assert not out[:3].any() and not out[19:].any()


# minhash kernels -----------------------------------------------------------------------------
def _python_shingles(text: str, ngram: int, unit: str, seed: int) -> list[int]:
    """The kernel's shingle hashes, one code point at a time in plain Python: FNV-1a over
    the lower-cased code points of each token, fmix64, tokens folded n at a time."""
    from instructkit._mix import fmix64
    from instructkit.dedup import _jit

    mask = (1 << 64) - 1

    def mix(x: int) -> int:
        return int(fmix64(np.array([x], np.uint64))[0])

    klass, lower = K._tables()
    basis = 0xCBF29CE484222325 ^ mix(seed)
    fnv, fold = int(_jit.FNV_PRIME), int(_jit.FOLD)
    tokens: list[int] = []
    if unit == "char":
        spaced = False
        for ch in text:
            c = ord(ch)
            if klass[c] & _jit.SPACE:
                spaced = bool(tokens)
                continue
            if spaced:
                tokens.append(mix(((basis ^ 32) * fnv) & mask))
                spaced = False
            tokens.append(mix(((basis ^ int(lower[c])) * fnv) & mask))
    else:
        h, in_word = basis, False
        for ch in text:
            c = ord(ch)
            if klass[c] & _jit.WORD:
                h, in_word = ((h ^ int(lower[c])) * fnv) & mask, True
            elif in_word:
                tokens.append(mix(h))
                h, in_word = basis, False
        if in_word:
            tokens.append(mix(h))
    width = min(len(tokens), ngram)
    out = []
    for i in range(len(tokens) - width + 1 if tokens else 0):
        acc = tokens[i]
        for k in range(1, width):
            acc = (acc * fold + tokens[i + k]) & mask
        out.append(mix(acc) >> 32)
    return out


@pytest.mark.parametrize("unit", ["word", "char"])
def test_shingle_hashes_equal_a_plain_python_tokenizer(unit):
    """Words end at any non-word code point, wherever it falls; multi-byte UTF-8 (2, 3 and
    4 bytes), underscores, digits and separators at either end included."""
    texts = [STORY, "", "   ", "one", "Two words", "  lead and trail!  ", "a-b_c d'e 42x",
             "Ünïcödé wörds — ÇA VA? 中文 字符 😀emoji😀 end", "tab\tand\nnew line", "ß ΣΊΣΥΦΟΣ"]
    hashes, counts = K.shingle_hashes(pl.Series(texts), ngram=3, unit=unit, seed=11)
    ends = np.cumsum(counts)
    for d, text in enumerate(texts):
        assert hashes[ends[d] - counts[d] : ends[d]].tolist() == _python_shingles(text, 3, unit, 11), text


def test_signatures_equal_datasketch_for_the_same_shingle_hashes():
    from datasketch import MinHash as DSMinHash

    texts = pl.Series([STORY, "a b", "", "一 二 三 四 五 六", STORY.upper()])
    hashes, counts = K.shingle_hashes(texts, ngram=5, seed=7)
    sig = K.signatures(hashes, counts, num_perm=64, seed=7)
    ends = np.cumsum(counts)
    for d in range(len(texts)):
        ref = DSMinHash(num_perm=64, seed=7, hashfunc=int)
        ref.update_batch(hashes[ends[d] - counts[d] : ends[d]].tolist())
        assert np.array_equal(ref.hashvalues, sig[d]), d
    assert counts.tolist()[:3] == [len(STORY.split()) - 4, 1, 0]
    assert np.array_equal(sig[0], sig[4])  # case does not matter


def test_estimated_jaccard_agrees_with_datasketch_and_truth_on_1000_pairs():
    from datasketch import MinHash as DSMinHash

    frame = ik.synth.near_duplicates(2_600, words=60, dup_fraction=0.4, seed=5).to_polars()
    pairs = frame.filter(pl.col("dup_of").is_not_null()).head(1000)
    assert pairs.height == 1000
    index = {k: i for i, k in enumerate(frame["id"].to_list())}
    left = np.array([index[k] for k in pairs["id"]])
    right = np.array([index[k] for k in pairs["dup_of"]])
    text = K.document_text(frame, ["instruction", "input", "output"])
    sig = K.minhash(text, ngram=5, unit="word", num_perm=128, seed=1).signatures
    ours = K.estimated_jaccard(sig[left], sig[right])
    hashes, counts = K.shingle_hashes(text, 5, "word", 1)
    ends = np.cumsum(counts)

    def sketch(i: int) -> DSMinHash:
        m = DSMinHash(num_perm=128, seed=1, hashfunc=int)
        m.update_batch(hashes[ends[i] - counts[i] : ends[i]].tolist())
        return m

    theirs = np.array([sketch(i).jaccard(sketch(j)) for i, j in zip(left, right, strict=True)])
    assert np.abs(ours - theirs).max() <= 0.05
    truth = pairs["jaccard"].to_numpy()
    assert np.abs(ours - truth).mean() < 0.03


def test_tokens_are_python_words_lower_cased_across_scripts():
    import re

    texts = ["Hello, WORLD!  naïve_Café 42 ΣΊΣΥΦΟΣ 😀 end", "hello world naïve_café 42 σίσυφοσ end"]
    words = [re.findall(r"\w+", t.lower()) for t in texts]
    hashes, counts = K.shingle_hashes(pl.Series(texts), ngram=1)
    assert counts.tolist() == [len(w) for w in words] == [6, 6]
    assert hashes[:6].tolist() == hashes[6:].tolist()
    assert len(set(hashes[:6].tolist())) == 6
    # characters: whitespace runs are one space, the ends are trimmed, emoji are one token
    h, c = K.shingle_hashes(pl.Series(["  a \t\n B😀 ", "a b😀", "ab😀"]), ngram=1, unit="char")
    assert c.tolist() == [4, 4, 3]
    assert h[:4].tolist() == h[4:8].tolist()


def test_state_keeps_ids_in_ram_and_hashes_on_disk(tmp_path):
    import gc
    import pickle

    frame = ik.synth.near_duplicates(2_000, words=100, seed=6).to_polars()
    step = ik.dedup.minhash(spill_dir=tmp_path)
    state = step.observe(frame)
    bands, _ = step.banding()
    assert state.band(bands - 1).shape == (2_000,)
    assert state.ram_bytes() / len(state) < 50
    # the shingle hashes and the band hashes; the signatures are recomputed when needed
    assert state.disk_bytes() == 4 * int(state.shingles.sum()) + 8 * bands * 2_000
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [state.spill.path.rsplit("/", 1)[1]]
    # a pickled state (a Ray worker's) takes its file along; the file goes with the last owner
    moved = pickle.loads(pickle.dumps(state))
    del state
    gc.collect()
    assert files[0].exists()
    assert step.decide([moved]).height > 0
    del moved
    gc.collect()
    assert not files[0].exists()


def test_exact_jaccard_matches_python_sets():
    texts = pl.Series([STORY, STORY.replace("sea", "lake"), "a b a b a b", "a b a b c", "", "x"])
    hashes, counts = K.shingle_hashes(texts, ngram=2, seed=3)
    left, right = np.array([0, 2, 4, 5, 0]), np.array([1, 3, 5, 5, 2])
    ends = np.cumsum(counts)

    def hset(i: int) -> set[int]:
        return set(hashes[ends[i] - counts[i] : ends[i]].tolist())

    want = [len(hset(i) & hset(j)) / len(hset(i) | hset(j)) if hset(i) | hset(j) else 0.0
            for i, j in zip(left, right, strict=True)]
    assert K.exact_jaccard(hashes, counts, left, right).tolist() == pytest.approx(want)


def test_verify_modes():
    frame = ik.synth.near_duplicates(3_000, words=60, seed=8).to_polars()
    found = {}
    for mode in ("exact", "signature", "none"):
        step = ik.dedup.minhash(verify=mode)
        state = step.observe(frame)
        assert state.has_hashes == (mode == "exact")
        found[mode] = step.decide([state]).height
    assert found["none"] >= max(found["exact"], found["signature"])
    assert abs(found["exact"] - found["signature"]) < 0.1 * found["exact"]
    with pytest.raises(ValueError, match="verify"):
        ik.dedup.minhash(verify="maybe")


def test_exact_state_spills_no_signatures_and_decides_as_with_them():
    """With verify="exact" the spill file holds the shingle hashes, not the signatures: the
    rows decide needs are recomputed from them. The drops (ids, kept ids, Jaccard estimates)
    equal those of a state whose file holds the signatures K.minhash computed directly,
    also when decide runs under another banding (a threshold sweep), with keep="longest"
    and with a reference set."""
    from dataclasses import replace

    from instructkit.dedup._spill import Rows, SpillFile

    base = ik.synth.near_duplicates(2_000, seed=1).to_polars()
    # empty texts and texts shorter than ngram recompute like any other
    odd = base.head(4).with_columns(pl.Series("instruction", ["", "a b", "a b", "x"]), pl.lit("").alias("input"),
                                    pl.lit("").alias("output"), pl.Series("id", [f"odd:{i}" for i in range(4)]))
    frame = pl.concat([base, odd], how="vertical_relaxed")
    step = ik.dedup.minhash(threshold=0.8)
    states = [step.observe(frame.slice(o, 800)) for o in range(0, frame.height, 800)]
    bands, rows = step.banding()
    text = K.document_text(frame, ["instruction", "input", "output"])
    m = K.minhash(text, ngram=5, unit="word", num_perm=128, seed=1, bands=bands, rows=rows, keep_shingles=True)

    # the new layout: shingle hashes and band hashes only
    assert all(s.has_hashes and not s.has_signatures for s in states)
    assert sum(s.disk_bytes() for s in states) == 4 * m.hashes.size + 8 * bands * frame.height
    reader = Rows([s.part() for s in states])
    index = np.random.default_rng(0).permutation(frame.height)
    assert np.array_equal(reader.signatures(index, 128), m.signatures[index])
    assert (m.signatures[frame.height - 4] == 2**32 - 1).all()  # the empty text
    assert np.array_equal(reader.band_keys(1, 16, 8), K.band_hashes(m.signatures[800:1600], 16, 8))

    # the old layout, written from the signatures K.minhash computed: signatures, hashes, bands
    starts = np.concatenate([[0], np.cumsum(m.counts, dtype=np.int64)])
    direct = []
    for s, lo in zip(states, range(0, frame.height, 800), strict=True):
        hi = lo + len(s)
        sig = m.signatures[lo:hi]
        spill = SpillFile.write(None, [sig, m.hashes[starts[lo]:starts[hi]], m.band_keys[:, lo:hi]])
        direct.append(replace(s, spill=spill, has_signatures=True,
                              band_offset=sig.nbytes + 4 * int(starts[hi] - starts[lo])))
    ref = ik.Dataset.from_polars(base.slice(100, 200).with_columns(pl.concat_str(pl.lit("ref:"), "id").alias("id")))
    for params in ({}, {"threshold": 0.6}, {"threshold": 0.9, "keep": "longest"}, {"against": ref},
                   {"threshold": 0.7, "verify": "signature"}, {"bands": 16, "rows": 8, "verify": "none"}):
        decide = ik.dedup.minhash(**params)
        want = decide.decide(direct)
        assert want.height > 0, params
        assert decide.decide(states).equals(want), params
        assert decide.decide(states)["detail"].to_list() == want["detail"].to_list(), params


def test_banding_is_chosen_for_recall():
    bands, rows = K.optimal_bands(0.8, 128)
    assert bands * rows <= 128
    assert 1 - K.false_negative(0.8, bands, rows) >= 0.99
    assert 1 - K.false_negative(0.8, 9, 13) < 0.95  # the peers' choice misses pairs at 0.8


def test_components_matches_a_plain_union_find():
    rng = np.random.default_rng(0)
    n = 300
    left, right = rng.integers(0, n, 200), rng.integers(0, n, 200)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    assert K.components(n, left, right).tolist() == [find(i) for i in range(n)]


# minhash step -------------------------------------------------------------------------------
def test_minhash_finds_near_duplicates_with_details():
    data = ds([
        {"instruction": STORY, "output": "ok"},
        {"instruction": "Something else entirely.", "output": "no"},
        {"instruction": STORY.replace("morning", "evening"), "output": "ok"},
    ])
    out = data.pipe(ik.dedup.minhash(threshold=0.7))
    assert out.removed["reason"].to_list() == ["near_duplicate"]
    d = detail(out)
    assert d["kept"] == "t:0" and 0.7 <= d["jaccard"] < 1.0 and "cluster" in d


def test_minhash_precision_and_recall_on_the_synthetic_corpus():
    corpus = ik.synth.near_duplicates(6_000, words=100, seed=11)
    frame = corpus.to_polars()
    step = ik.dedup.minhash(threshold=0.8)
    state = step.observe(frame)
    c = step.cluster([state])
    dup_of = frame["dup_of"].to_list()
    jac = frame["jaccard"].to_list()
    index = {k: i for i, k in enumerate(frame["id"].to_list())}
    true_pairs = [(i, index[d]) for i, d in enumerate(dup_of) if d is not None and jac[i] >= 0.8]
    found = sum(c.root[i] == c.root[j] for i, j in true_pairs)
    recall = found / len(true_pairs)
    removed = np.flatnonzero(c.kept != np.arange(len(frame)))
    # a removed record is right when it is a true near-duplicate of its kept record
    ok = 0
    for r in removed.tolist():
        k = int(c.kept[r])
        same_origin = (dup_of[r] or frame["id"][r]) == (dup_of[k] or frame["id"][k])
        ok += same_origin
    precision = ok / len(removed)
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)


def test_minhash_threshold_sweep_reuses_signatures():
    frame = ik.synth.near_duplicates(2_000, words=80, seed=2).to_polars()
    step = ik.dedup.minhash(threshold=0.6)
    state = step.observe(frame)
    counts = []
    for t in (0.6, 0.8, 0.95):
        step.threshold = t
        counts.append(step.decide([state]).height)
    assert counts[0] > counts[1] > counts[2] > 0
    assert set(ik.dedup.MinHash.decide_params) >= {"threshold", "bands", "rows", "keep", "against"}


def test_minhash_batches_give_the_same_result_as_one_frame():
    frame = ik.synth.near_duplicates(3_000, words=60, seed=4).to_polars()
    step = ik.dedup.minhash()
    whole = step.decide([step.observe(frame)])
    parts = step.decide([step.observe(frame.slice(o, 700)) for o in range(0, 3_000, 700)])
    assert whole.equals(parts)
    assert whole.height > 0


def test_minhash_against_reference_and_keep_longest():
    ref = ds([{"instruction": STORY}, {"instruction": STORY + " And then it rained."}], "ref")
    new = ds([{"instruction": STORY.replace("sea", "lake")}, {"instruction": "Unrelated text here."}], "new")
    out = new.pipe(ik.dedup.minhash(threshold=0.7, against=ref))
    assert out.removed["id"].to_list() == ["new:0"]
    assert detail(out)["reference"] is True
    longer = ds([{"instruction": STORY}, {"instruction": STORY + " The end."}])
    out = longer.pipe(ik.dedup.minhash(threshold=0.7, keep="longest"))
    assert out.removed["id"].to_list() == ["t:0"]


def test_minhash_char_shingles_for_cjk_and_given_bands():
    zh = "我们今天去公园散步，天气非常好，阳光明媚，大家都很开心。"
    data = ds([{"instruction": zh}, {"instruction": zh.replace("开心", "高兴")}, {"instruction": "完全不同的句子内容"}])
    assert len(data.pipe(ik.dedup.minhash(threshold=0.7))) == 3  # one "word" per sentence
    out = data.pipe(ik.dedup.minhash(threshold=0.6, unit="char", ngram=3))
    assert out.removed["id"].to_list() == ["t:1"]
    out = data.pipe(ik.dedup.minhash(threshold=0.6, unit="char", ngram=3, bands=32, rows=4))
    assert out.removed["id"].to_list() == ["t:1"]
    with pytest.raises(ValueError, match="bands"):
        ik.dedup.minhash(bands=30, rows=5)


def test_empty_texts_are_never_near_duplicates():
    data = ds([{"instruction": "", "output": ""}, {"instruction": "", "output": ""}])
    assert len(data.pipe(ik.dedup.minhash())) == 2
    assert len(data.pipe(ik.dedup.exact())) == 1


# fuzzy --------------------------------------------------------------------------------------
def test_fuzzy_drops_instructions_too_similar_to_a_kept_one():
    data = ds([
        {"instruction": "Give three tips for staying healthy.", "output": "a"},
        {"instruction": "Give 3 tips for staying healthy.", "output": "b"},
        {"instruction": "Name the capital of France.", "output": "c"},
        {"instruction": "give three tips for staying  healthy", "output": "d"},
    ])
    out = data.pipe(ik.dedup.fuzzy(threshold=0.9))
    assert out.removed["id"].to_list() == ["t:1", "t:3"]
    assert all(detail(out, i)["kept"] == "t:0" for i in range(2))
    assert detail(out)["score"] >= 0.9
    out = data.pipe(ik.dedup.fuzzy(threshold=0.9, blocking="prefix", prefix=5))
    assert out.removed["id"].to_list() == ["t:1", "t:3"]


def test_fuzzy_against_reference_and_bad_scorer():
    ref = ds([{"instruction": "Translate this sentence into French."}], "ref")
    new = ds([{"instruction": "Translate this sentence to French."}, {"instruction": "Sort a list."}], "new")
    out = new.pipe(ik.dedup.fuzzy(threshold=0.85, against=ref))
    assert out.removed["id"].to_list() == ["new:0"]
    with pytest.raises(ValueError, match="scorer"):
        ik.dedup.fuzzy(scorer="levenshtein_magic")


def test_fuzzy_blocking_scales_past_pairwise():
    frame = ik.synth.near_duplicates(20_000, words=14, edit_fraction=0.1, seed=9).to_polars()
    step = ik.dedup.fuzzy(threshold=0.9)
    drops = step.decide([step.observe(frame)])
    assert 0 < drops.height < 20_000


# synthetic corpus ---------------------------------------------------------------------------
def test_synthetic_corpus_is_seeded_and_streams_identically():
    a = ik.synth.near_duplicates(12_000, words=40, seed=3).to_polars()
    b = pl.concat([d.to_polars() for d in ik.synth.iter_near_duplicates(12_000, words=40, seed=3, batch_size=5_000)])
    assert a.equals(b)
    assert not a.equals(ik.synth.near_duplicates(12_000, words=40, seed=4).to_polars())
    assert a["id"].n_unique() == 12_000
    copies = a.filter(pl.col("dup_of").is_not_null())
    assert copies.height == 3_600 and copies["jaccard"].max() == 1.0


# real data ----------------------------------------------------------------------------------
def test_gpteacher_toolformer_duplicates(shared_data):
    path = shared_data / "instructions" / "gpteacher_toolformer.json"
    data = ik.read(path)
    for step in (ik.dedup.exact(), ik.dedup.minhash(), ik.dedup.fuzzy()):
        out = data.pipe(step)
        assert len(out) + out.removed.height == len(data)
        kept = out.removed["detail"].str.json_decode(pl.Struct({"kept": pl.String})).struct.field("kept")
        assert kept.is_not_null().all()
    assert data.pipe(ik.dedup.minhash()).removed.height > 0
