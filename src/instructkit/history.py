"""``StepRecord``: what one step did to a dataset, and the one place records are merged.

Every path writes the same record: ``ds.pipe`` (one per step), the reader (a ``read``
record), the streaming executors (one per step and batch, merged into one per step for the
run) and ``ik.concat`` / ``ik.mix`` (the parts' records merged). :func:`merge_histories`
is the only merger.

Example:
    >>> a = StepRecord("dedup.exact", "global", "Exact()", 4, 3, 1, {"exact_duplicate": 1}, 0.5)
    >>> b = StepRecord("dedup.exact", "global", "Exact()", 2, 2, 0, {}, 0.25)
    >>> merged, = merge_histories([[a], [b]])
    >>> merged.records_in, merged.removed, merged.by_reason, merged.seconds
    (6, 1, {'exact_duplicate': 1}, 0.75)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_FIELDS = ("step", "kind", "params", "records_in", "records_out", "removed", "by_reason", "seconds")


@dataclass(frozen=True, eq=True)
class StepRecord(Mapping[str, Any]):
    """One step's counts: records in and out, removals by reason, seconds.

    It reads like the dict history entries were (``record["records_in"]``), and
    :meth:`to_dict` gives the JSON form written to manifests. ``extra`` holds what a
    particular step adds (``ik.mix``: its per-source table), read by key as well.

    Example:
        >>> r = StepRecord.of({"step": "read", "kind": "read", "params": "a.jsonl",
        ...                    "records_in": 3, "records_out": 2, "removed": 1,
        ...                    "by_reason": {"invalid_json": 1}, "seconds": 0.1})
        >>> r.step, r["removed"], StepRecord.of(r.to_dict()) == r
        ('read', 1, True)
    """

    step: str
    kind: str
    params: str
    records_in: int
    records_out: int
    removed: int
    by_reason: dict[str, int]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: StepRecord | Mapping[str, Any]) -> StepRecord:
        """A record from a record (returned as is) or from its dict form."""
        if isinstance(entry, StepRecord):
            return entry
        missing = [k for k in _FIELDS if k not in entry and k != "params"]
        if missing:
            raise ValueError(f"a history entry needs {missing}; got keys {sorted(entry)}")
        return cls(
            step=str(entry["step"]), kind=str(entry["kind"]), params=str(entry.get("params") or ""),
            records_in=int(entry["records_in"]), records_out=int(entry["records_out"]),
            removed=int(entry["removed"]), by_reason=dict(entry["by_reason"]),
            seconds=float(entry["seconds"]),
            extra={k: v for k, v in entry.items() if k not in _FIELDS and k != "extra"},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the eight fields, then ``extra``'s keys (a new dict)."""
        return {**{k: getattr(self, k) for k in _FIELDS}, **self.extra}

    def entry(self) -> dict[str, Any]:
        """The dict ``Dataset.history`` shows for this record: built once, so datasets that
        share a record (``by_source`` parts) show the same object."""
        cached = self.__dict__.get("_entry")
        if cached is None:
            cached = self.to_dict()
            object.__setattr__(self, "_entry", cached)
        return cached

    # read like a dict, as history entries always did
    def __getitem__(self, key: str) -> Any:
        if key in _FIELDS:
            return getattr(self, key)
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter((*_FIELDS, *self.extra))

    def __len__(self) -> int:
        return len(_FIELDS) + len(self.extra)


def merge_records(records: Sequence[StepRecord], seconds: float = 0.0) -> StepRecord:
    """One record for the same step run on several parts: counts and seconds summed (plus
    ``seconds``: work done once for all parts, such as a global step's decide), reasons
    added up (most frequent first), distinct params joined with ``"; "``."""
    if not records:
        raise ValueError("merge_records needs at least one record")
    reasons: Counter[str] = Counter()
    for r in records:
        reasons.update(r.by_reason)
    first = records[0]
    return StepRecord(
        step=first.step,
        kind=first.kind,
        params="; ".join(dict.fromkeys(r.params for r in records if r.params)),
        records_in=sum(r.records_in for r in records),
        records_out=sum(r.records_out for r in records),
        removed=sum(r.removed for r in records),
        by_reason=dict(reasons.most_common()),
        seconds=sum(r.seconds for r in records) + seconds,
        extra=_merge_extra(records),
    )


def _merge_extra(records: Sequence[StepRecord]) -> dict[str, Any]:
    """The parts' ``extra``: mappings (such as the ``sources`` of reads) are united, any
    other value is the first part's."""
    out: dict[str, Any] = {}
    for r in records:
        for key, value in r.extra.items():
            if key in out and isinstance(out[key], Mapping) and isinstance(value, Mapping):
                out[key] = {**value, **out[key]}
            else:
                out.setdefault(key, value)
    return out


def merge_histories(
    histories: Sequence[Sequence[StepRecord]], extra_seconds: Mapping[int, float] | None = None
) -> list[StepRecord]:
    """Merge the histories of parts that ran the same steps (batches of a streamed run, or
    datasets read alike and concatenated) position by position; parts that ran different
    steps keep all their records, in order. ``extra_seconds`` adds time spent once per step
    position (a global step's observe and decide on the driver)."""
    histories = [[StepRecord.of(r) for r in h] for h in histories]
    if not histories:
        return []
    names = [[r.step for r in h] for h in histories]
    if any(n != names[0] for n in names):
        return [r for h in histories for r in h]
    extra_seconds = extra_seconds or {}
    return [
        merge_records(list(parts), extra_seconds.get(position, 0.0))
        for position, parts in enumerate(zip(*histories, strict=True))
    ]


def as_dicts(history: Sequence[StepRecord]) -> list[dict[str, Any]]:
    """The JSON form of a history (see :meth:`StepRecord.to_dict`)."""
    return [r.to_dict() for r in history]


__all__ = ["StepRecord", "merge_records", "merge_histories", "as_dicts"]
