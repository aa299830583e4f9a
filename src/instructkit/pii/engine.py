"""The presidio analyzer, set up offline: no spaCy model download, no network, no warnings.

Presidio's pattern recognizers need no NLP at all, so by default the analyzer runs on
presidio's ``no_op`` NLP engine. Naming an installed spaCy pipeline (``ner_model=``) adds the
NER entities (``PERSON``, ``LOCATION``); a pipeline that is not installed is an error, never a
download. Presidio's e-mail recognizer validates domains with ``tldextract``, whose default
extractor fetches the public suffix list from the network first: ours reads the snapshot that
ships with tldextract and never makes a request.

Engines are cached per process (building one takes about a second), keyed by their settings.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructkit.pii.recognizers import NER_ENTITIES, build_recognizers

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine


def import_presidio() -> None:
    """Import ``presidio_analyzer`` without its optional Hugging Face engine.

    presidio imports ``transformers`` (and with it torch) at import time when it is installed,
    only to offer a transformers NLP engine; that is most of a 10-second import, paid again by
    every worker process. We never use that engine, so ``transformers`` is hidden while
    presidio loads (presidio catches the ImportError) and restored right after, so the rest of
    the process imports it as usual.
    """
    if "presidio_analyzer" in sys.modules or "transformers" in sys.modules:
        return
    sys.modules["transformers"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import presidio_analyzer  # noqa: F401
    finally:
        if sys.modules.get("transformers", 0) is None:
            del sys.modules["transformers"]


@functools.lru_cache(maxsize=1)
def offline_tldextract() -> Any:
    """A ``tldextract.TLDExtract`` that uses the bundled suffix-list snapshot only.

    No suffix-list URL means no HTTP request; no cache directory means nothing is written to
    disk and no "cannot write cache" warning.

    Example:
        >>> offline_tldextract()("mail.example.co.uk").suffix
        'co.uk'
    """
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def check_spacy_pipeline(name: str) -> None:
    """Raise a clear error unless ``name`` is an installed spaCy pipeline (package or path).

    Presidio's spaCy engine downloads a missing model; we refuse instead, since instructkit
    never downloads anything at run time.

    Example:
        >>> check_spacy_pipeline("no_such_pipeline_xyz")
        Traceback (most recent call last):
        ...
        ValueError: ner_model='no_such_pipeline_xyz' is not an installed spaCy pipeline ...
    """
    import spacy.util

    if spacy.util.is_package(name) or Path(name).is_dir():
        return
    raise ValueError(
        f"ner_model={name!r} is not an installed spaCy pipeline (no package or directory by "
        f"that name); instructkit does not download models. Install one first "
        f"(`python -m spacy download en_core_web_sm`), pass the path of a saved pipeline, "
        f"or use ner_model=None for the pattern recognizers only"
    )


@functools.lru_cache(maxsize=8)
def analyzer(
    language: str, entities: tuple[str, ...], ner_model: str | None
) -> AnalyzerEngine:
    """A cached presidio ``AnalyzerEngine`` for ``entities``, offline.

    Example:
        >>> engine = analyzer("en", ("EMAIL_ADDRESS",), None)
        >>> [r.entity_type for r in engine.analyze("mail jo@corp.org", language="en")]
        ['EMAIL_ADDRESS']
    """
    import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    registry = RecognizerRegistry(supported_languages=[language])
    for recognizer in build_recognizers(entities, language, offline_tldextract()):
        registry.add_recognizer(recognizer)
    if ner_model is None:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        nlp_engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "no_op"}])
    else:
        check_spacy_pipeline(ner_model)
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        nlp_engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": ner_model}])
        wanted = [e for e in entities if e in NER_ENTITIES]
        registry.add_recognizer(
            SpacyRecognizer(supported_language=language, supported_entities=wanted)
        )
    nlp_engine.load()
    return AnalyzerEngine(
        registry=registry, nlp_engine=nlp_engine, supported_languages=[language]
    )
