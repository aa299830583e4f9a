"""Clean data in the shapes trainers read: trl, LLaMA-Factory, axolotl and the Hugging Face Hub.

Three trainer forms, each built column-wise from the canonical frame (no Python loop over
records):

- ``messages``: one ``messages`` list per record, ``[system?, user, assistant, ...]``, the
  system turn first when the record has one. trl's ``SFTTrainer`` (conversational
  language-modelling format), axolotl's ``chat_template`` type and LLaMA-Factory's
  ``sharegpt`` formatting (with role tags) all read it as is.
- ``prompt_completion``: ``prompt`` and ``completion`` strings (trl's standard
  prompt-completion format, which trains on the completion only). With
  ``conversational=True`` they are message lists instead, which also carries the system turn
  and multi-turn history.
- ``alpaca``: ``instruction, input, output, system, history`` with ``history`` the earlier
  ``[user, assistant]`` exchanges, as LLaMA-Factory's alpaca formatting reads it.

A single-turn record's user turn is its instruction, then ``"\\n\\n"`` and the input when
there is one (as :mod:`instructkit.io.convert` writes chat formats).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from instructkit.schema import MESSAGE

TrainerFormat = Literal["messages", "prompt_completion", "alpaca"]
TRAINER_FORMATS: tuple[str, ...] = ("messages", "prompt_completion", "alpaca")
_TURNS = pl.List(MESSAGE)


def _turn(role: str, content: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(role).alias("role"), content.cast(pl.String).alias("content"))


def user_prompt() -> pl.Expr:
    """A single-turn record's user turn: the instruction, then the input after a blank line."""
    return (
        pl.when(pl.col("input").fill_null("") == "")
        .then(pl.col("instruction"))
        .otherwise(pl.concat_str(pl.col("instruction"), pl.lit("\n\n"), pl.col("input")))
    )


def turns() -> pl.Expr:
    """Every record's conversation without the system turn: its ``messages``, or the user and
    assistant turns of a single-turn record."""
    single = pl.concat_list(_turn("user", user_prompt()), _turn("assistant", pl.col("output")))
    return pl.when(pl.col("messages").is_null()).then(single).otherwise(pl.col("messages")).cast(_TURNS)


def _has_system() -> pl.Expr:
    return pl.col("system").is_not_null() & (pl.col("system") != "")


def with_system(conversation: pl.Expr) -> pl.Expr:
    """``conversation`` with the record's system turn first, when it has one."""
    system = pl.concat_list(_turn("system", pl.col("system")))
    return pl.when(_has_system()).then(pl.concat_list(system, conversation)).otherwise(conversation)


def _tools(frame: pl.DataFrame) -> pl.Expr | None:
    """The ``tools`` JSON a ShareGPT record carried (kept in ``meta``), or None if none has."""
    tools = pl.col("meta").str.json_path_match("$.tools")
    if frame.select(tools.is_not_null().any()).item():
        return tools.alias("tools")
    return None


def trainer_frame(
    frame: pl.DataFrame,
    format: TrainerFormat = "messages",
    *,
    ids: bool = False,
    conversational: bool = False,
) -> pl.DataFrame:
    """The records in a trainer's form (see the module docs); ``ids`` keeps an ``id`` column.

    Raises ``ValueError`` naming the first record a form cannot hold: a multi-turn record in
    the plain prompt/completion form, a tool call in the alpaca form, a conversation that
    does not end with the assistant.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Add.", "input": "2 3", "output": "5",
        ...                                "system": "Be brief."}])
        >>> trainer_frame(ds.to_polars())["messages"].to_list()[0]
        [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Add.\\n\\n2 3'}, {'role': 'assistant', 'content': '5'}]
        >>> trainer_frame(ds.to_polars(), "prompt_completion", conversational=True).row(0)[0][0]
        {'role': 'system', 'content': 'Be brief.'}
        >>> trainer_frame(ds.to_polars(), "alpaca").row(0)
        ('Add.', '2 3', '5', 'Be brief.', [])
    """
    if format not in TRAINER_FORMATS:
        raise ValueError(f"format must be one of {TRAINER_FORMATS}, got {format!r}")
    conv = turns()
    _check_ends_with_assistant(frame, conv)
    if format == "messages":
        out = frame.select(with_system(conv).alias("messages"))
    elif format == "prompt_completion":
        out = frame.select(_prompt_completion(frame, conv, conversational))
    else:
        out = _alpaca(frame, conv)
    tools = _tools(frame)
    if tools is not None and format != "prompt_completion":
        out = out.with_columns(frame.select(tools).to_series())
    if ids:
        out = out.insert_column(0, frame["id"])
    return out


def _check_ends_with_assistant(frame: pl.DataFrame, conv: pl.Expr) -> None:
    last = conv.list.last().struct.field("role")
    bad = frame.select(pl.col("id"), last.alias("last")).filter(pl.col("last") != "assistant")
    if bad.height:
        raise ValueError(
            f"record {bad['id'][0]!r} ends with a {bad['last'][0]!r} turn, not the assistant's, so "
            f"a trainer has nothing to learn from it ({bad.height} such records); drop them first "
            "with ik.conversations()"
        )


def _prompt_completion(frame: pl.DataFrame, conv: pl.Expr, conversational: bool) -> list[pl.Expr]:
    prompt_turns = conv.list.slice(0, conv.list.len() - 1)
    completion_turn = conv.list.slice(-1, 1)
    if conversational:
        return [with_system(prompt_turns).alias("prompt"), completion_turn.alias("completion")]
    multi = frame.filter(pl.col("messages").list.len().fill_null(2) > 2)
    if multi.height:
        raise ValueError(
            f"record {multi['id'][0]!r} has {multi['messages'][0].len()} turns: the plain "
            "prompt/completion form holds one exchange; pass conversational=True or use "
            "format='messages'"
        )
    system = frame.filter(_has_system())
    if system.height:
        raise ValueError(
            f"record {system['id'][0]!r} has a system prompt, which the plain prompt/completion "
            "form has no place for; pass conversational=True or use format='messages'"
        )
    return [
        prompt_turns.list.first().struct.field("content").alias("prompt"),
        completion_turn.list.first().struct.field("content").alias("completion"),
    ]


def _alpaca(frame: pl.DataFrame, conv: pl.Expr) -> pl.DataFrame:
    roles = conv.list.eval(pl.element().struct.field("role")).list.join(",")
    alternating = roles.str.contains(r"^(user,assistant)(,user,assistant)*$")
    bad = frame.select("id", alternating.alias("ok")).filter(~pl.col("ok"))
    if bad.height:
        raise ValueError(
            f"record {bad['id'][0]!r} has turns other than alternating user/assistant (tool calls): "
            "the alpaca form cannot hold them; use format='messages'"
        )
    contents = conv.list.eval(pl.element().struct.field("content"))
    single = pl.col("messages").is_null()
    flat = frame.with_row_index("_row").select(
        "_row",
        pl.when(single).then(pl.col("instruction")).otherwise(contents.list.get(-2)).alias("instruction"),
        pl.when(single).then(pl.col("input")).otherwise(pl.lit("")).alias("input"),
        pl.when(single).then(pl.col("output")).otherwise(contents.list.get(-1)).alias("output"),
        pl.col("system").fill_null("").alias("system"),
        contents.list.slice(0, contents.list.len() - 2).alias("_earlier"),
    )
    # [u1, a1, u2, a2] -> [[u1, a1], [u2, a2]]: number the earlier turns, pair 2k with 2k + 1
    pairs = (
        flat.select("_row", "_earlier")
        .explode("_earlier")
        .drop_nulls("_earlier")
        .with_columns((pl.int_range(pl.len()).over("_row") // 2).alias("_pair"))
        .group_by("_row", "_pair", maintain_order=True)
        .agg(pl.col("_earlier"))
        .group_by("_row", maintain_order=True)
        .agg(pl.col("_earlier").alias("history"))
    )
    return (
        flat.drop("_earlier")
        .join(pairs, on="_row", how="left", maintain_order="left")
        .with_columns(pl.col("history").fill_null(pl.lit([], dtype=pl.List(pl.List(pl.String)))))
        .drop("_row")
    )
