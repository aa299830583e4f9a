"""Collection of src/ doctests (``python -m pytest`` runs them with tests/, see pyproject).

A module that imports an optional extra at its top is left out of doctest collection when
that extra is missing, except under ``CI=true``, where every extra is installed and a
missing one must fail.
"""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("INSTRUCTKIT_QUIET", "1")

# module file -> the extra module it imports at import time
_NEEDS = {"src/instructkit/executors/ray_minhash.py": "ray"}

collect_ignore: list[str] = []
if os.environ.get("CI", "").strip().lower() not in ("1", "true", "yes"):
    collect_ignore = [path for path, module in _NEEDS.items() if importlib.util.find_spec(module) is None]
