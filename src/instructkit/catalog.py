"""Imports every built-in transform so that recipes can name them (see ``transform.registry``)."""

from instructkit.filters import normalize, quality  # noqa: F401
