"""``ik.normalize()``: Unicode NFC, whitespace and control characters, safe for code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import polars as pl

from instructkit.text import map_text_expr, resolve_fields
from instructkit.transform import Map

# C0/C1 controls except tab and newline, plus zero-width space and BOM. Zero-width joiners
# stay: emoji sequences and several scripts need them.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]"
# Unicode spaces that look like a space (NBSP, thin space, ideographic space ...)
_SPACES = r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"


class Normalize(Map):
    """Normalize text: Unicode form, line endings, odd spaces, control characters.

    Indentation inside lines is kept, since outputs are often code; ``collapse_spaces=True``
    also squeezes runs of spaces. Trailing spaces of each line and blank-line runs longer than
    ``max_blank_lines`` are removed, and each field is stripped.

    Args:
        form: Unicode normalization form (``NFC``, ``NFKC``, ``NFD``, ``NFKD``) or None.
        fields: text fields to edit; None means all (conversations included).
        strip: strip leading and trailing whitespace of each field.
        collapse_spaces: squeeze runs of spaces and tabs inside lines into one space.
        max_blank_lines: longest run of empty lines kept.
        control: remove control characters (tab and newline stay).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Cafe\\u0301 \\r\\n", "output": "x"}])
        >>> ds.pipe(ik.normalize())[0]["instruction"]
        'Café'
    """

    name: ClassVar[str] = "normalize"

    def __init__(
        self,
        form: str | None = "NFC",
        fields: Sequence[str] | None = None,
        strip: bool = True,
        collapse_spaces: bool = False,
        max_blank_lines: int = 1,
        control: bool = True,
    ) -> None:
        if form not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"form must be NFC, NFKC, NFD, NFKD or None, got {form!r}")
        if max_blank_lines < 0:
            raise ValueError("max_blank_lines must be >= 0")
        self.form = form
        self.fields = fields
        self.strip = strip
        self.collapse_spaces = collapse_spaces
        self.max_blank_lines = max_blank_lines
        self.control = control

    def _expr(self, e: pl.Expr) -> pl.Expr:
        if self.form:
            e = e.str.normalize(self.form)  # type: ignore[arg-type]
        e = e.str.replace_all("\r\n?", "\n")
        if self.control:
            e = e.str.replace_all(_CONTROL, "")
        e = e.str.replace_all(_SPACES, " ")
        if self.collapse_spaces:
            e = e.str.replace_all(r"[ \t]+", " ")
        e = e.str.replace_all(r"[ \t]+\n", "\n").str.replace_all(
            r"\n{" + str(self.max_blank_lines + 2) + ",}", "\n" * (self.max_blank_lines + 1)
        )
        if self.strip:
            e = e.str.strip_chars()
        return e

    def _dirty(self) -> str:
        """A regex that matches every text some edit of :meth:`_expr` after the Unicode form
        would change (and a few it leaves alone): the rest are only normalized."""
        parts = [r"\r", _SPACES, r"[ \t]\n", r"\n{" + str(self.max_blank_lines + 2) + "}"]
        if self.control:
            parts.append(_CONTROL)
        if self.collapse_spaces:
            parts.append(r"\t| {2}")
        if self.strip:
            parts.append(r"^\s|\s$")
        return "|".join(parts)

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        fields = resolve_fields(self.fields, frame)
        columns = {f: self._column(frame[f]) for f in fields if f != "messages"}
        frame = frame.with_columns(**columns) if columns else frame
        if "messages" in fields:
            frame = map_text_expr(frame, ["messages"], self._expr)
        return frame

    def _column(self, texts: pl.Series) -> pl.Series:
        # most texts need only the Unicode form: one regex scan finds the few that need the
        # whole chain of edits, which then runs on those rows alone
        if self.form:
            # a text of characters below U+0300 is already NFC (each has NFC_Quick_Check=Yes
            # and combining class 0), and ASCII is in every form: only other texts are
            # normalized, which spares most of the cost on mostly-Latin corpora
            stable = r"[^\x00-\u02ff]" if self.form == "NFC" else r"[^\x00-\x7f]"
            rows = texts.str.contains(stable).fill_null(False).arg_true()
            if len(rows):
                texts = texts.scatter(rows, texts.gather(rows).str.normalize(self.form))  # type: ignore[arg-type]
        rows = texts.str.contains(self._dirty()).fill_null(False).arg_true()
        if len(rows) == 0:
            return texts
        edited = pl.select(self._expr(pl.lit(texts.gather(rows)))).to_series()
        return texts.scatter(rows, edited)
