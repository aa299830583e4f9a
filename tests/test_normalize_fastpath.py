"""``normalize`` edits only the rows that need more than the Unicode form: the same output as
running every edit on every row, for every option."""

from __future__ import annotations

import itertools
import random

import polars as pl
import pytest

import instructkit as ik
from instructkit.text import map_text_expr, resolve_fields

PIECES = ["a", "b", "\u00c5", "\u0041\u030a", "\u00a0\u0300", "\u1100\u1161", "\u00b2", " ", "  ", "\t", "\n", "\r", "\r\n", "\x00", "\x85", "\u200b", "\ufeff", "\u00a0", "\u3000",
          "e\u0301", "\u00e9", "\u2028", "\x0b", "\x7f", "\u200d", "x", "\n\n\n", "\f", "\ufb01", "\u2460"]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = random.Random(0)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))) for _ in range(3000)] + [None, ""]
    return pl.DataFrame({
        "id": [str(i) for i in range(len(texts))],
        "instruction": texts, "input": texts[::-1], "output": texts, "system": texts,
        "messages": [[{"role": "user", "content": t}, {"role": "assistant", "content": u}]
                     for t, u in zip(texts, texts[::-1], strict=True)],
    })


@pytest.mark.parametrize(("form", "strip", "collapse"),
                         list(itertools.product([None, "NFC", "NFKC", "NFD"], [True, False], [True, False])))
def test_fast_path_equals_every_edit_on_every_row(frame: pl.DataFrame, form: str | None, strip: bool,
                                                   collapse: bool) -> None:
    for max_blank_lines, control in itertools.product([0, 1, 2], [True, False]):
        step = ik.normalize(form=form, strip=strip, collapse_spaces=collapse,
                            max_blank_lines=max_blank_lines, control=control)
        expected = map_text_expr(frame, resolve_fields(None, frame), step._expr)
        got = step.apply(frame)
        assert got.equals(expected), (max_blank_lines, control)
        assert got["output"].to_list() != frame["output"].to_list()  # something was edited


def test_fast_path_on_clean_text_and_selected_fields() -> None:
    frame = pl.DataFrame({"instruction": ["Cafe\u0301", "plain"], "output": ["  keep  ", "x"]})
    out = ik.normalize(fields=["instruction"]).apply(frame)
    assert out["instruction"].to_list() == ["Caf\u00e9", "plain"]
    assert out["output"].to_list() == ["  keep  ", "x"]  # not a selected field


@pytest.mark.parametrize("dedent", [True, "lines"])
@pytest.mark.parametrize("strip", [True, False])
def test_fast_path_with_dedent(frame: pl.DataFrame, dedent: bool | str, strip: bool) -> None:
    indented = frame.with_columns(
        pl.col("output").map_elements(lambda t: t.replace("\n", "\n    "), return_dtype=pl.String),
        pl.col("instruction").map_elements(lambda t: "  " + t.replace("b", "\n\t b"), return_dtype=pl.String),
    )
    step = ik.normalize(dedent=dedent, strip=strip)
    expected = map_text_expr(indented, resolve_fields(None, indented), step._expr)
    assert step.apply(indented).equals(expected)
