"""Model-based scores as Map steps, and a selection step that ``ik.sweep`` can drive.

- :class:`IFD` (``ik.score.ifd``): Cherry LLM's Instruction-Following Difficulty, the mean
  loss of the response given the instruction over its mean loss alone, into ``ifd``.
- :class:`Perplexity` (``ik.score.perplexity``): ``exp`` of the mean loss of the response
  given the prompt (or of the whole rendered text), into ``perplexity``.
- :class:`Judge` (``ik.score.judge``): an AlpaGasus-style 1-5 rating by an LLM, into
  ``judge_score``; the raw judgement goes to ``meta["judge"]``.
- :class:`Reward` (``ik.score.reward``): a sequence-classification reward model's score,
  into ``reward``.
- :class:`Select` (``ik.score.select``): keep records by a score column: a threshold, the top
  fraction, or both; a Global step, since the top fraction needs every score.

Example:
    >>> import instructkit as ik
    >>> scored = ds.pipe(ik.score.ifd("models/qwen2.5-0.5b"), ik.score.select(by="ifd", top_fraction=0.1))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from instructkit.llm.backends import LLM, TransformersLLM
from instructkit.transform import Global, Map, detail_expr

__all__ = ["IFD", "Perplexity", "Judge", "Reward", "Select", "ifd", "perplexity", "judge", "reward", "select"]

_RECORD_COLUMNS = ("id", "instruction", "input", "output", "system", "messages")


def as_llm(model: str | Path | LLM | Mapping[str, Any]) -> LLM:
    """An :class:`LLM` from an LLM, its recipe form (``{"openai": {...}}``) or a local folder."""
    if isinstance(model, LLM):
        return model
    if isinstance(model, Mapping):
        return LLM.from_config(model)
    return TransformersLLM(model, cache=False)


def _local_llm(model: str | Path | LLM | Mapping[str, Any]) -> LLM:
    llm = as_llm(model)
    if not llm.local:
        raise TypeError(f"{llm!r} gives no log-probabilities: scores need a local model (a folder or LLM.from_transformers)")
    return llm


def _model_param(model: str | Path | LLM | Mapping[str, Any]) -> str | LLM | Mapping[str, Any]:
    return str(model) if isinstance(model, Path) else model


def _split(frame: pl.DataFrame, template: str, llm: LLM) -> tuple[list[str], list[str]]:
    """Every record's (prompt, last response) in ``template``, without the EOS string; a record
    with an empty response gets ``""`` (its score is then null)."""
    from instructkit.templates.formats import FormatError, get_format

    tokenizer = llm.load()[1] if isinstance(llm, TransformersLLM) else None
    fmt = get_format(template, tokenizer, eos="") if template in ("alpaca",) else get_format(template, tokenizer)
    prompts, responses = [], []
    for record in frame.select(_RECORD_COLUMNS).iter_rows(named=True):
        try:
            prompt, response = fmt.split(record)
        except FormatError:
            prompt, response = fmt.prompt(record), ""
        prompts.append(prompt)
        responses.append(response)
    return prompts, responses


def _mean_loss(logprobs: list[float]) -> float | None:
    return -sum(logprobs) / len(logprobs) if logprobs else None


class IFD(Map):
    """Cherry LLM's Instruction-Following Difficulty of each record's response.

    ``ifd = loss(response | prompt) / loss(response)``, both the mean token cross-entropy of
    the response tokens, the first after the prompt rendered in ``template`` (as training
    renders it), the second after BOS alone. Above 1, the instruction does not help the model
    produce the response (Cherry LLM drops those); a high IFD below 1 marks a hard, useful
    example. A response with no token gets null. Adds ``ifd`` (Float64).

    Example:
        >>> ik.Dataset.from_records(records).pipe(ik.score.ifd("models/tiny"))  # doctest: +SKIP
    """

    name: ClassVar[str] = "score.ifd"

    def __init__(self, model: str | Path | LLM | Mapping[str, Any], template: str = "alpaca") -> None:
        self.model = _model_param(model)
        self.template = template

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        llm = _local_llm(self.model)
        prompts, responses = _split(frame, self.template, llm)
        conditioned = llm.logprobs(prompts, responses)
        alone = llm.logprobs([""] * len(responses), responses)
        values = []
        for c, a in zip(conditioned, alone, strict=True):
            lc, la = _mean_loss(c), _mean_loss(a)
            values.append(None if lc is None or not la else lc / la)
        return frame.with_columns(pl.Series("ifd", values, dtype=pl.Float64))


class Perplexity(Map):
    """Perplexity of each record under a local model, into ``perplexity``.

    ``part="response"`` (default) scores the last response given its prompt, rendered in
    ``template``; ``part="text"`` scores the whole rendered text.

    Example:
        >>> ds.pipe(ik.score.perplexity("models/tiny", part="text"))  # doctest: +SKIP
    """

    name: ClassVar[str] = "score.perplexity"

    def __init__(self, model: str | Path | LLM | Mapping[str, Any], template: str = "alpaca", part: str = "response") -> None:
        if part not in ("response", "text"):
            raise ValueError(f"part must be 'response' or 'text', got {part!r}")
        self.model = _model_param(model)
        self.template = template
        self.part = part

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        llm = _local_llm(self.model)
        prompts, responses = _split(frame, self.template, llm)
        if self.part == "text":
            prompts, responses = [""] * len(prompts), [p + r for p, r in zip(prompts, responses, strict=True)]
        losses = [_mean_loss(lp) for lp in llm.logprobs(prompts, responses)]
        values = [None if x is None else math.exp(x) for x in losses]
        return frame.with_columns(pl.Series("perplexity", values, dtype=pl.Float64))


#: The AlpaGasus-style rubric: rate helpfulness and accuracy from 1 to 5, score first.
DEFAULT_RUBRIC = (
    "We would like to request your feedback on the performance of an AI assistant in response "
    "to the instruction and the given input displayed below.\n\n"
    "Instruction: {instruction}\nInput: {input}\nResponse: {output}\n\n"
    "Please rate the response for its helpfulness and accuracy on a scale of 1 to 5, where a "
    "higher score indicates higher overall quality. Please first output a single line "
    "containing only the score, as 'Score: N'. In the subsequent line, please provide a brief "
    "explanation of your evaluation."
)
_SCORE_PATTERNS = (
    re.compile(r"\bscore\s*(?:is|of)?\s*[:=]?\s*\**\s*([1-5](?:\.\d+)?)\s*(?:/\s*5|out of 5)?", re.I),
    re.compile(r"\b([1-5](?:\.\d+)?)\s*(?:/\s*5|out of 5)\b", re.I),
    re.compile(r"^\s*\**\s*([1-5](?:\.\d+)?)\s*\**\s*$", re.M),
)


def parse_score(text: str) -> float | None:
    """The 1-5 rating in a judge's answer: ``Score: 4``, ``4/5``, ``4 out of 5``, or a line
    holding only the number; None when there is none.

    Example:
        >>> [parse_score(t) for t in ["Score: 4\\nGood.", "I'd give it 3.5/5.", "**5**", "great"]]
        [4.0, 3.5, 5.0, None]
    """
    for pattern in _SCORE_PATTERNS:
        match = pattern.search(text)
        if match:
            value = float(match.group(1))
            if 1.0 <= value <= 5.0:
                return value
    return None


class Judge(Map):
    """An LLM rates each record from 1 to 5 (AlpaGasus), into ``judge_score``.

    ``rubric`` is a prompt with ``{instruction}``, ``{input}``, ``{output}`` (and
    ``{system}``) fields; the answer is parsed by :func:`parse_score` and kept whole in
    ``meta["judge"]``. An answer with no rating gets a null score (``ik.score.select`` then
    drops it with reason ``no_score``).

    Example:
        >>> judge = ik.score.judge(ik.LLM.from_openai("http://localhost:8000/v1", "qwen"))  # doctest: +SKIP
    """

    name: ClassVar[str] = "score.judge"

    def __init__(self, llm: LLM | Mapping[str, Any], rubric: str = DEFAULT_RUBRIC, max_tokens: int = 256, seed: int = 0) -> None:
        for field in re.findall(r"\{(\w+)\}", rubric):
            if field not in ("instruction", "input", "output", "system"):
                raise ValueError(f"rubric field {{{field}}} is not one of instruction, input, output, system")
        self.llm = llm
        self.rubric = rubric
        self.max_tokens = max_tokens
        self.seed = seed

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame.select("instruction", "input", "output", pl.col("system").fill_null("")).to_dicts()
        prompts = [self.rubric.format(**r) for r in rows]
        answers = as_llm(self.llm).chat(prompts, max_tokens=self.max_tokens, temperature=0.0, seed=self.seed)
        scores = [parse_score(a) for a in answers]
        metas = [
            json.dumps({**(json.loads(m) if m else {}), "judge": a}, ensure_ascii=False)
            for m, a in zip(frame["meta"].to_list(), answers, strict=True)
        ]
        return frame.with_columns(
            pl.Series("judge_score", scores, dtype=pl.Float64), pl.Series("meta", metas, dtype=pl.String)
        )


class Reward(Map):
    """A sequence-classification reward model's score of each (prompt, response), into ``reward``.

    The model is a local folder that ``AutoModelForSequenceClassification`` loads (one label:
    the reward). The record is rendered with the tokenizer's chat template (system, user and
    assistant turns), or with ``template`` when given.

    Example:
        >>> ds.pipe(ik.score.reward("models/reward-model"))  # doctest: +SKIP
    """

    name: ClassVar[str] = "score.reward"

    def __init__(self, model: str | Path, template: str | None = None, batch_size: int = 8) -> None:
        self.model = str(model)
        self.template = template
        self.batch_size = batch_size

    def _texts(self, frame: pl.DataFrame, tokenizer: Any) -> list[str]:
        from instructkit.io.handoff import trainer_frame

        if self.template is not None:
            from instructkit.templates.formats import get_format

            fmt = get_format(self.template, tokenizer)
            return [fmt.render(r) for r in frame.select(_RECORD_COLUMNS).iter_rows(named=True)]
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"the tokenizer of {self.model} has no chat template: pass template=")
        conversations = trainer_frame(frame, "messages")["messages"].to_list()
        return [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (Path(self.model) / "config.json").is_file():
            raise FileNotFoundError(f"{self.model} is not a local model folder (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(self.model)
        model = AutoModelForSequenceClassification.from_pretrained(self.model).eval()
        if model.config.num_labels != 1:
            raise ValueError(f"{self.model} has {model.config.num_labels} labels; a reward model has one")
        texts = self._texts(frame, tokenizer)
        values: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            for text in texts[start : start + self.batch_size]:
                bos = tokenizer.bos_token
                ids = tokenizer(text, add_special_tokens=not (bos and text.startswith(bos)), return_tensors="pt")
                with torch.no_grad():
                    values.append(float(model(**ids).logits[0, 0]))
        return frame.with_columns(pl.Series("reward", values, dtype=pl.Float64))


class Select(Global):
    """Keep records by a score column (``ifd``, ``perplexity``, ``judge_score``, ``reward``...).

    ``threshold`` keeps scores at or above it (at or below with ``higher_is_better=False``);
    ``top_fraction`` keeps the best fraction of the records (ties broken by input order); with
    both, a record must pass both. ``valid_range=(low, high)`` first drops scores outside it
    (Cherry LLM drops IFD above 1). Reasons: ``no_score`` (null), ``score_out_of_range``,
    ``low_score``; the detail has ``by``, ``score`` and the ``cutoff``.

    ``threshold`` and ``top_fraction`` only affect :meth:`decide`, so ``ik.sweep`` over them
    scores once.

    Example:
        >>> import instructkit as ik, polars as pl
        >>> ds = ik.Dataset.from_records([{"instruction": str(i), "output": "x"} for i in range(4)])
        >>> ds = ds.with_columns(pl.Series("ifd", [0.9, 0.2, 0.5, 1.3]))
        >>> out = ds.pipe(ik.score.select(by="ifd", top_fraction=0.5, valid_range=(0, 1)))
        >>> out.to_polars()["instruction"].to_list(), out.removed["reason"].to_list()
        (['0', '2'], ['low_score', 'score_out_of_range'])
    """

    name: ClassVar[str] = "score.select"
    decide_params: ClassVar[tuple[str, ...]] = ("threshold", "top_fraction")

    def __init__(
        self,
        by: str,
        threshold: float | None = None,
        top_fraction: float | None = None,
        higher_is_better: bool = True,
        valid_range: Sequence[float] | None = None,
    ) -> None:
        if threshold is None and top_fraction is None and valid_range is None:
            raise ValueError("give threshold, top_fraction or valid_range (or several)")
        if top_fraction is not None and not 0.0 < top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
        if valid_range is not None and (len(valid_range) != 2 or valid_range[0] > valid_range[1]):
            raise ValueError(f"valid_range must be (low, high) with low <= high, got {valid_range!r}")
        self.by = by
        self.threshold = threshold
        self.top_fraction = top_fraction
        self.higher_is_better = higher_is_better
        self.valid_range = None if valid_range is None else tuple(valid_range)

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        if self.by not in batch.columns:
            raise ValueError(f"score.select: no column {self.by!r}; run its score step first (columns: {batch.columns})")
        return batch.select(pl.col("id"), pl.col(self.by).cast(pl.Float64).alias("score"))

    def decide(self, states: list[pl.DataFrame]) -> pl.DataFrame:
        scores = pl.concat(states, how="vertical").with_row_index("_order")
        reason = pl.when(pl.col("score").is_null() | pl.col("score").is_nan()).then(pl.lit("no_score"))
        if self.valid_range is not None:
            low, high = self.valid_range
            reason = reason.when((pl.col("score") < low) | (pl.col("score") > high)).then(pl.lit("score_out_of_range"))
        marked = scores.with_columns(reason.alias("reason"))
        valid = marked.filter(pl.col("reason").is_null())
        cutoff: float | None = None
        better = (lambda a, b: a >= b) if self.higher_is_better else (lambda a, b: a <= b)
        keep = valid
        if self.threshold is not None:
            keep = keep.filter(better(pl.col("score"), self.threshold))
            cutoff = self.threshold
        if self.top_fraction is not None:
            n = math.ceil(self.top_fraction * valid.height)
            ranked = valid.sort(["score", "_order"], descending=[self.higher_is_better, False]).head(n)
            keep = keep.filter(pl.col("id").is_in(ranked["id"].implode()))
            if ranked.height:
                worst = ranked["score"][-1]
                cutoff = worst if cutoff is None else (max if self.higher_is_better else min)(cutoff, worst)
        low = valid.filter(~pl.col("id").is_in(keep["id"].implode())).with_columns(pl.lit("low_score").alias("reason"))
        drops = pl.concat([marked.filter(pl.col("reason").is_not_null()), low]).sort("_order")
        return drops.select(
            "id",
            "reason",
            detail_expr(by=pl.lit(self.by), score=pl.col("score"), cutoff=pl.lit(cutoff, dtype=pl.Float64)).alias("detail"),
        )


ifd = IFD
perplexity = Perplexity
judge = Judge
reward = Reward
select = Select
