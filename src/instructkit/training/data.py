"""Records to token ids for causal-LM fine-tuning: response-only labels, truncation, batches.

A record is rendered by a prompt format from :mod:`instructkit.templates.formats` into
segments ``(text, is_response)``. Each segment is tokenized on its own, so the boundary
between prompt and response is exact: prompt tokens get the label ``-100`` (ignored by the
loss), response tokens (the end-of-sequence marker included) are learned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

IGNORE_INDEX = -100


@dataclass
class Example:
    """One tokenized record: ``input_ids`` and ``labels`` of the same length."""

    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass
class TokenizeStats:
    """What tokenization did to a dataset; recorded in ``instructkit_run.json``."""

    records: int = 0
    examples: int = 0
    truncated: int = 0
    skipped_no_response: int = 0
    tokens: int = 0
    response_tokens: int = 0
    max_length: int = 0
    truncated_ids: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)

    def as_dict(self, max_ids: int = 20) -> dict[str, Any]:
        """The counters, with at most ``max_ids`` example ids per list."""
        out = asdict(self)
        out["truncated_ids"] = self.truncated_ids[:max_ids]
        out["skipped_ids"] = self.skipped_ids[:max_ids]
        return out


def tokenize_record(
    segments: Sequence[tuple[str, bool]], tokenizer: Any, add_bos: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids and labels (``-100`` on prompt tokens) for one rendered record.

    A BOS token is prepended when the tokenizer has one and the text does not already
    start with it (templates such as ``llama2`` write ``<s>`` themselves).

    Example:
        >>> ids, labels = tokenize_record([("Q: hi\\n", False), ("A: yo</s>", True)], tok)  # doctest: +SKIP
        >>> labels[:3]                                                                  # doctest: +SKIP
        [-100, -100, -100]
    """
    input_ids: list[int] = []
    labels: list[int] = []
    bos = getattr(tokenizer, "bos_token", None)
    first = next((text for text, _ in segments if text), "")
    if add_bos and bos and tokenizer.bos_token_id is not None and not first.startswith(bos):
        input_ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE_INDEX)
    for text, learn in segments:
        if not text:
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        labels.extend(ids if learn else [IGNORE_INDEX] * len(ids))
    return input_ids, labels


def tokenize_records(
    records: Iterable[dict[str, Any]],
    fmt: Any,
    tokenizer: Any,
    max_seq_length: int,
) -> tuple[list[Example], TokenizeStats]:
    """Tokenize every record with prompt format ``fmt``, truncating to ``max_seq_length``.

    Records whose response is cut away entirely by truncation would train on nothing; they
    are skipped and counted in ``skipped_no_response`` (their ids in ``skipped_ids``).

    Example:
        >>> from instructkit.templates.formats import get_format
        >>> examples, stats = tokenize_records(ds, get_format("alpaca"), tok, 512)  # doctest: +SKIP
        >>> stats.truncated                                                         # doctest: +SKIP
        0
    """
    if max_seq_length < 2:
        raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
    stats = TokenizeStats()
    examples: list[Example] = []
    for record in records:
        stats.records += 1
        rid = str(record.get("id", stats.records - 1))
        try:
            segments = fmt.segments(record)
        except Exception as e:  # name the record: a template error alone says nothing
            raise ValueError(f"record {rid!r}: cannot render with the prompt format: {e}") from e
        input_ids, labels = tokenize_record(segments, tokenizer)
        if len(input_ids) > max_seq_length:
            stats.truncated += 1
            stats.truncated_ids.append(rid)
            input_ids, labels = input_ids[:max_seq_length], labels[:max_seq_length]
        n_response = sum(1 for x in labels if x != IGNORE_INDEX)
        if n_response == 0:
            stats.skipped_no_response += 1
            stats.skipped_ids.append(rid)
            continue
        stats.examples += 1
        stats.tokens += len(input_ids)
        stats.response_tokens += n_response
        stats.max_length = max(stats.max_length, len(input_ids))
        examples.append(Example(rid, input_ids, labels))
    return examples, stats


def collate(examples: Sequence[Example], pad_token_id: int) -> dict[str, Any]:
    """Right-pad a batch to its longest example: ``input_ids``, ``attention_mask``, ``labels``.

    Example:
        >>> batch = collate([Example("a", [1, 2], [-100, 2]), Example("b", [1], [1])], 0)
        >>> batch["input_ids"].tolist(), batch["labels"].tolist()
        ([[1, 2], [1, 0]], [[-100, 2], [1, -100]])
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[i, :n] = torch.tensor(e.labels, dtype=torch.long)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batches(
    examples: Sequence[Example], batch_size: int, seed: int, epoch: int, shuffle: bool = True
) -> Iterator[list[Example]]:
    """Micro-batches of one epoch, in an order fixed by ``seed`` and ``epoch``.

    Example:
        >>> exs = [Example(str(i), [i], [i]) for i in range(5)]
        >>> [len(b) for b in batches(exs, 2, seed=0, epoch=0)]
        [2, 2, 1]
    """
    import numpy as np

    order = np.arange(len(examples))
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(len(examples))
    for start in range(0, len(order), batch_size):
        yield [examples[int(i)] for i in order[start : start + batch_size]]
