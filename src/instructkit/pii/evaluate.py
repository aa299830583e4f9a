"""Measure detection quality: plant known PII into real texts, score precision and recall.

``labelled_set`` inserts seeded fake values (Faker plus small generators for values that
must validate: phone numbers ``phonenumbers`` accepts, URLs under common TLDs) into texts at
word boundaries and returns where each one went. ``score`` runs a detector over the result
and reports, per entity type, precision and recall against those labels. Anything the
detector finds that was not planted counts as a false positive, real PII in the base texts
included, so precision is a lower bound.

    >>> from instructkit.pii.evaluate import labelled_set, score
    >>> from instructkit.pii.detector import Detector
    >>> texts, labels = labelled_set(["Please summarise this note."] * 40, seed=1)
    >>> table = score(Detector(), texts, labels)
    >>> bool((table["recall"] > 0.9).all())
    True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple

import polars as pl

from instructkit.pii.detector import Detector
from instructkit.pii.recognizers import DEFAULT_ALLOW, PATTERN_ENTITIES, Allow


class Label(NamedTuple):
    """A planted value: which text, where, and its entity type."""

    text: int
    start: int
    end: int
    entity: str


_PHRASES: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("email me at {}", "my address is {}", "cc: {}", "({})", "contact {} for access"),
    "PHONE_NUMBER": ("call me at {}", "phone: {}", "my number is {}", "tel. {}", "text {} later"),
    "CREDIT_CARD": ("card number {}", "charge {} please", "my visa is {}", "cc {}"),
    "IP_ADDRESS": ("the server is at {}", "ssh into {}", "requests from {} failed", "host {}"),
    "US_SSN": ("my SSN is {}", "ssn: {}", "social security number {}", "SSN {} on file"),
    "IBAN_CODE": ("IBAN {}", "transfer to {}", "account {} please", "pay into {}"),
    "URL": ("see {}", "my blog is {}", "visit {} today", "link: {}"),
}
_TLDS = ("com", "org", "net", "io", "co.uk", "de", "edu")
_PATHS = ("", "/", "/about", "/blog/2021/05/notes.html", "/index.php?id=42", "/u/profile")


def labelled_set(
    texts: Sequence[str],
    seed: int = 0,
    rate: float = 0.6,
    entities: Sequence[str] = PATTERN_ENTITIES,
) -> tuple[list[str], list[Label]]:
    """Plant one or two fake values (with a short phrase) in a ``rate`` share of ``texts``.

    Values an :class:`~instructkit.pii.recognizers.Allow` list would keep by default
    (``example.com`` mailboxes, ``555-01xx`` numbers) are never planted.
    """
    from faker import Faker

    rng = random.Random(seed)
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL"])
    fake.seed_instance(seed)
    allowed = Allow(DEFAULT_ALLOW)
    out: list[str] = []
    labels: list[Label] = []
    for i, text in enumerate(texts):
        if rng.random() >= rate:
            out.append(text)
            continue
        for _ in range(rng.choice((1, 1, 2))):
            entity = rng.choice(list(entities))
            value = _value(entity, fake, rng)
            while allowed(entity, value):
                value = _value(entity, fake, rng)
            phrase = rng.choice(_PHRASES[entity])
            text, at, added = _insert(text, phrase, value, rng)
            # labels already planted in this text after the insertion point move right
            labels = [
                lb._replace(start=lb.start + added, end=lb.end + added)
                if lb.text == i and lb.start >= at else lb
                for lb in labels
            ]
            start = at + 1 + phrase.index("{}")
            labels.append(Label(i, start, start + len(value), entity))
        out.append(text)
    return out, labels


def _insert(text: str, phrase: str, value: str, rng: random.Random) -> tuple[str, int, int]:
    """Insert ``" phrase "`` after a random sentence end or line break (or at the end);
    return the new text, the insertion point and the inserted length."""
    cuts = [j + 1 for j, c in enumerate(text) if c in ".\n" and (j + 1 == len(text) or text[j + 1] in " \n")]
    at = rng.choice(cuts) if cuts else len(text)
    added = " " + phrase.format(value) + " "
    return text[:at] + added + text[at:], at, len(added)


def _value(entity: str, fake: object, rng: random.Random) -> str:
    f = fake  # Faker proxy: attributes resolve per call
    if entity == "EMAIL_ADDRESS":
        return rng.choice((f.email, f.free_email, f.company_email))()  # type: ignore[attr-defined]
    if entity == "PHONE_NUMBER":
        return _phone(rng)
    if entity == "CREDIT_CARD":
        number = f.credit_card_number(card_type=rng.choice(("visa", "mastercard", "amex", "discover")))  # type: ignore[attr-defined]
        if rng.random() < 0.5 and len(number) == 16:
            sep = rng.choice((" ", "-"))
            number = sep.join(number[k:k + 4] for k in range(0, 16, 4))
        return number
    if entity == "IP_ADDRESS":
        return f.ipv4_public() if rng.random() < 0.75 else f.ipv6()  # type: ignore[attr-defined]
    if entity == "US_SSN":
        return f["en_US"].ssn()  # type: ignore[index]
    if entity == "IBAN_CODE":
        iban = f.iban()  # type: ignore[attr-defined]
        if rng.random() < 0.5:
            iban = " ".join(iban[k:k + 4] for k in range(0, len(iban), 4))
        return iban
    if entity == "URL":
        host = f"{f.domain_word()}.{rng.choice(_TLDS)}"  # type: ignore[attr-defined]
        scheme = rng.choice(("https://", "http://", "https://www.", "www."))
        return scheme + host + rng.choice(_PATHS)
    raise ValueError(f"no generator for entity type {entity!r}")


def _phone(rng: random.Random) -> str:
    """A phone number ``phonenumbers`` validates, in a common national or international form."""
    import phonenumbers

    while True:
        region = rng.choice(("US", "US", "GB", "DE", "FR", "IN"))
        example = phonenumbers.example_number_for_type(region, rng.choice((0, 1)))
        national = str(example.national_number)
        # keep the first digits (area / mobile prefix), draw the rest
        keep = max(3, len(national) - 6)
        digits = national[:keep] + "".join(rng.choice("0123456789") for _ in national[keep:])
        number = phonenumbers.parse(digits, region)
        if not phonenumbers.is_valid_number(number) or "55501" in digits:
            continue
        fmt = rng.choice((phonenumbers.PhoneNumberFormat.NATIONAL,
                          phonenumbers.PhoneNumberFormat.INTERNATIONAL))
        text = phonenumbers.format_number(number, fmt)
        if region == "US" and rng.random() < 0.4:
            text = f"{digits[:3]}{'-.'[rng.random() < 0.3]}{digits[3:6]}-{digits[6:]}"
        return text


def score(
    detector: Detector, texts: Sequence[str], labels: Sequence[Label], n_jobs: int = 1
) -> pl.DataFrame:
    """Per entity type: planted, found, true positives, precision, recall.

    A detection is a true positive when it has the planted type and overlaps the planted
    value; each planted value is counted once.
    """
    found = detector.find(list(texts), n_jobs=n_jobs)
    by_text: dict[int, list[Label]] = {}
    for lb in labels:
        by_text.setdefault(lb.text, []).append(lb)
    rows = []
    for entity in detector.entities:
        planted = [lb for lb in labels if lb.entity == entity]
        hits: set[Label] = set()
        n_found = tp = 0
        for i, spans in enumerate(found):
            for s in spans:
                if s.entity != entity:
                    continue
                n_found += 1
                match = [lb for lb in by_text.get(i, []) if lb.entity == entity
                         and s.start < lb.end and lb.start < s.end]
                if match:
                    tp += 1
                    hits.update(match)
        rows.append({
            "entity": entity, "planted": len(planted), "found": n_found, "true_positives": tp,
            "precision": tp / n_found if n_found else 1.0,
            "recall": len(hits) / len(planted) if planted else 1.0,
        })
    return pl.DataFrame(rows)
