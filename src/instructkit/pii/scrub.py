"""``pii.scrub``: replace, mask, hash or redact PII in every text field, or drop the record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from instructkit.pii.detect import (
    META,
    count_column,
    entity_list,
    find_in_frame,
    make_detector,
    scanned_fields,
)
from instructkit.pii.detector import Detector
from instructkit.pii.meta import rewrite_json_leaves
from instructkit.pii.operators import OPERATORS, Render, renderer, rewrite
from instructkit.pii.recognizers import DEFAULT_ALLOW, Span
from instructkit.text import map_text_batch
from instructkit.transform import Map, detail, mark, resolve_secret

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

#: Text columns of the removed log.
REMOVED_TEXTS = ("instruction", "input", "output")


class Scrub(Map):
    """Find PII with presidio (offline) and remove it from every text field.

    Scans ``instruction``, ``input``, ``output``, ``system``, every turn of ``messages`` and
    every string in ``meta`` (or the ``fields`` given; ``"meta"`` names its strings) for
    ``entities`` (default: e-mail, phone, credit card, IP, US
    SSN, IBAN, URL; ``CRYPTO`` and ``DATE_TIME`` on request; ``PERSON`` and ``LOCATION`` with
    ``ner_model``, the name or path of an installed spaCy pipeline). ``operator``:

    - ``"replace"``: a typed placeholder, ``<EMAIL_ADDRESS>``, or ``placeholders[type]``;
    - ``"mask"``: every letter and digit becomes ``mask_char`` (``***-**-****``);
    - ``"hash"``: ``<EMAIL_ADDRESS:3f9a1c2b7d0e>``, an HMAC keyed with ``salt``: the same
      value gets the same token in every record and run. ``salt`` may be a reference
      ``"${env:IK_PII_SALT}"``, read when the step runs; a recipe (``to_yaml``) always holds
      that reference, never the salt;
    - ``"redact"``: the value is removed;
    - ``"drop"``: records with PII go to ``removed`` (reason ``pii``, detail
      ``{"entities": [...]}``); the texts copied there are scrubbed with placeholders first.

    Nothing raw is left behind in the removed log either: records that earlier steps removed
    (duplicates, quality failures, read errors) still hold their texts there, so the step
    scrubs the removed log's ``instruction``, ``input``, ``output`` (those it scans) and every
    ``detail`` with the same operator, batch-wise like the records.

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
        >>> twice = ik.Dataset.from_records([{"instruction": "Mail jo@corp.org", "output": "ok"}] * 2)
        >>> twice.pipe(ik.dedup.exact(), ik.pii.scrub()).removed["instruction"].to_list()
        ['Mail <EMAIL_ADDRESS>']
    """

    name = "pii.scrub"
    redacts: ClassVar[bool] = True
    secrets: ClassVar[Mapping[str, str]] = {"salt": "IK_PII_SALT"}

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
        # check the settings now, not on the first batch (a salt given as a reference is read
        # when the step runs)
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator {operator!r}; choose one of {list(OPERATORS)}")
        self.detector()
        renderer(operator, placeholders, mask_char, salt)

    def detector(self) -> Detector:
        """The :class:`~instructkit.pii.detector.Detector` these parameters describe."""
        return make_detector(
            self.entities, self.language, self.allow, self.score_threshold, self.ner_model
        )

    def render(self) -> Render:
        """The function that writes each found value (the salt read from the environment when
        it is a reference)."""
        salt = resolve_secret(self.salt, "pii.scrub salt")
        return renderer(self.operator, self.placeholders, self.mask_char, salt)

    def __call__(self, dataset: Dataset) -> Dataset:
        # rows already in the removed log (earlier steps, read errors) are scrubbed by this
        # step too; the rows it drops itself are scrubbed in apply
        if dataset.removed.height:
            from instructkit.dataset import Dataset

            dataset = Dataset(dataset.to_polars(), self.scrub_removed(dataset.removed), dataset.history)
        return super().__call__(dataset)

    def scrub_removed(self, removed: pl.DataFrame) -> pl.DataFrame:
        """The removed log with its texts and ``detail`` scrubbed, all in one detector call.

        Example:
            >>> import polars as pl
            >>> log = pl.DataFrame({"instruction": ["Mail jo@corp.org"], "input": [None],
            ...     "output": ["ok"], "detail": ['{"note":"from jo@corp.org"}']})
            >>> Scrub().scrub_removed(log).row(0)
            ('Mail <EMAIL_ADDRESS>', None, 'ok', '{"note":"from <EMAIL_ADDRESS>"}')
        """
        if removed.height > self.batch_size:
            # in slices, as Transform.__call__ runs apply, so memory stays bounded
            return pl.concat([
                self.scrub_removed(removed.slice(start, self.batch_size))
                for start in range(0, removed.height, self.batch_size)
            ])
        detector = self.detector()
        render = self.render()
        columns = [c for c in self._removed_fields() if c in removed.columns]
        if "detail" in removed.columns:
            columns.append("detail")
        values = {c: removed[c].to_list() for c in columns}
        found = detector.find([t for c in columns for t in values[c]], n_jobs=self.n_jobs)
        pos, out = 0, removed
        for c in columns:
            spans = found[pos:pos + len(values[c])]
            pos += len(values[c])
            if not any(spans):
                continue
            new = [
                t if not s else _rewrite_detail(t, s, detector, render) if c == "detail"
                else rewrite(t, s, render)
                for t, s in zip(values[c], spans, strict=True)
            ]
            out = out.with_columns(pl.Series(c, new, dtype=pl.String))
        return out

    def _removed_fields(self) -> list[str]:
        if self.operator == "drop" or self.fields is None or self.fields == "all":
            return list(REMOVED_TEXTS)
        names = [self.fields] if isinstance(self.fields, str) else list(self.fields)
        # a conversation's instruction/output in the removed log mirror its turns
        mirrored = ("instruction", "output") if "messages" in names else ()
        return [f for f in REMOVED_TEXTS if f in names or f in mirrored]

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        detector = self.detector()
        render = self.render()
        fields = scanned_fields(self.fields, frame)
        if self.operator == "drop":
            # the removed log copies these three: they must be scrubbed whatever was asked
            fields += [f for f in REMOVED_TEXTS if f not in fields]
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
            if name == META:
                assert found.meta is not None
                out = out.with_columns(pl.Series(META, found.meta.rewrite(values), dtype=pl.String))
                continue

            def fn(old: list[str | None], values: list[str | None] = values) -> list[str | None]:
                if len(old) != len(values):
                    raise RuntimeError("pii.scrub: turn count changed while scrubbing messages")
                return values

            out = map_text_batch(out, [name], fn)
        out = out.with_columns(counts)
        if self.operator == "drop":
            types = entity_list(frame, counts)
            reason = pl.Series([None if t is None else "pii" for t in types], dtype=pl.String)
            details = pl.Series(
                [None if t is None else detail(entities=t.split(", ")) for t in types], dtype=pl.String
            )
            out = mark(out, reason, details)
        return out


def _rewrite_detail(text: str, spans: Sequence[Span], detector: Detector, render: Render) -> str:
    """A ``detail`` in which ``spans`` were found: a JSON object has its string leaves
    scrubbed and is written again by the convention; any other text is scrubbed as text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        return rewrite(text, spans, render)

    def scrub(leaves: list[str]) -> list[str]:
        found = detector.find(leaves)
        return [rewrite(t, s, render) for t, s in zip(leaves, found, strict=True)]

    return detail(**rewrite_json_leaves(value, scrub))
