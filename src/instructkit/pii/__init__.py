"""PII scrubbing with presidio, offline: ``ik.pii.scrub(...)`` and ``ik.pii.detect(...)``.

    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"instruction": "Call 212-555-2368", "output": "ok"}])
    >>> ds.pipe(ik.pii.scrub(operator="mask"))[0]["instruction"]
    'Call ***-***-****'

presidio and spaCy load only when a scrub or detect step runs. See ``docs/pii.md``.
"""

from instructkit.pii.detect import Detect
from instructkit.pii.recognizers import (
    ALL_ENTITIES,
    DEFAULT_ALLOW,
    NER_ENTITIES,
    OPTIONAL_ENTITIES,
    PATTERN_ENTITIES,
)
from instructkit.pii.scrub import Scrub

#: ``ik.pii.scrub(...)``: the ``pii.scrub`` transform.
scrub = Scrub
#: ``ik.pii.detect(...)``: the ``pii.detect`` transform.
detect = Detect

__all__ = [
    "ALL_ENTITIES", "DEFAULT_ALLOW", "NER_ENTITIES", "OPTIONAL_ENTITIES", "PATTERN_ENTITIES",
    "Detect", "Scrub", "detect", "scrub",
]
