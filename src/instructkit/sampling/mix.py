"""Mix several sources into one training set with exact, reproducible proportions.

``mix`` turns weights (or a sampling temperature) and a total into an integer target per
source with largest-remainder rounding, then draws each source's records:

- a target below a source's size draws records **without replacement**; the records left
  out go to ``removed`` (reason ``mix_downsampled``, step ``mix``), so nothing is lost;
- a target above it repeats **whole copies** of the source, then draws the remainder
  without replacement, never more than needed. Each copy gets a new id ``<id>#r<k>`` and
  ``meta.repeat = k`` (and ``meta.repeat_of``), so dedup can tell copies from duplicates
  and ``ik.split`` keeps every copy on the side of its original. Upsampling warns
  (:class:`UpsampleWarning`, giving the repeat factor; :class:`ExcessiveRepeatWarning`
  above ``max_repeat_warn``).

Each source draws from its own random stream derived from ``seed`` and the source name,
so adding a source to a mixture does not change what the others draw. The result is
shuffled with the seed (``shuffle=False`` keeps it grouped by source).

Example:
    >>> import instructkit as ik
    >>> code = ik.Dataset.from_records([{"instruction": f"c{i}"} for i in range(10)], source="code")
    >>> chat = ik.Dataset.from_records([{"instruction": f"t{i}"} for i in range(4)], source="chat")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     mixed = ik.mix({"code": code, "chat": chat}, weights={"code": 0.5, "chat": 0.5}, total=12)
    >>> print(caught[0].message)
    mix: source 'chat' has 4 records for a target of 6: upsampled 1.5x (each record 1 or 2 times)
    >>> sorted(mixed.to_polars().group_by("source").len().rows())
    [('chat', 6), ('code', 6)]
    >>> mix_report(mixed).select("source", "available", "target", "taken", "repeated").rows()
    [('code', 10, 6, 6, 0), ('chat', 4, 6, 4, 2)]
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import polars as pl
import xxhash

from instructkit.dataset import Dataset, check_unique_ids
from instructkit.schema import REMOVED_SCHEMA

Replace = bool | Literal["auto"]

STEP = "mix"
REASON_DOWNSAMPLED = "mix_downsampled"

#: Keys a ``mix:`` section of a YAML recipe may hold.
CONFIG_KEYS = ("weights", "total", "temperature", "replace", "caps", "seed", "shuffle", "max_repeat_warn")

#: Salt of the shuffle's random stream, apart from every source's draw.
_SHUFFLE = "\x00shuffle"


class UpsampleWarning(UserWarning):
    """A source had fewer records than its target, so ``ik.mix`` repeated some of them."""


class ExcessiveRepeatWarning(UpsampleWarning):
    """A source was repeated more than ``max_repeat_warn`` times on average: a model trained
    on it sees the same records again and again (turn it into an error with
    ``warnings.simplefilter("error", ExcessiveRepeatWarning)``)."""

REPORT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "available": pl.Int64(),
    "weight": pl.Float64(),
    "cap": pl.Int64(),
    "target": pl.Int64(),
    "taken": pl.Int64(),
    "repeated": pl.Int64(),
    "repeat_factor": pl.Float64(),
    "share": pl.Float64(),
}


def mix(
    sources: Mapping[str, Dataset] | Dataset,
    weights: Mapping[str, float] | None = None,
    total: int | None = None,
    temperature: float | None = None,
    replace: Replace = "auto",
    caps: Mapping[str, int] | int | None = None,
    seed: int = 0,
    shuffle: bool = True,
    max_repeat_warn: float | None = 3.0,
) -> Dataset:
    """Mix sources into one dataset with exact per-source counts.

    Args:
        sources: ``{name: Dataset}``, or one Dataset to split by its ``source`` column.
        weights: relative weight per source (normalized). Every source needs one: a source
            left out is an error (weight 0 drops a source; its records go to the removed
            log). Give ``weights`` or ``temperature``, not both. With neither, sources keep
            their natural proportions (``temperature=1``).
        total: records in the result. ``None`` means the largest mixture with the requested
            proportions that repeats nothing and respects ``caps`` (every record when no
            weights or temperature are given).
        temperature: weights proportional to ``n_i ** (1 / temperature)``: ``1`` keeps natural
            proportions, larger values are flatter (uniform as it grows).
        replace: ``"auto"`` repeats a source only when its target exceeds its size (whole
            copies, then a remainder drawn without replacement) and warns with the repeat
            factor; ``False`` never repeats and raises instead, naming the source; ``True``
            draws every source's records independently with replacement (a bootstrap
            sample), repeats marked the same way.
        caps: the most records a source may contribute, per source or one int for all.
            With a ``total``, what a capped source cannot take is shared among the others
            by weight.
        seed: seed of the draws; the same inputs and seed give the same output.
        shuffle: shuffle the result with ``seed`` (so a split or a training run does not
            see one source after the other); ``False`` keeps it grouped by source.
        max_repeat_warn: a source repeated more than this many times on average warns with
            :class:`ExcessiveRepeatWarning` (any upsampling warns with
            :class:`UpsampleWarning`); ``None`` never escalates.

    Returns:
        The mixture. ``mix_report(result)`` gives per source: available, weight, cap,
        target, taken (distinct records), repeated (extra copies), repeat_factor (target /
        available) and share. Records left out are in ``result.removed`` with reason ``mix_downsampled``.

    Raises:
        ValueError: weights name an unknown source or leave one out, a weight or cap is
            negative, all weights are 0, a source's target is above its records with
            ``replace=False``, or ``total`` is above what ``caps`` allow.

    Example:
        >>> import instructkit as ik
        >>> a = ik.Dataset.from_records([{"instruction": f"a{i}"} for i in range(90)], source="a")
        >>> b = ik.Dataset.from_records([{"instruction": f"b{i}"} for i in range(10)], source="b")
        >>> with warnings.catch_warnings(record=True):
        ...     flat = ik.mix({"a": a, "b": b}, temperature=1e9, total=40)
        >>> sorted(flat.to_polars().group_by("source").len().rows())
        [('a', 20), ('b', 20)]
    """
    start = time.perf_counter()
    by_source = _as_mapping(sources)
    _check_replace(replace)
    if max_repeat_warn is not None and (isinstance(max_repeat_warn, bool) or not isinstance(
            max_repeat_warn, (int, float)) or not max_repeat_warn >= 1):
        raise ValueError(f"max_repeat_warn must be a number >= 1 or None, got {max_repeat_warn!r}")
    sizes = {name: len(ds) for name, ds in by_source.items()}
    plan = mix_targets(
        sizes, weights=weights, total=total, temperature=temperature, replace=replace, caps=caps
    )

    frames: list[pl.DataFrame] = []
    removed: list[pl.DataFrame] = [ds.removed for ds in _distinct(by_source.values())]
    history = _merged_history(by_source.values())
    rows: list[dict[str, Any]] = []
    n_out = sum(plan.values())
    requested = _shares(sizes, weights, temperature)
    for name, ds in by_source.items():
        frame = ds.to_polars()
        target = plan[name]
        picks = _draw(len(frame), target, replace, _rng(seed, name))
        chosen, copies, dropped = _materialize(frame, picks)
        frames.append(chosen)
        if dropped.height:
            removed.append(_removed_rows(dropped, name, target, len(frame)))
        factor = target / len(frame) if len(frame) else 0.0
        if replace == "auto" and target > len(frame):
            _warn_upsampled(name, len(frame), target, max_repeat_warn)
        rows.append({
            "source": name,
            "available": len(frame),
            "weight": float(requested[name]),
            "cap": _cap_of(name, caps),
            "target": target,
            "taken": len(frame) - dropped.height,
            "repeated": copies,
            "repeat_factor": factor,
            "share": target / n_out if n_out else 0.0,
        })

    out = pl.concat(frames, how="diagonal_relaxed")
    check_unique_ids(out["id"], what="mixed sources")
    if shuffle:
        out = out[_rng(seed, _SHUFFLE).permutation(out.height)]
    removed_frame = pl.concat(
        [r.select([pl.col(c).cast(t) for c, t in REMOVED_SCHEMA.items()]) for r in removed],
        how="vertical",
    )
    n_in = sum(sizes.values())
    n_dropped = sum(sizes[r["source"]] - r["taken"] for r in rows)
    entry = {
        "step": STEP,
        "kind": "global",
        "params": _params_repr(weights, total, temperature, replace, caps, seed, shuffle),
        "records_in": n_in,
        "records_out": out.height,
        "removed": n_dropped,
        "added": sum(r["repeated"] for r in rows),
        "by_reason": {REASON_DOWNSAMPLED: n_dropped} if n_dropped else {},
        "seconds": time.perf_counter() - start,
        "mix": rows,
    }
    return Dataset(out, removed_frame, [*history, entry])


def _warn_upsampled(name: str, available: int, target: int, max_repeat_warn: float | None) -> None:
    factor = target / available
    low, high = target // available, -(-target // available)
    times = f"{low} times" if low == high else f"{low} or {high} times"
    message = (
        f"mix: source {name!r} has {available} records for a target of {target}: "
        f"upsampled {factor:.3g}x (each record {times})"
    )
    category: type[UpsampleWarning] = UpsampleWarning
    if max_repeat_warn is not None and factor > max_repeat_warn:
        category = ExcessiveRepeatWarning
        message += (
            f", above max_repeat_warn={max_repeat_warn:g}: lower its weight or the total, "
            "or give it more data"
        )
    warnings.warn(message, category, stacklevel=3)


def mix_report(dataset: Dataset) -> pl.DataFrame:
    """The table of the last ``mix`` that made ``dataset``: one row per source.

    Columns: ``source, available, weight`` (requested share), ``cap, target, taken``
    (distinct records used), ``repeated`` (extra copies), ``repeat_factor`` (target /
    available: above 1 the source was upsampled) and ``share`` (of the result).

    Example:
        >>> import instructkit as ik
        >>> a = ik.Dataset.from_records([{"instruction": "x"}, {"instruction": "y"}], source="a")
        >>> with warnings.catch_warnings(record=True):
        ...     mixed = ik.mix({"a": a}, total=5)
        >>> mix_report(mixed)["repeated"].to_list()
        [3]
    """
    for entry in reversed(dataset.history):
        rows = _entry_field(entry, "mix")
        if _entry_field(entry, "step") == STEP and rows is not None:
            return pl.DataFrame(rows, schema=REPORT_SCHEMA)
    raise ValueError("this dataset was not made by ik.mix (no 'mix' step in its history)")


def mix_targets(
    sizes: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    total: int | None = None,
    temperature: float | None = None,
    replace: Replace = "auto",
    caps: Mapping[str, int] | int | None = None,
) -> dict[str, int]:
    """Integer target per source, summing exactly to the total (largest-remainder rounding).

    This is the plan :func:`mix` follows; call it to see a mixture before drawing it.

    Example:
        >>> mix_targets({"a": 10, "b": 10, "c": 10}, weights={"a": 1, "b": 1, "c": 1}, total=10)
        {'a': 4, 'b': 3, 'c': 3}
        >>> mix_targets({"a": 100, "b": 100}, weights={"a": 3, "b": 1}, caps={"a": 50}, total=80)
        {'a': 50, 'b': 30}
    """
    _check_replace(replace)
    names = list(sizes)
    if not names:
        raise ValueError("mix needs at least one source")
    for name, n in sizes.items():
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"size of source {name!r} must be a count >= 0, got {n!r}")
    share = _shares(sizes, weights, temperature)
    cap = {name: _cap_of(name, caps) for name in names}
    for name, c in cap.items():
        if c is not None and (not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 0):
            raise ValueError(f"cap of source {name!r} must be an int >= 0, got {c!r}")
    # the most each source may give: its cap, and its size unless repeats are allowed
    limit: dict[str, int | None] = {}
    for name in names:
        bounds = [b for b in (cap[name], None if replace else sizes[name]) if b is not None]
        limit[name] = min(bounds) if bounds else None

    if total is None:
        if weights is None and temperature is None:
            return {name: min(sizes[name], cap[name] if cap[name] is not None else sizes[name])
                    for name in names}
        # the largest total whose exact proportions repeat nothing and respect the caps
        room = [
            Fraction(min(sizes[n], cap[n] if cap[n] is not None else sizes[n])) / share[n]
            for n in names
            if share[n] > 0
        ]
        total = math.floor(min(room))
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise ValueError(f"total must be an int >= 0, got {total!r}")
    total = int(total)

    active = [n for n in names if share[n] > 0]
    bounded = [limit[n] for n in active]
    if all(b is not None for b in bounded) and sum(bounded) < total:  # type: ignore[arg-type]
        if replace is False and all(cap[n] is None for n in active):
            raise ValueError(
                f"total={total} is above the {sum(sizes[n] for n in active)} records available "
                f"in the weighted sources {_fmt_sizes(sizes, active)} and replace=False forbids "
                "repeating records; lower total or allow replace='auto'"
            )
        raise ValueError(
            f"total={total} is above the {sum(bounded)} records the caps"  # type: ignore[arg-type]
            f"{' and sizes (replace=False)' if replace is False else ''} allow: "
            + ", ".join(f"{n}<={limit[n]}" for n in active)
        )

    # water-filling: a source whose exact quota exceeds its cap is pinned to the cap and the
    # rest of the total is shared again among the others, by weight. Sizes do not pin: a
    # source short of its quota is repeated ("auto") or refused (replace=False) below, so
    # the requested proportions are never changed behind the user's back.
    pinned: dict[str, int] = {}
    while True:
        free = [n for n in active if n not in pinned]
        left = total - sum(pinned.values())
        mass = sum((share[n] for n in free), Fraction(0))
        quota = {n: left * share[n] / mass for n in free}
        over = [n for n in free if cap[n] is not None and quota[n] > cap[n]]
        if not over:
            break
        for n in over:
            pinned[n] = cap[n]  # type: ignore[assignment]
    targets = dict.fromkeys(names, 0)
    targets.update(pinned)
    targets.update(_largest_remainder(quota, left))
    if replace is False:
        short = [n for n in active if targets[n] > sizes[n]]
        if short:
            raise ValueError(
                "replace=False forbids repeating records, and "
                + "; ".join(f"source {n!r} has {sizes[n]} records for a target of {targets[n]}"
                            for n in short)
                + f" (total={total}): lower the total or these weights, or allow replace='auto'"
            )
    return targets


def mix_from_config(datasets_by_source: Mapping[str, Dataset], config: Mapping[str, Any]) -> Dataset:
    """Run the ``mix:`` section of a YAML recipe on datasets keyed by source name.

    The section holds :func:`mix`'s keyword arguments (``weights, total, temperature,
    replace, caps, seed, shuffle, max_repeat_warn``)::

        mix:
          weights: {code: 0.5, chat: 0.5}
          total: 1000
          seed: 0

    Example:
        >>> import instructkit as ik
        >>> code = ik.Dataset.from_records([{"instruction": f"c{i}"} for i in range(8)], source="code")
        >>> chat = ik.Dataset.from_records([{"instruction": f"t{i}"} for i in range(8)], source="chat")
        >>> cfg = {"weights": {"code": 0.75, "chat": 0.25}, "total": 8}
        >>> len(mix_from_config({"code": code, "chat": chat}, cfg))
        8
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"the mix section of a recipe must be a mapping, got {config!r}")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in the mix section; allowed: {list(CONFIG_KEYS)}")
    weights = config.get("weights")
    if weights is not None and not isinstance(weights, Mapping):
        raise ValueError(f"mix.weights must map source names to numbers, got {weights!r}")
    return mix(
        datasets_by_source,
        weights=weights,
        total=config.get("total"),
        temperature=config.get("temperature"),
        replace=config.get("replace", "auto"),
        caps=config.get("caps"),
        seed=config.get("seed", 0),
        shuffle=config.get("shuffle", True),
        max_repeat_warn=config.get("max_repeat_warn", 3.0),
    )


# targets --------------------------------------------------------------------------------------
def _shares(
    sizes: Mapping[str, int], weights: Mapping[str, float] | None, temperature: float | None
) -> dict[str, Fraction]:
    """Normalized weight per source, as exact fractions so rounding ties are deterministic."""
    if weights is not None and temperature is not None:
        raise ValueError("give weights or temperature, not both")
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise ValueError(f"weights must map source names to numbers, got {weights!r}")
        # a weight of 0 for a source with no records at all (an empty input) is harmless
        unknown = [k for k in weights if k not in sizes and weights[k] != 0]
        if unknown:
            raise ValueError(
                f"weights name unknown source(s) {unknown}; the sources are {list(sizes)}"
            )
        missing = [n for n in sizes if n not in weights]
        if missing:
            raise ValueError(
                f"weights leave out source(s) {missing}; give every source a weight (0 drops "
                f"a source); the sources are {list(sizes)}"
            )
        raw = {}
        for name in sizes:
            w = weights[name]
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
                raise ValueError(f"weight of source {name!r} must be a number, got {w!r}")
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of source {name!r} must be finite and >= 0, got {w!r}")
            raw[name] = Fraction(float(w)) if not isinstance(w, (int, np.integer)) else Fraction(int(w))
        zero_sized = [n for n in sizes if raw[n] > 0 and sizes[n] == 0]
        if zero_sized:
            raise ValueError(f"source(s) {zero_sized} have a weight but no records")
    else:
        t = 1.0 if temperature is None else temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        raw = {name: Fraction(float(n) ** (1.0 / t)) if n else Fraction(0) for name, n in sizes.items()}
    mass = sum(raw.values(), Fraction(0))
    if mass == 0:
        raise ValueError(f"every source has weight 0 or no records: {dict(sizes)}")
    return {name: w / mass for name, w in raw.items()}


def _largest_remainder(quota: Mapping[str, Fraction], total: int) -> dict[str, int]:
    """Round quotas summing to ``total`` to ints with the same sum (Hamilton's method).

    Ties go to the source listed first, so the result never depends on hashing.
    """
    floors = {n: math.floor(q) for n, q in quota.items()}
    short = total - sum(floors.values())
    order = sorted(quota, key=lambda n: -(quota[n] - floors[n]))  # stable: input order on ties
    for n in order[:short]:
        floors[n] += 1
    return floors


def _cap_of(name: str, caps: Mapping[str, int] | int | None) -> int | None:
    if caps is None:
        return None
    if isinstance(caps, Mapping):
        return caps.get(name)
    return caps


# drawing --------------------------------------------------------------------------------------
def _rng(seed: int, name: str) -> np.random.Generator:
    """A random stream per (seed, source): adding a source leaves the others' draws alone."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return np.random.default_rng([int(seed), xxhash.xxh64_intdigest(name.encode("utf-8"))])


def _draw(n: int, target: int, replace: Replace, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one source in the result (sorted; repeats adjacent)."""
    if target == 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if replace is True:
        return np.sort(rng.integers(0, n, size=target))
    whole, rest = divmod(target, n)
    extra = rng.choice(n, size=rest, replace=False) if rest else np.empty(0, dtype=np.int64)
    counts = np.full(n, whole, dtype=np.int64)
    counts[extra] += 1
    return np.repeat(np.arange(n, dtype=np.int64), counts)


def _materialize(frame: pl.DataFrame, picks: np.ndarray) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """The chosen rows (copies renamed and marked), the number of copies, the rows left out."""
    used = np.zeros(frame.height, dtype=bool)
    used[picks] = True
    dropped = frame.filter(pl.Series(used).not_())
    if picks.size == 0:
        return frame.clear(), 0, dropped
    # k = 0 for a record's first occurrence, 1, 2, ... for its copies (picks are sorted)
    starts = np.r_[True, picks[1:] != picks[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(picks.size), 0))
    k = np.arange(picks.size) - first
    chosen = frame.select(pl.all().gather(picks))
    n_copies = int((k > 0).sum())
    if n_copies:
        chosen = chosen.with_columns(pl.Series("_k", k))
        originals = chosen.filter(pl.col("_k") == 0)
        copies = chosen.filter(pl.col("_k") > 0)
        copies = copies.with_columns(
            (pl.col("id") + "#r" + pl.col("_k").cast(pl.String)).alias("id"),
            pl.Series(
                "meta",
                [_with_repeat(m, rep, orig) for m, rep, orig in copies.select("meta", "_k", "id").iter_rows()],
                dtype=pl.String,
            ),
        )
        # originals first, then copy 1 of every record, copy 2, ...: a copy never precedes
        # its original and each pass over the source stays in input order
        chosen = pl.concat([originals, copies.sort("_k", maintain_order=True)]).drop("_k")
    return chosen, n_copies, dropped


def _with_repeat(meta: str | None, k: int, original_id: str) -> str:
    data = json.loads(meta) if meta else {}
    if not isinstance(data, dict):
        raise ValueError(f"record {original_id!r}: meta is not a JSON object: {meta[:80]!r}")
    data["repeat"] = k
    data["repeat_of"] = original_id
    # same encoding as the readers (io.formats), so meta stays byte-stable
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _removed_rows(dropped: pl.DataFrame, name: str, target: int, available: int) -> pl.DataFrame:
    return dropped.select(
        "id",
        pl.lit(STEP).alias("step"),
        pl.lit(REASON_DOWNSAMPLED).alias("reason"),
        pl.lit(downsampled_detail(name, target, available)).alias("detail"),
        "source", "instruction", "input", "output",
    )


def downsampled_detail(name: str, target: int, available: int) -> str:
    """The removed log's detail for a record its source left out (``ik.mix``, ``ik.sample``).

    Example:
        >>> downsampled_detail("a", 2, 5)
        '{"available":5,"source":"a","target":2}'
    """
    from instructkit.transform import detail

    return detail(available=available, source=name, target=target)


# inputs ---------------------------------------------------------------------------------------
def _as_mapping(sources: Mapping[str, Dataset] | Dataset) -> dict[str, Dataset]:
    if isinstance(sources, Dataset):
        frame, log = sources.to_polars(), sources.removed
        if frame["source"].null_count():
            first = frame.filter(pl.col("source").is_null())["id"][0]
            raise ValueError(f"record {first!r} has no source; mix needs a source per record")
        # a source whose records were all removed is still a source (it needs a weight), and
        # each part carries its own removed rows; rows with no source (a file that could not
        # be read) ride with the first part, so the log stays whole
        names = pl.concat([frame["source"], log["source"]]).drop_nulls().unique(maintain_order=True)
        parts = {}
        for i, n in enumerate(names.to_list()):
            mine = pl.col("source") == n
            if i == 0:
                mine = mine | pl.col("source").is_null()
            parts[n] = Dataset(frame.filter(pl.col("source") == n), log.filter(mine), sources.steps)
        return parts
    if not isinstance(sources, Mapping):
        raise TypeError(f"sources must be a mapping {{name: Dataset}} or a Dataset, got {type(sources).__name__}")
    for name, ds in sources.items():
        if not isinstance(name, str):
            raise TypeError(f"source names must be strings, got {name!r}")
        if not isinstance(ds, Dataset):
            raise TypeError(f"source {name!r} must be a Dataset, got {type(ds).__name__}")
    return dict(sources)


def _distinct(datasets: Any) -> list[Dataset]:
    """Each dataset once, so one dataset given under two names does not double its log."""
    seen: set[int] = set()
    out = []
    for ds in datasets:
        if id(ds) not in seen:
            seen.add(id(ds))
            out.append(ds)
    return out


def _merged_history(datasets: Any) -> list[dict[str, Any]]:
    """The sources' histories in order, each entry once: parts split from one dataset
    (``Dataset.by_source``) share their history entries, which must not be repeated."""
    seen: set[int] = set()
    out = []
    for ds in datasets:
        for entry in ds.history:
            if id(entry) not in seen:
                seen.add(id(entry))
                out.append(entry)
    return out


def _entry_field(entry: Any, key: str) -> Any:
    """A field of a history entry, whether the entry is a mapping or a typed record (extra
    fields of a typed record live in its ``extra`` mapping)."""
    if isinstance(entry, Mapping):
        return entry.get(key)
    if hasattr(entry, key):
        return getattr(entry, key)
    extra = getattr(entry, "extra", None)
    return extra.get(key) if isinstance(extra, Mapping) else None


def _check_replace(replace: Replace) -> None:
    if replace not in (True, False, "auto") or (replace != "auto" and not isinstance(replace, bool)):
        raise ValueError(f"replace must be 'auto', True or False, got {replace!r}")


def _fmt_sizes(sizes: Mapping[str, int], names: list[str]) -> str:
    return "(" + ", ".join(f"{n}: {sizes[n]}" for n in names) + ")"


def _params_repr(
    weights: Any, total: Any, temperature: Any, replace: Any, caps: Any, seed: Any, shuffle: bool = True
) -> str:
    given = {"weights": weights, "total": total, "temperature": temperature, "caps": caps}
    shown = [f"{k}={v!r}" for k, v in given.items() if v is not None]
    if replace != "auto":
        shown.append(f"replace={replace!r}")
    if seed != 0:
        shown.append(f"seed={seed!r}")
    if not shuffle:
        shown.append("shuffle=False")
    return f"mix({', '.join(shown)})"


__all__ = ["mix", "mix_report", "mix_targets", "mix_from_config", "UpsampleWarning", "ExcessiveRepeatWarning"]
