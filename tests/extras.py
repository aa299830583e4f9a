"""Optional extras and tools in tests: skipped on a laptop, required in CI.

``require("ray")`` imports a module; when it is missing the test skips locally but fails
under ``CI=true``, where the README's test command installs every extra (and .ci/run
installs Chromium), so a broken install cannot turn tests into silent skips.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: True under CI (``CI=true``, as GitHub Actions, GitLab and .ci/run set it).
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test (or the module, at import time) with ``reason``; fail under CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every extra and tool must be present)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(module: str, reason: str | None = None) -> ModuleType:
    """Import ``module``, or skip locally / fail under CI when it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        unavailable(reason or f"{module} is not importable ({e}); pip install the extra that provides it")
        raise  # unreachable: unavailable() always raises
