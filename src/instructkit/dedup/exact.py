"""Exact deduplication on a hash of the normalized text."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from instructkit.dedup._base import (
    DEFAULT_FIELDS,
    Against,
    check_fields,
    check_keep,
    drops_frame,
    kept_per_cluster,
    present_fields,
    repeated,
)
from instructkit.dedup._kernel import utf8
from instructkit.text import collapse_whitespace, record_text
from instructkit.transform import Global

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

# two independent 64-bit hashes make a 128-bit key: collisions are out of reach at any size
_SEEDS = (0x1F2E3D4C, 0x5A6B7C8D)
#: The ASCII bytes the regex ``\s`` matches (Unicode White_Space). Not ``str.isspace()``,
#: which also takes the information separators 0x1C-0x1F.
_ASCII_WHITESPACE = b"\t\n\x0b\x0c\r "


class Exact(Against, Global):
    """Drop records whose normalized text equals an earlier (or longer) record's.

    The text of a record is its ``fields`` joined (every turn for ``messages``). With
    ``normalize=True`` it is compared after lower-casing, removing punctuation and
    collapsing whitespace (each can be switched off). Removed records get reason
    ``exact_duplicate`` and a JSON detail naming the kept id. Records that upsampling
    copied on purpose (``meta.repeat > 0``) are left alone. With ``against=`` records that
    duplicate the reference set are removed; the reference itself is not deduplicated.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Say hi.", "output": "Hi!"},
        ...     {"instruction": "say  HI", "output": "hi"},
        ... ], source="demo")
        >>> out = ds.pipe(ik.dedup.exact())
        >>> len(out), out.removed["reason"].to_list()
        (1, ['exact_duplicate'])
    """

    name: ClassVar[str] = "dedup.exact"
    decide_params: ClassVar[tuple[str, ...]] = ("keep", "against")
    observes_per_record: ClassVar[bool] = True

    def __init__(
        self,
        fields: str | Sequence[str] = DEFAULT_FIELDS,
        normalize: bool = True,
        lowercase: bool = True,
        strip_punctuation: bool = True,
        collapse_whitespace: bool = True,
        keep: str = "first",
        against: Dataset | str | Path | None = None,
    ) -> None:
        self.fields = check_fields(fields)
        self.normalize = normalize
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation
        self.collapse_whitespace = collapse_whitespace
        self.keep = check_keep(keep)
        self.against = against

    def key_expr(self) -> pl.Expr:
        """The normalized text the hash is taken of, as an expression on column ``text``."""
        e = pl.col("text")
        if not self.normalize:
            return e
        if self.lowercase:
            e = e.str.to_lowercase()
        if self.strip_punctuation:
            e = e.str.replace_all(r"[\p{P}\p{S}]", "")
        if self.collapse_whitespace:
            e = collapse_whitespace(e)
        return e

    @classmethod
    def preload(cls) -> None:
        """Start numba (:func:`~instructkit.dedup._kernel.start_numba`): the key kernel
        then loads in milliseconds."""
        from instructkit.dedup._kernel import start_numba

        start_numba()

    def keys(self, text: pl.Series) -> pl.Series:
        """:meth:`key_expr` of every text, the same strings, computed faster.

        A compiled kernel normalizes the pure-ASCII texts in one pass over their bytes, about
        7 times faster than the three regular expressions; the other texts, and nulls, go
        through :meth:`key_expr`. The keys, and so the hashes, do not change.

        Example:
            >>> import polars as pl
            >>> Exact().keys(pl.Series(["Say  HI!", "Café — ok", None])).to_list()
            ['say hi', 'café ok', None]
        """
        if not self.normalize:
            return text.alias("key")
        import pyarrow as pa

        from instructkit.dedup import _jit  # numba: imported on the first keys only

        klass, lower = _byte_tables(self.lowercase, self.strip_punctuation, self.collapse_whitespace)
        data, offsets = utf8(text)
        out = np.empty(data.size, np.uint8)
        out_offsets = np.empty(len(text) + 1, np.int64)
        is_ascii = np.empty(len(text), np.bool_)
        _jit.ascii_keys(data, offsets, klass, lower, out, out_offsets, is_ascii)
        array = pa.LargeStringArray.from_buffers(len(text), pa.py_buffer(out_offsets), pa.py_buffer(out))
        keys = pl.Series("key", array)
        if text.has_nulls():
            is_ascii &= text.is_not_null().to_numpy()
        if not is_ascii.all():
            others = np.flatnonzero(~is_ascii)
            slow = pl.DataFrame({"text": text.gather(others)}).select(self.key_expr())["text"]
            keys = keys.scatter(others, slow)
        return keys

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        """``id``, two 64-bit hashes of the normalized text and its length (no texts)."""
        skip = repeated(batch)
        frame = batch.filter(pl.Series(~skip)) if skip.any() else batch
        text = record_text(frame, present_fields(self.fields, frame))
        keyed = pl.DataFrame({"id": frame["id"], "text": text, "key": self.keys(text)})
        return keyed.select(
            "id",
            pl.col("key").hash(_SEEDS[0]).alias("h1"),
            pl.col("key").hash(_SEEDS[1]).alias("h2"),
            pl.col("text").str.len_chars().cast(pl.Int64).alias("length"),
        )

    def without(self, state: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
        """``state`` without the rows of the records ``ids``.

        Example:
            >>> import instructkit as ik
            >>> step = ik.dedup.exact()
            >>> frame = ik.Dataset.from_records([{"instruction": "a", "output": "b"}] * 3).to_polars()
            >>> state = step.observe(frame)
            >>> len(step.decide([state])), len(step.decide([step.without(state, frame["id"][:2])]))
            (2, 0)
        """
        return state.filter(~pl.col("id").is_in(ids.implode()))

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Group the hashes; every record that is not its group's kept one is dropped."""
        ref = self.reference()
        parts = [self.observe(ref).with_columns(pl.lit(True).alias("ref"))] if ref is not None else []
        parts += [s.with_columns(pl.lit(False).alias("ref")) for s in states]
        if not parts:
            return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
        allf = pl.concat(parts, how="vertical_relaxed")
        root = (
            allf.with_row_index("i")
            .select(pl.col("i").min().over("h1", "h2").cast(pl.Int64))
            .to_series()
            .to_numpy()
        )
        is_ref = allf["ref"].to_numpy()
        kept = kept_per_cluster(root, is_ref, allf["length"].to_numpy(), self.keep)
        return drops_frame(allf["id"], root, kept, is_ref, "exact_duplicate")


@functools.cache
def _byte_tables(lowercase: bool, strip_punctuation: bool, collapse_whitespace: bool) -> tuple[np.ndarray, np.ndarray]:
    """What each byte does in :func:`~instructkit.dedup._jit.ascii_keys` (its class), and the
    byte it writes, for the normalization :meth:`Exact.key_expr` makes of ASCII text."""
    from instructkit.dedup import _jit

    klass = np.full(256, _jit.NOT_ASCII, np.uint8)
    klass[:128] = _jit.KEEP
    if strip_punctuation:
        # ``[\p{P}\p{S}]``: in ASCII, the 32 characters of ``string.punctuation``
        klass[[b for b in range(128) if unicodedata.category(chr(b))[0] in "PS"]] = _jit.DROP
    if collapse_whitespace:
        klass[list(_ASCII_WHITESPACE)] = _jit.BLANK
    # bytes.lower() changes A-Z only, as str.to_lowercase does in ASCII
    lower = np.frombuffer(bytes(range(256)).lower() if lowercase else bytes(range(256)), np.uint8)
    klass.flags.writeable = False  # shared by every call (cached)
    return klass, lower


exact = Exact
