"""Downsample sources to a mixture as a pipeline step: in memory, streamed or on Ray."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from instructkit.sampling.mix import (
    REASON_DOWNSAMPLED,
    _draw,
    _rng,
    downsampled_detail,
    mix_targets,
)
from instructkit.transform import Global


class Sample(Global):
    """Keep a mixture of the sources without repeating a record: the step form of
    :func:`instructkit.mix` for pipelines that run out of core.

    ``weights``, ``total``, ``temperature``, ``caps`` and ``seed`` mean what they mean for
    :func:`~instructkit.mix`, with ``replace=False``: the per-source targets are the ones
    :func:`~instructkit.sampling.mix.mix_targets` plans, and each source's kept records are
    the ones ``ik.mix(..., replace=False, seed=seed)`` draws, so the same records survive
    in memory and out of core (the step keeps input order; ``ik.mix`` shuffles).
    Records left out go to the removed log with reason ``mix_downsampled`` and a detail
    naming the source, its target and what was available. A target above a source's
    records is an error: upsampling repeats records, which only ``ik.mix`` does.

    State: each batch's ids and sources (no texts), about 30 bytes per record.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.concat([
        ...     ik.Dataset.from_records([{"instruction": f"a{i}"} for i in range(90)], source="a"),
        ...     ik.Dataset.from_records([{"instruction": f"b{i}"} for i in range(10)], source="b")])
        >>> out = ds.pipe(ik.sample(weights={"a": 1, "b": 1}, total=20))
        >>> sorted(out.to_polars().group_by("source").len().rows())
        [('a', 10), ('b', 10)]
        >>> out.removed["reason"].unique().to_list()
        ['mix_downsampled']
    """

    name: ClassVar[str] = "sample"
    decide_params: ClassVar[tuple[str, ...]] = ("weights", "total", "temperature", "caps", "seed")

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        total: int | None = None,
        temperature: float | None = None,
        caps: Mapping[str, int] | int | None = None,
        seed: int = 0,
    ) -> None:
        if weights is not None and temperature is not None:
            raise ValueError("give weights or temperature, not both")
        self.weights = dict(weights) if weights is not None else None
        self.total = total
        self.temperature = temperature
        self.caps = dict(caps) if isinstance(caps, Mapping) else caps
        self.seed = seed

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch's ids and sources."""
        if batch["source"].null_count():
            first = batch.filter(pl.col("source").is_null())["id"][0]
            raise ValueError(f"record {first!r} has no source; sample needs a source per record")
        return batch.select("id", pl.col("source").cast(pl.Categorical))

    def decide(self, states: list[Any]) -> pl.DataFrame:
        """Ids of the records each source does not keep, with reason ``mix_downsampled``."""
        seen = pl.concat(states, how="vertical") if states else pl.DataFrame(
            schema={"id": pl.String, "source": pl.Categorical})
        seen = seen.with_columns(pl.col("source").cast(pl.String))
        # sources in order of first appearance, as ik.mix splits a dataset
        sizes = dict(seen.group_by("source", maintain_order=True).len().iter_rows())
        names = list(sizes)
        if self.weights is not None:
            unknown = sorted(set(self.weights) - set(names))
            if unknown:
                raise ValueError(f"weights name source(s) {unknown} that no record has; sources: {names}")
        targets = mix_targets(sizes, weights=self.weights, total=self.total, temperature=self.temperature,
                              replace=False, caps=self.caps)
        drops = []
        for name in names:
            ids = seen.filter(pl.col("source") == name)["id"]
            target, available = targets[name], sizes[name]
            kept = np.zeros(available, bool)
            kept[_draw(available, target, False, _rng(self.seed, name))] = True
            dropped = ids.filter(pl.Series(~kept))
            if len(dropped):
                drops.append(pl.DataFrame({
                    "id": dropped,
                    "reason": pl.Series([REASON_DOWNSAMPLED] * len(dropped), dtype=pl.String),
                    "detail": pl.Series([downsampled_detail(name, target, available)] * len(dropped),
                                        dtype=pl.String),
                }))
        if not drops:
            return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})
        return pl.concat(drops, how="vertical")


sample = Sample
