"""LLM backends, the response cache, model scores and generation steps, all offline.

The transformers backend runs the tiny random Llama of ``tests/tiny_llama.py``; the OpenAI
backend talks, through the real ``openai`` client, to a real HTTP server on 127.0.0.1
(``tests/openai_server.py``) that serves that model or a scripted reply.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import polars as pl
import pytest
from openai_server import OpenAIServer
from tiny_llama import build_tiny_llama

import instructkit as ik
from instructkit.llm import ResponseCache

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RECORDS = [
    {"instruction": "Name a fruit.", "input": "", "output": "An apple is a fruit."},
    {"instruction": "Add two and three.", "input": "", "output": "Five."},
    {"instruction": "Translate to French: hello.", "input": "", "output": "Bonjour."},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture()
def cache(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "responses.sqlite")


# --- the transformers backend -----------------------------------------------------------------


def test_transformers_chat_is_deterministic_and_cached(tiny: Path, cache: ResponseCache) -> None:
    llm = ik.LLM.from_transformers(tiny, device="cpu", template="alpaca", cache=cache)
    convs = ["Name a fruit.", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say yes."}]]
    first = llm.chat(convs, max_tokens=8)
    assert len(first) == 2 and llm.requests_sent == 2
    again = ik.LLM.from_transformers(tiny, device="cpu", template="alpaca", cache=cache)
    assert again.chat(convs, max_tokens=8) == first
    assert again.requests_sent == 0, "every answer came from the cache"
    sampled = [llm.chat(["Name a fruit."], max_tokens=8, temperature=1.0, seed=3) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_a_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a local model folder"):
        ik.LLM.from_transformers(tmp_path / "nowhere")


def _hand_loss(tiny: Path, prompt: str, completion: str) -> float:
    """Mean cross-entropy of the completion tokens, by transformers' own loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    enc = tok(prompt + completion, return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]])
    labels = ids.clone()
    for t, (start, end) in enumerate(enc["offset_mapping"]):
        if start < len(prompt) or end <= start:
            labels[0, t] = -100
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)


def test_ifd_and_perplexity_equal_a_hand_computation(tiny: Path) -> None:
    from instructkit.templates.formats import get_format

    ds = ik.Dataset.from_records(RECORDS)
    scored = ds.pipe(ik.score.ifd(str(tiny)), ik.score.perplexity(str(tiny)))
    fmt = get_format("alpaca", eos="")
    for row in scored.to_polars().iter_rows(named=True):
        prompt, response = fmt.split(row)
        conditioned, alone = _hand_loss(tiny, prompt, response), _hand_loss(tiny, "", response)
        assert row["ifd"] == pytest.approx(conditioned / alone, abs=1e-5)
        assert row["perplexity"] == pytest.approx(math.exp(conditioned), rel=1e-5)


def test_reward_equals_the_classifier_logit(tmp_path: Path) -> None:
    import torch
    from tiny_llama import build_tokenizer
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         num_labels=1, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path / "rm")
    tok.save_pretrained(tmp_path / "rm")
    out = ik.Dataset.from_records(RECORDS).pipe(ik.score.reward(tmp_path / "rm"))
    text = tok.apply_chat_template(
        [{"role": "user", "content": RECORDS[0]["instruction"]}, {"role": "assistant", "content": RECORDS[0]["output"]}],
        tokenize=False)
    with torch.no_grad():
        expected = float(model(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, 0])
    assert out.to_polars()["reward"][0] == pytest.approx(expected, abs=1e-5)


# --- selection ---------------------------------------------------------------------------------


def test_select_by_threshold_top_fraction_and_range() -> None:
    ds = ik.Dataset.from_records([{"instruction": f"task {i}", "output": "x"} for i in range(6)])
    ds = ds.with_columns(pl.Series("ifd", [0.9, 0.2, None, 0.5, 1.3, 0.7]))
    out = ds.pipe(ik.score.select(by="ifd", top_fraction=0.5, valid_range=(0, 1)))
    assert out.to_polars()["instruction"].to_list() == ["task 0", "task 5"]
    reasons = dict(out.removed.select("id", "reason").rows())
    assert reasons == {"records:1": "low_score", "records:2": "no_score", "records:3": "low_score",
                       "records:4": "score_out_of_range"}
    detail = json.loads(out.removed.filter(pl.col("id") == "records:1")["detail"][0])
    assert detail == {"by": "ifd", "score": 0.2, "cutoff": 0.7}
    low = ds.pipe(ik.score.select(by="ifd", threshold=0.5, higher_is_better=False))
    assert low.to_polars()["instruction"].to_list() == ["task 1", "task 3"]


def test_a_sweep_over_the_selection_scores_once() -> None:
    ds = ik.Dataset.from_records([{"instruction": f"task {i}", "output": "x"} for i in range(10)])
    ds = ds.with_columns(pl.Series("ifd", [i / 10 for i in range(10)]))
    result = ik.sweep(ik.score.select(by="ifd", top_fraction=0.1), "top_fraction", [0.1, 0.5, 1.0], ds)
    assert result.reused
    assert result.frame["removed"].to_list() == [9, 5, 0]


# --- the OpenAI-compatible backend -----------------------------------------------------------------


def test_openai_backend_serves_the_tiny_model(tiny: Path, cache: ResponseCache) -> None:
    local = ik.LLM.from_transformers(tiny, device="cpu", template="alpaca", cache=False)
    serve = lambda messages, body: local.chat([messages], max_tokens=body["max_tokens"])[0]  # noqa: E731
    with OpenAIServer(serve) as server:
        llm = ik.LLM.from_openai(server.url, "tiny", cache=cache, concurrency=2)
        answers = llm.chat(["Name a fruit.", "Say yes."], max_tokens=6)
    assert answers == local.chat(["Name a fruit.", "Say yes."], max_tokens=6)
    assert server.answered == 2 and server.bodies[0]["model"] == "tiny"


def test_retries_with_backoff_on_an_overloaded_server(cache: ResponseCache) -> None:
    with OpenAIServer(lambda m, b: "ok", fail_first=2) as server:
        llm = ik.LLM.from_openai(server.url, "m", cache=cache, concurrency=1, backoff=0.01, max_retries=3)
        assert llm.chat(["hi"]) == ["ok"]
    assert llm.retries == 2 and server.failed == 2 and server.answered == 1


def test_a_server_that_dies_mid_run_resumes_without_repeating_requests(cache: ResponseCache) -> None:
    prompts = [f"question {i}" for i in range(6)]
    answer = lambda messages, body: "answer to " + messages[-1]["content"]  # noqa: E731
    with OpenAIServer(answer, stop_after=3) as server:
        llm = ik.LLM.from_openai(server.url, "m", cache=cache, concurrency=1, backoff=0.01, max_retries=1)
        with pytest.raises(RuntimeError, match="no answer after 2 attempts"):
            llm.chat(prompts)
        port = server.port
    assert server.answered == 3 and len(cache) == 3
    with OpenAIServer(answer, port=port) as again:
        resumed = ik.LLM.from_openai(again.url, "m", cache=cache, concurrency=1)
        assert resumed.chat(prompts) == [f"answer to question {i}" for i in range(6)]
    assert again.answered == 3, "the three cached answers were not asked again"


def test_a_bad_request_fails_at_once_naming_the_server(cache: ResponseCache) -> None:
    with OpenAIServer(lambda m, b: "ok") as server:
        llm = ik.LLM.from_openai(server.url.replace("/v1", "/nope"), "m", cache=cache, max_retries=3)
        with pytest.raises(RuntimeError, match="refused the request: 404"):
            llm.chat(["hi"])


def test_judge_parses_ratings_and_keeps_the_judgement(cache: ResponseCache) -> None:
    replies = {"Name a fruit.": "Score: 4\nAccurate.", "Add two and three.": "It deserves 2/5.",
               "Translate to French: hello.": "No idea."}

    def answer(messages: list[dict[str, str]], body: dict) -> str:
        return next(v for k, v in replies.items() if f"Instruction: {k}" in messages[-1]["content"])

    with OpenAIServer(answer) as server:
        llm = ik.LLM.from_openai(server.url, "judge", cache=cache)
        out = ik.Dataset.from_records(RECORDS).pipe(ik.score.judge(llm), ik.score.select(by="judge_score", threshold=3))
    assert out.to_polars()["judge_score"].to_list() == [4.0]
    assert out[0]["meta"]["judge"] == "Score: 4\nAccurate."
    assert dict(out.removed.select("id", "reason").rows()) == {"records:1": "low_score", "records:2": "no_score"}


# --- generation ---------------------------------------------------------------------------------

SEEDS = [
    {"instruction": "Give three tips for staying healthy.", "instances": [{"input": "", "output": "Eat well."}]},
    {"instruction": "Translate the sentence into Spanish.", "instances": [{"input": "Good morning.", "output": "Buenos días."}]},
    {"instruction": "Classify the sentiment of the review.", "instances": [{"input": "I loved it.", "output": "Positive"}]},
    {"instruction": "Summarize the paragraph in one sentence.", "instances": [{"input": "Cats sleep a lot.", "output": "Cats sleep."}]},
]

GENERATED = (
    " Write a haiku about the ocean at dawn.\n4. Input:\n<noinput>\n4. Output:\nWaves wake the quiet shore.\n###\n"
    "5. Instruction: Draw a picture of a cat.\n5. Input:\n<noinput>\n5. Output:\n(none)\n###\n"
    "6. Instruction: List two prime numbers greater than ten.\n6. Input:\n<noinput>\n6. Output:\n11 and 13.\n###\n"
    "7. Instruction: Hi there.\n7. Input:\n<noinput>\n7. Output:\nHello.\n###\n"
    "8. Instruction: Give three tips for staying healthy.\n8. Input:\n<noinput>\n8. Output:\nSleep.\n###\n"
    "9. Instruction garbled"
)


def test_self_instruct_applies_the_reference_post_filters(tmp_path: Path, cache: ResponseCache) -> None:
    seeds = tmp_path / "seed_tasks.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"seed_task_{i}", "name": f"t{i}", "is_classification": False, **s}) + "\n"
                             for i, s in enumerate(SEEDS)))
    with OpenAIServer(lambda m, b: GENERATED) as server:
        llm = ik.LLM.from_openai(server.url, "gen", cache=cache)
        out = ik.augment.self_instruct(seeds, llm, n=2, batch_size=1, max_requests=1)
    kept = out.to_polars()
    assert kept["instruction"].to_list() == ["Write a haiku about the ocean at dawn.",
                                             "List two prime numbers greater than ten."]
    # "Draw a picture", "Hi there.", a seed task's own instruction (ROUGE-L 1.0), a garbled tail
    assert sorted(out.removed["reason"].to_list()) == ["blacklisted", "fuzzy_duplicate", "too_short", "unparseable"]
    meta = out[0]["meta"]
    assert meta["origin"] == "synthetic" and meta["model"] == llm.model and len(meta["prompt_sha256"]) == 64
    prompt = server.bodies[0]["messages"][0]["content"]
    assert prompt.startswith("You are asked to come up with a set of 20 diverse task instructions")
    assert prompt.endswith("###\n4. Instruction:")
    assert server.bodies[0]["stop"] == ["\n20", "20.", "20."]


def test_qa_from_documents_logs_unparseable_answers(cache: ResponseCache) -> None:
    def answer(messages: list[dict[str, str]], body: dict) -> str:
        text = messages[-1]["content"]
        if "Apples" in text:
            return '```json\n[{"question": "What colour are apples?", "answer": "Red or green."}]\n```'
        return "I cannot do that."

    docs = {"fruit": "Apples are red or green. " * 3, "cars": "Cars have wheels. " * 3}
    with OpenAIServer(answer) as server:
        llm = ik.LLM.from_openai(server.url, "qa", cache=cache)
        out = ik.augment.qa_from_documents(docs, llm, n=1, chunk_size=50, overlap=5)
    assert out.to_polars().select("instruction", "output").rows() == [("What colour are apples?", "Red or green.")]
    assert out.removed["reason"].to_list() == ["unparseable"]
    assert json.loads(out.removed["detail"][0]) == {"chunk": 0, "document": "cars", "error": "no JSON array in the answer"}
    assert out[0]["meta"]["document"] == "fruit"


def test_paraphrases_keep_their_source_id(cache: ResponseCache) -> None:
    with OpenAIServer(lambda m, b: "Please name one fruit.") as server:
        llm = ik.LLM.from_openai(server.url, "para", cache=cache)
        out = ik.augment.paraphrase(ik.Dataset.from_records(RECORDS[:1]), llm, n=1)
    ids = out.to_polars()["id"].to_list()
    assert ids == ["records:0", "records:0#p0"]
    assert out[1]["meta"]["paraphrase_of"] == "records:0" and out[1]["output"] == RECORDS[0]["output"]


def test_responses_are_regenerated_with_provenance(cache: ResponseCache) -> None:
    with OpenAIServer(lambda m, b: "" if "French" in m[-1]["content"] else "New answer.") as server:
        llm = ik.LLM.from_openai(server.url, "resp", cache=cache)
        out = ik.augment.responses(ik.Dataset.from_records(RECORDS), llm)
    assert out.to_polars()["output"].to_list() == ["New answer.", "New answer."]
    assert out.removed["reason"].to_list() == ["unparseable"]
    assert out[0]["meta"]["response_origin"] == "synthetic"


def test_model_steps_save_in_recipes(tiny: Path) -> None:
    pipe = ik.Pipeline([
        ik.score.ifd(str(tiny)),
        ik.score.judge(ik.LLM.from_openai("http://127.0.0.1:8000/v1", "judge", api_key="sk-secret")),
        ik.score.select(by="judge_score", threshold=4),
    ])
    text = pipe.to_yaml()
    assert "sk-secret" not in text, "an API key never goes into a recipe"
    again = ik.Pipeline.from_yaml(text)
    judge = again.steps[1]
    from instructkit.score import as_llm

    llm = as_llm(judge.llm)
    assert llm.model == "openai:http://127.0.0.1:8000/v1:judge" and llm.concurrency == 8
    assert again.to_yaml() == text


SELF_INSTRUCT_TARGET = (
    " Write a haiku about the ocean at dawn.\n4. Input:\n<noinput>\n4. Output:\nWaves wake the quiet shore.\n###\n"
    "5. Instruction: List two prime numbers greater than ten.\n5. Input:\n<noinput>\n5. Output:\n11 and 13.\n###"
)


@pytest.fixture(scope="module")
def self_instruct_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama trained here, on a few self-instruct prompts, to continue them with two
    Stanford-format tasks: a model that speaks the format, built offline in about 20 s."""
    import random

    import torch
    from tiny_llama import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    from instructkit.augment import encode_self_instruct_prompt

    torch.manual_seed(0)
    seeds = [{"instruction": s["instruction"], **s["instances"][0]} for s in SEEDS]
    tok = build_tokenizer(texts=[SELF_INSTRUCT_TARGET] * 4 + [json.dumps(seeds)], vocab_size=512)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    rng = random.Random(0)
    # what the transformers backend feeds the model: the user turn in the chat template
    prompts = [tok.apply_chat_template([{"role": "user", "content": encode_self_instruct_prompt(rng.sample(seeds, 3))}],
                                       add_generation_prompt=True, tokenize=False) for _ in range(4)]
    target = tok(SELF_INSTRUCT_TARGET, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(250):
        prompt = tok(prompts[step % len(prompts)], add_special_tokens=False)["input_ids"]
        loss = model(input_ids=torch.tensor([prompt + target]),
                     labels=torch.tensor([[-100] * len(prompt) + target])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("self-instruct") / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_self_instruct_with_a_tiny_model(tmp_path: Path, self_instruct_model: Path, cache: ResponseCache) -> None:
    seeds = tmp_path / "seed_tasks.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"seed_task_{i}", "name": f"t{i}", "is_classification": False, **s}) + "\n"
                             for i, s in enumerate(SEEDS)))
    llm = ik.LLM.from_transformers(self_instruct_model, device="cpu", cache=cache)
    out = ik.augment.self_instruct(seeds, llm, n=2, batch_size=1, max_requests=2, temperature=0.0, max_tokens=160)
    assert out.to_polars()["instruction"].to_list() == ["Write a haiku about the ocean at dawn.",
                                                        "List two prime numbers greater than ten."]
    assert out.to_polars()["output"].to_list() == ["Waves wake the quiet shore.", "11 and 13."]
    meta = out[0]["meta"]
    assert meta["origin"] == "synthetic" and meta["model"] == llm.model == f"transformers:{self_instruct_model.resolve()}"
    # the prompt hash is that of the prompt sent: Stanford's header and three seed tasks
    import hashlib
    import random

    from instructkit.augment import encode_self_instruct_prompt

    seed_rows = [{"instruction": s["instruction"], **s["instances"][0]} for s in SEEDS]
    sent = encode_self_instruct_prompt(random.Random(0).sample(seed_rows, 3))
    assert meta["prompt_sha256"] == hashlib.sha256(sent.encode()).hexdigest()
    assert out.removed.height == 0
