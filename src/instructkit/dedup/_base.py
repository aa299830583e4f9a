"""What the three dedup steps share: the reference set (``against=``), upsampled copies,
the keep rule and the drops frame."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from instructkit.transform import detail_expr

#: Default text of a record: its single-turn fields, and every turn of a conversation (read
#: with :func:`instructkit.text.record_text`, which takes a conversation's turns in place of
#: its mirrored flat fields).
DEFAULT_FIELDS: tuple[str, ...] = ("instruction", "input", "output", "messages")


def load_reference(against: Any) -> pl.DataFrame | None:
    """The reference records as a frame: a ``Dataset``, a path read with ``ik.read``, or None."""
    if against is None:
        return None
    from instructkit.dataset import Dataset

    if isinstance(against, Dataset):
        return against.to_polars()
    if isinstance(against, (str, Path)):
        from instructkit.io.read import read

        return read(against).to_polars()
    raise TypeError(
        f"against= takes a Dataset or a path to read with ik.read, got {type(against).__name__}"
    )


class Against:
    """The reference set of a dedup step (``against=``), read once on the driver.

    :meth:`prepare` (called by every path before the step sees a record) reads a path
    through ``ik.read``; ``decide`` uses :meth:`reference`. The frame is a cache of the
    input and is not shipped to workers, which never decide.
    """

    against: Any

    def prepare(self) -> None:
        self.reference()

    def reference(self) -> pl.DataFrame | None:
        """The reference records (read on first use, then cached on the step)."""
        key = ("path", str(self.against)) if isinstance(self.against, (str, Path)) else ("object", id(self.against))
        cached = self.__dict__.get("_reference")
        if cached is None or cached[0] != key:
            cached = (key, load_reference(self.against))
            self.__dict__["_reference"] = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_reference"}


def repeated(frame: pl.DataFrame) -> np.ndarray:
    """True for records that upsampling copied on purpose (``meta.repeat > 0``).

    Dedup leaves them alone: they are neither removed nor used as the kept copy.
    """
    if "meta" not in frame.columns or frame.height == 0:
        return np.zeros(frame.height, dtype=bool)
    rep = frame.select(
        pl.col("meta").str.json_path_match("$.repeat").cast(pl.Float64, strict=False).fill_null(0.0) > 0
    )
    return rep.to_series().to_numpy()


def check_keep(keep: str) -> str:
    if keep not in ("first", "longest"):
        raise ValueError(f"keep must be 'first' or 'longest', got {keep!r}")
    return keep


def check_fields(fields: str | Sequence[str]) -> tuple[str, ...]:
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    if not names:
        raise ValueError("fields must name at least one text field")
    return names


def present_fields(fields: Sequence[str], frame: pl.DataFrame) -> list[str]:
    """The fields to read from ``frame``: ``messages`` is optional (reference sets made of
    plain frames may lack it), the others must exist."""
    missing = [f for f in fields if f not in frame.columns and f != "messages"]
    if missing:
        raise ValueError(f"dedup field(s) {missing} are not columns; columns are {frame.columns}")
    return [f for f in fields if f in frame.columns]


def kept_per_cluster(
    root: np.ndarray, is_ref: np.ndarray, length: np.ndarray, keep: str
) -> np.ndarray:
    """Index of the kept record of each record's cluster.

    A cluster that holds a reference record keeps a reference record (the reference is
    never deduplicated). Otherwise ``keep="first"`` keeps the earliest record and
    ``keep="longest"`` the longest one (the earliest among equals).
    """
    n = root.size
    idx = np.arange(n)
    # sort by cluster, then reference first, then (for longest) longer first, then position
    primary = -length if keep == "longest" else np.zeros(n, dtype=np.int64)
    order = np.lexsort((idx, primary, ~is_ref, root))
    sorted_root = root[order]
    head = np.ones(n, dtype=bool)
    head[1:] = sorted_root[1:] != sorted_root[:-1]
    kept_of_root = np.empty(n, dtype=np.int64)
    kept_of_root[sorted_root[head]] = order[head]
    return kept_of_root[root]


def drops_frame(
    ids: pl.Series,
    root: np.ndarray,
    kept: np.ndarray,
    is_ref: np.ndarray,
    reason: str,
    scores: dict[str, np.ndarray] | None = None,
) -> pl.DataFrame:
    """``id, reason, detail`` for every non-reference record that is not its cluster's kept one.

    ``detail`` is a JSON object: the kept id, whether it is a reference record, the cluster
    number (clusters numbered in order of their kept record) and ``scores``: named
    per-record values (the estimated Jaccard with the kept record, a similarity score),
    indexed like ``ids``.
    """
    drop = (kept != np.arange(root.size)) & ~is_ref
    where = np.flatnonzero(drop)
    if where.size == 0:
        return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
    kept_idx = kept[where]
    _, cluster = np.unique(kept_idx, return_inverse=True)
    # built with polars, not a Python list of every id: this runs on millions of rows
    fields = [
        ids.gather(kept_idx).alias("kept"),
        pl.Series("cluster", cluster.astype(np.int64)),
        pl.Series("reference", is_ref[kept_idx]),
    ]
    for name, values in (scores or {}).items():
        fields.append(pl.Series(name, np.round(values[where].astype(np.float64), 4)))
    # the detail convention (instructkit.transform.detail): sorted keys; "reference" only
    # when the kept record is a reference record
    table = pl.DataFrame(fields)
    plain = {c: pl.col(c) for c in table.columns if c != "reference"}
    detail = table.select(
        pl.when(pl.col("reference"))
        .then(detail_expr(**plain, reference=pl.lit(True)))
        .otherwise(detail_expr(**plain))
    ).to_series()
    return pl.DataFrame(
        {
            "id": ids.gather(where),
            "reason": pl.Series([reason] * where.size, dtype=pl.String),
            "detail": detail,
        }
    )
