"""Progress bars that stay quiet when output is not a terminal or when asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_quiet = os.environ.get("INSTRUCTKIT_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool = True) -> None:
    """Silence (or re-enable) every progress bar of this process.

    Example:
        >>> import instructkit as ik
        >>> ik.set_quiet(True)
    """
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    """True when progress bars should be drawn."""
    return not _quiet and sys.stderr.isatty()


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "rec"
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when :func:`enabled`, else yield from it unchanged."""
    if not enabled():
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)
