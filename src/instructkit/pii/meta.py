"""The string leaves of ``meta``: found, scanned and written back like any text field.

``meta`` holds every input field that is not canonical, as a JSON object string, so an extra
``email`` or ``notes`` field keeps its personal data there unless it is scanned too. Each
string leaf (at any depth, in objects and lists) is one text for the detector; integers are
scanned as written (a phone number stored as a number is still a phone number). Keys are
names, not values, and are left as they are.

Only metas the detector's pre-filter says may hold PII are parsed, and only those with a
finding are written again, so a meta without PII keeps its exact bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A leaf's place in its meta: keys and list positions from the root.
Path = tuple[str | int, ...]


@dataclass
class MetaLeaves:
    """The leaves of one column of metas: ``texts[k]`` sits at ``paths[k]`` in row ``rows[k]``.

    Example:
        >>> m = MetaLeaves.collect(['{"a": {"b": ["x", 7]}}', None], [True, True])
        >>> m.texts, m.rows, m.labels()
        (['x', '7'], [0, 0], ['meta.a.b.0', 'meta.a.b.1'])
    """

    metas: list[str | None]
    texts: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    parsed: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def collect(
        cls, metas: Sequence[str | None], may_hold: Sequence[bool], ids: Sequence[str] | None = None
    ) -> MetaLeaves:
        """The leaves of the metas whose ``may_hold`` is true (the others are not parsed);
        ``ids`` name the record of a meta that is not JSON."""
        out = cls(list(metas))
        for row, (text, wanted) in enumerate(zip(metas, may_hold, strict=True)):
            if not wanted or not text:
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                who = f"record {ids[row]!r}" if ids is not None else f"row {row}"
                raise ValueError(f"{who}: meta is not a JSON object string ({e})") from None
            out.parsed[row] = value
            for path, leaf in _leaves(value, ()):
                out.texts.append(leaf)
                out.rows.append(row)
                out.paths.append(path)
        return out

    def labels(self) -> list[str]:
        """Each leaf's place as ``meta.key.0.key``, the ``field`` of its ``pii_spans``."""
        return [".".join(["meta", *map(str, p)]) for p in self.paths]

    def rewrite(self, new_texts: Sequence[str]) -> list[str | None]:
        """The metas with each leaf replaced by ``new_texts`` (rows without a change keep
        their exact text)."""
        changed: set[int] = set()
        for row, path, old, new in zip(self.rows, self.paths, self.texts, new_texts, strict=True):
            if new != old:
                self.parsed[row] = _set(self.parsed[row], path, new)
                changed.add(row)
        return [
            json.dumps(self.parsed[row], ensure_ascii=False, sort_keys=True) if row in changed else text
            for row, text in enumerate(self.metas)
        ]


def rewrite_json_leaves(value: Any, fn: Callable[[list[str]], list[str]]) -> Any:
    """``value`` with every string (and integer) leaf passed through ``fn`` (one call); a leaf
    ``fn`` leaves as it was keeps its type.

    Example:
        >>> rewrite_json_leaves({"a": ["x", 1]}, lambda xs: [s.upper() for s in xs])
        {'a': ['X', 1]}
    """
    found = list(_leaves(value, ()))
    new = fn([leaf for _, leaf in found])
    for (path, old), text in zip(found, new, strict=True):
        if text != old:
            value = _set(value, path, text)
    return value


def _leaves(value: Any, path: Path) -> Any:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))


def _set(value: Any, path: Path, new: str) -> Any:
    if not path:
        return new
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return value
