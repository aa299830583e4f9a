"""Generate instruction data with a model: self-instruct, QA from documents, paraphrases, responses.

Each generator returns a :class:`~instructkit.Dataset` whose records carry their provenance
in ``meta``: ``origin: "synthetic"``, ``model`` (the backend's model name) and
``prompt_sha256`` (the hash of the exact prompt sent). What a model produced that cannot be
used (an answer that does not parse, an instruction that fails a post-filter) goes to the
removed log with a reason, never silently away. Requests go through the LLM's response
cache, so a re-run or a resumed run sends none of them twice.

Example:
    >>> llm = ik.LLM.from_openai("http://localhost:8000/v1", "qwen2.5-7b")            # doctest: +SKIP
    >>> new = ik.augment.self_instruct("seed_tasks.jsonl", llm, n=100)                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset, concat
from instructkit.llm.backends import LLM
from instructkit.schema import empty_removed
from instructkit.transform import detail

__all__ = ["self_instruct", "qa_from_documents", "paraphrase", "responses", "SELF_INSTRUCT_BLACKLIST"]

#: Stanford Alpaca's post-filter blacklist: tasks a text model cannot do.
SELF_INSTRUCT_BLACKLIST = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _provenance(llm: LLM, prompt: str, **extra: Any) -> str:
    return json.dumps({"origin": "synthetic", "model": llm.model, "prompt_sha256": _sha(prompt), **extra},
                      ensure_ascii=False, sort_keys=True)


def _removed(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return empty_removed()
    return pl.DataFrame(rows, schema=empty_removed().schema)


def _dataset(records: list[dict[str, Any]], removed: list[dict[str, Any]], step: str, n_in: int) -> Dataset:
    from collections import Counter

    frame = pl.DataFrame(
        [{"id": r["id"], "source": r["source"], "instruction": r["instruction"], "input": r.get("input", ""),
          "output": r.get("output", ""), "system": r.get("system"), "messages": None, "meta": r["meta"]}
         for r in records],
        schema={"id": pl.String, "source": pl.String, "instruction": pl.String, "input": pl.String,
                "output": pl.String, "system": pl.String,
                "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String})), "meta": pl.String},
    )
    log = _removed(removed)
    entry = {"step": step, "kind": "generate", "params": "", "records_in": n_in,
             "records_out": frame.height, "removed": log.height,
             "by_reason": dict(Counter(log["reason"].to_list()).most_common()), "seconds": 0.0}
    return Dataset(frame, log, [entry])


# ------------------------------------------------------------------------------------------
# self-instruct


def encode_self_instruct_prompt(tasks: Sequence[Mapping[str, str]], header: str | None = None) -> str:
    """Stanford Alpaca's ``encode_prompt``: the generation prompt followed by the example tasks.

    Example:
        >>> p = encode_self_instruct_prompt([{"instruction": "Add:", "input": "", "output": "2"}], header="H")
        >>> p
        'H\\n###\\n1. Instruction: Add\\n1. Input:\\n<noinput>\\n1. Output:\\n2\\n###\\n2. Instruction:'
    """
    if header is None:
        header = (Path(__file__).resolve().parents[1] / "data" / "self_instruct_prompt.txt").read_text(encoding="utf-8")
    prompt = header + "\n"
    for idx, task in enumerate(tasks):
        instruction = re.sub(r"\s+", " ", task["instruction"]).strip().rstrip(":")
        input = "<noinput>" if task["input"].lower() == "" else task["input"]
        prompt += "###\n"
        prompt += f"{idx + 1}. Instruction: {instruction}\n"
        prompt += f"{idx + 1}. Input:\n{input}\n"
        prompt += f"{idx + 1}. Output:\n{task['output']}\n"
    prompt += "###\n"
    prompt += f"{len(tasks) + 1}. Instruction:"
    return prompt


def parse_self_instruct(response: str, num_prompt_instructions: int) -> list[tuple[dict[str, str] | None, str]]:
    """Stanford Alpaca's ``post_process_gpt3_response``, with a reason for every task it drops.

    Returns ``(task, reason)`` pairs: ``task`` is ``{instruction, input, output}`` with reason
    ``""`` when it passes, else None (``unparseable``) or the task with the post-filter that
    failed: ``too_short`` (3 words or fewer), ``too_long`` (over 150), ``blacklisted``,
    ``write_a_program``, ``bad_start`` (punctuation or a non-ASCII first character).

    Example:
        >>> text = " Name a color of the sky.\\n2. Input:\\n<noinput>\\n2. Output:\\nBlue.\\n###\\n3. Instruction: Hi"
        >>> [(t and t["instruction"], r) for t, r in parse_self_instruct(text, 1)]
        [('Name a color of the sky.', ''), (None, 'unparseable')]
    """
    raw = f"{num_prompt_instructions + 1}. Instruction:" + response
    out: list[tuple[dict[str, str] | None, str]] = []
    for k, chunk in enumerate(re.split("###", raw)):
        idx = k + num_prompt_instructions + 1
        parts = re.split(rf"{idx}\.\s+(Instruction|Input|Output):", chunk)
        if len(parts) != 7:
            if chunk.strip():
                out.append((None, "unparseable"))
            continue
        inst, input, output = parts[2].strip(), parts[4].strip(), parts[6].strip()
        input = "" if input.lower() == "<noinput>" else input
        task = {"instruction": inst, "input": input, "output": output}
        words = len(inst.split())
        if words <= 3:
            reason = "too_short"
        elif words > 150:
            reason = "too_long"
        elif any(re.search(rf"\b({w})\b", inst, flags=re.IGNORECASE) for w in SELF_INSTRUCT_BLACKLIST):
            reason = "blacklisted"
        elif inst.startswith("Write a program"):
            reason = "write_a_program"
        elif inst[0] in string.punctuation or not inst[0].isascii():
            reason = "bad_start"
        else:
            reason = ""
        out.append((task, reason))
    return out


def _seed_tasks(seed_tasks: str | Path | Dataset) -> list[dict[str, str]]:
    from instructkit.io.read import read

    ds = seed_tasks if isinstance(seed_tasks, Dataset) else read(seed_tasks)
    # a seed task lists several instances; like Stanford Alpaca, prompts show the first one
    frame = ds.to_polars().unique(subset=["instruction"], keep="first", maintain_order=True)
    return frame.select("instruction", "input", "output").to_dicts()


def self_instruct(
    seed_tasks: str | Path | Dataset,
    llm: LLM,
    n: int = 100,
    *,
    batch_size: int = 5,
    num_prompt_instructions: int = 3,
    similarity: float = 0.7,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_tokens: int = 3072,
    max_requests: int | None = None,
    seed: int = 0,
    source: str = "self_instruct",
) -> Dataset:
    """Generate ``n`` new tasks from seed tasks, as Stanford Alpaca / Code Alpaca did.

    Each request shows ``num_prompt_instructions`` seed tasks, sampled with ``seed``, after
    Stanford's generation prompt, and asks for more; ``batch_size`` requests go out at once,
    until ``n`` tasks pass or ``max_requests`` (default ``4 * n``) were sent. A task is kept
    when it passes the post-filters of :func:`parse_self_instruct` and its instruction's
    ROUGE-L F-measure against every seed and every task kept before it is at most
    ``similarity`` (``ik.dedup.fuzzy(scorer="rougeL")``, the reference's greedy pool).

    Example:
        >>> ik.augment.self_instruct("seed_tasks.jsonl", llm, n=20)  # doctest: +SKIP
    """
    if n < 1 or batch_size < 1 or num_prompt_instructions < 1:
        raise ValueError("n, batch_size and num_prompt_instructions must be >= 1")
    seeds = _seed_tasks(seed_tasks)
    if len(seeds) < num_prompt_instructions:
        raise ValueError(f"{len(seeds)} seed tasks for num_prompt_instructions={num_prompt_instructions}")
    rng = random.Random(seed)
    budget = max_requests if max_requests is not None else 4 * n
    records: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    kept = _seed_dataset(seeds)
    sent = 0
    while sent < budget and len(records) < n:
        prompts = [encode_self_instruct_prompt(rng.sample(seeds, num_prompt_instructions))
                   for _ in range(min(batch_size, budget - sent))]
        answers = [
            llm.chat([p], max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                     seed=seed + sent + k, stop=["\n20", "20.", "20."])[0]
            for k, p in enumerate(prompts)
        ]
        batch: list[dict[str, Any]] = []
        for k, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            for j, (task, reason) in enumerate(parse_self_instruct(answer, num_prompt_instructions)):
                rid = f"{source}:{sent + k}.{j}"
                meta = _provenance(llm, prompt, request=sent + k)
                if reason:
                    removed.append({"id": rid, "step": "augment.self_instruct", "reason": reason,
                                    "detail": detail(request=sent + k, task=j), "source": source,
                                    "instruction": task["instruction"] if task else "",
                                    "input": task["input"] if task else "", "output": task["output"] if task else ""})
                    continue
                assert task is not None
                batch.append({"id": rid, "source": source, **task, "meta": meta})
        sent += len(prompts)
        if batch:
            fresh, kept = _similarity_filter(batch, kept, similarity)
            records += fresh.pop("kept")
            removed += fresh.pop("removed")
    records = records[:n]
    return _dataset(records, removed, "augment.self_instruct", len(records) + len(removed))


def _seed_dataset(seeds: list[dict[str, str]]) -> Dataset:
    return Dataset.from_records(
        [{"id": f"seed:{i}", **s} for i, s in enumerate(seeds)], source="seed", format="alpaca"
    )


def _similarity_filter(batch: list[dict[str, Any]], pool: Dataset, threshold: float) -> tuple[dict[str, list], Dataset]:
    """Self-instruct's greedy ROUGE-L pool: a task whose instruction is too close to a seed or
    to a task kept before it goes; each kept task joins the pool."""
    from instructkit.dedup import fuzzy
    from instructkit.schema import COLUMNS

    new = _dataset(batch, [], "generated", len(batch))
    step = fuzzy(scorer="rougeL", threshold=threshold, field="instruction", against=pool)
    out = new.pipe(step)
    kept_ids = set(out.to_polars()["id"].to_list())
    removed = [{**row, "step": "augment.self_instruct"} for row in out.removed.to_dicts()]
    kept = [r for r in batch if r["id"] in kept_ids]
    pool = Dataset(pl.concat([pool.to_polars().select(COLUMNS), out.to_polars().select(COLUMNS)]))
    return {"kept": kept, "removed": removed}, pool


# ------------------------------------------------------------------------------------------
# QA pairs from documents

QA_PROMPT = (
    "Read the document below and write {n} question-answer pairs that a reader of it could ask "
    "and that the document answers. Answer from the document only.\n\n"
    "Document:\n{chunk}\n\n"
    'Reply with a JSON array only, like [{{"question": "...", "answer": "..."}}].'
)


def chunk_text(text: str, size: int, overlap: int, tokenizer: Any = "words") -> list[str]:
    """Cut ``text`` into chunks of ``size`` tokens that overlap by ``overlap`` tokens.

    ``tokenizer="words"`` counts whitespace-separated words; a Hugging Face tokenizer counts
    its tokens (chunks are cut at token offsets, so they are exact substrings of ``text``).

    Example:
        >>> chunk_text("a b c d e f g", size=3, overlap=1)
        ['a b c', 'c d e', 'e f g']
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    if tokenizer == "words":
        spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    else:
        spans = [(s, e) for s, e in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"] if e > s]
    chunks, step = [], size - overlap
    for start in range(0, max(len(spans) - overlap, 1), step):
        window = spans[start : start + size]
        if window:
            chunks.append(text[window[0][0] : window[-1][1]])
    return chunks


def parse_qa_pairs(answer: str) -> list[dict[str, str]]:
    """The ``[{"question", "answer"}]`` array in a model's answer (code fences and text around
    it allowed). Raises ``ValueError`` saying what is wrong.

    Example:
        >>> parse_qa_pairs('Sure:\\n```json\\n[{"question": "Why?", "answer": "Because."}]\\n```')
        [{'question': 'Why?', 'answer': 'Because.'}]
    """
    start, end = answer.find("["), answer.rfind("]")
    if start < 0 or end < start:
        raise ValueError("no JSON array in the answer")
    try:
        items = json.loads(answer[start : end + 1])
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at character {e.pos})") from None
    pairs = []
    for k, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not isinstance(item.get("answer"), str):
            raise ValueError(f"item {k} is not a {{question, answer}} object of strings")
        if not item["question"].strip() or not item["answer"].strip():
            raise ValueError(f"item {k} has an empty question or answer")
        pairs.append({"question": item["question"].strip(), "answer": item["answer"].strip()})
    return pairs


def qa_from_documents(
    documents: Mapping[str, str] | Sequence[str],
    llm: LLM,
    n: int = 3,
    *,
    chunk_size: int = 512,
    overlap: int = 64,
    tokenizer: Any = "words",
    prompt: str = QA_PROMPT,
    max_tokens: int = 1024,
    seed: int = 0,
    source: str = "qa_from_documents",
) -> Dataset:
    """Turn documents into question-answer records, ``n`` per chunk.

    Documents (``{doc_id: text}`` or a list) are cut by :func:`chunk_text`; the model answers
    ``prompt`` (with ``{n}`` and ``{chunk}``) per chunk. Each pair becomes a record
    (``instruction`` = question, ``output`` = answer) with the document id and chunk index in
    ``meta``. A chunk whose answer does not parse (:func:`parse_qa_pairs`) is one removed row
    with reason ``unparseable`` and what was wrong in its detail: never a crash.

    Example:
        >>> ik.augment.qa_from_documents({"faq": open("faq.txt").read()}, llm, n=5)  # doctest: +SKIP
    """
    docs = dict(documents) if isinstance(documents, Mapping) else {str(i): d for i, d in enumerate(documents)}
    jobs = [(doc, k, chunk) for doc, text in docs.items() for k, chunk in enumerate(chunk_text(text, chunk_size, overlap, tokenizer))]
    prompts = [prompt.format(n=n, chunk=chunk) for _, _, chunk in jobs]
    answers = llm.chat(prompts, max_tokens=max_tokens, temperature=0.0, seed=seed)
    records, removed = [], []
    for (doc, k, _), text, answer in zip(jobs, prompts, answers, strict=True):
        try:
            pairs = parse_qa_pairs(answer)
        except ValueError as e:
            removed.append({"id": f"{source}:{doc}:{k}", "step": "augment.qa_from_documents", "reason": "unparseable",
                            "detail": detail(document=doc, chunk=k, error=str(e)), "source": source,
                            "instruction": "", "input": "", "output": ""})
            continue
        for j, pair in enumerate(pairs):
            records.append({"id": f"{source}:{doc}:{k}:{j}", "source": source, "instruction": pair["question"],
                            "input": "", "output": pair["answer"],
                            "meta": _provenance(llm, text, document=doc, chunk=k)})
    return _dataset(records, removed, "augment.qa_from_documents", len(jobs))


# ------------------------------------------------------------------------------------------
# paraphrases and responses

PARAPHRASE_PROMPT = (
    "Rewrite the following instruction in different words, keeping its meaning and every "
    "detail it asks for. Reply with the rewritten instruction only.\n\nInstruction: {instruction}"
)


def paraphrase(
    dataset: Dataset,
    llm: LLM,
    n: int = 1,
    *,
    prompt: str = PARAPHRASE_PROMPT,
    temperature: float = 0.7,
    max_tokens: int = 256,
    seed: int = 0,
    include_original: bool = True,
) -> Dataset:
    """``n`` paraphrases of every record's instruction, each a new record keeping the output.

    A paraphrase's id is ``<id>#p<k>`` and its ``meta`` has ``paraphrase_of`` (the source id),
    so ``ik.split`` keeps paraphrases in the same split as their source. An empty answer, or
    one equal to the instruction, is removed (``unparseable`` / ``paraphrase_unchanged``).

    Example:
        >>> ik.augment.paraphrase(small_faq, llm, n=2)  # doctest: +SKIP
    """
    frame = dataset.to_polars()
    rows = frame.select("id", "source", "instruction", "input", "output", "system", "meta").to_dicts()
    jobs = [(r, k) for r in rows for k in range(n)]
    prompts = [prompt.format(instruction=r["instruction"]) for r, _ in jobs]
    answers = [
        llm.chat([p], max_tokens=max_tokens, temperature=temperature, seed=seed + k)[0]
        for p, (_, k) in zip(prompts, jobs, strict=True)
    ]
    records, removed = [], []
    for (row, k), text, answer in zip(jobs, prompts, answers, strict=True):
        rid = f"{row['id']}#p{k}"
        new = answer.strip()
        reason = "unparseable" if not new else "paraphrase_unchanged" if new == row["instruction"].strip() else ""
        if reason:
            removed.append({"id": rid, "step": "augment.paraphrase", "reason": reason,
                            "detail": detail(paraphrase_of=row["id"]), "source": row["source"],
                            "instruction": new, "input": row["input"], "output": row["output"]})
            continue
        meta = {**(json.loads(row["meta"]) if row["meta"] else {}),
                **json.loads(_provenance(llm, text, paraphrase_of=row["id"]))}
        records.append({**row, "id": rid, "instruction": new, "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)})
    out = _dataset(records, removed, "augment.paraphrase", len(jobs))
    return concat([dataset, out]) if include_original else out


def responses(
    dataset: Dataset, llm: LLM, *, max_tokens: int = 1024, temperature: float = 0.0, seed: int = 0
) -> Dataset:
    """(Re)generate the response of every single-turn record with ``llm``.

    The conversation sent is the record's system prompt (if any) and its user turn
    (instruction, then the input after a blank line). The new ``output`` replaces the old;
    ``meta`` gets ``response_origin: "synthetic"``, ``response_model`` and ``prompt_sha256``.
    An empty answer removes the record (``unparseable``).

    Example:
        >>> ik.augment.responses(instructions_only, llm)  # doctest: +SKIP
    """
    from instructkit.io.handoff import trainer_frame

    frame = dataset.to_polars()
    multi = frame.filter(pl.col("messages").is_not_null())
    if multi.height:
        raise ValueError(f"record {multi['id'][0]!r} is a conversation: responses() regenerates single-turn records")
    convs = [c[:-1] for c in trainer_frame(frame, "messages")["messages"].to_list()]
    answers = llm.chat(convs, max_tokens=max_tokens, temperature=temperature, seed=seed)
    rows = frame.to_dicts()
    records, removed = [], []
    for row, conv, answer in zip(rows, convs, answers, strict=True):
        if not answer.strip():
            removed.append({"id": row["id"], "step": "augment.responses", "reason": "unparseable",
                            "detail": detail(error="empty answer"), "source": row["source"],
                            "instruction": row["instruction"], "input": row["input"], "output": ""})
            continue
        meta = {**(json.loads(row["meta"]) if row["meta"] else {}), "response_origin": "synthetic",
                "response_model": llm.model, "prompt_sha256": _sha(json.dumps(conv, ensure_ascii=False, sort_keys=True))}
        records.append({**row, "output": answer.strip(), "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)})
    return _dataset(records, removed, "augment.responses", len(rows))
