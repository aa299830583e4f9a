"""Task templates: turn plain NLP records (QA, summaries, translations, labels) into instructions.

Each template is a :class:`~instructkit.Map` step that reads source fields from a record and
writes ``instruction``, ``input`` and ``output`` (the record becomes single-turn:
``messages`` is cleared). Source fields are named in ``fields``, mapping the template's role
to a field reference:

- a canonical column (``"instruction"``, ``"input"``, ``"output"``, ``"system"``) or a column
  a transform added;
- a ``meta`` key, by its bare name (``"context"``) or as ``"meta.context"``.

Meta keys a template consumed are removed from ``meta`` (their text now lives in the
instruction fields) unless ``keep_meta=True``.

Each built-in task has at least 8 phrasings; the one a record gets is drawn from a hash of
``seed`` and the record id, so the choice is deterministic, independent of row order and
batching, and varies across records. After a run the step reports
``distinct_instructions_`` (distinct instruction strings produced) and logs it on the
``instructkit`` logger. A record that lacks a field the template needs raises
:class:`TemplateFieldError` naming the field and the record.

Example:
    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"question": "Who wrote Hamlet?", "answer": "Shakespeare"}])
    >>> step = ik.templates.closed_qa(seed=0)
    >>> out = ds.pipe(step)
    >>> out[0]["output"], step.distinct_instructions_
    ('Shakespeare', 1)
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import polars as pl
import xxhash

from instructkit.transform import Map

log = logging.getLogger("instructkit")

#: ISO 639-1 codes spelled out by :class:`Translate`; any other value is used as written.
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
    "zh": "Chinese",
}


class TemplateFieldError(KeyError):
    """A record lacks a field a template needs; the message names the field and the record."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _ref(name: str, columns: Sequence[str]) -> tuple[str, str]:
    """``("col", name)`` or ``("meta", key)`` for a field reference."""
    if name.startswith("meta."):
        return "meta", name[5:]
    if name in columns:
        return "col", name
    return "meta", name


def _choose(seed: int, record_id: str, n: int) -> int:
    """A per-record draw in ``range(n)``: a hash of seed and id, so it ignores row order."""
    return xxhash.xxh64_intdigest(f"{seed}\x00{record_id}".encode()) % n


def _as_text(value: Any, field: str, record_id: str, step: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise TemplateFieldError(
        f"{step}: record {record_id!r}: field {field!r} is a {type(value).__name__}, expected text"
    )


class TaskTemplate(Map):
    """Shared machinery of the task templates. Subclasses set ``roles`` (the fields they
    need, with default references), ``default_phrasings`` and implement :meth:`build`."""

    roles: ClassVar[dict[str, str]] = {}
    optional_roles: ClassVar[dict[str, str]] = {}
    default_phrasings: ClassVar[tuple[str, ...]] = ()

    #: After a run: how many distinct instruction strings the step produced.
    distinct_instructions_: int | None = None

    def __init__(
        self,
        fields: Mapping[str, str] | None = None,
        phrasings: Sequence[str] | None = None,
        seed: int = 0,
        keep_meta: bool = False,
    ) -> None:
        """``fields`` maps template fields to columns or meta keys; ``phrasings`` replaces
        the built-in instruction phrasings; ``seed`` picks a phrasing per record (from a hash
        of the seed and the record id); ``keep_meta`` keeps the meta keys the template used."""
        self.fields = fields
        self.phrasings = phrasings
        self.seed = seed
        self.keep_meta = keep_meta

    def _field_map(self) -> dict[str, str]:
        fields = dict(self.fields or {})
        unknown = set(fields) - set(self.roles) - set(self.optional_roles)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown field role(s) {sorted(unknown)}; this template reads "
                f"{sorted({**self.roles, **self.optional_roles})}"
            )
        merged = {**self.roles, **fields}
        for role, ref in self.optional_roles.items():
            if role in fields:
                merged[role] = fields[role]
            elif ref:
                merged[role] = ref
        return merged

    def _phrasings(self) -> list[str]:
        phrasings = list(self.phrasings) if self.phrasings is not None else list(self.default_phrasings)
        if not phrasings or not all(isinstance(p, str) for p in phrasings):
            raise ValueError(f"{self.name}: phrasings must be a non-empty list of strings")
        return phrasings

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        """``(instruction, input, output)`` of one record from its field values."""
        raise TypeError(f"{type(self).__name__} must implement build()")

    def _values(self, frame: pl.DataFrame, role_refs: Mapping[str, str], required: set[str]) -> tuple[list[dict[str, str]], list[dict[str, Any]], set[str]]:
        ids = frame["id"].to_list()
        refs = {role: _ref(ref, frame.columns) for role, ref in role_refs.items()}
        metas = [json.loads(m) if m else {} for m in frame["meta"].to_list()]
        columns = {ref: frame[ref].to_list() for kind, ref in refs.values() if kind == "col"}
        used_meta = {ref for kind, ref in refs.values() if kind == "meta"}
        rows: list[dict[str, str]] = []
        for i, rid in enumerate(ids):
            values: dict[str, str] = {}
            for role, (kind, ref) in refs.items():
                value = columns[ref][i] if kind == "col" else metas[i].get(ref)
                if value is None:
                    if role not in required:
                        continue
                    found = [c for c in ("instruction", "input", "output", "system") if c in frame.columns]
                    raise TemplateFieldError(
                        f"{self.name}: record {rid!r} has no field {ref!r} (template field "
                        f"{role!r}); columns {found}, meta keys {sorted(metas[i])}. Name it with "
                        f"fields={{{role!r}: ...}}"
                    )
                values[role] = _as_text(value, ref, rid, self.name)
            rows.append(values)
        return rows, metas, used_meta

    def _run(self, frame: pl.DataFrame, role_refs: Mapping[str, str], required: set[str]) -> pl.DataFrame:
        phrasings = self._phrasings()
        rows, metas, used_meta = self._values(frame, role_refs, required)
        ids = frame["id"].to_list()
        out: tuple[list[str], list[str], list[str]] = ([], [], [])
        for rid, values in zip(ids, rows, strict=True):
            phrasing = phrasings[_choose(self.seed, rid, len(phrasings))]
            try:
                built = self.build(values, phrasing)
            except TemplateFieldError as e:
                raise TemplateFieldError(f"{self.name}: record {rid!r}: {e}") from None
            for column, text in zip(out, built, strict=True):
                column.append(text)
        if self.keep_meta or not used_meta:
            meta = frame["meta"]
        else:
            meta = pl.Series("meta", [_dump_meta(m, used_meta) for m in metas], dtype=pl.String)
        self._seen.update(xxhash.xxh64_intdigest(t.encode()) for t in out[0])
        return frame.with_columns(
            pl.Series("instruction", out[0], dtype=pl.String),
            pl.Series("input", out[1], dtype=pl.String),
            pl.Series("output", out[2], dtype=pl.String),
            pl.lit(None, dtype=frame.schema["messages"]).alias("messages"),
            meta,
        )

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not hasattr(self, "_seen"):
            self._seen: set[int] = set()
        refs = self._field_map()
        return self._run(frame, refs, set(self.roles))

    def __call__(self, dataset: Any) -> Any:
        self._seen = set()
        out = super().__call__(dataset)
        self.distinct_instructions_ = len(self._seen)
        log.info(
            "%s: %d distinct instructions over %d records (%d phrasings)",
            self.name, self.distinct_instructions_, len(out), len(self._phrasings()),
        )
        return out


def _dump_meta(meta: dict[str, Any], used: set[str]) -> str | None:
    rest = {k: v for k, v in meta.items() if k not in used}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else None


def _fill(phrasing: str, **values: str) -> str:
    # str.replace rather than str.format: braces inside record text must stay literal
    for key, value in values.items():
        phrasing = phrasing.replace("{" + key + "}", value)
    return phrasing


class ExtractiveQA(TaskTemplate):
    """Context + question -> answer. ``instruction`` holds the phrased question, ``input``
    the context, ``output`` the answer.

    Default fields: ``question`` <- ``instruction``, ``context`` <- ``input``,
    ``answer`` <- ``output`` (what ``ik.read`` makes of ``question/context/answer`` data).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"question": "Capital?", "context": "Paris is the "
        ...     "capital of France.", "answer": "Paris"}])
        >>> r = ds.pipe(ExtractiveQA(seed=1))[0]
        >>> "Capital?" in r["instruction"], r["input"], r["output"]
        (True, 'Paris is the capital of France.', 'Paris')
    """

    name = "template.qa"
    roles: ClassVar[dict[str, str]] = {"question": "instruction", "context": "input", "answer": "output"}
    default_phrasings: ClassVar[tuple[str, ...]] = (
        "Read the passage and answer the question: {question}",
        "Answer the following question using the text provided.\n\nQuestion: {question}",
        "{question} Answer using the passage below.",
        "Use the context to answer this question: {question}",
        "Extract the answer to the question from the passage.\nQuestion: {question}",
        "Given the following passage, answer: {question}",
        'Find the answer to "{question}" in the text below.',
        "Question: {question}\nAnswer it with a span from the passage below.",
        "Refer to the passage below and answer the question that follows.\n\n{question}",
        "Based only on the text below, {question}",
    )

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        return _fill(phrasing, question=values["question"]), values["context"], values["answer"]


class ClosedQA(TaskTemplate):
    """Question -> answer with no context (FAQ pages, MedQuAD).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"question": "What is 2+2?", "answer": "4"}])
        >>> ds.pipe(ClosedQA(phrasings=["Q: {question}"]))[0]["instruction"]
        'Q: What is 2+2?'
    """

    name = "template.closed_qa"
    roles: ClassVar[dict[str, str]] = {"question": "instruction", "answer": "output"}
    default_phrasings: ClassVar[tuple[str, ...]] = (
        "{question}",
        "Answer the following question.\n\n{question}",
        "Question: {question}",
        "Please answer this question: {question}",
        "Answer this question accurately: {question}",
        "Respond to the question below.\n\n{question}",
        "Q: {question}",
        "Here is a question: {question} What is the answer?",
        "I have a question: {question}",
    )

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        return _fill(phrasing, question=values["question"]), "", values["answer"]


class Summarize(TaskTemplate):
    """Document -> summary: a summarization instruction, the document as input.

    Default fields: ``document`` <- ``input``, ``summary`` <- ``output``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "x", "article": "Long text.",
        ...                                "highlights": "Short."}])
        >>> r = ds.pipe(Summarize(fields={"document": "article", "summary": "highlights"}))[0]
        >>> r["input"], r["output"]
        ('Long text.', 'Short.')
    """

    name = "template.summarize"
    roles: ClassVar[dict[str, str]] = {"document": "input", "summary": "output"}
    default_phrasings: ClassVar[tuple[str, ...]] = (
        "Summarize the following text.",
        "Write a short summary of the passage below.",
        "Give a brief summary of this document.",
        "Condense the text below into a few sentences.",
        "What are the main points of the following text? Summarize them.",
        "Provide a concise summary of the article.",
        "Summarize this in your own words.",
        "Write a TL;DR for the text below.",
        "Produce a summary that captures the key information in the passage.",
    )

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        return phrasing, values["document"], values["summary"]


def language_name(code_or_name: str) -> str:
    """The English name of an ISO 639-1 code in :data:`LANGUAGE_NAMES`, else the value itself.

    Example:
        >>> language_name("fr"), language_name("Klingon")
        ('French', 'Klingon')
    """
    return LANGUAGE_NAMES.get(code_or_name.strip().lower(), code_or_name)


class Translate(TaskTemplate):
    """Source text + target text + the two languages -> "Translate ... from French to English".

    The languages are constants (``source_lang="fr"``, ``target_lang="English"``) or per-record
    fields (``fields={"source_lang": "meta.src", "target_lang": "meta.tgt"}``); ISO codes are
    spelled out. Default fields: ``source`` <- ``input``, ``target`` <- ``output``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "", "input": "Bonjour", "output": "Hello"}])
        >>> ds.pipe(Translate(source_lang="fr", target_lang="en",
        ...     phrasings=["Translate the following text from {source_lang} to {target_lang}."]))[0]["instruction"]
        'Translate the following text from French to English.'
    """

    name = "template.translate"
    roles: ClassVar[dict[str, str]] = {"source": "input", "target": "output"}
    optional_roles: ClassVar[dict[str, str]] = {"source_lang": "", "target_lang": ""}
    default_phrasings: ClassVar[tuple[str, ...]] = (
        "Translate the following text from {source_lang} to {target_lang}.",
        "Translate this {source_lang} text into {target_lang}.",
        "Render the passage below in {target_lang}. It is written in {source_lang}.",
        "What is the {target_lang} translation of this {source_lang} text?",
        "Convert the following {source_lang} text to {target_lang}.",
        "Please translate from {source_lang} into {target_lang}:",
        "Give a {target_lang} translation of the {source_lang} text below.",
        "Translate to {target_lang} (the source is {source_lang}).",
    )

    def __init__(
        self,
        source_lang: str | None = None,
        target_lang: str | None = None,
        fields: Mapping[str, str] | None = None,
        phrasings: Sequence[str] | None = None,
        seed: int = 0,
        keep_meta: bool = False,
    ) -> None:
        self.source_lang = source_lang
        self.target_lang = target_lang
        self.fields = fields
        self.phrasings = phrasings
        self.seed = seed
        self.keep_meta = keep_meta

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not hasattr(self, "_seen"):
            self._seen = set()
        refs = self._field_map()
        required = set(self.roles)
        for role, constant in (("source_lang", self.source_lang), ("target_lang", self.target_lang)):
            if role in refs and constant is not None:
                raise ValueError(f"{self.name}: give {role} as a constant or in fields=, not both")
            if role not in refs:
                if constant is None:
                    raise ValueError(
                        f"{self.name}: {role} is missing: pass {role}='French' (or an ISO code) "
                        f"or fields={{{role!r}: 'meta.<key>'}}"
                    )
            else:
                required.add(role)
        return self._run(frame, refs, required)

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        src = language_name(values.get("source_lang") or self.source_lang or "")
        tgt = language_name(values.get("target_lang") or self.target_lang or "")
        return _fill(phrasing, source_lang=src, target_lang=tgt), values["source"], values["target"]


class Classify(TaskTemplate):
    """Text + label + label set -> an instruction that lists the choices; the label name is
    the output.

    ``labels`` is the list of label names, or a mapping from the raw label values (as
    text, e.g. ``"0"``) to names. A record whose label is not in the set raises an error.
    Phrasings use ``{choices}`` (comma-separated) or ``{choices_lines}`` (one per line).
    Default fields: ``text`` <- ``input``, ``label`` <- ``output``.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "", "input": "Great film!", "output": "1"}])
        >>> r = ds.pipe(Classify(labels={"0": "negative", "1": "positive"},
        ...     phrasings=["Is the review {choices}?"]))[0]
        >>> r["instruction"], r["output"]
        ('Is the review negative, positive?', 'positive')
    """

    name = "template.classify"
    roles: ClassVar[dict[str, str]] = {"text": "input", "label": "output"}
    default_phrasings: ClassVar[tuple[str, ...]] = (
        "Classify the text into one of these categories: {choices}.",
        "Which of the following labels best describes the text? {choices}",
        "Assign one label to the text below. Options: {choices}.",
        "Read the text and choose its category from: {choices}.",
        "Categorize the following text. Possible answers: {choices}.",
        "What is the category of this text? Choose one of: {choices}.",
        "Label the text below with one of the following: {choices}.",
        "Pick the best label for the text.\nOptions:\n{choices_lines}",
        "Decide which category the passage belongs to ({choices}).",
    )

    def __init__(
        self,
        labels: Sequence[str] | Mapping[str, str],
        fields: Mapping[str, str] | None = None,
        phrasings: Sequence[str] | None = None,
        seed: int = 0,
        keep_meta: bool = False,
    ) -> None:
        self.labels = labels
        self.fields = fields
        self.phrasings = phrasings
        self.seed = seed
        self.keep_meta = keep_meta

    def _label_map(self) -> dict[str, str]:
        if isinstance(self.labels, Mapping):
            mapping = {str(k): str(v) for k, v in self.labels.items()}
        else:
            mapping = {str(v): str(v) for v in self.labels}
        if len(mapping) < 2:
            raise ValueError(f"{self.name}: labels must name at least two classes, got {self.labels!r}")
        return mapping

    def build(self, values: dict[str, str], phrasing: str) -> tuple[str, str, str]:
        mapping = self._label_map()
        names = list(dict.fromkeys(mapping.values()))
        label = values["label"]
        if label in mapping:
            name = mapping[label]
        elif label in names:
            name = label
        else:
            raise TemplateFieldError(f"label {label!r} is not in the label set {sorted(mapping)}")
        text = _fill(phrasing, choices=", ".join(names), choices_lines="\n".join(f"- {n}" for n in names))
        return text, values["text"], name


class Custom(TaskTemplate):
    """A user template: format strings (``"{question}"``) or Jinja2 (``"{{ question }}"``).

    ``instruction`` is one template or a list of phrasings (one drawn per record, seeded);
    ``input`` and ``output`` are templates, or ``None`` to leave the column as it is.
    Template variables are field references (columns or meta keys, see module docs);
    ``fields`` maps a variable to another reference. ``engine`` is ``"format"``, ``"jinja"``
    or ``"auto"`` (Jinja when a template contains ``{{`` or ``{%``).

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "", "word": "chat", "output": "cat"}])
        >>> ds.pipe(Custom('What does "{word}" mean in English?'))[0]["instruction"]
        'What does "chat" mean in English?'
    """

    name = "template.custom"

    def __init__(
        self,
        instruction: str | Sequence[str],
        input: str | None = None,
        output: str | None = None,
        fields: Mapping[str, str] | None = None,
        engine: str = "auto",
        seed: int = 0,
        keep_meta: bool = False,
    ) -> None:
        self.instruction = instruction
        self.input = input
        self.output = output
        self.fields = fields
        self.engine = engine
        self.seed = seed
        self.keep_meta = keep_meta

    # phrasings are the instruction templates; fields are the variables the templates use
    def _phrasings(self) -> list[str]:
        items = [self.instruction] if isinstance(self.instruction, str) else list(self.instruction)
        if not items or not all(isinstance(p, str) for p in items):
            raise ValueError(f"{self.name}: instruction must be a template or a non-empty list of them")
        return items

    def _use_jinja(self, text: str) -> bool:
        if self.engine not in ("auto", "format", "jinja"):
            raise ValueError(f"{self.name}: engine must be 'auto', 'format' or 'jinja', got {self.engine!r}")
        return self.engine == "jinja" or (self.engine == "auto" and ("{{" in text or "{%" in text))

    def _variables(self, text: str) -> set[str]:
        if self._use_jinja(text):
            from jinja2 import meta

            return set(meta.find_undeclared_variables(_jinja_env().parse(text)))
        names = set()
        for _, field, _, _ in string.Formatter().parse(text):
            if field is not None:
                if not field or field.isdigit():
                    raise ValueError(f"{self.name}: template {text!r} has a positional field; name it")
                names.add(field.split(".")[0].split("[")[0])
        return names

    def _compiled(self) -> list[tuple[str, Any]]:
        out = []
        for text in [*self._phrasings(), self.input, self.output]:
            if text is None:
                out.append(("none", None))
            elif self._use_jinja(text):
                out.append(("jinja", _jinja_env().from_string(text)))
            else:
                out.append(("format", text))
        return out

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not hasattr(self, "_seen"):
            self._seen = set()
        texts = [*self._phrasings(), *(t for t in (self.input, self.output) if t is not None)]
        variables = set().union(*(self._variables(t) for t in texts))
        mapping = dict(self.fields or {})
        unused = set(mapping) - variables
        if unused:
            raise ValueError(f"{self.name}: fields {sorted(unused)} are not used by any template")
        refs = {v: mapping.get(v, v) for v in sorted(variables)}
        return self._run_custom(frame, refs, self._compiled())

    def _render(self, kind: str, template: Any, values: dict[str, str]) -> str:
        if kind == "jinja":
            return template.render(**values)
        return template.format(**values)

    def _run_custom(
        self, frame: pl.DataFrame, role_refs: Mapping[str, str], compiled: list[tuple[str, Any]]
    ) -> pl.DataFrame:
        n = len(compiled) - 2
        rows, metas, used_meta = self._values(frame, role_refs, set(role_refs))
        instr, inputs, outputs = [], [], []
        old_input, old_output = frame["input"].to_list(), frame["output"].to_list()
        for i, (rid, values) in enumerate(zip(frame["id"].to_list(), rows, strict=True)):
            kind, tpl = compiled[_choose(self.seed, rid, n)]
            instr.append(self._render(kind, tpl, values))
            k_in, t_in = compiled[n]
            inputs.append(old_input[i] if k_in == "none" else self._render(k_in, t_in, values))
            k_out, t_out = compiled[n + 1]
            outputs.append(old_output[i] if k_out == "none" else self._render(k_out, t_out, values))
        # a column the templates read stays; only consumed meta keys are dropped
        if self.keep_meta or not used_meta:
            meta = frame["meta"]
        else:
            meta = pl.Series("meta", [_dump_meta(m, used_meta) for m in metas], dtype=pl.String)
        self._seen.update(xxhash.xxh64_intdigest(t.encode()) for t in instr)
        return frame.with_columns(
            pl.Series("instruction", instr, dtype=pl.String),
            pl.Series("input", inputs, dtype=pl.String),
            pl.Series("output", outputs, dtype=pl.String),
            pl.lit(None, dtype=frame.schema["messages"]).alias("messages"),
            meta,
        )


def _jinja_env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


__all__ = [
    "Classify",
    "ClosedQA",
    "Custom",
    "ExtractiveQA",
    "LANGUAGE_NAMES",
    "Summarize",
    "TaskTemplate",
    "TemplateFieldError",
    "Translate",
    "language_name",
]
