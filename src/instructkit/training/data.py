"""Records to token ids for causal-LM fine-tuning: response-only labels, truncation, batches.

A record is rendered by a prompt format from :mod:`instructkit.templates.formats` into
segments ``(text, is_response)``. The joined text is tokenized **once**, exactly as the
model will see it, and each token is labelled by where it starts in the text: a token that
starts inside a response span is learned, every other token gets the label ``-100``
(ignored by the loss). Tokenizing segment by segment would not give the model's tokens:
SentencePiece tokenizers (Llama-2, Mistral v0.1) put a ``▁`` prefix on every call, so each
response would start with a stray ``▁`` piece, and byte-level BPE merges across the
boundary would be split.

A token that straddles a boundary (it starts in the prompt and ends in the response, which
happens when the tokenizer merges across it) starts in the prompt, so it stays masked, as
in trl and Stanford Alpaca; such tokens are counted (``boundary_merges``).

Fast tokenizers give character offsets (``return_offsets_mapping``). For tokenizers
without them (slow, Python ones) the boundary is found from the token count of each text
prefix, checked against the whole text's tokens: where the prefix's tokens are not a
prefix of the whole text's (a merge across the boundary), the first differing token is the
straddling one and belongs to the segment it starts in; it is counted the same way.
Chat templates with ``{% generation %}`` blocks mark the assistant text themselves; their
spans are used instead of the format's segments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
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
class Encoded:
    """One record tokenized whole: ids, labels, and how many tokens straddled a boundary."""

    input_ids: list[int]
    labels: list[int]
    boundary_merges: int = 0


@dataclass
class TokenizeStats:
    """What tokenization did to a dataset; recorded in ``instructkit_run.json``.

    ``boundary_merges`` counts tokens that straddle a prompt/response boundary (masked when
    they start in the prompt), ``records_with_boundary_merges`` the records holding one.
    ``method`` says how labels were found: ``offsets`` (character offsets of a fast
    tokenizer), ``prefix_counts`` (token counts of text prefixes) or ``generation_blocks``
    (a chat template's ``{% generation %}`` spans, with offsets).
    """

    records: int = 0
    examples: int = 0
    truncated: int = 0
    skipped_no_response: int = 0
    tokens: int = 0
    response_tokens: int = 0
    max_length: int = 0
    boundary_merges: int = 0
    records_with_boundary_merges: int = 0
    method: str = ""
    truncated_ids: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)
    boundary_merge_ids: list[str] = field(default_factory=list)

    def as_dict(self, max_ids: int = 20) -> dict[str, Any]:
        """The counters, with at most ``max_ids`` example ids per list."""
        out = asdict(self)
        for key in ("truncated_ids", "skipped_ids", "boundary_merge_ids"):
            out[key] = out[key][:max_ids]
        return out


def has_offsets(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` reports character offsets (a Rust-backed "fast" tokenizer).

    Example:
        >>> has_offsets(object())
        False
    """
    return bool(getattr(tokenizer, "is_fast", False))


def _bos(tokenizer: Any, text: str, add_bos: bool) -> list[int]:
    bos = getattr(tokenizer, "bos_token", None)
    if add_bos and bos and tokenizer.bos_token_id is not None and not text.startswith(bos):
        return [tokenizer.bos_token_id]
    return []


def encode_prompt(text: str, tokenizer: Any, add_bos: bool = True) -> list[int]:
    """The ids of a prompt as :func:`tokenize_text` tokenizes it (BOS rule included): what
    ``ik.generate`` feeds the model.

    Example:
        >>> encode_prompt("Q: hi\\nA:", tok)  # doctest: +SKIP
        [1, 48, 30, 71, 5, 33, 30]
    """
    return _bos(tokenizer, text, add_bos) + list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _spans(segments: Sequence[tuple[str, bool]]) -> tuple[str, list[tuple[int, int]]]:
    """The joined text and the character spans ``[start, end)`` of its response pieces."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for text, learn in segments:
        if learn and text:
            if spans and spans[-1][1] == pos:
                spans[-1] = (spans[-1][0], pos + len(text))
            else:
                spans.append((pos, pos + len(text)))
        pos += len(text)
    return "".join(t for t, _ in segments), spans


def label_by_offsets(
    ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> tuple[list[int], int]:
    """Labels for ``ids``: a token is learned when its first character lies in a response
    span. Returns the labels and the number of tokens straddling a span's start or end.

    Example:
        >>> label_by_offsets([7, 8, 9], [(0, 2), (2, 5), (5, 6)], [(3, 6)])
        ([-100, -100, 9], 1)
    """
    labels = [IGNORE_INDEX] * len(ids)
    merges = 0
    k = 0
    for i, (start, end) in enumerate(offsets):
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        if k == len(spans):
            # past the last span: a token still overlapping it started before its end
            break
        a, b = spans[k]
        if a <= start < b:
            labels[i] = ids[i]
            if end > b:
                merges += 1
        elif start < a < end:
            merges += 1
    return labels, merges


def _label_by_prefix_counts(
    text: str, ids: Sequence[int], spans: Sequence[tuple[int, int]], tokenizer: Any
) -> tuple[list[int], int]:
    """Labels without offsets: the token index of every span boundary is the token count
    of the text before it, checked against the whole text's tokens."""
    cuts: list[tuple[int, bool]] = []  # (char position, response starts there)
    for a, b in spans:
        cuts.append((a, True))
        if b < len(text):
            cuts.append((b, False))
    labels = [IGNORE_INDEX] * len(ids)
    merges = 0
    learning = False
    pos = 0  # token index where the current piece starts
    for char, starts_response in cuts:
        prefix = tokenizer(text[:char], add_special_tokens=False)["input_ids"] if char else []
        n = len(prefix)
        if list(ids[:n]) != list(prefix):
            # the prefix tokenizes differently alone: the first differing token straddles
            # the boundary and belongs to the piece it starts in
            same = next((i for i, (x, y) in enumerate(zip(ids, prefix, strict=False)) if x != y),
                        min(len(ids), n))
            n = min(same + 1, len(ids))
            merges += 1
        n = max(n, pos)
        if learning:
            labels[pos:n] = ids[pos:n]
        pos, learning = n, starts_response
    if learning:
        labels[pos:] = ids[pos:]
    return labels, merges


def tokenize_text(
    text: str,
    spans: Sequence[tuple[int, int]],
    tokenizer: Any,
    add_bos: bool = True,
) -> Encoded:
    """Tokenize ``text`` whole and learn the tokens that start inside ``spans``.

    A BOS token is prepended when the tokenizer has one and the text does not already
    start with it (templates such as ``llama2`` write ``<s>`` themselves).

    Example:
        >>> enc = tokenize_text("Q: hi\\nA: yo</s>", [(9, 15)], tok)  # doctest: +SKIP
        >>> tok.decode([t for t in enc.labels if t != -100])           # doctest: +SKIP
        ' yo</s>'
    """
    head = _bos(tokenizer, text, add_bos)
    if has_offsets(tokenizer):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels, merges = label_by_offsets(ids, enc["offset_mapping"], spans)
    else:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        labels, merges = _label_by_prefix_counts(text, ids, spans, tokenizer)
    return Encoded(head + ids, [IGNORE_INDEX] * len(head) + labels, merges)


def tokenize_record(
    segments: Sequence[tuple[str, bool]], tokenizer: Any, add_bos: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids and labels (``-100`` on prompt tokens) for one rendered record.

    The pieces are joined and tokenized once (:func:`tokenize_text`).

    Example:
        >>> ids, labels = tokenize_record([("Q: hi\\n", False), ("A: yo</s>", True)], tok)  # doctest: +SKIP
        >>> labels[:3]                                                                  # doctest: +SKIP
        [-100, -100, -100]
    """
    text, spans = _spans(segments)
    enc = tokenize_text(text, spans, tokenizer, add_bos)
    return enc.input_ids, enc.labels


def _has_generation_blocks(fmt: Any) -> bool:
    import re

    template = getattr(getattr(fmt, "tokenizer", None), "chat_template", None)
    return (
        getattr(fmt, "name", "") == "chat_template"
        and isinstance(template, str)
        and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None
    )


def _generation_spans(fmt: Any, record: Mapping[str, Any]) -> tuple[str, list[tuple[int, int]]]:
    """The text and assistant spans a chat template marks with ``{% generation %}``."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from instructkit.templates.formats import conversation

    tokenizer = fmt.tokenizer
    system, turns = conversation(record)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": r, "content": c} for r, c in turns
    ]
    rendered, indices = render_jinja_template(
        conversations=[messages],
        chat_template=tokenizer.chat_template,
        return_assistant_tokens_mask=True,
        **tokenizer.special_tokens_map,
    )
    text = rendered[0]
    expected = fmt.render(record)
    if text != expected:
        raise ValueError(
            "the chat template renders differently with generation tracking "
            f"({text[:60]!r}... vs {expected[:60]!r}...)"
        )
    return text, [(a, b) for a, b in indices[0] if b > a]


def encode_record(record: Mapping[str, Any], fmt: Any, tokenizer: Any) -> Encoded:
    """Render ``record`` with prompt format ``fmt`` and tokenize it whole.

    Chat templates with ``{% generation %}`` blocks give the learned spans; every other
    format gives them through :meth:`~instructkit.templates.formats.PromptFormat.segments`.

    Example:
        >>> from instructkit.templates.formats import get_format
        >>> enc = encode_record({"instruction": "Hi", "output": "Yo"}, get_format("llama2"), tok)  # doctest: +SKIP
    """
    if _has_generation_blocks(fmt):
        text, spans = _generation_spans(fmt, record)
    else:
        text, spans = _spans(fmt.segments(record))
    return tokenize_text(text, spans, tokenizer)


def tokenize_records(
    records: Iterable[dict[str, Any]],
    fmt: Any,
    tokenizer: Any,
    max_seq_length: int,
) -> tuple[list[Example], TokenizeStats]:
    """Tokenize every record with prompt format ``fmt``, truncating to ``max_seq_length``.

    Records whose response is cut away entirely by truncation would train on nothing; they
    are skipped and counted in ``skipped_no_response`` (their ids in ``skipped_ids``).
    :func:`instructkit.training.tokenize.tokenize` (``ik.tokenize``) shows the same
    tokenization as a table.

    Example:
        >>> from instructkit.templates.formats import get_format
        >>> examples, stats = tokenize_records(ds, get_format("alpaca"), tok, 512)  # doctest: +SKIP
        >>> stats.truncated                                                         # doctest: +SKIP
        0
    """
    examples: list[Example] = []
    stats = TokenizeStats()
    for rid, enc, truncated in iter_encoded(records, fmt, tokenizer, max_seq_length, stats):
        del truncated
        if any(x != IGNORE_INDEX for x in enc.labels):
            examples.append(Example(rid, enc.input_ids, enc.labels))
    return examples, stats


def iter_encoded(
    records: Iterable[Mapping[str, Any]],
    fmt: Any,
    tokenizer: Any,
    max_seq_length: int,
    stats: TokenizeStats,
) -> Iterator[tuple[str, Encoded, bool]]:
    """``(id, encoded, truncated)`` per record, truncated to ``max_seq_length``, updating
    ``stats``; records left without a learned token are yielded too (and counted)."""
    if max_seq_length < 2:
        raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
    stats.method = (
        "generation_blocks" if _has_generation_blocks(fmt)
        else "offsets" if has_offsets(tokenizer) else "prefix_counts"
    )
    if stats.method == "generation_blocks" and not has_offsets(tokenizer):
        raise ValueError("chat templates with {% generation %} blocks need a fast tokenizer (offsets)")
    for record in records:
        stats.records += 1
        rid = str(record.get("id", stats.records - 1))
        try:
            enc = encode_record(record, fmt, tokenizer)
        except Exception as e:  # name the record: a template error alone says nothing
            raise ValueError(f"record {rid!r}: cannot render with the prompt format: {e}") from e
        if enc.boundary_merges:
            stats.boundary_merges += enc.boundary_merges
            stats.records_with_boundary_merges += 1
            stats.boundary_merge_ids.append(rid)
        truncated = len(enc.input_ids) > max_seq_length
        if truncated:
            stats.truncated += 1
            stats.truncated_ids.append(rid)
            enc = Encoded(enc.input_ids[:max_seq_length], enc.labels[:max_seq_length],
                          enc.boundary_merges)
        n_response = sum(1 for x in enc.labels if x != IGNORE_INDEX)
        if n_response == 0:
            stats.skipped_no_response += 1
            stats.skipped_ids.append(rid)
        else:
            stats.examples += 1
            stats.tokens += len(enc.input_ids)
            stats.response_tokens += n_response
            stats.max_length = max(stats.max_length, len(enc.input_ids))
        yield rid, enc, truncated


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
