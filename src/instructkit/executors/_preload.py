"""Imported by the server process the local executor's workers fork from, never by user
code (see :mod:`instructkit.executors.parallel`): it imports the step classes named in
``INSTRUCTKIT_PRELOAD`` (``module:QualName``, comma-separated) and calls their
:meth:`~instructkit.transform.Transform.preload`, so every worker starts with them loaded.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from instructkit.transform import Transform

#: The environment variable the executor names the step classes in for the server.
PRELOAD_ENV = "INSTRUCTKIT_PRELOAD"


def class_names(steps: Sequence[Transform]) -> str:
    """The ``INSTRUCTKIT_PRELOAD`` value naming the classes of ``steps``; classes of
    ``__main__`` are left out (another process cannot import them by that name).

    Example:
        >>> import instructkit as ik
        >>> class_names([ik.dedup.exact(), ik.normalize(), ik.dedup.exact()])
        'instructkit.dedup.exact:Exact,instructkit.filters.normalize:Normalize'
    """
    classes = {type(s) for s in steps if type(s).__module__ != "__main__"}
    return ",".join(sorted(f"{c.__module__}:{c.__qualname__}" for c in classes))


def preload(spec: str) -> list[str]:
    """Call ``preload()`` on each class ``spec`` names; returns the names of those that
    failed. A failure only costs speed: the worker that runs the step loads what it needs
    itself and raises there, with the step's context, if it still cannot.

    Example:
        >>> preload("instructkit.filters.normalize:Normalize,no.such.module:Step")
        ['no.such.module:Step']
    """
    failed = []
    for name in filter(None, spec.split(",")):
        module, _, qualname = name.partition(":")
        try:
            target = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
            target.preload()
        except Exception:  # any failure here is reproduced, with context, by the worker
            failed.append(name)
    return failed


preload(os.environ.get(PRELOAD_ENV, ""))
