"""``ik.sweep``: run one step at several settings of one parameter and compare the cuts.

Work that does not depend on the parameter is done once:

- a ``Global`` step (dedup, decontamination) swept over one of its ``decide_params`` is
  observed once (MinHash signatures, n-gram hits) and only ``decide`` runs per value;
- a ``Filter`` step whose :meth:`~instructkit.transform.Filter.predict` returns a frame
  (langid) swept over one of its ``decide_params`` predicts once and only calls
  :meth:`~instructkit.transform.Filter.verdict` per value;
- any other parameter (MinHash ``num_perm``, decontamination ``n``) changes what is
  computed, so the step reruns for each value, and the result says so (``reused=False``).

For each value the result lists the removal counts and examples of records removed at that
value but kept at the previous one, so you can read what a stricter setting costs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.profiling.bench import load_sample
from instructkit.transform import DETAIL, REASON, Transform, apply_drops, mark

SCHEMA = {
    "value": pl.String,
    "records_in": pl.Int64,
    "removed": pl.Int64,
    "removed_pct": pl.Float64,
    "reasons": pl.String,
    "newly_removed": pl.Int64,
    "seconds": pl.Float64,
}


@dataclass
class SweepResult:
    """Removal counts per setting, with examples of what each setting newly removes.

    ``frame`` has one row per value; ``examples`` maps each value (as a string) to a frame
    of records removed at that value but kept at the previous one (``id, reason, detail,
    instruction, output``). ``reused`` says whether parameter-independent work ran once.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "hi", "output": "x" * k}
        ...                               for k in range(1, 6)])
        >>> r = ik.sweep(ik.quality(), "min_chars", [{"output": 1}, {"output": 3}], ds)
        >>> r.reused, r.frame["removed"].to_list(), r.frame["newly_removed"].to_list()
        (False, [0, 2], [0, 2])
    """

    step: str
    param: str
    frame: pl.DataFrame
    examples: dict[str, pl.DataFrame]
    reused: bool
    note: str
    shared_seconds: float

    def __str__(self) -> str:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            lines = [f"sweep {self.step}.{self.param}: {self.note}", str(self.frame)]
            for value, ex in self.examples.items():
                if ex.height:
                    lines.append(f"-- newly removed at {self.param}={value} (first {ex.height}):")
                    lines.append(str(ex.select("id", "detail", pl.col("instruction").str.slice(0, 60))))
        return "\n".join(lines)

    def to_json(self, path: str | Path) -> Path:
        """Write counts and examples as JSON."""
        body = {
            "step": self.step, "param": self.param, "reused": self.reused, "note": self.note,
            "shared_seconds": self.shared_seconds, "settings": self.frame.to_dicts(),
            "examples": {k: v.to_dicts() for k, v in self.examples.items()},
        }
        path = Path(path)
        path.write_text(json.dumps(body, indent=1, default=str))
        return path

    def plot(self, path: str | Path) -> Path:
        """A PNG chart of records removed per value (needs matplotlib)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        values = self.frame["value"].to_list()
        ax.plot(values, self.frame["removed"].to_list(), marker="o", color="#C44E52", label="removed")
        ax.bar(values, self.frame["newly_removed"].to_list(), color="#4C72B0", alpha=0.4,
               label="newly removed vs previous value")
        ax.set_xlabel(self.param)
        ax.set_ylabel("records")
        ax.set_title(f"{self.step}: records removed by {self.param}")
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _with(step: Transform, param: str, value: Any) -> Transform:
    params = step.get_params()
    if param not in params:
        raise ValueError(f"step {step.name!r} has no parameter {param!r}; it has {sorted(params)}")
    return type(step)(**{**params, param: value})


def sweep(
    step: Transform,
    param: str,
    values: Sequence[Any],
    source: Any,
    *,
    sample: int | None = None,
    examples: int = 5,
) -> SweepResult:
    """Run ``step`` with ``param`` set to each of ``values`` on ``source`` and compare.

    ``source`` is a path, ``ik.scan(...)``, an ``ik.Dataset`` or a polars frame (its first
    ``sample`` records when given). Values are tried in the given order; ``examples`` records
    per value show what that value removes that the previous one kept.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "write a poem about the sea and the sky at night", "output": "x"},
        ...     {"instruction": "write a poem about the sea and the sky at dawn", "output": "x"}])
        >>> r = ik.sweep(ik.dedup.minhash(num_perm=64), "threshold", [0.5, 0.95], ds)
        >>> r.reused, r.frame["removed"].to_list()
        (True, [1, 0])
    """
    if not values:
        raise ValueError("sweep needs at least one value")
    data, _ = load_sample(source, sample)
    frame = data.to_polars()
    settings = [_with(step, param, v) for v in values]
    decide_params = type(step).decide_params
    for s in (step, *settings):
        s.prepare()
    start = time.perf_counter()
    verdicts: list[tuple[pl.DataFrame, float]] = []
    if step.kind == "global" and param in decide_params:
        state = [step.observe(frame)]
        shared = time.perf_counter() - start
        note = f"observed once ({shared:.2f} s), decide per value"
        for s in settings:
            t0 = time.perf_counter()
            marked = apply_drops(frame.select("id"), s.decide(state))
            verdicts.append((marked, time.perf_counter() - t0))
        reused = True
    elif param in decide_params and step.kind == "filter" and (predictions := step.predict(frame)) is not None:  # type: ignore[attr-defined]
        shared = time.perf_counter() - start
        note = f"predicted once ({shared:.2f} s), thresholded per value"
        for s in settings:
            t0 = time.perf_counter()
            marked = mark(frame.select("id"), s.verdict(predictions))  # type: ignore[attr-defined]
            verdicts.append((marked, time.perf_counter() - t0))
        reused = True
    else:
        shared = 0.0
        note = (f"{param!r} changes what {step.name!r} computes (not in its decide_params "
                f"{list(decide_params)}), so the step reran for each value")
        for s in settings:
            t0 = time.perf_counter()
            marked = s.apply(frame)
            verdicts.append((marked, time.perf_counter() - t0))
        reused = False

    rows, shown = [], {}
    previous: pl.Series | None = None
    texts = frame.select("id", "instruction", "output")
    for value, (marked, seconds) in zip(values, verdicts, strict=True):
        if REASON not in marked.columns:
            marked = marked.with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
        if DETAIL not in marked.columns:
            marked = marked.with_columns(pl.lit(None, dtype=pl.String).alias(DETAIL))
        dropped = marked[REASON].is_not_null()
        new = dropped & ~previous if previous is not None else dropped
        reasons = marked.filter(dropped)[REASON].value_counts(sort=True)
        rows.append({
            "value": str(value),
            "records_in": frame.height,
            "removed": int(dropped.sum()),
            "removed_pct": 100.0 * int(dropped.sum()) / frame.height if frame.height else 0.0,
            "reasons": ", ".join(f"{r}={c}" for r, c in reasons.iter_rows()),
            "newly_removed": int(new.sum()),
            "seconds": seconds,
        })
        picked = marked.select("id", pl.col(REASON).alias("reason"), pl.col(DETAIL).alias("detail")).filter(new)
        shown[str(value)] = picked.head(examples).join(texts, on="id", how="left", maintain_order="left")
        previous = dropped
    return SweepResult(
        step=step.name, param=param, frame=pl.DataFrame(rows, schema=SCHEMA), examples=shown,
        reused=reused, note=note, shared_seconds=shared,
    )


__all__ = ["sweep", "SweepResult"]
