"""Tests for ik.langid (fastText lid.176, offline)."""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik
from instructkit.filters.langid import (
    LABEL_TO_CODE,
    LangID,
    bundled_model_path,
    load_model,
    to_code,
)
from instructkit.transform import from_config


def records(*instructions: str, **other: list[str]) -> ik.Dataset:
    rows = [{"instruction": t, "output": "ok"} for t in instructions]
    for name, values in other.items():
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return ik.Dataset.from_records(rows, source="t")


def langs(ds: ik.Dataset) -> list[str]:
    return ds.to_polars()["lang"].to_list()


def model_labels(path: Path) -> list[str]:
    """The labels stored in a fastText .ftz/.bin dictionary (the binding cannot list them)."""
    data = path.read_bytes()
    offset = 8 + 12 * 4 + 8  # magic, version, then Args: 12 int32 and one double
    size, nwords, _nlabels = struct.unpack_from("<iii", data, offset)
    offset += 12 + 8 + 8  # ntokens and pruneidx_size, both int64
    labels = []
    for i in range(size):
        end = data.index(b"\0", offset)
        if i >= nwords:
            labels.append(data[offset:end].decode().removeprefix("__label__"))
        offset = end + 1 + 8 + 1  # count (int64) and entry type (int8)
    return labels


# codes ------------------------------------------------------------------------------------
def test_code_table_covers_every_model_label_once() -> None:
    labels = model_labels(bundled_model_path())
    assert len(labels) == 176
    assert set(labels) == set(LABEL_TO_CODE)
    codes = list(LABEL_TO_CODE.values())
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[a-z]{2,3}", c) for c in codes)
    assert LABEL_TO_CODE["als"] == "gsw"  # "als" is Tosk Albanian in ISO 639-3


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en", "en"), ("eng", "en"), ("English", "en"), ("ENGLISH", "en"), (" en-US ", "en"),
        ("zh", "zh"), ("zho", "zh"), ("chi", "zh"), ("Chinese", "zh"), ("zh_Hans", "zh"),
        ("cmn", "zh"), ("fra", "fr"), ("fre", "fr"), ("French", "fr"), ("deu", "de"),
        ("ger", "de"), ("Farsi", "fa"), ("Cantonese", "yue"), ("yue", "yue"), ("ceb", "ceb"),
        ("Swiss German", "gsw"), ("und", "und"), ("nob", "no"), ("eng_Latn", "en"),
    ],
)
def test_to_code_accepts_codes_and_names(given: str, code: str) -> None:
    assert to_code(given) == code


def test_to_code_rejects_unknown_with_hint() -> None:
    with pytest.raises(ValueError, match="Englsh.*did you mean 'english'"):
        to_code("Englsh")
    with pytest.raises(ValueError, match="unknown language 'klingon'"):
        to_code("klingon")
    with pytest.raises(ValueError, match="non-empty"):
        LangID(keep=[""])


def test_bad_parameters_fail_early() -> None:
    with pytest.raises(ValueError, match="k must be"):
        LangID(k=0)
    with pytest.raises(ValueError, match="min_score"):
        LangID(min_score=1.5)
    with pytest.raises(ValueError, match="keep=\\[\\]"):
        LangID(keep=[])
    with pytest.raises(ValueError, match="per_field"):
        LangID(k=3, per_field=True)
    with pytest.raises(ValueError, match="unknown field"):
        records("Hello there my friend").pipe(LangID(field="nope"))


# tagging ----------------------------------------------------------------------------------
def test_tags_common_languages_with_scores() -> None:
    ds = records(
        "Write a short story about a lighthouse keeper.",
        "Écris une courte histoire sur un gardien de phare.",
        "Schreibe eine kurze Geschichte über einen Leuchtturmwärter.",
        "写一个关于灯塔看守人的短篇故事。",
        "灯台守についての短い物語を書いてください。",
        "등대지기에 대한 짧은 이야기를 써 주세요.",
    ).pipe(ik.langid())
    assert langs(ds) == ["en", "fr", "de", "zh", "ja", "ko"]
    scores = ds.to_polars()["lang_score"]
    assert scores.dtype == pl.Float64
    assert ((scores > 0.5) & (scores <= 1.0)).all()


def test_newlines_and_unicode_spaces_are_collapsed() -> None:
    # fastText reads one line: without collapsing, only "Bonjour" would be seen (or it raises)
    ds = records("Bonjour\n\nje voudrais une recette\r\nde crêpes bretonnes s'il vous plaît")
    assert langs(ds.pipe(ik.langid())) == ["fr"]


def test_short_text_is_und_not_guessed() -> None:
    ds = records("Hi", "OK!", "220+120=?", "", "你好", "温室效应", "Translate this sentence.")
    out = ds.pipe(ik.langid())
    assert langs(out) == ["und", "und", "und", "und", "und", "zh", "en"]
    assert out.to_polars()["lang_score"].to_list()[:5] == [None] * 5
    # min_chars=0 guesses anything with a letter
    assert langs(ds.pipe(ik.langid(min_chars=0)))[-2:] == ["zh", "en"]


def test_kanji_only_text_is_chinese_not_japanese() -> None:
    # lid.176 alone says ja for these; no kana means it is not Japanese
    assert load_model().predict("人工智能")[0] == ("__label__ja",)
    ds = records("人工智能", "机器学习模型", "東京は日本の首都です。", "カタカナのテキスト")
    assert langs(ds.pipe(ik.langid())) == ["zh", "zh", "ja", "ja"]


def test_all_caps_is_lowercased_before_prediction() -> None:
    assert load_model().predict("EXPLAIN WHY THE SKY IS BLUE.")[0] != ("__label__en",)
    assert langs(records("EXPLAIN WHY THE SKY IS BLUE.").pipe(ik.langid())) == ["en"]


def test_chinese_with_latin_terms_is_chinese() -> None:
    ds = records("写一篇关于Tyler glaiel的五个段落的文章", "写一首关于Slashdot的诗")
    assert langs(ds.pipe(ik.langid())) == ["zh", "zh"]


# fields -----------------------------------------------------------------------------------
def test_default_field_is_instruction_not_code_output() -> None:
    code = "def f(x):\n    return [i for i in range(x) if i % 2]\n" * 3
    ds = ik.Dataset.from_records(
        [{"instruction": "Escribe una función en Python que devuelva los números impares.",
          "output": code}]
    )
    assert langs(ds.pipe(ik.langid())) == ["es"]
    assert langs(ds.pipe(ik.langid(field="output"))) != ["es"]


def test_several_fields_and_all() -> None:
    ds = ik.Dataset.from_records(
        [{"instruction": "Et ?", "input": "", "output": "Le chat dort sur le canapé du salon."}]
    )
    assert langs(ds.pipe(ik.langid())) == ["und"]  # "Et ?" alone is too short
    assert langs(ds.pipe(ik.langid(field=["instruction", "output"]))) == ["fr"]
    assert langs(ds.pipe(ik.langid(field="all"))) == ["fr"]


def test_messages_field_reads_every_turn() -> None:
    ds = ik.Dataset.from_records(
        [{"messages": [
            {"role": "user", "content": "Hola"},
            {"role": "assistant", "content": "¡Hola! ¿En qué puedo ayudarte hoy?"},
            {"role": "user", "content": "Necesito una receta de paella valenciana."},
        ]}]
    )
    assert langs(ds.pipe(ik.langid(field="messages"))) == ["es"]
    assert langs(ds.pipe(ik.langid(field="all"))) == ["es"]


def test_non_text_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="field 'n' holds Int64"):
        LangID(field="n").predict(pl.DataFrame({"n": [1]}))


# filtering --------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [["en"], ["eng"], ["English"], "en", ("en", "de")])
def test_keep_accepts_any_spelling(keep: list[str] | str) -> None:
    ds = records("Write a haiku about autumn leaves.", "Écris un haïku sur les feuilles d'automne.")
    out = ds.pipe(ik.langid(keep=keep))
    assert langs(out) == ["en"]
    removed = out.removed
    assert removed["reason"].to_list() == ["language"]
    found = json.loads(removed["detail"][0])
    assert sorted(found) == ["lang", "score"] and found["lang"] == "fr" and 0 < found["score"] <= 1
    assert removed["step"].to_list() == ["langid"]


def test_und_is_dropped_unless_kept() -> None:
    ds = records("Hi", "Write a haiku about autumn leaves.")
    out = ds.pipe(ik.langid(keep=["en"]))
    assert out.removed["detail"].to_list() == ['{"lang":"und","score":null}']
    assert len(ds.pipe(ik.langid(keep=["en", "und"]))) == 2


def test_min_score_drops_unsure_records() -> None:
    ds = records("Write a haiku about autumn leaves.", "Name the actors in Star Wars: The Last Jedi.")
    tagged = ds.pipe(ik.langid()).to_polars()["lang_score"].to_list()
    assert tagged[0] > 0.5 > tagged[1]
    out = ds.pipe(ik.langid(min_score=0.5))
    assert len(out) == 1 and out.removed["reason"].to_list() == ["language"]


def test_sweep_reuses_one_prediction() -> None:
    ds = records(
        "Write a haiku about autumn leaves.", "Name the actors in Star Wars: The Last Jedi.",
        "Écris un haïku sur les feuilles d'automne.", "Hi",
    )
    frame = ds.to_polars()
    predictions = LangID().predict(frame)
    assert set(LangID.decide_params) == {"keep", "min_score"}
    for min_score in (0.0, 0.3, 0.6, 0.9):
        step = LangID(keep=["en"], min_score=min_score)
        swept = step.verdict(predictions)["reason"].is_not_null().sum()
        assert swept == len(ds) - len(ds.pipe(step))


# mixed-language records -------------------------------------------------------------------
def test_per_field_marks_mixed_records() -> None:
    ds = ik.Dataset.from_records([
        {"instruction": "Translate into Chinese: the weather is nice today.", "output": "今天天气很好。"},
        {"instruction": "Write a haiku about autumn leaves.", "output": "Red leaves drift and fall"},
        {"instruction": "Summarize the following paragraph for me please.", "output": "OK"},
    ])
    step = ik.langid(field=["instruction", "output"], per_field=True)
    frame = ds.pipe(step).to_polars()
    assert frame["lang"].to_list() == ["mixed", "en", "en"]
    assert frame["lang_fields"].struct.field("output").to_list() == ["zh", "en", "und"]
    out = ds.pipe(ik.langid(keep=["en"], field=["instruction", "output"], per_field=True))
    assert len(out) == 2
    found = json.loads(out.removed["detail"][0])
    assert found["lang"] == "mixed" and found["fields"] == {"instruction": "en", "output": "zh"}
    assert 0 < found["score"] <= 1
    # a translation pair stays when both its languages are kept
    both = ds.pipe(ik.langid(keep=["en", "zh"], field=["instruction", "output"], per_field=True))
    assert len(both) == 3


def test_topk_lists_best_languages_once() -> None:
    ds = records("Write a haiku about autumn leaves.", "人工智能的未来", "Hi")
    frame = ds.pipe(ik.langid(k=3)).to_polars()
    topk = frame["lang_topk"].to_list()
    assert [t[0]["lang"] for t in topk[:2]] == frame["lang"].to_list()[:2]
    assert topk[2] == []
    for row in topk[:2]:
        scores = [e["score"] for e in row]
        assert scores == sorted(scores, reverse=True)
        assert len({e["lang"] for e in row}) == len(row) <= 3
    assert "ja" not in [e["lang"] for e in topk[1]]  # no kana: ja folded into zh


# protocol ---------------------------------------------------------------------------------
def test_rerun_replaces_columns_and_is_deterministic() -> None:
    ds = records("Write a haiku about autumn leaves.", "Écris un haïku sur les feuilles.")
    once = ds.pipe(ik.langid(k=2))
    twice = once.pipe(ik.langid())
    assert "lang_topk" not in twice.columns
    assert twice.to_polars().equals(ds.pipe(ik.langid()).to_polars())


def test_empty_dataset() -> None:
    out = ik.Dataset.from_records([]).pipe(ik.langid(keep="en", k=2))
    assert len(out) == 0 and {"lang", "lang_score", "lang_topk"} <= set(out.columns)


def test_recipe_round_trip() -> None:
    step = ik.langid(keep=["en", "fr"], min_score=0.5)
    assert step.to_config() == {"langid": {"keep": ["en", "fr"], "min_score": 0.5}}
    again = from_config(step.to_config())
    assert isinstance(again, LangID) and again.get_params() == step.get_params()
    assert repr(step) == "LangID(keep=['en', 'fr'], min_score=0.5)"


def test_import_stays_light() -> None:
    code = "import sys, instructkit as ik; ik.langid(); print('fasttext' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runs_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is disabled in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    load_model.cache_clear()
    out = records("Write a haiku about autumn leaves.", "Bonjour, comment allez-vous ?").pipe(
        ik.langid(keep="en")
    )
    assert langs(out) == ["en"]
    with pytest.raises(OSError):
        socket.create_connection(("example.com", 80), timeout=1)


# real data --------------------------------------------------------------------------------
def load(path: Path) -> ik.Dataset:
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return ik.Dataset.from_records(rows, source=path.stem)


@pytest.mark.parametrize(
    ("name", "lang", "share"),
    [
        ("alpaca_en_demo.json", "en", 0.98),
        ("alpaca_zh_demo.json", "zh", 0.98),
        ("instructionwild_seed_prompts_ch.jsonl", "zh", 0.98),
        ("vigogne_seed_tasks_fr.jsonl", "fr", 0.95),
    ],
)
def test_real_data_accuracy(shared_data: Path, name: str, lang: str, share: float) -> None:
    ds = load(shared_data / "instructions" / name)
    tagged = ds.pipe(ik.langid()).to_polars()["lang"]
    assert len(tagged) > 100
    assert (tagged == lang).mean() >= share, tagged.value_counts(sort=True).head(5)
