"""The canonical record: column names, dtypes and the removed-log layout.

Every reader produces these columns, every transform keeps them, every writer reads them.
Transforms may add columns after them (``lang``, ``lang_score``, ``pii_counts``, ...); each
transform documents what it adds.

- ``id``: stable string. The input's own ``id`` field, else ``"<source>:<row index>"``; when
  several files are read (or ``source=`` is given), own ids are prefixed with the file's stem
  (or that source) so ids stay unique across files (docs/io.md).
- ``source``: where the record came from (file stem unless ``source=`` was given).
- ``instruction``, ``input``, ``output``: single-turn text (``""`` when absent, never null).
- ``system``: system prompt, or null.
- ``messages``: the full conversation for multi-turn data (list of ``{role, content}``, the
  system prompt excluded since it lives in ``system``; roles in :data:`ROLES`, so ShareGPT
  ``function_call`` / ``observation`` turns are kept as ``function_call`` / ``tool``), null for
  single-turn records. For a ShareGPT or messages conversation, ``instruction`` and ``output``
  mirror its first user turn and the assistant reply to it, so text filters see conversations
  too. For LLaMA-Factory alpaca records with ``history``, ``messages`` holds the history turns
  then the record's own turn, and ``instruction``/``input``/``output`` keep the record's own
  (last) turn, as in the file; ``meta["_format"]`` is ``"alpaca_history"`` so writers can
  write the record back in that shape.
- ``meta``: every other input field, as a JSON object string (null when there are none;
  ShareGPT ``tools`` lands here as ``meta["tools"]``).
"""

from __future__ import annotations

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})

SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "source": pl.String(),
    "instruction": pl.String(),
    "input": pl.String(),
    "output": pl.String(),
    "system": pl.String(),
    "messages": pl.List(MESSAGE),
    "meta": pl.String(),
}
COLUMNS: tuple[str, ...] = tuple(SCHEMA)

#: Text columns a text transform edits by default (``messages`` means every turn's content).
TEXT_FIELDS: tuple[str, ...] = ("instruction", "input", "output", "system", "messages")

#: The removed log: one row per dropped record. ``detail`` never holds personal data.
REMOVED_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "step": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "source": pl.String(),
    "instruction": pl.String(),
    "input": pl.String(),
    "output": pl.String(),
}

#: Roles a conversation turn may have (ShareGPT speaker names are mapped onto these).
ROLES = ("system", "user", "assistant", "tool", "function_call")


def empty_frame() -> pl.DataFrame:
    """A canonical frame with no rows."""
    return pl.DataFrame(schema=SCHEMA)


def empty_removed() -> pl.DataFrame:
    """A removed log with no rows."""
    return pl.DataFrame(schema=REMOVED_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Order the canonical columns first, cast them to their dtypes, keep extra columns after.

    Raises ``ValueError`` naming the canonical columns that are missing.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks canonical column(s) {missing}; found {frame.columns}"
        )
    extra = [c for c in frame.columns if c not in SCHEMA]
    return frame.select(
        [pl.col(c).cast(t) for c, t in SCHEMA.items()] + [pl.col(c) for c in extra]
    )
