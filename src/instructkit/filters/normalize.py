"""``ik.normalize()``: Unicode NFC, whitespace and control characters, safe for code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from os.path import commonprefix
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

    Text taken from XML or HTML (MedQuAD, web pages) keeps the indentation of the markup it
    sat in. ``dedent=True`` removes the indentation that every line after the first shares
    (the first line follows the opening tag, so it has none), as ``inspect.cleandoc`` does
    without expanding tabs; ``dedent="lines"`` removes every line's leading spaces and tabs,
    for prose whose markup indented lines unevenly (MedQuAD's answers). Neither suits code.

    Args:
        form: Unicode normalization form (``NFC``, ``NFKC``, ``NFD``, ``NFKD``) or None.
        fields: text fields to edit; None means all (conversations included).
        strip: strip leading and trailing whitespace of each field.
        collapse_spaces: squeeze runs of spaces and tabs inside lines into one space.
        max_blank_lines: longest run of empty lines kept.
        control: remove control characters (tab and newline stay).
        dedent: ``False``, ``True`` (the common indentation of the lines after the first) or
            ``"lines"`` (each line's own leading indentation).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Cafe\\u0301 \\r\\n", "output": "x"}])
        >>> ds.pipe(ik.normalize())[0]["instruction"]
        'Café'
        >>> xml = ik.Dataset.from_records([{"instruction": "Q", "output": "Key Points\\n      - One.\\n      - Two."}])
        >>> xml.pipe(ik.normalize(dedent=True))[0]["output"]
        'Key Points\\n- One.\\n- Two.'
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
        dedent: bool | str = False,
    ) -> None:
        if form not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"form must be NFC, NFKC, NFD, NFKD or None, got {form!r}")
        if max_blank_lines < 0:
            raise ValueError("max_blank_lines must be >= 0")
        if dedent not in (False, True, "lines"):
            raise ValueError(f"dedent must be False, True or 'lines', got {dedent!r}")
        self.dedent = dedent
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
        if self.dedent == "lines":
            e = e.str.replace_all(r"(?m)^[ \t]+", "")
        elif self.dedent:
            e = e.map_elements(dedent_text, return_dtype=pl.String, skip_nulls=True)
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
        if self.dedent:
            parts.append(r"(?m)^[ \t]")
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


_INDENT = re.compile(r"[ \t]*")


def dedent_text(text: str) -> str:
    """Remove the indentation that every non-blank line after the first shares.

    Blank lines lose their spaces too; tabs and spaces must match exactly to be shared.

    Example:
        >>> dedent_text("Causes\\n        Genes.\\n          Detail.\\n")
        'Causes\\nGenes.\\n  Detail.\\n'
    """
    lines = text.split("\n")
    rest = [line for line in lines[1:] if line.strip(" \t")]
    if not rest:
        return text
    margin = commonprefix([_INDENT.match(line).group() for line in rest])  # type: ignore[union-attr]
    if not margin:
        return text
    out = [lines[0]]
    for line in lines[1:]:
        out.append(line[len(margin):] if line.startswith(margin) else line.lstrip(" \t"))
    return "\n".join(out)
