"""``pii.detect``: count and locate PII in every text field without changing any text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from instructkit.pii.detector import Detector
from instructkit.pii.meta import MetaLeaves
from instructkit.pii.recognizers import DEFAULT_ALLOW, PATTERN_ENTITIES, Span
from instructkit.schema import TEXT_FIELDS
from instructkit.text import resolve_fields
from instructkit.transform import Map

#: The pseudo-field for the string leaves of the ``meta`` JSON column.
META = "meta"

#: The struct field order of ``pii_spans``.
SPAN_DTYPE = pl.Struct({
    "field": pl.String, "turn": pl.Int32, "start": pl.Int32, "end": pl.Int32,
    "entity": pl.String, "score": pl.Float64,
})


@dataclass
class Findings:
    """Spans of every text of a frame: ``texts[field]`` (one entry per row, per turn for
    ``messages``, per string leaf for ``meta``), their ``spans``, and the row (and turn) of
    each entry; ``meta`` holds the leaves' places, to write them back."""

    texts: dict[str, list[str | None]]
    spans: dict[str, list[list[Span]]]
    rows: dict[str, list[int]]
    turns: dict[str, list[int | None]]
    height: int
    meta: MetaLeaves | None = None


def scanned_fields(fields: str | Sequence[str] | None, frame: pl.DataFrame) -> list[str]:
    """The fields a PII step scans: every text field and the leaves of ``meta`` for
    ``None``/``"all"``, else the names given (``"meta"`` among them for its leaves).

    Example:
        >>> from instructkit.schema import empty_frame
        >>> scanned_fields(None, empty_frame())
        ['instruction', 'input', 'output', 'system', 'messages', 'meta']
    """
    if fields is None or fields == "all":
        return [*TEXT_FIELDS, *([META] if META in frame.columns else [])]
    return resolve_fields(fields, frame)


def find_in_frame(
    frame: pl.DataFrame, fields: Sequence[str], detector: Detector, n_jobs: int
) -> Findings:
    """Run ``detector`` once over every text of ``fields`` (turns of ``messages`` included)."""
    texts: dict[str, list[str | None]] = {}
    rows: dict[str, list[int]] = {}
    turns: dict[str, list[int | None]] = {}
    meta: MetaLeaves | None = None
    for name in fields:
        if name == META:
            # parse only the metas the pre-filter says may hold PII (an escape in the JSON
            # text could hide a trigger from it, so those are parsed too)
            raw = frame[META]
            hits = [bool(c) for c in detector.candidates(raw.to_list())]
            escaped = raw.str.contains("\\", literal=True).fill_null(False).to_list()
            ids = frame["id"].to_list() if "id" in frame.columns else None
            meta = MetaLeaves.collect(
                raw.to_list(), [h or e for h, e in zip(hits, escaped, strict=True)], ids
            )
            texts[name], rows[name] = list(meta.texts), meta.rows
            turns[name] = [None] * len(meta.texts)
        elif name == "messages":
            # same explode + null filter as instructkit.text.map_text_batch, so the order of
            # turns matches when the rewritten contents are put back
            flat = (
                frame.select(pl.int_range(pl.len()).alias("_row"), "messages")
                .explode("messages")
                .filter(pl.col("messages").is_not_null())
                .with_columns(pl.int_range(pl.len()).over("_row").alias("_turn"))
            )
            texts[name] = flat["messages"].struct.field("content").to_list()
            rows[name] = flat["_row"].to_list()
            turns[name] = flat["_turn"].to_list()
        else:
            texts[name] = frame[name].to_list()
            rows[name] = list(range(frame.height))
            turns[name] = [None] * frame.height
    everything = [t for name in fields for t in texts[name]]
    found = detector.find(everything, n_jobs=n_jobs)
    spans: dict[str, list[list[Span]]] = {}
    pos = 0
    for name in fields:
        spans[name] = found[pos:pos + len(texts[name])]
        pos += len(texts[name])
    return Findings(texts, spans, rows, turns, frame.height, meta)


def count_column(frame: pl.DataFrame, found: Findings, entities: Sequence[str]) -> pl.Series:
    """``pii_counts``: a struct with one UInt32 count per entity type, per row.

    A conversation's ``instruction``/``output`` mirror its turns, so when ``messages`` is
    scanned those two fields are not counted again for rows that have messages.
    """
    counts = {e: [0] * found.height for e in entities}
    has_messages = (
        frame["messages"].is_not_null().to_list() if "messages" in found.spans
        else [False] * found.height
    )
    for name, per_text in found.spans.items():
        mirror = name in ("instruction", "output")
        for row, spans in zip(found.rows[name], per_text, strict=True):
            if mirror and has_messages[row]:
                continue
            for s in spans:
                counts[s.entity][row] += 1
    return pl.DataFrame(
        {e: pl.Series(c, dtype=pl.UInt32) for e, c in counts.items()}
    ).to_struct("pii_counts")


def entity_list(
    frame: pl.DataFrame, counts: pl.Series
) -> pl.Series:
    """Per row, the entity types found (comma-separated, sorted), or null when none."""
    names = [f.name for f in counts.dtype.fields]  # type: ignore[attr-defined]
    unnested = counts.struct.unnest()
    exprs = [pl.when(pl.col(n) > 0).then(pl.lit(n)) for n in sorted(names)]
    joined = unnested.select(pl.concat_str(exprs, separator=", ", ignore_nulls=True).alias("e"))
    return joined["e"].replace("", None)


class Detect(Map):
    """Count and locate PII without changing any text.

    Adds ``pii_counts`` (a struct of UInt32 counts, one field per entity type) and, with
    ``spans=True``, ``pii_spans``: a list of ``{field, turn, start, end, entity, score}`` per
    row (character offsets; ``turn`` indexes ``messages``, null for flat fields; a string of
    ``meta`` is named by its place, ``meta.contact.email``). No value is copied anywhere.
    Parameters are those of :class:`~instructkit.pii.Scrub`.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Mail jo@corp.org", "output": "ok"}])
        >>> row = ds.pipe(ik.pii.detect(spans=True))[0]
        >>> row["pii_counts"]["EMAIL_ADDRESS"], row["pii_spans"][0]["start"]
        (1, 5)
    """

    name = "pii.detect"

    def __init__(
        self,
        entities: Sequence[str] | None = None,
        fields: str | Sequence[str] | None = None,
        language: str = "en",
        allow: Sequence[str] = DEFAULT_ALLOW,
        score_threshold: float = 0.5,
        ner_model: str | None = None,
        spans: bool = False,
        n_jobs: int = 1,
    ) -> None:
        self.entities = entities
        self.fields = fields
        self.language = language
        self.allow = allow
        self.score_threshold = score_threshold
        self.ner_model = ner_model
        self.spans = spans
        self.n_jobs = n_jobs
        self.detector()  # check the settings now, not on the first batch

    def detector(self) -> Detector:
        """The :class:`~instructkit.pii.detector.Detector` these parameters describe."""
        return make_detector(
            self.entities, self.language, self.allow, self.score_threshold, self.ner_model
        )

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        detector = self.detector()
        fields = scanned_fields(self.fields, frame)
        found = find_in_frame(frame, fields, detector, self.n_jobs)
        out = frame.with_columns(count_column(frame, found, detector.entities))
        if self.spans:
            out = out.with_columns(span_column(found))
        return out


def span_column(found: Findings) -> pl.Series:
    """``pii_spans``: per row, the list of ``{field, turn, start, end, entity, score}``."""
    per_row: list[list[dict[str, object]]] = [[] for _ in range(found.height)]
    for name, per_text in found.spans.items():
        labels = found.meta.labels() if name == META and found.meta else [name] * len(per_text)
        for row, turn, label, spans in zip(
            found.rows[name], found.turns[name], labels, per_text, strict=True
        ):
            per_row[row].extend(
                {"field": label, "turn": turn, "start": s.start, "end": s.end,
                 "entity": s.entity, "score": s.score}
                for s in spans
            )
    return pl.Series("pii_spans", per_row, dtype=pl.List(SPAN_DTYPE))


def make_detector(
    entities: Sequence[str] | None,
    language: str,
    allow: Sequence[str] | Mapping[str, object],
    score_threshold: float,
    ner_model: str | None,
) -> Detector:
    """A :class:`Detector` from transform parameters (``entities=None``: the pattern types,
    plus ``PERSON`` and ``LOCATION`` when ``ner_model`` is given)."""
    if isinstance(allow, str):
        raise TypeError(f"allow must be a list of strings, got the string {allow!r}")
    if entities is None:
        chosen = PATTERN_ENTITIES + (("PERSON", "LOCATION") if ner_model else ())
    elif isinstance(entities, str):
        chosen = (entities,)
    else:
        chosen = tuple(dict.fromkeys(entities))
    return Detector(
        entities=chosen, language=language, score_threshold=float(score_threshold),
        allow=tuple(allow), ner_model=ner_model,
    )
