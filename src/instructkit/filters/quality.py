"""``ik.quality()``: rule-based quality filters for instruction data.

Each rule drops a record with its own reason, checked in this order:

- ``empty_output``: the output (or any assistant turn) is empty or whitespace only;
- ``too_short`` / ``too_long``: a field outside its character or word bounds;
- ``refusal``: the output (or any assistant turn) contains a refusal or boilerplate phrase
  ("As an AI language model", ...), case-insensitive;
- ``blacklisted_task``: the instruction (or any user turn) mentions a listed word. Off by
  default; ``blacklist="alpaca"`` is the keyword list Stanford Alpaca used on its *generated*
  tasks (images, graphs, files, maps, ...). On curated data it removes good records (17% of
  ``new_codealpaca.json``, mostly file-handling code tasks; 2.5% of GSM8K, all of them word
  problems): see ``benchmarks/results/quality_defaults.md`` and docs/filters.md.

In a conversation each rule reads every turn (``instruction`` bounds and the blacklist each
user turn, ``output`` bounds and refusals each assistant turn); the detail names the turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from instructkit.schema import TEXT_FIELDS
from instructkit.text import record_text, text_pieces
from instructkit.transform import Filter, detail_expr

#: Refusal and boilerplate phrases that mark a useless answer (matched case-insensitively).
REFUSALS: tuple[str, ...] = (
    "as an ai language model",
    "as a language model",
    "as an ai assistant, i",
    "i'm sorry, but as an ai",
    "i am sorry, but as an ai",
    "i'm sorry, but i cannot",
    "i'm sorry, but i can't",
    "i am sorry, but i cannot",
    "i cannot fulfill",
    "i can't fulfill",
    "i am unable to provide",
    "i'm unable to provide",
    "i do not have the ability to",
    "i don't have the ability to",
    "i do not have personal opinions",
    "i don't have personal opinions",
    "as an artificial intelligence",
    "openai's content policy",
    "against my programming",
)

#: Stanford Alpaca's blacklist (generate_instruction.py): words that mark a generated task a
#: text-only model cannot do. Meant for self-instruct output, not for curated data.
BLACKLIST: tuple[str, ...] = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)

#: Word lists ``blacklist=`` accepts by name.
NAMED_BLACKLISTS: dict[str, tuple[str, ...]] = {"alpaca": BLACKLIST}

Bounds = Mapping[str, int] | None

#: A word: a run of non-space characters, except that each Chinese, Japanese or Korean
#: character counts as one word, since those scripts do not put spaces between words.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
WORD = rf"[{_CJK}]|[^\s{_CJK}]+"


class Quality(Filter):
    """Drop empty outputs, out-of-bounds lengths, refusals and tasks a text model cannot do.

    Args:
        empty_output: drop records whose output (or any assistant turn) is blank.
        min_chars, max_chars, min_words, max_words: per-field bounds, e.g.
            ``min_words={"instruction": 3}``; fields are ``instruction``, ``input``,
            ``output``, ``system``.
        refusals: phrases searched in the output (case-insensitive); None disables.
        blacklist: whole words or phrases searched in the instruction, or ``"alpaca"`` for
            :data:`BLACKLIST`; None (the default) disables the rule.
        max_tokens: token-length limits with the training tokenizer: per field
            (``{"output": 2048}``), or one number for the whole record (every field and turn,
            joined), reason ``too_long`` with ``unit: "tokens"``. Needs ``tokenizer``.
        tokenizer: a Hugging Face tokenizer, or the path of a local folder holding one; texts
            are counted in batches, without special tokens.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Say hi", "output": "Hi!"},
        ...     {"instruction": "Say hi", "output": "As an AI language model, I can't."},
        ...     {"instruction": "Draw a cat", "output": "ok"},
        ...     {"instruction": "Say bye", "output": " "}])
        >>> ds.pipe(ik.quality()).removed["reason"].to_list()
        ['refusal', 'empty_output']
        >>> ds.pipe(ik.quality(blacklist="alpaca")).removed["reason"].to_list()
        ['refusal', 'blacklisted_task', 'empty_output']
    """

    name: ClassVar[str] = "quality"

    def __init__(
        self,
        empty_output: bool = True,
        min_chars: Bounds = None,
        max_chars: Bounds = None,
        min_words: Bounds = None,
        max_words: Bounds = None,
        refusals: Sequence[str] | None = REFUSALS,
        blacklist: Sequence[str] | str | None = None,
        max_tokens: Bounds | int = None,
        tokenizer: Any = None,
    ) -> None:
        if isinstance(blacklist, str) and blacklist not in NAMED_BLACKLISTS:
            raise ValueError(
                f"blacklist takes a list of words or one of {sorted(NAMED_BLACKLISTS)}, got {blacklist!r}"
            )
        for bounds in (min_chars, max_chars, min_words, max_words):
            for field, value in (bounds or {}).items():
                if field not in ("instruction", "input", "output", "system"):
                    raise ValueError(f"length bound on unknown field {field!r}")
                if value < 0:
                    raise ValueError(f"length bound for {field!r} must be >= 0, got {value}")
        self.empty_output = empty_output
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.min_words = min_words
        self.max_words = max_words
        if max_tokens is not None and tokenizer is None:
            raise ValueError("max_tokens needs tokenizer= (a Hugging Face tokenizer or its local folder)")
        token_bounds = {} if max_tokens is None or isinstance(max_tokens, int) else max_tokens
        for field in token_bounds:
            if field not in ("instruction", "input", "output", "system"):
                raise ValueError(f"max_tokens on unknown field {field!r}")
        self.refusals = refusals
        self.blacklist = blacklist
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self._loaded_tokenizer: Any = None

    def _count_tokens(self, texts: list[str]) -> list[int]:
        if self._loaded_tokenizer is None:
            if isinstance(self.tokenizer, (str, Path)):
                from transformers import AutoTokenizer

                self._loaded_tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer))
            else:
                self._loaded_tokenizer = self.tokenizer
        if not texts:
            return []
        return [len(ids) for ids in self._loaded_tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def reasons(self, frame: pl.DataFrame) -> pl.DataFrame:
        cache: dict[str, pl.DataFrame] = {}

        def pieces(field: str) -> pl.DataFrame:
            if field not in cache:
                cache[field] = text_pieces(frame, [field])
            return cache[field]

        rules: list[tuple[pl.Series, str, pl.Series]] = []
        if self.empty_output:
            rules.append((*_empty(frame.height, pieces("output")), "empty_output"))  # type: ignore[arg-type]
        text = pl.col("text").fill_null("")
        for bounds, unit, op, reason in (
            (self.min_chars, "chars", "<", "too_short"),
            (self.min_words, "words", "<", "too_short"),
            (self.max_chars, "chars", ">", "too_long"),
            (self.max_words, "words", ">", "too_long"),
        ):
            for field, limit in (bounds or {}).items():
                m = text.str.len_chars() if unit == "chars" else text.str.count_matches(WORD)
                cond = m < limit if op == "<" else m > limit
                why = {"limit": pl.lit(limit, dtype=pl.Int64), "unit": pl.lit(unit), "value": m.cast(pl.Int64)}
                rules.append((*_first(frame.height, pieces(field), cond, why), reason))  # type: ignore[arg-type]
        if self.max_tokens is not None:
            if isinstance(self.max_tokens, int):
                whole = record_text(frame, TEXT_FIELDS, separator="\n")
                targets = {"record": (pl.DataFrame({
                    "row": pl.int_range(frame.height, eager=True, dtype=pl.Int64), "field": "record",
                    "turn": pl.Series([None] * frame.height, dtype=pl.Int64), "text": whole.fill_null("")}),
                    self.max_tokens)}
            else:
                targets = {f: (pieces(f), limit) for f, limit in self.max_tokens.items()}
            for field_pieces, limit in targets.values():
                counted = field_pieces.with_columns(
                    pl.Series("tokens", self._count_tokens(field_pieces["text"].fill_null("").to_list()), dtype=pl.Int64))
                why = {"limit": pl.lit(limit, dtype=pl.Int64), "unit": pl.lit("tokens"), "value": pl.col("tokens")}
                rules.append((*_first(frame.height, counted, pl.col("tokens") > limit, why), "too_long"))  # type: ignore[arg-type]
        if self.refusals:
            pattern = "(?i)(" + "|".join(re.escape(p) for p in self.refusals) + ")"
            found = text.str.extract(pattern, 1)
            why = {"phrase": found.str.to_lowercase()}
            rules.append((*_first(frame.height, pieces("output"), found.is_not_null(), why), "refusal"))  # type: ignore[arg-type]
        words = NAMED_BLACKLISTS[self.blacklist] if isinstance(self.blacklist, str) else self.blacklist
        if words:
            pattern = r"(?i)\b(" + "|".join(re.escape(w) for w in words) + r")\b"
            found = text.str.extract(pattern, 1)
            why = {"word": found.str.to_lowercase()}
            rules.append((*_first(frame.height, pieces("instruction"), found.is_not_null(), why), "blacklisted_task"))  # type: ignore[arg-type]
        if not rules:
            return pl.DataFrame({"reason": pl.Series([None] * frame.height, dtype=pl.String)})
        columns = {f"c{i}": c for i, (c, _, _) in enumerate(rules)} | {f"d{i}": d for i, (_, d, _) in enumerate(rules)}
        reason: pl.Expr = pl.lit(None, dtype=pl.String)
        detail: pl.Expr = pl.lit(None, dtype=pl.String)
        for i in reversed(range(len(rules))):  # the first rule that fires wins
            reason = pl.when(pl.col(f"c{i}")).then(pl.lit(rules[i][2])).otherwise(reason)
            detail = pl.when(pl.col(f"c{i}")).then(pl.col(f"d{i}")).otherwise(detail)
        return pl.DataFrame(columns).select(reason.alias("reason"), detail.alias("detail"))


def _detail(why: dict[str, pl.Expr]) -> pl.Expr:
    """``{"field", "turn"?, ...why}``: ``turn`` (the index in ``messages``) only for a turn."""
    base = {"field": pl.col("field"), **why}
    return (
        pl.when(pl.col("turn").is_null())
        .then(detail_expr(**base))
        .otherwise(detail_expr(**base, turn=pl.col("turn")))
    )


def _first(n: int, pieces: pl.DataFrame, cond: pl.Expr, why: dict[str, pl.Expr]) -> tuple[pl.Series, pl.Series]:
    """Per row of the frame: does any of its pieces meet ``cond``, and the detail of the first
    that does (in field, then turn order)."""
    hits = (
        pieces.filter(cond.fill_null(False))
        .unique("row", keep="first", maintain_order=True)
        .select("row", _detail(why).alias("detail"))
    )
    return _per_row(n, hits)


def _empty(n: int, pieces: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Rows with a blank output or assistant turn, or a conversation with no assistant turn."""
    blank = _first(n, pieces, pl.col("text").str.strip_chars() == "", {})
    has = pl.Series(np.isin(np.arange(n), pieces["row"].to_numpy()))
    missing = pl.DataFrame({"row": pl.int_range(n, eager=True, dtype=pl.Int64)}).filter(~has).select(
        "row", pl.lit('{"field":"output"}').alias("detail"))
    cond, detail = _per_row(n, missing)
    return blank[0] | cond, blank[1].fill_null(detail)


def _per_row(n: int, hits: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    rows = pl.DataFrame({"row": pl.int_range(n, eager=True, dtype=pl.Int64)})
    joined = rows.join(hits, on="row", how="left", maintain_order="left")
    return joined["detail"].is_not_null().alias("cond"), joined["detail"]
