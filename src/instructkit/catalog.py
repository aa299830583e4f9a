"""Imports every built-in transform so that recipes can name them (see ``transform.registry``)."""

from instructkit import decontam, dedup, pii, score  # noqa: F401
from instructkit.filters import conversations, langid, normalize, quality  # noqa: F401
from instructkit.sampling import sample  # noqa: F401
from instructkit.templates import tasks  # noqa: F401
