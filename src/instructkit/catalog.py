"""Imports every built-in transform so that recipes can name them (see ``transform.registry``)."""

from instructkit.filters import normalize, quality  # noqa: F401
from instructkit.templates import tasks  # noqa: F401
from instructkit import decontam  # noqa: F401
from instructkit.filters import langid  # noqa: F401
