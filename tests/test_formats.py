"""Prompt formats: golden strings written from the public references, splits, errors."""

from __future__ import annotations

import json

import pytest
from extras import require

import instructkit as ik
from instructkit.templates.formats import FormatError, get_format, render_column

SINGLE = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "system": None}
NO_INPUT = {"instruction": "Name a colour.", "input": "", "output": "Blue.", "system": None}
CONV = {
    "id": "c1",
    "system": "Be brief.",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Ciao"},
    ],
}

# tatsu-lab/stanford_alpaca train.py PROMPT_DICT, typed out from the published file
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:"
)


def test_alpaca_is_byte_identical_to_stanford_prompt_dict():
    fmt = get_format("alpaca")
    assert fmt.segments(SINGLE) == [(ALPACA_WITH_INPUT, False), ("5</s>", True)]
    assert fmt.segments(NO_INPUT) == [(ALPACA_NO_INPUT, False), ("Blue.</s>", True)]
    assert fmt.prompt(SINGLE) == ALPACA_WITH_INPUT
    assert get_format("alpaca", eos="").render(NO_INPUT) == ALPACA_NO_INPUT + "Blue."


def test_alpaca_eos_comes_from_tokenizer():
    class Tok:
        eos_token = "<|endoftext|>"

    assert get_format("alpaca", Tok()).render(NO_INPUT).endswith("Blue.<|endoftext|>")


def test_llama2_single_turn_and_system():
    fmt = get_format("llama2")
    assert fmt.render({"instruction": "Hi", "output": "Hello"}) == "<s>[INST] Hi [/INST] Hello </s>"
    rec = {"instruction": "Hi", "output": "Hello", "system": "Be brief."}
    assert fmt.segments(rec) == [
        ("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", False),
        (" Hello </s>", True),
    ]
    assert fmt.render(SINGLE) == "<s>[INST] Add the numbers.\n\n2 and 3 [/INST] 5 </s>"


def test_llama2_multi_turn_follows_meta_chat_completion():
    fmt = get_format("llama2")
    golden = (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s>"
        "<s>[INST] Bye [/INST] Ciao </s>"
    )
    assert fmt.render(CONV) == golden
    assert [t for t, train in fmt.segments(CONV) if train] == [" Hello </s>", " Ciao </s>"]
    assert fmt.prompt(CONV) == golden[: -len(" Ciao </s>")]
    assert fmt.split(CONV) == (golden[: -len(" Ciao </s>")], " Ciao </s>")


def test_llama2_rejects_non_alternating_turns():
    bad = {"id": "x9", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    with pytest.raises(FormatError, match="x9.*turn 1"):
        get_format("llama2").render(bad)


def test_chatml_golden():
    golden = (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nCiao<|im_end|>\n"
    )
    fmt = get_format("chatml")
    assert fmt.render(CONV) == golden
    assert [t for t, train in fmt.segments(CONV) if train] == ["Hello<|im_end|>", "Ciao<|im_end|>"]
    assert fmt.prompt({"instruction": "Hi"}) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_vicuna_v11_golden():
    system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    fmt = get_format("vicuna")
    assert fmt.render({"instruction": "Hi", "output": "Hello"}) == f"{system} USER: Hi ASSISTANT: Hello</s>"
    assert fmt.render(CONV) == "Be brief. USER: Hi ASSISTANT: Hello</s>USER: Bye ASSISTANT: Ciao</s>"
    assert fmt.prompt({"instruction": "Hi"}) == f"{system} USER: Hi ASSISTANT:"


@pytest.mark.parametrize("name", ["alpaca", "llama2", "chatml", "vicuna"])
def test_segments_join_to_render_and_prompt_is_prefix(name):
    fmt = get_format(name)
    for rec in (SINGLE, NO_INPUT):
        segs = fmt.segments(rec)
        assert "".join(t for t, _ in segs) == fmt.render(rec)
        assert segs[-1][1] or segs[-2][1]
        assert fmt.render(rec).startswith(fmt.prompt(rec))


def test_single_turn_formats_reject_conversations():
    with pytest.raises(FormatError, match="c1.*single-turn"):
        get_format("alpaca").render(CONV)


def test_webui_json_format(tmp_path):
    # text-generation-webui training/formats/alpaca-format.json layout
    spec = {
        "instruction,output": "Below is an instruction that describes a task. Write a response that "
        "appropriately completes the request.\n\n### Instruction:\n%instruction%\n\n### Response:\n%output%",
        "instruction,input,output": "Below is an instruction that describes a task, paired with an input "
        "that provides further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n%instruction%\n\n### Input:\n%input%\n\n### Response:\n%output%",
    }
    path = tmp_path / "alpaca-format.json"
    path.write_text(json.dumps(spec))
    fmt = get_format(str(path))
    assert fmt.segments(SINGLE) == [(ALPACA_WITH_INPUT + "\n", False), ("5", True)]
    assert fmt.prompt(NO_INPUT) == ALPACA_NO_INPUT + "\n"
    with pytest.raises(FormatError, match="no template for fields"):
        fmt.render({"id": "r", "instruction": "", "output": "x"})


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown prompt format"):
        get_format("mistral-ish")
    with pytest.raises(FileNotFoundError):
        get_format(str(tmp_path / "nope.json"))
    with pytest.raises(FormatError, match="tokenizer"):
        get_format("chat_template")


def _tokenizer(template: str):
    tokenizers = require("tokenizers")
    transformers = require("transformers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", chat_template=template
    )


CHATML_JINJA = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_chat_template_splits_incrementally():
    fmt = get_format("chat_template", _tokenizer(CHATML_JINJA))
    assert fmt.render(CONV) == get_format("chatml").render(CONV)
    assert [t for t, train in fmt.segments(CONV) if train] == ["Hello<|im_end|>\n", "Ciao<|im_end|>\n"]
    assert fmt.prompt(CONV) == get_format("chatml").prompt(CONV)


def test_chat_template_that_rewrites_history_is_refused():
    # renders the number of messages first, so every earlier render changes
    tpl = "{{ messages|length }}{% for m in messages %}|{{ m['content'] }}{% endfor %}"
    fmt = get_format("chat_template", _tokenizer(tpl))
    with pytest.raises(FormatError, match="incrementally"):
        fmt.segments(CONV)


def test_render_column_and_dataset_render():
    ds = ik.concat([
        ik.Dataset.from_records([{"instruction": "Hi", "output": "Hello"}], source="a"),
        ik.Dataset.from_records([CONV], source="b"),
    ])
    col = render_column(ds, "llama2")
    assert col.name == "text"
    assert col.to_list()[0] == "<s>[INST] Hi [/INST] Hello </s>"
    assert ds.render("llama2")[0] == "<s>[INST] Hi [/INST] Hello </s>"
    assert ds.render("chatml")[1].count("<|im_start|>assistant") == 2
