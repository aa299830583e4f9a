"""ik.tokenize: the ids trained on are the ids of the whole text, for every tokenizer kind,
and match Meta's Llama-2 ``chat_completion`` and Stanford Alpaca's ``source + target``.

Every tokenizer is built offline here (tests/tiny_llama.py): SentencePiece-style Llama-2
tokenizers (the Hub ``tokenizer.json`` layout with a ``Prepend("▁")`` normalizer, and
``LlamaTokenizerFast`` legacy / non-legacy), the byte-level BPE of the tiny test model, a
chat template with ``{% generation %}`` blocks, and a slow (offset-less) tokenizer.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import instructkit as ik  # noqa: E402
from instructkit.templates.formats import get_format  # noqa: E402
from instructkit.training.data import (  # noqa: E402
    IGNORE_INDEX,
    encode_prompt,
    label_by_offsets,
    tokenize_records,
)

os.environ["HF_HUB_OFFLINE"] = "1"

SYSTEM = "You are a helpful assistant. Answer briefly."
SINGLE = {"id": "single", "instruction": "Tell me a joke.", "input": "", "output": "Why did the chicken cross the road?", "system": SYSTEM}
SINGLE_INPUT = {"id": "input", "instruction": "Translate to French:", "input": "hello",
                "output": "Bonjour.", "system": None}
MULTI = {"id": "multi", "system": SYSTEM, "messages": [
    {"role": "user", "content": "What is the colour of the sky?"},
    {"role": "assistant", "content": "The sky is blue."},
    {"role": "user", "content": "Name a fruit."},
    {"role": "assistant", "content": "Making a cake is easy; an apple is a fruit."},
]}
FORMATS = ("alpaca", "llama2", "chatml", "vicuna", "chat_template")
KINDS = ("hub", "legacy", "nonlegacy", "bpe", "slow_hub", "slow_bpe")


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    from tiny_llama import (
        CHAT_TEMPLATE,
        build_sentencepiece_tokenizer,
        build_tokenizer,
        slow_wrapper,
    )

    toks = {k: build_sentencepiece_tokenizer(k) for k in ("hub", "legacy", "nonlegacy")}
    toks["bpe"] = build_tokenizer()
    for name in ("hub", "legacy", "nonlegacy"):
        toks[name].pad_token = toks[name].eos_token
        toks[name].chat_template = CHAT_TEMPLATE
    toks["slow_hub"] = slow_wrapper(toks["hub"])
    toks["slow_bpe"] = slow_wrapper(toks["bpe"])
    return toks


def _records(fmt: str) -> list[dict]:
    # alpaca is single-turn by definition
    return [SINGLE, SINGLE_INPUT] if fmt == "alpaca" else [SINGLE, SINGLE_INPUT, MULTI]


def _whole_text_ids(tok, text: str) -> list[int]:  # noqa: ANN001
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return ids if text.startswith(tok.bos_token) else [tok.bos_token_id, *ids]


def _per_segment_ids(tok, segments) -> list[int]:  # noqa: ANN001
    """The old approach: every segment tokenized on its own, then concatenated."""
    ids = [] if segments[0][0].startswith(tok.bos_token) else [tok.bos_token_id]
    for text, _ in segments:
        ids += tok(text, add_special_tokens=False)["input_ids"]
    return ids


def _learned_runs(labels: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, x in enumerate([*labels, IGNORE_INDEX]):
        if x != IGNORE_INDEX and start is None:
            start = i
        elif x == IGNORE_INDEX and start is not None:
            runs.append((start, i))
            start = None
    return runs


# every format x every tokenizer kind -------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("template", FORMATS)
def test_ids_are_the_whole_text_ids(tokenizers: dict, kind: str, template: str) -> None:
    tok = tokenizers[kind]
    fmt = get_format(template, tokenizer=tok)
    records = _records(template)
    table = ik.tokenize(records, tok, template=template, max_seq_length=4096)
    assert table["id"].to_list() == [r["id"] for r in records]
    for record, row in zip(records, table.iter_rows(named=True), strict=True):
        ids, labels = row["input_ids"], row["labels"]
        assert ids == _whole_text_ids(tok, fmt.render(record)), (kind, template, record["id"])
        assert len(labels) == len(ids) == row["tokens"]
        assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(ids, labels, strict=True))
        assert row["learned"] == sum(lab != IGNORE_INDEX for lab in labels) > 0
        # one learned run per assistant turn, each decoding to that turn's response text
        responses = [t for t, learn in fmt.segments(record) if learn]
        runs = _learned_runs(labels)
        assert len(runs) == len(responses)
        if row["boundary_merges"] == 0:
            for (a, b), text in zip(runs, responses, strict=True):
                got = tok.decode(ids[a:b], skip_special_tokens=False)
                assert got.strip() == text.strip(), (kind, template, got, text)
            # the prompt part is what ik.generate feeds the model
            prompt = encode_prompt(fmt.prompt(record), tok)
            assert ids[: runs[-1][0]] == prompt, (kind, template, record["id"])


@pytest.mark.parametrize("kind", ["hub", "bpe"])
@pytest.mark.parametrize("template", FORMATS)
def test_slow_tokenizer_labels_equal_offsets_labels(tokenizers: dict, kind: str, template: str) -> None:
    fast, slow = tokenizers[kind], tokenizers[f"slow_{kind}"]
    assert not slow.is_fast
    a = ik.tokenize(_records(template), fast, template=template)
    b = ik.tokenize(_records(template), slow, template=template)
    assert a.equals(b)


def test_boundary_merge_is_masked_and_counted() -> None:
    """A token across the prompt/response boundary starts in the prompt: it stays masked
    and is counted, with offsets and with prefix token counts alike."""
    from tiny_llama import CORPUS, build_tokenizer, slow_wrapper

    tok = build_tokenizer([*CORPUS, "Response:) :) :) ok:)"])
    record = {"id": "smile", "instruction": "Smile.", "input": "", "output": ") ok"}
    fmt = get_format("alpaca", tokenizer=tok)
    prompt = fmt.prompt(record)
    text = fmt.render(record)
    ids = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    straddling = [i for i, (s, e) in enumerate(ids["offset_mapping"]) if s < len(prompt) < e]
    assert len(straddling) == 1 and tok.decode(ids["input_ids"][straddling[0]]) == ":)"
    for t in (tok, slow_wrapper(tok)):
        (ex,), stats = tokenize_records([record], fmt, t, 512)
        assert stats.boundary_merges == 1 and stats.boundary_merge_ids == ["smile"]
        assert ex.labels[straddling[0] + 1] == IGNORE_INDEX  # +1: the BOS
        assert tok.decode([x for x in ex.labels if x != IGNORE_INDEX]) == " ok</s>"
    table = ik.tokenize([record], tok, template="alpaca")
    assert table["boundary_merges"].to_list() == [1]


def test_label_by_offsets_rules() -> None:
    # a token starting in the response but running past its end is learned and counted
    assert label_by_offsets([1, 2, 3], [(0, 2), (2, 4), (4, 7)], [(2, 5)]) == ([-100, 2, 3], 1)
    # two spans, zero-width offsets (byte-fallback pieces of one character) follow their start
    assert label_by_offsets([1, 2, 3, 4], [(0, 1), (1, 2), (1, 2), (3, 4)], [(1, 2), (3, 4)]) == (
        [-100, 2, 3, 4], 0)


# the reference constructions ---------------------------------------------------------------

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def meta_chat_completion(tok, dialog: list[dict]) -> tuple[list[int], list[int]]:  # noqa: ANN001
    """Meta's llama/generation.py ``chat_completion`` token construction for a dialog that
    ends with an assistant turn, with ``tok`` encoding plain text as sentencepiece's
    ``encode`` does (``bos``/``eos`` added as ids, never parsed from text). Labels: the
    answer part of each ``[INST] ... [/INST] answer`` encoding, the part after the encoding
    of ``[INST] ... [/INST]`` alone."""

    def encode(s: str, bos: bool, eos: bool) -> list[int]:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        return [tok.bos_token_id] * bos + ids + [tok.eos_token_id] * eos

    if dialog[0]["role"] == "system":
        dialog = [{"role": dialog[1]["role"],
                   "content": B_SYS + dialog[0]["content"] + E_SYS + dialog[1]["content"]}] + dialog[2:]
    ids: list[int] = []
    labels: list[int] = []
    for prompt, answer in zip(dialog[::2], dialog[1::2], strict=True):
        turn = encode(f"{B_INST} {(prompt['content']).strip()} {E_INST} {(answer['content']).strip()} ",
                      bos=True, eos=True)
        n = len(encode(f"{B_INST} {(prompt['content']).strip()} {E_INST}", bos=True, eos=False))
        ids += turn
        labels += [IGNORE_INDEX] * n + turn[n:]
    return ids, labels


def _dialog(record: dict) -> list[dict]:
    if "messages" in record:
        return [{"role": "system", "content": record["system"]}, *record["messages"]]
    user = record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")
    head = [{"role": "system", "content": record["system"]}] if record["system"] else []
    return [*head, {"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]


@pytest.mark.parametrize("kind", ["hub", "legacy", "slow_hub"])
def test_llama2_equals_meta_chat_completion(tokenizers: dict, kind: str) -> None:
    """With ``<s>``/``</s>`` as special tokens and a ``▁`` prefix on every piece of text
    between them (the Hub layout, legacy), the whole text rendered by ``llama2`` tokenizes
    to the concatenation of Meta's per-turn encodings, labels included."""
    tok = tokenizers[kind]
    records = [SINGLE, SINGLE_INPUT, MULTI]
    table = ik.tokenize(records, tok, template="llama2")
    for record, row in zip(records, table.iter_rows(named=True), strict=True):
        ids, labels = meta_chat_completion(tok, _dialog(record))
        assert row["input_ids"] == ids
        assert row["labels"] == labels
        assert row["boundary_merges"] == 0


def test_per_segment_tokenization_had_a_stray_piece(tokenizers: dict) -> None:
    """The old approach (each segment tokenized alone) differs from Meta on the Hub layout:
    every response starts with a lone ``▁`` (Llama-2's 29871) before a re-prefixed word."""
    tok = tokenizers["hub"]
    fmt = get_format("llama2")
    ids, _ = meta_chat_completion(tok, _dialog(MULTI))
    old = _per_segment_ids(tok, fmt.segments(MULTI))
    assert old != ids and len(old) == len(ids) + 2  # one stray piece per assistant turn
    lone = tok.convert_tokens_to_ids("▁")
    after_inst = [old[i + 1] for i, t in enumerate(old[:-1])
                  if tok.convert_ids_to_tokens(t) == "▁[/INST]"]
    assert after_inst == [lone, lone]
    assert "▁Making" in tok.convert_ids_to_tokens(ids)


def test_llama2_nonlegacy_is_the_whole_text_not_meta(tokenizers: dict) -> None:
    """A non-legacy tokenizer puts no ``▁`` after a special token, so no text form gives
    Meta's per-turn encodings: ik trains the whole text's ids (what generation sees)."""
    tok = tokenizers["nonlegacy"]
    row = ik.tokenize([MULTI], tok, template="llama2").row(0, named=True)
    meta, _ = meta_chat_completion(tok, _dialog(MULTI))
    whole = _whole_text_ids(tok, get_format("llama2").render(MULTI))
    assert row["input_ids"] == whole != meta
    assert tok.convert_ids_to_tokens(whole[1]) == "["  # no "▁[INST]" after <s>


@pytest.mark.parametrize("kind", ["hub", "legacy", "nonlegacy", "slow_hub"])
def test_alpaca_equals_stanford(tokenizers: dict, kind: str) -> None:
    """Stanford train.py: ``tokenizer(source + target)`` with the first
    ``len(tokenizer(source))`` labels masked; ``target = output + eos_token``."""
    from instructkit.templates.formats import ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT

    tok = tokenizers[kind]
    records = [dict(SINGLE, system=None), SINGLE_INPUT]
    table = ik.tokenize(records, tok, template="alpaca")
    for record, row in zip(records, table.iter_rows(named=True), strict=True):
        template = ALPACA_PROMPT_INPUT if record["input"] else ALPACA_PROMPT_NO_INPUT
        source = template.format_map(record)
        target = f"{record['output']}{tok.eos_token}"
        ids = tok(source + target)["input_ids"]
        n = len(tok(source)["input_ids"])
        assert row["input_ids"] == ids
        assert row["labels"] == [IGNORE_INDEX] * n + ids[n:]
    if kind == "hub":
        # the old approach learned "▁Why" where Stanford has "Why"
        record = records[0]
        n = len(tok(ALPACA_PROMPT_NO_INPUT.format_map(record))["input_ids"])
        old = _per_segment_ids(tok, get_format("alpaca", tokenizer=tok).segments(record))
        new = table["input_ids"][0].to_list()
        assert old[:n] == new[:n] and old != new
        assert tok.convert_ids_to_tokens(old[n]) == "▁Why"
        assert tok.convert_ids_to_tokens(new[n]) != "▁Why"  # Stanford: "W" "hy" or "Why"


def test_chat_template_generation_blocks(tokenizers: dict) -> None:
    """A template that marks assistant text with ``{% generation %}`` decides what is
    learned: the same ids and mask as ``apply_chat_template(return_assistant_tokens_mask)``."""
    from tiny_llama import GENERATION_TEMPLATE, build_tokenizer

    tok = build_tokenizer()
    tok.chat_template = GENERATION_TEMPLATE
    records = [SINGLE, SINGLE_INPUT, MULTI]
    table = ik.tokenize(records, tok, template="chat_template")
    _, stats = tokenize_records(records, get_format("chat_template", tokenizer=tok), tok, 1024)
    assert stats.method == "generation_blocks" and stats.boundary_merges == 0
    for record, row in zip(records, table.iter_rows(named=True), strict=True):
        out = tok.apply_chat_template(_dialog(record), tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        assert row["input_ids"] == list(out["input_ids"])
        mask = [lab != IGNORE_INDEX for lab in row["labels"]]
        assert mask == [bool(m) for m in out["assistant_masks"]]
        answers = [m["content"] + tok.eos_token for m in _dialog(record) if m["role"] == "assistant"]
        runs = _learned_runs(row["labels"])
        assert [tok.decode(row["input_ids"][a:b]) for a, b in runs] == answers


# ik.tokenize's table -----------------------------------------------------------------------


def test_tokenize_table_truncation_and_no_response_rows(tokenizers: dict) -> None:
    import polars as pl

    tok = tokenizers["bpe"]
    records = [
        {"id": "ok", "instruction": "Hi", "output": "Yo"},
        {"id": "long_prompt", "instruction": "word " * 200, "output": "Yo"},
    ]
    table = ik.tokenize(ik.Dataset.from_records(records), tok, template="alpaca", max_seq_length=64)
    assert table.columns == ["id", "input_ids", "labels", "tokens", "learned", "truncated",
                             "boundary_merges"]
    assert table.schema["input_ids"] == pl.List(pl.Int64)
    assert table["id"].to_list() == ["ok", "long_prompt"]  # nothing dropped
    assert table["truncated"].to_list() == [False, True]
    assert table["tokens"].to_list()[1] == 64 and table["learned"].to_list()[1] == 0


def test_tokenize_refuses_a_path(tokenizers: dict) -> None:
    with pytest.raises(TypeError, match="ik.read"):
        ik.tokenize("train.jsonl", tokenizers["bpe"])


DATA = __import__("pathlib").Path(__file__).parents[1].parent / "shared" / "data" / "instructions"


@pytest.mark.skipif(not (DATA / "alpaca_en_demo.json").is_file(),
                    reason="needs ../shared/data/instructions/alpaca_en_demo.json")
@pytest.mark.parametrize("template", ["alpaca", "llama2", "chatml", "vicuna"])
def test_real_records_hub_sentencepiece(tokenizers: dict, template: str) -> None:
    """200 real Alpaca records (and 100 two-turn conversations made of them, with a system
    prompt): on the Hub-layout tokenizer the old per-segment ids differed in every record;
    the training ids are the whole text's, and the prompt part is generate's prompt."""
    tok = tokenizers["hub"]
    records = list(ik.read(DATA / "alpaca_en_demo.json"))[:200]
    multi = [{"id": f"m{i}", "system": SYSTEM, "messages": [
        {"role": "user", "content": a["instruction"]}, {"role": "assistant", "content": a["output"]},
        {"role": "user", "content": b["instruction"]}, {"role": "assistant", "content": b["output"]}]}
        for i, (a, b) in enumerate(zip(records[0::2], records[1::2], strict=True))]
    fmt = get_format(template, tokenizer=tok)
    for recs in ([records] if template == "alpaca" else [records, multi]):
        table = ik.tokenize(recs, tok, template=template, max_seq_length=100_000)
        assert table["boundary_merges"].sum() == 0
        old_differs = 0
        for r, row in zip(recs, table.iter_rows(named=True), strict=True):
            assert row["input_ids"] == _whole_text_ids(tok, fmt.render(r))
            runs = _learned_runs(row["labels"])
            assert row["input_ids"][: runs[-1][0]] == encode_prompt(fmt.prompt(r), tok)
            old_differs += _per_segment_ids(tok, fmt.segments(r)) != row["input_ids"]
        assert old_differs == len(recs)
