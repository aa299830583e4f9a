"""Which recognizers run, the cheap pre-filter in front of them, and the code-aware rules after.

Instruction data is full of code: ``numpy==1.21.2.1``, ``0x7fffffff``, ``self.name``,
``model.fit``. Presidio's patterns read those as IP addresses, phone numbers and URLs. The
rules here reject a detection when its surroundings say it is code, and the ``allow`` list
keeps documentation values (``example.com``, ``127.0.0.1``, fictitious ``555-01xx`` numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

#: Entities found by presidio's pattern recognizers and scanned for by default.
PATTERN_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "US_SSN", "IBAN_CODE", "URL",
)
#: Pattern entities scanned for only when asked (they fire on much harmless text).
OPTIONAL_ENTITIES: tuple[str, ...] = ("CRYPTO", "DATE_TIME")
#: Entities that need an NER model (``ner_model=`` an installed spaCy pipeline).
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION")
ALL_ENTITIES: tuple[str, ...] = PATTERN_ENTITIES + OPTIONAL_ENTITIES + NER_ENTITIES

#: Values kept by default: documentation domains and addresses, fictitious US numbers.
DEFAULT_ALLOW: tuple[str, ...] = (
    "example.com", "example.org", "example.net", "localhost", "127.0.0.1", "0.0.0.0", "::1",
    "555-01xx",
)

#: When two detections cover the same characters, the more specific type wins.
_PRIORITY = {e: i for i, e in enumerate(
    ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS", "IP_ADDRESS", "CRYPTO",
     "PHONE_NUMBER", "URL", "DATE_TIME", "PERSON", "LOCATION")
)}

# A text can hold an entity only if it matches that entity's trigger. Each trigger is a
# necessary condition of presidio's own patterns (checked by tests on real data: no text the
# pre-filter skips yields a detection), written in the syntax that both Python's ``re`` and
# polars' Rust regex accept, so the pre-filter runs vectorised in polars.
#: phonenumbers validates numbers of 4 digits and more (German area-code numbers such as
#: "1640"), with at most 4 punctuation characters between digits and never a line break.
_DIGITS4 = r"\d(?:[^\d\n]{0,4}\d){3}"
TRIGGERS: dict[str, str] = {
    "EMAIL_ADDRESS": r"@",
    "PHONE_NUMBER": _DIGITS4,
    "CREDIT_CARD": r"\d{4}[- ]?\d{3}",
    "US_SSN": r"\d{3}[- .]?\d{2}[- .]?\d{4}",
    "IP_ADDRESS": r"\d\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:|::",
    "IBAN_CODE": r"[A-Za-z]{2}\d{2}",
    "URL": r"[A-Za-z0-9.-]\.[A-Za-z]{2}",
    "CRYPTO": r"[13][a-km-zA-HJ-NP-Z1-9]{25}|bc1",
    "DATE_TIME": r"\d",
}


class Span(NamedTuple):
    """One detection: character offsets in its text, the entity type and presidio's score."""

    start: int
    end: int
    entity: str
    score: float


def trigger(entity: str) -> str | None:
    """The regex a text must match to hold ``entity``; None when any text may (NER types).

    Example:
        >>> trigger("EMAIL_ADDRESS")
        '@'
    """
    return TRIGGERS.get(entity)


def build_recognizers(entities: Iterable[str], language: str, tld_extract: Any) -> list[Any]:
    """presidio pattern recognizers for ``entities``, e-mail validated offline.

    Example:
        >>> from instructkit.pii.engine import offline_tldextract
        >>> [r.name for r in build_recognizers(["URL"], "en", offline_tldextract())]
        ['UrlRecognizer']
    """
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's e-mail recognizer with the offline suffix list (no network)."""

        def validate_result(self, pattern_text: str) -> bool:
            # presidio hands tldextract the whole match, so "cdn.net/popper.js@1.16.1" passes
            # on "cdn.net"; the domain is what follows the "@"
            local, _, domain = pattern_text.rpartition("@")
            return "/" not in local and tld_extract(domain).fqdn != ""

    class PatternPhoneRecognizer(PhoneRecognizer):
        """presidio's phone recognizer scored for an engine without NLP.

        presidio scores phone numbers 0.4 and relies on context words ("phone", "call")
        found by the NLP engine to lift them over 0.5; with the ``no_op`` engine nothing
        lifts them, so the default threshold would drop every number. A number that
        ``phonenumbers`` validates for a region is strong evidence on its own.
        """

        SCORE = 0.6

    # presidio's card pattern predates Mastercard's 2221-2720 range (issued since 2017);
    # the Luhn check of the recognizer still validates every match
    MASTERCARD_2_SERIES = Pattern(
        "Mastercard 2-series (weak)",
        r"\b(2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720))[- ]?(\d{4})[- ]?(\d{4})[- ]?(\d{4})\b",
        0.3,
    )

    makers = {
        "EMAIL_ADDRESS": lambda: OfflineEmailRecognizer(
            supported_language=language, name="EmailRecognizer"),
        "PHONE_NUMBER": lambda: PatternPhoneRecognizer(
            supported_language=language, name="PhoneRecognizer"),
        "CREDIT_CARD": lambda: CreditCardRecognizer(
            supported_language=language,
            patterns=[*CreditCardRecognizer.PATTERNS, MASTERCARD_2_SERIES]),
        "IP_ADDRESS": lambda: IpRecognizer(supported_language=language),
        "US_SSN": lambda: UsSsnRecognizer(supported_language=language),
        "IBAN_CODE": lambda: IbanRecognizer(supported_language=language),
        "URL": lambda: UrlRecognizer(supported_language=language),
        "CRYPTO": lambda: CryptoRecognizer(supported_language=language),
        "DATE_TIME": lambda: DateRecognizer(supported_language=language),
    }
    return [makers[e]() for e in entities if e in makers]


# --- code-aware rules ---------------------------------------------------------------------

# what comes right before a version number: "version 1.2.3.4", "v. 1.2", "numpy==1.2.3.4"
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:version|versions|ver|release|build|rev|revision|python|node|java|go|ruby|php|"
    r"perl|rust|gcc|clang|cuda|jdk|sdk|api|update|patch|firmware|kernel)\.?\s*[:=]?\s*[\"'(]?"
    r"|__version__\s*=\s*[\"']|[=<>~!]=\s*|[=<>]\s*[\"']?|\bv\.?)$",
    re.IGNORECASE,
)
# a number that is part of a longer dotted or hex token: "1.2.3.4.5", "0x1f2e...", "a.1.2.3.4"
_TOKEN_BEFORE = re.compile(r"(?:[0-9A-Za-z_]\.|0[xX][0-9A-Fa-f]*|[0-9A-Za-z_]|\.)$")
_TOKEN_AFTER = re.compile(r"^(?:\.[0-9A-Za-z_]|[0-9A-Za-z_])")
_HEX = re.compile(r"^(?:0[xX])?[0-9A-Fa-f]+$")
# schemeless URLs are accepted only under the TLDs that mark real web addresses; code is
# full of "file.py", "self.name", "model.fit", "README.md", "run.sh" (all valid TLDs).
_WEB_TLDS = frozenset(
    "com org net edu gov mil int io co uk us ca de fr es it nl be ch at se no dk fi pl ru cn "
    "jp kr au nz br mx ar eu info biz ly tv me ai app dev".split()
)
_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\d{0,3}\.)", re.IGNORECASE)


def trim(text: str, span: Span) -> Span:
    """Drop sentence punctuation a URL pattern swallowed: "see https://a.org/x." ends at "x".

    Example:
        >>> trim("see https://a.org/x.", Span(4, 20, "URL", 0.6)).end
        19
    """
    if span.entity != "URL":
        return span
    end = span.end
    while end > span.start + 1 and text[end - 1] in ".,;:!?'\"":
        end -= 1
    return span._replace(end=end)


def is_code(text: str, span: Span) -> bool:
    """True when a detection is a version, hex literal or dotted identifier, not personal data.

    Example:
        >>> t = "pip install numpy==1.2.3.4"
        >>> is_code(t, Span(19, 26, "IP_ADDRESS", 0.6))
        True
        >>> t = "my server is at 8.8.4.4"
        >>> is_code(t, Span(16, 23, "IP_ADDRESS", 0.6))
        False
    """
    value = text[span.start:span.end]
    before = text[max(0, span.start - 40):span.start]
    after = text[span.end:span.end + 2]
    if span.entity == "URL":
        return _is_code_url(value, before, after)
    if span.entity not in ("IP_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD"):
        return False
    if _TOKEN_BEFORE.search(before) or _TOKEN_AFTER.match(after):
        return True
    if span.entity == "PHONE_NUMBER" and _is_code_number(value, before):
        return True
    # dotted numbers after a version cue are versions, not addresses:
    # "version 1.2.3.4" is a release, "IP 1.2.3.4" is an address
    return bool(_VERSION_BEFORE.search(before)) and "." in value


def _is_code_number(value: str, before: str) -> bool:
    if before.endswith(("-", "#", "$", "\\")):  # -2147483648, #333333 (a colour), $1234567
        return True
    if _DECIMAL.match(value) or _ARITHMETIC.search(value) or _DIGIT_LIST.search(value):
        return True
    # 9999999999 and 1234567890 are what code and forms use as dummy numbers
    digits = re.sub(r"\D", "", value)
    return len(set(digits)) == 1 or digits in "01234567890" or digits in "09876543210"


def _is_code_url(value: str, before: str, after: str) -> bool:
    if _SCHEME.match(value):
        return False
    if after[:1].isalnum() or after[:1] == "_":  # "array.app" cut out of "array.append"
        return True
    if after.startswith("(") or _DOTTED_AFTER.match(after):  # obj.info(), java.net.URL
        return True
    if _IMPORT_BEFORE.search(before):
        return True
    host = value.split("/", 1)[0].rstrip(".")
    labels = host.split(".")
    if any(not label for label in labels):
        return True
    # prose writes domains in lower case under a web TLD; "System.in", "ASP.NET",
    # "file.py", "README.md", "self.name" are code
    if labels[-1] not in _WEB_TLDS:
        return True
    return len(labels[0]) == 1 or labels[0] in _CODE_HEADS


_DECIMAL = re.compile(r"^[0-9]+\.[0-9]+$")  # 164.02
_ARITHMETIC = re.compile(r"[0-9)] [-+*/%] [0-9(]")  # (99999 - 10000
_DIGIT_LIST = re.compile(r"(?:^|\s)[0-9] [0-9] [0-9](?:\s|$)")  # 1 2 3 4 5 6 7 8 9 10
_DOTTED_AFTER = re.compile(r"^\.[A-Za-z_]")
_IMPORT_BEFORE = re.compile(r"\b(?:import|from|package|using|require|include)\s+[\w.]*$")
_CODE_HEADS = frozenset("self this cls os np pd df sys re math obj".split())


# --- allow list ---------------------------------------------------------------------------


class Allow:
    """Values never reported. Domains also cover their subdomains, mailboxes and URLs; an
    entry with ``x`` for digits (``555-01xx``) is a phone pattern matched on the last digits.

    Example:
        >>> a = Allow(["example.com", "555-01xx"])
        >>> a("EMAIL_ADDRESS", "jane@mail.example.com"), a("PHONE_NUMBER", "(212) 555-0123")
        (True, True)
        >>> a("PHONE_NUMBER", "(212) 555-2368")
        False
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.domains: list[str] = []
        digit_patterns: list[str] = []
        for entry in entries:
            e = entry.strip().lower()
            if not e:
                continue
            if re.fullmatch(r"[0-9x() .+-]+", e) and "x" in e:
                digit_patterns.append(re.sub(r"[^0-9x]", "", e).replace("x", "[0-9]"))
            else:
                self.exact.add(e)
                if re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", e) and not e[-1].isdigit():
                    self.domains.append(e)
        self.phone = re.compile(f"(?:{'|'.join(digit_patterns)})$") if digit_patterns else None

    def __call__(self, entity: str, value: str) -> bool:
        v = value.strip().lower()
        if v in self.exact:
            return True
        if entity in ("EMAIL_ADDRESS", "URL") and self.domains:
            host = v.rsplit("@", 1)[-1]
            host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host).split("/", 1)[0].split(":", 1)[0]
            host = host.removeprefix("www.")
            if any(host == d or host.endswith("." + d) for d in self.domains):
                return True
        if entity == "PHONE_NUMBER" and self.phone is not None:
            return bool(self.phone.search(re.sub(r"[^0-9]", "", v)))
        return False


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep non-overlapping spans: longer first, then the more specific type, then higher score.

    "036-99-8713" is both a valid phone number somewhere and an SSN; the SSN reading wins.

    Example:
        >>> resolve_overlaps([Span(0, 14, "EMAIL_ADDRESS", 1.0), Span(5, 14, "URL", 0.5)])
        [Span(start=0, end=14, entity='EMAIL_ADDRESS', score=1.0)]
    """
    ordered = sorted(
        spans, key=lambda s: (-(s.end - s.start), _PRIORITY.get(s.entity, 99), -s.score, s.start)
    )
    kept: list[Span] = []
    for s in ordered:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept)
