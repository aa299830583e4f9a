"""Progress of long steps: a bar on a terminal, a plain line every 10 s in a batch job.

On a terminal, :func:`progress` draws a tqdm bar that appears only once the loop has run for
about a second, so fast steps stay silent. When stderr is not a terminal (Slurm, nohup, CI,
a pipe) it writes a plain line at most every :data:`LOG_EVERY` seconds instead, and a last
line when a loop that logged finishes. ``INSTRUCTKIT_QUIET=1``, :func:`set_quiet` or
``instructkit -q`` silence both.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

_quiet = os.environ.get("INSTRUCTKIT_QUIET", "") not in ("", "0")

#: Seconds between two plain progress lines when stderr is not a terminal.
LOG_EVERY = 10.0
#: Seconds a loop runs before its bar appears on a terminal.
BAR_DELAY = 1.0


def set_quiet(quiet: bool = True) -> None:
    """Silence (or re-enable) every progress bar and progress line of this process.

    Example:
        >>> import instructkit as ik
        >>> ik.set_quiet(True)
    """
    global _quiet
    _quiet = quiet


def quiet() -> bool:
    """True when progress output is silenced (``INSTRUCTKIT_QUIET=1`` or :func:`set_quiet`).

    Example:
        >>> from instructkit._progress import quiet, set_quiet
        >>> set_quiet(True); quiet()
        True
    """
    return _quiet


def enabled() -> bool:
    """True when a progress bar should be drawn (not quiet, and stderr is a terminal)."""
    return not _quiet and sys.stderr.isatty()


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "rec"
) -> Iterator[T]:
    """Yield from ``iterable``, showing how far it got.

    A tqdm bar on a terminal; otherwise a line such as ``instructkit: observe dedup.minhash:
    3/20 batch (15%), 31 s`` at most every :data:`LOG_EVERY` seconds; nothing when quiet.

    Example:
        >>> list(progress(range(3), total=3, desc="demo"))
        [0, 1, 2]
    """
    if _quiet:
        yield from iterable
        return
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, delay=BAR_DELAY)
        return
    yield from log_progress(iterable, total=total, desc=desc, unit=unit, stream=sys.stderr)


def log_progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "rec",
    stream: TextIO | None = None,
    every: float | None = None,
) -> Iterator[T]:
    """Yield from ``iterable`` and write a plain progress line to ``stream`` at most every
    ``every`` seconds (default :data:`LOG_EVERY`), plus a last line if any was written.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> list(log_progress(range(2), total=2, desc="demo", unit="batch", stream=out, every=0))
        [0, 1]
        >>> out.getvalue().splitlines()[-1].split(",")[0]
        'instructkit: demo: done 2/2 batch (100%)'
    """
    stream = stream if stream is not None else sys.stderr
    every = LOG_EVERY if every is None else every
    start = last = time.monotonic()
    done = 0
    logged = False
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every:
            stream.write(_line(desc, done, total, unit, now - start) + "\n")
            stream.flush()
            last, logged = now, True
    if logged:
        stream.write(_line(desc, done, total, unit, time.monotonic() - start, "done ") + "\n")
        stream.flush()


def _line(desc: str, done: int, total: int | None, unit: str, seconds: float, prefix: str = "") -> str:
    what = f"{desc}: " if desc else ""
    count = f"{done}/{total} {unit} ({done / total:.0%})" if total else f"{done} {unit}"
    return f"instructkit: {what}{prefix}{count}, {seconds:.0f} s"
