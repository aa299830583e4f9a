"""``pii.scrub``: replace, mask, hash or redact PII in every text field, or drop the record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from instructkit.pii.detect import count_column, entity_list, find_in_frame, make_detector
from instructkit.pii.detector import Detector
from instructkit.pii.operators import OPERATORS, renderer, rewrite
from instructkit.pii.recognizers import DEFAULT_ALLOW
from instructkit.text import map_text_batch, resolve_fields
from instructkit.transform import Map, detail, mark


class Scrub(Map):
    """Find PII with presidio (offline) and remove it from every text field.

    Scans ``instruction``, ``input``, ``output``, ``system`` and every turn of ``messages``
    (or the ``fields`` given) for ``entities`` (default: e-mail, phone, credit card, IP, US
    SSN, IBAN, URL; ``CRYPTO`` and ``DATE_TIME`` on request; ``PERSON`` and ``LOCATION`` with
    ``ner_model``, the name or path of an installed spaCy pipeline). ``operator``:

    - ``"replace"``: a typed placeholder, ``<EMAIL_ADDRESS>``, or ``placeholders[type]``;
    - ``"mask"``: every letter and digit becomes ``mask_char`` (``***-**-****``);
    - ``"hash"``: ``<EMAIL_ADDRESS:3f9a1c2b7d0e>``, an HMAC keyed with ``salt``: the same
      value gets the same token in every record and run;
    - ``"redact"``: the value is removed;
    - ``"drop"``: records with PII go to ``removed`` (reason ``pii``, detail
      ``{"entities": [types]}``); the texts copied there are scrubbed with placeholders first.

    Values in ``allow`` are kept (domains cover subdomains, mailboxes and URLs; ``555-01xx``
    covers fictitious US numbers). Versions, hex literals and dotted identifiers in code are
    not reported. Adds ``pii_counts``: a struct of counts per entity type, found before
    scrubbing. ``n_jobs`` worker processes (``-1``: all cores) give the same output as one.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Email jo@corp.org or call (212) 555-2368.", "output": "ok"}])
        >>> ds.pipe(ik.pii.scrub())[0]["instruction"]
        'Email <EMAIL_ADDRESS> or call <PHONE_NUMBER>.'
        >>> ds.pipe(ik.pii.scrub(operator="drop")).removed["detail"].to_list()
        ['{"entities":["EMAIL_ADDRESS","PHONE_NUMBER"]}']
    """

    name = "pii.scrub"

    def __init__(
        self,
        entities: Sequence[str] | None = None,
        fields: str | Sequence[str] | None = None,
        operator: str = "replace",
        language: str = "en",
        allow: Sequence[str] = DEFAULT_ALLOW,
        score_threshold: float = 0.5,
        placeholders: Mapping[str, str] | None = None,
        mask_char: str = "*",
        salt: str | None = None,
        ner_model: str | None = None,
        n_jobs: int = 1,
    ) -> None:
        self.entities = entities
        self.fields = fields
        self.operator = operator
        self.language = language
        self.allow = allow
        self.score_threshold = score_threshold
        self.placeholders = placeholders
        self.mask_char = mask_char
        self.salt = salt
        self.ner_model = ner_model
        self.n_jobs = n_jobs
        # check the settings now, not on the first batch
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator {operator!r}; choose one of {list(OPERATORS)}")
        self.detector()
        renderer(operator, placeholders, mask_char, salt)

    def detector(self) -> Detector:
        """The :class:`~instructkit.pii.detector.Detector` these parameters describe."""
        return make_detector(
            self.entities, self.language, self.allow, self.score_threshold, self.ner_model
        )

    def __repr__(self) -> str:
        # the salt keys the hash: keep it out of history and logs
        text = super().__repr__()
        return text if self.salt is None else text.replace(repr(self.salt), "'***'")

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        detector = self.detector()
        render = renderer(self.operator, self.placeholders, self.mask_char, self.salt)
        fields = resolve_fields(self.fields, frame)
        if self.operator == "drop":
            # the removed log copies these three: they must be scrubbed whatever was asked
            fields += [f for f in ("instruction", "input", "output") if f not in fields]
        found = find_in_frame(frame, fields, detector, self.n_jobs)
        counts = count_column(frame, found, detector.entities)
        new_texts = {
            name: [
                t if t is None or not spans else rewrite(t, spans, render)
                for t, spans in zip(found.texts[name], found.spans[name], strict=True)
            ]
            for name in fields
        }
        out = frame
        for name in fields:
            values = new_texts[name]

            def fn(old: list[str | None], values: list[str | None] = values) -> list[str | None]:
                if len(old) != len(values):
                    raise RuntimeError("pii.scrub: turn count changed while scrubbing messages")
                return values

            out = map_text_batch(out, [name], fn)
        out = out.with_columns(counts)
        if self.operator == "drop":
            types = entity_list(frame, counts)
            reason = pl.Series([None if t is None else "pii" for t in types], dtype=pl.String)
            details = pl.Series([None if t is None else detail(entities=t.split(", ")) for t in types], dtype=pl.String)
            out = mark(out, reason, details)
        return out
