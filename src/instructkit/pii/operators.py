"""What happens to a detected value: replace, mask, hash or redact it (drop is the transform's).

Every operator is a function ``(entity, value) -> str``; :func:`rewrite` applies one to the
spans of a text. The hash is an HMAC keyed with the user's salt, so equal values map to equal
tokens across records, files and runs, and nobody without the salt can test a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence

from instructkit.pii.recognizers import Span

#: Accepted ``operator`` names.
OPERATORS: tuple[str, ...] = ("replace", "mask", "hash", "redact", "drop")

Render = Callable[[str, str], str]

_STRUCTURED = {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE"}


def renderer(
    operator: str,
    placeholders: Mapping[str, str] | None = None,
    mask_char: str = "*",
    salt: str | None = None,
) -> Render:
    """The function that turns ``(entity, value)`` into the text written in its place.

    ``drop`` renders like ``replace``: a dropped record's texts are scrubbed before they are
    copied to the removed log.

    Example:
        >>> renderer("replace")("EMAIL_ADDRESS", "jo@corp.org")
        '<EMAIL_ADDRESS>'
        >>> renderer("mask")("US_SSN", "123-45-6789")
        '***-**-****'
        >>> renderer("hash", salt="s3cret")("EMAIL_ADDRESS", "Jo@Corp.org")
        '<EMAIL_ADDRESS:7aa161f1f8a4>'
    """
    if operator not in OPERATORS:
        raise ValueError(f"unknown operator {operator!r}; choose one of {list(OPERATORS)}")
    if operator in ("replace", "drop"):
        table = dict(placeholders or {})
        return lambda entity, value: table.get(entity, f"<{entity}>")
    if operator == "mask":
        if len(mask_char) != 1:
            raise ValueError(f"mask_char must be one character, got {mask_char!r}")
        # keep separators so the shape stays readable: "***-**-****", "****@****.***"
        return lambda entity, value: re.sub(r"\w", mask_char, value)
    if operator == "hash":
        if not salt:
            raise ValueError(
                "operator='hash' needs a salt (salt='...'): unsalted hashes of phone numbers "
                "or SSNs can be reversed by trying every value"
            )
        key = salt.encode()
        return lambda entity, value: f"<{entity}:{token(entity, value, key)}>"
    return lambda entity, value: ""  # redact


def token(entity: str, value: str, key: bytes) -> str:
    """12 hex characters of HMAC-SHA256 over the normalised value (case, and separators in
    numbers, do not matter: "(604) 457-4895" and "604.457.4895" share a token).

    Example:
        >>> token("URL", "https://A.org", b"k") == token("URL", "https://a.org", b"k")
        True
    """
    norm = value.casefold().strip()
    if entity in _STRUCTURED:
        norm = re.sub(r"[\W_]", "", norm)
    return hmac.new(key, f"{entity}\x00{norm}".encode(), hashlib.sha256).hexdigest()[:12]


def rewrite(text: str, spans: Sequence[Span], render: Render) -> str:
    """``text`` with each span replaced by ``render(entity, value)`` (spans sorted, disjoint).

    Example:
        >>> rewrite("mail jo@corp.org now", [Span(5, 16, "EMAIL_ADDRESS", 1.0)],
        ...         renderer("replace"))
        'mail <EMAIL_ADDRESS> now'
    """
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos:s.start])
        parts.append(render(s.entity, text[s.start:s.end]))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)
