"""``ik.conversations``: drop conversations a trainer would reject or learn wrong.

The checks LLaMA-Factory, axolotl and trl users meet most often at training time, run
before it: a conversation must start with a user turn, alternate user and assistant (a tool
call and its result may sit between them), end with an assistant turn, have no empty turn,
and hold between ``min_turns`` and ``max_turns`` turns. A single-turn record is the
conversation ``[user: instruction + input, assistant: output]``.

Every check is a polars expression over the turns' roles, so the filter runs column-wise.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from instructkit.transform import Filter, detail_expr

#: One letter per role in the ``roles`` detail: the role pattern of a rejected conversation.
ROLE_LETTERS = {"user": "U", "assistant": "A", "tool": "T", "function_call": "F"}
# a user turn, any number of (function call, tool result) pairs, then the assistant's answer
_VALID = r"^(U(FT)*A)+$"


class Conversations(Filter):
    """Keep only well-formed conversations; each failure has its own reason.

    Reasons, in the order they are checked (a record gets the first that applies), and the
    ``detail`` keys of each (``roles``: one letter a turn, ``U`` user, ``A`` assistant,
    ``F`` function call, ``T`` tool result, ``?`` any other role):

    - ``empty_turn``: a turn whose content is empty or only whitespace; ``turn`` (0-based).
    - ``bad_role``: a role other than user, assistant, tool, function_call (a system turn
      belongs in ``system``, before the conversation); ``turn``, ``roles``.
    - ``first_turn_not_user``: ``roles``.
    - ``trailing_user_turn``: the last turn is not the assistant's, so there is nothing to
      learn from it; ``roles``.
    - ``not_alternating``: two user or two assistant turns in a row, or a tool result with
      no call before it; ``roles``.
    - ``too_few_turns`` / ``too_many_turns``: ``turns`` and the bound (``min`` or ``max``).

    Args:
        min_turns: fewest turns (messages, not exchanges) a conversation may have.
        max_turns: most turns; None for no bound.
        allow_tools: accept function-call and tool-result turns (ShareGPT ``function_call``
            / ``observation``); False rejects them as ``bad_role``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        ...     {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hey?"}]},
        ...     {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " "}]},
        ... ])
        >>> out = ds.pipe(ik.conversations())
        >>> len(out), out.removed["reason"].to_list()
        (1, ['trailing_user_turn', 'empty_turn'])
    """

    name: ClassVar[str] = "conversations"

    def __init__(self, min_turns: int = 2, max_turns: int | None = None, allow_tools: bool = True) -> None:
        if min_turns < 0:
            raise ValueError(f"min_turns must be >= 0, got {min_turns}")
        if max_turns is not None and max_turns < min_turns:
            raise ValueError(f"max_turns ({max_turns}) must be >= min_turns ({min_turns})")
        self.min_turns = min_turns
        self.max_turns = max_turns
        self.allow_tools = allow_tools

    def reasons(self, frame: pl.DataFrame) -> pl.DataFrame:
        letters = {**ROLE_LETTERS}
        if not self.allow_tools:
            letters = {k: v for k, v in letters.items() if k not in ("tool", "function_call")}
        turns = _turns(frame)
        role = turns.list.eval(
            pl.element().struct.field("role").replace_strict(letters, default="?", return_dtype=pl.String)
        )
        roles = role.list.join("")
        blank = turns.list.eval(
            pl.element().struct.field("content").fill_null("").str.strip_chars().str.len_chars() == 0
        )
        first_blank = blank.list.eval(pl.element().arg_max()).list.first()
        first_bad = role.list.eval((pl.element() == "?").arg_max()).list.first()
        n = turns.list.len()
        checks: list[tuple[pl.Expr, str, pl.Expr]] = [
            (blank.list.any(), "empty_turn", detail_expr(turn=first_blank)),
            (roles.str.contains("?", literal=True), "bad_role", detail_expr(turn=first_bad, roles=roles)),
            (~roles.str.starts_with("U") & (n > 0), "first_turn_not_user", detail_expr(roles=roles)),
            (~roles.str.ends_with("A") & (n > 0), "trailing_user_turn", detail_expr(roles=roles)),
            (~roles.str.contains(_VALID) & (n > 0), "not_alternating", detail_expr(roles=roles)),
            (n < self.min_turns, "too_few_turns", detail_expr(turns=n, min=pl.lit(self.min_turns))),
        ]
        if self.max_turns is not None:
            checks.append(
                (n > self.max_turns, "too_many_turns", detail_expr(turns=n, max=pl.lit(self.max_turns)))
            )
        reason: pl.Expr = pl.lit(None, dtype=pl.String)
        detail: pl.Expr = pl.lit(None, dtype=pl.String)
        for failed, name, why in reversed(checks):
            reason = pl.when(failed).then(pl.lit(name)).otherwise(reason)
            detail = pl.when(failed).then(why).otherwise(detail)
        return frame.select(reason.alias("reason"), detail.alias("detail"))


def _turns(frame: pl.DataFrame) -> pl.Expr:
    """Every record's turns: its ``messages``, or ``[user, assistant]`` built from the flat
    fields of a single-turn record (the input joined to the instruction as renderers do)."""
    prompt = pl.when(pl.col("input").fill_null("") == "").then(pl.col("instruction")).otherwise(
        pl.concat_str(pl.col("instruction"), pl.lit("\n\n"), pl.col("input"))
    )
    single = pl.concat_list(
        pl.struct(pl.lit("user").alias("role"), prompt.alias("content")),
        pl.struct(pl.lit("assistant").alias("role"), pl.col("output").alias("content")),
    )
    return pl.when(pl.col("messages").is_null()).then(single).otherwise(pl.col("messages"))
