"""``ik.templates``: turn NLP data into instructions, and render records in prompt formats.

Task templates (:mod:`instructkit.templates.tasks`) are :class:`~instructkit.Map` steps that
write ``instruction``/``input``/``output`` from other fields; prompt formats
(:mod:`instructkit.templates.formats`) render records to training text.

Example:
    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([{"question": "What is 2+2?", "answer": "4"}])
    >>> ik.templates.get_format("llama2").render(ds[0])
    '<s>[INST] What is 2+2? [/INST] 4 </s>'
"""

from instructkit.templates.formats import (
    FORMAT_NAMES,
    FormatError,
    PromptFormat,
    get_format,
    render_column,
    render_segments,
)
from instructkit.templates.tasks import (
    Classify,
    ClosedQA,
    Custom,
    ExtractiveQA,
    Summarize,
    TaskTemplate,
    TemplateFieldError,
    Translate,
)

# lowercase aliases, as ``ik.normalize``: ``ik.templates.qa(fields=...)``
qa = ExtractiveQA
closed_qa = ClosedQA
summarize = Summarize
translate = Translate
classify = Classify
custom = Custom

__all__ = [
    "Classify",
    "ClosedQA",
    "Custom",
    "ExtractiveQA",
    "Summarize",
    "TaskTemplate",
    "TemplateFieldError",
    "Translate",
    "classify",
    "closed_qa",
    "custom",
    "qa",
    "summarize",
    "translate",
    "FORMAT_NAMES",
    "FormatError",
    "PromptFormat",
    "get_format",
    "render_column",
    "render_segments",
]
