"""Executor parity: every registered step gives the same result in memory, streamed, streamed
on worker processes and on Ray.

Each built-in step of ``instructkit.transform.registry()`` runs with a small configuration
(:func:`configs`) over one small dataset (:data:`RECORDS`) four ways: through
:func:`instructkit.testing.check_transform`, ``ds.pipe(step)``,
``Pipeline([step]).run(ds, output=dir, batch_size=2)`` and the same on Ray with 2 CPUs; and
:func:`run_parallel` (``workers=2``, ``batch_size=2``: six batches over two processes).
The kept ids and their order, the columns and their values, and the removed log (``id,
step, reason, detail``) must be equal. A new built-in step without an entry in
:func:`configs` fails :func:`test_every_registered_step_has_a_configuration`.

The dataset is crafted so that each filtering step removes something: an exact and a near
duplicate, a French record, an e-mail address, a benchmark item (against a one-item
benchmark file), a refusal, an empty output, and a record of a reference file
(``dedup.exact(against=path)``). ``benchmarks/conformance_matrix.py`` writes the matrix.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import instructkit as ik
from instructkit.testing import EXECUTORS, ConformanceError, check_transform, differences
from instructkit.transform import Map, Transform, registry

ITEM = "Natalia sold clips to 48 of her friends in April and then she sold half as many clips in May"
POEM = "Write a short poem about the sea and the sky at night."
WAVES = "Waves roll in and out under the silver moon tonight."
ROME = {"instruction": "Summarize the history of Rome in three sentences.", "output": "Rome grew, ruled and fell."}
SKY = {"instruction": "Explain why the sky is blue to a child.", "output": "Sunlight scatters off air, and blue light scatters most."}

RECORDS: list[dict[str, Any]] = [
    {"instruction": POEM, "output": WAVES},
    {"instruction": POEM, "output": WAVES},  # exact duplicate of 0
    {"instruction": POEM[:-1] + "!", "output": WAVES[:-1] + ", softly."},  # near duplicate of 0
    {"instruction": "Écris un court poème sur la mer et le ciel la nuit.", "output": "Les vagues roulent sous la lune."},
    {"instruction": "Email jane.doe@corp-mail.org about the meeting on Monday.", "output": "Sure, I will write to her today."},
    {"instruction": ITEM + ". How many clips did she sell?", "output": "72"},  # benchmark item
    {"instruction": "Tell me your opinion about politics in detail.", "output": "As an AI language model, I cannot share opinions."},
    {"instruction": "Describe a sunny morning in the countryside.", "output": ""},
    ROME,  # also in the reference file
    SKY,
    {"instruction": "  Translate   'good morning' into Spanish.  ", "output": "Buenos días."},
    SKY,  # exact duplicate of 9
]

#: What each step must remove from RECORDS (in memory), so the check is not vacuous.
REMOVES = {
    "decontaminate": {"c:5"},
    "dedup.exact": {"c:1", "c:8", "c:11"},
    "dedup.fuzzy": {"c:1", "c:2", "c:11"},
    "dedup.minhash": {"c:1", "c:2", "c:11"},
    "pii.scrub": {"c:4"},
    "langid": {"c:3"},
    "quality": {"c:6", "c:7"},
    "conversations": {"c:7"},
    "score.select": {"c:1", "c:2", "c:3", "c:4", "c:6", "c:7", "c:10"},
}


class ScriptedLLM(ik.LLM):
    """A deterministic stand-in for a model: its answers and log-probabilities are functions of
    the text, so model-based steps can be compared across executors bit for bit (the numbers of
    real models are checked against transformers in tests/test_llm.py)."""

    local = True
    model = "scripted"

    def __init__(self) -> None:
        super().__init__(cache=False)

    def _generate(self, convs: list[list[dict[str, str]]], params: dict[str, Any]) -> Iterator[tuple[int, str]]:
        for i, conv in enumerate(convs):
            yield i, f"Score: {zlib.crc32(conv[-1]['content'].encode()) % 5 + 1}"

    def logprobs(self, prompts: Any, completions: Any) -> list[list[float]]:
        return [[-(zlib.crc32((p + w).encode()) % 97 + 1) / 50 for w in c.split()]
                for p, c in zip(prompts, completions, strict=True)]


def _reward_model(folder: Path) -> Path:
    import torch
    from tiny_llama import build_tokenizer
    from transformers import LlamaConfig, LlamaForSequenceClassification

    path = folder / "reward-model"
    if not (path / "config.json").is_file():
        tok = build_tokenizer()
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                             num_labels=1, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        LlamaForSequenceClassification(config).save_pretrained(path)
        tok.save_pretrained(path)
    return path


def configs(folder: Path) -> dict[str, dict[str, Any]]:
    """Constructor arguments of every built-in step (files it reads live in ``folder``)."""
    bench = folder / "bench.jsonl"
    bench.write_text(json.dumps({"question": ITEM, "answer": "72"}) + "\n")
    reference = folder / "reference.jsonl"
    reference.write_text(json.dumps(ROME) + "\n")
    return {
        "decontaminate": {"benchmarks": [{"from_file": {"path": str(bench), "fields": ["question"]}}], "n": 8},
        "dedup.exact": {"against": str(reference)},
        "dedup.fuzzy": {"threshold": 0.9},
        "dedup.minhash": {"threshold": 0.6, "num_perm": 64, "ngram": 3},
        "dedup.semantic": {"threshold": 0.9},
        "pii.detect": {},
        "pii.scrub": {"operator": "drop"},
        "langid": {"keep": ["en"]},
        "normalize": {"collapse_spaces": True},
        "quality": {},
        "sample": {"total": 8, "seed": 0},
        "template.qa": {"fields": {"question": "instruction", "context": "output", "answer": "output"}},
        "template.closed_qa": {},
        "template.summarize": {"fields": {"document": "instruction", "summary": "output"}},
        "template.translate": {"fields": {"source": "instruction", "target": "output"},
                               "source_lang": "en", "target_lang": "fr"},
        "template.classify": {"labels": {"c": "chat", "d": "docs"}, "fields": {"text": "instruction", "label": "source"}},
        "template.custom": {"instruction": "Rewrite this: {instruction}", "output": "{output}"},
        "conversations": {},
        "score.ifd": {"model": ScriptedLLM()},
        "score.perplexity": {"model": ScriptedLLM()},
        "score.judge": {"llm": ScriptedLLM()},
        "score.reward": {"model": str(_reward_model(folder))},
        "score.select": {"by": "rating", "top_fraction": 0.5, "valid_range": [0, 1]},
    }


#: More configurations of some steps: (name, extra arguments, what the step must remove).
VARIANTS: list[tuple[str, dict[str, Any], set[str]]] = [
    # F1: flagging keeps every record on every path (apply_decision is the one hook)
    ("decontaminate", {"action": "flag"}, set()),
    # against= a file: read on the driver by prepare(), never by a worker
    ("dedup.fuzzy", {"against": "reference.jsonl"}, {"c:1", "c:2", "c:8", "c:11"}),
]


def builtin_steps() -> dict[str, type]:
    """The registry's steps that ship with instructkit (test modules register their own)."""
    return {n: c for n, c in registry().items() if c.__module__.startswith("instructkit.")}


def dataset() -> ik.Dataset:
    # a score column, as a scoring step would add, for score.select
    ratings = [0.9, 0.2, None, 0.5, 1.3, 0.7, 0.1, 0.4, 0.8, 0.6, 0.3, 0.95]
    return ik.Dataset.from_records(RECORDS, source="c").with_columns(pl.Series("rating", ratings, dtype=pl.Float64))


def run_parallel(step: Transform, folder: Path, name: str) -> ik.Dataset:
    """``dataset()`` after ``step`` on the local executor with two worker processes."""
    out = folder / f"parallel-{name}"
    result = ik.Pipeline([step]).run(dataset(), output=out, batch_size=2, workers=2, resume=False)
    return result.to_dataset()


def assert_parallel_conforms(step: Transform, memory: ik.Dataset, folder: Path, name: str) -> None:
    problems = differences(memory, run_parallel(step, folder, name))
    assert not problems, f"step {step!r}: memory vs parallel (workers=2):\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="module")
def ray_instance() -> Any:
    """One Ray instance for the module: starting Ray takes seconds."""
    if os.environ.get("CI") == "true":
        import ray
    else:
        ray = pytest.importorskip("ray", reason="the Ray executor needs ray (pip install instructkit[ray])")
    # workers import instructkit from where this process does, and this module by name
    paths = [str(Path(ik.__file__).parents[1]), str(Path(__file__).parent)]
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield ray
    ray.shutdown()


def test_every_registered_step_has_a_configuration(folder: Path) -> None:
    missing = sorted(set(builtin_steps()) - set(configs(folder)))
    assert not missing, f"add a configuration for {missing} to tests/test_conformance.py::configs"
    stale = sorted(set(configs(folder)) - set(builtin_steps()))
    assert not stale, f"configurations for steps that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(builtin_steps()))
def test_step_conforms_on_every_executor(name: str, folder: Path, ray_instance: Any) -> None:
    step = builtin_steps()[name](**configs(folder)[name])
    results = check_transform(step, dataset(), EXECUTORS, batch_size=2, num_cpus=2, workdir=folder)
    memory = results["memory"]
    assert_parallel_conforms(step, memory, folder, name)
    assert set(memory.removed["id"]) == REMOVES.get(name, set(memory.removed["id"]))
    if name == "sample":
        assert len(memory) == 8
    assert len(memory) + memory.removed.height == len(RECORDS)


@pytest.mark.parametrize(("name", "extra", "removes"), VARIANTS, ids=[f"{n}-{sorted(e)[0]}" for n, e, _ in VARIANTS])
def test_step_variants_conform(name: str, extra: dict[str, Any], removes: set[str], folder: Path,
                               ray_instance: Any) -> None:
    arguments = {**configs(folder)[name], **extra}
    if "against" in extra:
        arguments["against"] = str(folder / extra["against"])
    step = builtin_steps()[name](**arguments)
    results = check_transform(step, dataset(), workdir=folder)
    assert_parallel_conforms(step, results["memory"], folder, f"{name}-{sorted(extra)[0]}")
    assert set(results["memory"].removed["id"]) == removes
    if extra.get("action") == "flag":
        assert results["ray"].to_polars()["contaminated"].to_list() == [i == 5 for i in range(len(RECORDS))]


def test_check_transform_reports_a_step_that_depends_on_batches(folder: Path) -> None:
    class BatchMark(Map):
        """Writes the size of the batch it saw: a step that breaks the protocol."""

        name = "test.batch_mark"

        def apply(self, frame: Any) -> Any:
            import polars as pl

            return frame.with_columns(pl.lit(str(frame.height)).alias("meta"))

    with pytest.raises(ConformanceError, match=r"memory vs local: column 'meta' differs at id 'c:0': "
                                               r"'12' expected, '2' got"):
        check_transform(BatchMark(), dataset(), ("memory", "local"), workdir=folder)


def test_differences_name_order_and_log() -> None:
    ds = dataset()
    assert differences(ds, ds) == []
    reordered = ik.Dataset(ds.to_polars().reverse(), ds.removed)
    assert differences(ds, reordered) == [
        "kept ids in another order: first at position 0, 'c:0' expected, 'c:11' got"]
    dropped = ds.pipe(ik.quality())
    kept, log = differences(ds.pipe(ik.quality(refusals=None)), dropped)
    assert kept == "kept ids: 11 expected, 10 got; missing ['c:6']"
    assert log.startswith("removed log: 1 rows expected, 2 got; expected only []; got only [('c:6', 'quality', 'refusal'")


@pytest.mark.parametrize("name", sorted(builtin_steps()))
def test_every_step_saves_to_yaml_and_loads_back(name: str, folder: Path) -> None:
    """16.6: ``to_yaml`` works for every step that can be constructed (a model given as an
    object is written as its recipe form)."""
    params = {k: ik.LLM.from_openai("http://127.0.0.1:9/v1", "m", cache=False) if isinstance(v, ScriptedLLM) else v
              for k, v in configs(folder)[name].items()}
    text = ik.Pipeline([builtin_steps()[name](**params)]).to_yaml()
    assert ik.Pipeline.from_yaml(text).to_yaml() == text
