"""``ik.quality()``: rule-based quality filters for instruction data.

Each rule drops a record with its own reason, checked in this order:

- ``empty_output``: the output (or any assistant turn) is empty or whitespace only;
- ``too_short`` / ``too_long``: a field outside its character or word bounds;
- ``refusal``: the output contains a refusal or boilerplate phrase ("As an AI language
  model", ...), case-insensitive;
- ``blacklisted_task``: the instruction asks for something a text model cannot do (images,
  graphs, files, maps, ...), the keyword list Stanford Alpaca used to filter its generations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import polars as pl

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

#: Stanford Alpaca's blacklist (generate_instruction.py): tasks a text-only model cannot do.
BLACKLIST: tuple[str, ...] = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)

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
        blacklist: whole words or phrases searched in the instruction; None disables.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Say hi", "output": "Hi!"},
        ...     {"instruction": "Say hi", "output": "As an AI language model, I can't."},
        ...     {"instruction": "Draw a cat", "output": "ok"},
        ...     {"instruction": "Say bye", "output": " "}])
        >>> ds.pipe(ik.quality()).removed["reason"].to_list()
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
        blacklist: Sequence[str] | None = BLACKLIST,
    ) -> None:
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
        self.refusals = refusals
        self.blacklist = blacklist

    def reasons(self, frame: pl.DataFrame) -> pl.DataFrame:
        rules: list[tuple[pl.Expr, str, pl.Expr]] = []
        if self.empty_output:
            blank_turn = pl.col("messages").list.eval(
                (pl.element().struct.field("role") == "assistant")
                & (pl.element().struct.field("content").str.strip_chars() == "")
            ).list.any()
            rules.append((
                (pl.col("output").str.strip_chars() == "") | blank_turn.fill_null(False),
                "empty_output", detail_expr(field=pl.lit("output")),
            ))
        words = {f: pl.col(f).fill_null("").str.count_matches(WORD) for f in ("instruction", "input", "output", "system")}
        chars = {f: pl.col(f).fill_null("").str.len_chars() for f in words}
        for bounds, measure, unit, op, reason in (
            (self.min_chars, chars, "chars", "<", "too_short"),
            (self.min_words, words, "words", "<", "too_short"),
            (self.max_chars, chars, "chars", ">", "too_long"),
            (self.max_words, words, "words", ">", "too_long"),
        ):
            for field, limit in (bounds or {}).items():
                m = measure[field]
                cond = m < limit if op == "<" else m > limit
                detail = detail_expr(field=pl.lit(field), limit=pl.lit(limit), unit=pl.lit(unit), value=m)
                rules.append((cond, reason, detail))
        if self.refusals:
            pattern = "(?i)" + "|".join(re.escape(p) for p in self.refusals)
            found = pl.col("output").str.extract(f"({pattern})", 1)
            rules.append((found.is_not_null(), "refusal",
                          detail_expr(field=pl.lit("output"), phrase=found.str.to_lowercase())))
        if self.blacklist:
            pattern = r"(?i)\b(" + "|".join(re.escape(w) for w in self.blacklist) + r")\b"
            found = pl.col("instruction").str.extract(pattern, 1)
            rules.append((found.is_not_null(), "blacklisted_task",
                          detail_expr(field=pl.lit("instruction"), word=found.str.to_lowercase())))
        if not rules:
            return pl.DataFrame({"reason": pl.Series([None] * frame.height, dtype=pl.String)})
        reason: pl.Expr = pl.lit(None, dtype=pl.String)
        detail: pl.Expr = pl.lit(None, dtype=pl.String)
        for cond, name, why in reversed(rules):  # the first rule that fires wins
            reason = pl.when(cond).then(pl.lit(name)).otherwise(reason)
            detail = pl.when(cond).then(why).otherwise(detail)
        return frame.select(reason.alias("reason"), detail.alias("detail"))
