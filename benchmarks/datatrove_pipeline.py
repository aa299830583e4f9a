"""instructkit's six-step pipeline expressed in datatrove, for ``bench_pipeline.py``.

Runs with a Python that has datatrove (not instructkit's), e.g.:

    /work/dtvenv/bin/python benchmarks/datatrove_pipeline.py --input shards/ --work /tmp/dt \
        --gsm8k gsm8k_test.jsonl --lid lid.176.ftz --refusals refusals.json --workers 2

``--input`` is a folder of JSONL shards of instructkit records (``id``, ``instruction``,
``input``, ``output``): datatrove parallelises over files, one task per shard. Stages, each a
``LocalPipelineExecutor(workers=2)``:

1. decont index (1 task): GSM8K test -> ``NGramsDecontIndexer`` (13-grams of question and answer);
2. read -> normalize (a formatter doing what ``ik.normalize()`` does) -> quality (``LambdaFilter``
   with ``ik.quality()``'s default rules) -> ``JsonlWriter`` (intermediate) -> ``ExactDedupSignature``;
3. ``ExactFindDedups`` (1 task);
4. read intermediate -> ``ExactDedupFilter`` -> ``MinhashDedupSignature`` (5-grams, 21 bands x 6 rows,
   the banding ``ik.dedup.minhash(threshold=0.8)`` uses);
5. ``MinhashDedupBuckets`` (one task per band); 6. ``MinhashDedupCluster`` (1 task);
7. read intermediate -> ``ExactDedupFilter`` -> ``MinhashDedupFilter`` -> ``LanguageFilter(["en"])``
   -> ``NGramsDecontFilter`` -> ``JsonlWriter`` (output).

Offline by construction, with two minimal subclasses (datatrove would otherwise download):

- ``LocalFT176LID``: datatrove's ``FT176LID`` fetches lid.176.bin from fbaipublicfiles; this
  one loads the given local file (lid.176.ftz, the quantised model instructkit also uses) and,
  like ``ik.langid()``'s default ``field="instruction"``, predicts on the instruction;
- ``LocalNGramsDecontIndexer``: the stock indexer imports lighteval to fetch tasks from the
  Hub even when documents are given; this one indexes only the documents it is given.

Prints one line ``RESULT {json}``: per-stage wall seconds, records in and out, and
datatrove's own per-step seconds and dropped counts (``stats.json`` of each stage).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.executor import LocalPipelineExecutor
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.filters import LambdaFilter, LanguageFilter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.lid import FT176LID
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.typeshelper import Languages
from datatrove.utils.word_tokenizers import load_word_tokenizer

FIELDS = ("instruction", "input", "output")
# ik.dedup.exact's key: lowercase, no punctuation or symbols, whitespace collapsed (numbers and
# diacritics kept, unlike datatrove's default simplify_text)
EXACT_NORM = TextNormConfig(norm_numbers=False, norm_unicode_diacritics=False)

# ik.normalize()'s defaults (NFC, line endings, controls, odd spaces, trailing spaces, at most
# one blank line, strip), on each field
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")


def record_adapter(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    """An instructkit record as a datatrove document: the fields in metadata, the text their
    non-empty parts joined by a blank line (instructkit's ``record_text``)."""
    fields = {f: data.get(f) or "" for f in FIELDS}
    return {"text": "\n\n".join(v for v in fields.values() if v), "id": data.get("id", f"{path}/{id_in_file}"),
            "metadata": fields}


def record_writer(self: Any, doc: Document) -> dict:
    """Back to an instructkit record (the text is derived, so not written twice)."""
    out = {"id": doc.id, **{f: doc.metadata.get(f, "") for f in FIELDS}}
    if "language" in doc.metadata:
        out["lang"], out["lang_score"] = doc.metadata["language"], doc.metadata["language_score"]
    return out


def gsm8k_adapter(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    """A GSM8K item as the indexer wants it: the answer as text, the question as query."""
    return {"text": data["answer"], "id": str(id_in_file), "metadata": {"query": data["question"], "task": "gsm8k"}}


def exact_key(doc: Document) -> str:
    return simplify_text(doc.text, EXACT_NORM)


class NormalizeFields(BaseFormatter):
    """``ik.normalize()`` as a datatrove formatter: each field normalized, the text rebuilt."""

    name = "normalize (ik.normalize equivalent)"

    def format(self, text: str) -> str:
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = _SPACES.sub(" ", _CONTROL.sub("", text))
        return _BLANKS.sub("\n\n", _TRAILING.sub("\n", text)).strip()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                for f in FIELDS:
                    doc.metadata[f] = self.format(doc.metadata[f])
                doc.text = "\n\n".join(doc.metadata[f] for f in FIELDS if doc.metadata[f])
            yield doc


class QualityRules:
    """``ik.quality()``'s default rules: an empty output, or a refusal phrase in the output."""

    def __init__(self, refusals: list[str]) -> None:
        self.pattern = re.compile("|".join(re.escape(p) for p in refusals), re.IGNORECASE)

    def __call__(self, doc: Document) -> bool:
        output = doc.metadata["output"]
        return bool(output.strip()) and not self.pattern.search(output)


class LocalFT176LID(FT176LID):
    """datatrove's lid.176 backend on a local model file, predicting on the instruction."""

    def __init__(self, languages: list[str] | None, model_path: str) -> None:
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self) -> Any:
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_path)
        return self._model

    def predict(self, doc: Document) -> Any:
        return super().predict(Document(text=doc.metadata["instruction"] or doc.text, id=doc.id))


class LocalLanguageFilter(LanguageFilter):
    """datatrove's ``LanguageFilter`` (threshold, metadata, stats) with ``LocalFT176LID``."""

    def __init__(self, languages: list[str], model_path: str, **kwargs: Any) -> None:
        super().__init__(languages, **kwargs)
        self.model = LocalFT176LID(self.languages, model_path)


class LocalNGramsDecontIndexer(PipelineStep):
    """datatrove's n-gram decontamination index for the documents given in the pipeline.

    The stock ``NGramsDecontIndexer`` requires lighteval (it fetches tasks from the Hub even
    when documents are given), so this step borrows its hashing and writes the same index."""

    type = NGramsDecontIndexer.type
    name = NGramsDecontIndexer.name
    compute_hashes = NGramsDecontIndexer.compute_hashes

    def __init__(self, output_folder: str, config: NGramsDecontConfig, language: str = Languages.english) -> None:
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.tokenizer = load_word_tokenizer(language)
        self.hash_func = create_hash_func(config.hash_config)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hashes: dict[str, set[int]] = defaultdict(set)
        for doc in data or []:
            with self.track_time():
                hashes[doc.metadata.get("task", "input")].update(
                    self.compute_hashes(doc.text, doc.metadata.get("query")))
        for task, task_hashes in hashes.items():
            array = np.array(sorted(task_hashes), dtype=self.config.hash_config.np_descr)
            with self.output_folder.open(f"{task}.index.hashes", mode="wb") as f:
                array.tofile(f)
        yield from ()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="folder of JSONL shards")
    p.add_argument("--work", required=True, help="empty folder for intermediates, logs and the output")
    p.add_argument("--gsm8k", required=True)
    p.add_argument("--lid", required=True, help="local fastText lid.176 model (.ftz or .bin)")
    p.add_argument("--refusals", required=True, help="JSON list of ik.quality's refusal phrases")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()

    work = Path(args.work)
    shards = sorted(Path(args.input).glob("*.jsonl"))
    tasks, workers = len(shards), args.workers
    exact = ExactDedupConfig(content_getter=exact_key)
    minhash = MinhashConfig(n_grams=5, num_buckets=21, hashes_per_bucket=6, seed=1)
    decont = NGramsDecontConfig(n_grams=13, find_query_ngrams=True)
    refusals = json.loads(Path(args.refusals).read_text())

    def reader(folder: str | Path) -> JsonlReader:
        return JsonlReader(str(folder), adapter=record_adapter, glob_pattern="*.jsonl", compression=None)

    def executor(name: str, pipeline: list, n: int) -> LocalPipelineExecutor:
        return LocalPipelineExecutor(pipeline, tasks=n, workers=min(workers, n), logging_dir=str(work / "logs" / name))

    stages = [
        ("decont_index", [JsonlReader(str(Path(args.gsm8k).parent), glob_pattern=Path(args.gsm8k).name,
                                      adapter=gsm8k_adapter, compression=None),
                          LocalNGramsDecontIndexer(str(work / "decont_index"), config=decont)], 1),
        ("normalize_quality_exact_sig", [
            reader(args.input),
            NormalizeFields(),
            LambdaFilter(QualityRules(refusals)),
            JsonlWriter(str(work / "stage1"), compression=None, adapter=record_writer),
            ExactDedupSignature(str(work / "exact_sigs"), config=exact),
        ], tasks),
        ("exact_find", [ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=exact)], 1),
        ("minhash_sig", [
            reader(work / "stage1"),
            ExactDedupFilter(str(work / "exact_dups"), config=exact),
            MinhashDedupSignature(str(work / "minhash_sigs"), config=minhash),
        ], tasks),
        ("minhash_buckets", [MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"),
                                                 config=minhash)], minhash.num_buckets),
        ("minhash_cluster", [MinhashDedupCluster(str(work / "minhash_buckets"), str(work / "minhash_remove"),
                                                 config=minhash)], 1),
        ("filter_langid_decont_write", [
            reader(work / "stage1"),
            ExactDedupFilter(str(work / "exact_dups"), config=exact),
            MinhashDedupFilter(str(work / "minhash_remove")),
            LocalLanguageFilter(["en"], args.lid),
            NGramsDecontFilter(str(work / "decont_index"), config=decont),
            JsonlWriter(str(work / "output"), compression=None, adapter=record_writer),
        ], tasks),
    ]
    seconds: dict[str, float] = {}
    steps: dict[str, float] = {}
    dropped: dict[str, int] = {}
    started = time.perf_counter()
    for name, pipeline, n in stages:
        t0 = time.perf_counter()
        executor(name, pipeline, n).run()
        seconds[name] = time.perf_counter() - t0
        for step in json.loads((work / "logs" / name / "stats.json").read_text()):
            t = step["time_stats"]
            key = f"{name}: {step['name']}"
            steps[key] = t["total"] if isinstance(t, dict) else float(t)
            dropped[key] = int(step["stats"].get("dropped", 0))
    total = time.perf_counter() - started
    records_in = sum(1 for s in shards for _ in s.open())
    records_out = sum(1 for s in (work / "output").glob("*.jsonl") for _ in s.open())
    print("RESULT " + json.dumps({"seconds": total, "stages": seconds, "steps": steps, "dropped": dropped, "tasks": tasks,
                                  "workers": workers, "records_in": records_in, "kept": records_out}), flush=True)


if __name__ == "__main__":
    main()
