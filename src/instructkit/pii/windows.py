"""Run a recognizer only on the short windows of a text where its entity can be, exactly.

Most of presidio's time goes to scanning whole texts for phone numbers (``phonenumbers``
walks each text once per region, 8 regions) and URLs (a regex with 1,500 TLD alternatives).
Yet a phone number is a few digits and some punctuation, and a URL never holds whitespace.

For each windowed entity there is a set of **cut characters** that no detection of that
entity can contain. A text splits at cut characters into runs; every detection lies inside
one run. Only runs that match the entity's **trigger** (a necessary condition: four digits
for a phone number, a dot before a letter for a URL) can hold a detection. A window is such a
run plus the cut character on each side, so the one character of context a recognizer checks
next to a match (``\\b``, a look-behind, phonenumbers' "no letter right before a number")
reads the same as in the full text. Windows of many texts are joined by a line break, itself
a cut character, analysed in one presidio call, and the spans mapped back.

Why the spans are exactly those of whole-text analysis:

- presidio's regexes (``re.finditer``) and phonenumbers' matcher (``_PATTERN.search`` from
  where the last candidate ended) scan left to right; a match cannot start on or cross a
  cut character, so the scan of a window finds the same matches at the same places;
- the checks after a match look at most one character beyond it, or, for phonenumbers'
  time-stamp rule (``":[0-5]\\d"`` after the candidate), at characters that cannot follow
  a cut character in a match;
- presidio's duplicate removal works per entity type on overlapping spans, and spans in
  different runs never overlap.

Windowing applies without an NER model only: with spaCy loaded, presidio lifts scores with
context words around a match, which a window does not hold.

    >>> from instructkit.pii.windows import run_pattern, windows
    >>> text = "call me at 212-734-2368 tonight"
    >>> [text[s:e] for s, e in windows(text, run_pattern("PHONE_NUMBER"))]
    ['me at 212-734-2368 tonig']
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

#: Joins windows in one presidio call; a cut character of every windowed entity.
SEPARATOR = "\n"
#: Characters per presidio call on windows. phonenumbers gives up on a text after 65,535
#: failed candidates, each at least one character long, so calls below that size never hit
#: the limit; texts longer than :data:`MAX_TEXT` are analysed whole to keep its effect.
PACK_CHARS = 20_000
MAX_TEXT = 65_535

# phonenumbers' candidate pattern holds digits, its punctuation (-x‐-―−ー－-／ .()[]/~ and
# the like), plus signs, and extension marks ("ext", "extension", "anexo", "int", "x", "#",
# ";ext=", ":", ".", ",", tab), matched ignoring case. Every ASCII letter outside those words
# (a e i n o s t x) and these symbols are therefore never part of a phone number.
_PHONE_CUTS = "\n\r\"'!?{}<>*&|_@$%^`bcdfghjklmpqruvwyzBCDFGHJKLMPQRUVWYZ"


class Rule(NamedTuple):
    """Where an entity can be: ``cuts`` (a regex character-class body) never occur inside a
    detection; ``trigger`` matches inside every run of non-cut characters holding one."""

    cuts: str
    trigger: str


def min_phone_digits() -> int:
    """The fewest digits of any number ``phonenumbers`` validates, in any region.

    A valid number's national significant number has one of its region's possible lengths
    (checked first by ``is_valid_number``), and all of its digits are written in the text.

    Example:
        >>> min_phone_digits()
        4
    """
    import phonenumbers
    from phonenumbers import PhoneMetadata

    lengths = [
        min(PhoneMetadata.metadata_for_region(r).general_desc.possible_length)
        for r in phonenumbers.SUPPORTED_REGIONS
    ] + [
        min(PhoneMetadata.metadata_for_nongeo_region(c).general_desc.possible_length)
        for c in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    return min(lengths)


@functools.lru_cache(maxsize=1)
def rules() -> dict[str, Rule]:
    """The windowed entities and their rules.

    Example:
        >>> sorted(rules())
        ['IP_ADDRESS', 'PHONE_NUMBER', 'URL']
    """
    phone_cuts = re.escape(_PHONE_CUTS)
    digits = min_phone_digits()
    return {
        "PHONE_NUMBER": Rule(phone_cuts, rf"\d(?:[^{phone_cuts}\d]*+\d){{{digits - 1}}}"),
        # a URL is scheme, host, TLD and a path without whitespace; the TLD follows a dot
        "URL": Rule(r"\s", r"\.\w"),
        # IPv4 needs four dotted numbers, IPv6 a "::" or two colons around a hex digit
        "IP_ADDRESS": Rule(
            r"\s", r"\d\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:|::"),
    }


@functools.lru_cache(maxsize=8)
def run_pattern(entity: str) -> re.Pattern[str]:
    """A regex matching each whole run of non-cut characters that contains the trigger.

    The look-behind anchors a match at the start of a run, so a run without the trigger
    costs one pass, not one pass per position.

    Example:
        >>> [m.group() for m in run_pattern("URL").finditer("see www.a.org or docs")]
        ['www.a.org']
    """
    cuts, trigger = rules()[entity]
    return re.compile(rf"(?<![^{cuts}])[^{cuts}]*?(?:{trigger})[^{cuts}]*+")


def windows(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of each window: a triggered run and the cut character on each side.

    Windows that share a cut character are merged.

    Example:
        >>> windows("a 1.2.3.4 b ::1", run_pattern("IP_ADDRESS"))
        [(1, 10), (11, 15)]
    """
    out: list[tuple[int, int]] = []
    n = len(text)
    for m in pattern.finditer(text):
        start, end = max(m.start() - 1, 0), min(m.end() + 1, n)
        if out and start <= out[-1][1] - 1:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


class Pack(NamedTuple):
    """Windows joined into one string: where each begins there, its text and its offset."""

    text: str
    starts: list[int]
    origins: list[tuple[int, int, int]]  # (text index, window start in its text, length)


def pack(texts: Sequence[str], pattern: re.Pattern[str]) -> list[Pack]:
    """Windows of ``texts`` joined with :data:`SEPARATOR`, up to :data:`PACK_CHARS` a pack.

    Example:
        >>> p = pack(["ip 8.8.4.4", "none", "ssh 1.1.1.1 now"], run_pattern("IP_ADDRESS"))
        >>> p[0].text, p[0].origins
        (' 8.8.4.4\\n 1.1.1.1 ', [(0, 2, 8), (2, 3, 9)])
    """
    packs: list[Pack] = []
    parts: list[str] = []
    starts: list[int] = []
    origins: list[tuple[int, int, int]] = []
    size = 0
    for i, text in enumerate(texts):
        for start, end in windows(text, pattern):
            if parts and size + end - start > PACK_CHARS:
                packs.append(Pack(SEPARATOR.join(parts), starts, origins))
                parts, starts, origins, size = [], [], [], 0
            parts.append(text[start:end])
            starts.append(size)
            origins.append((i, start, end - start))
            size += end - start + len(SEPARATOR)
    if parts:
        packs.append(Pack(SEPARATOR.join(parts), starts, origins))
    return packs


def locate(p: Pack, start: int, end: int) -> tuple[int, int, int]:
    """Map a span of a pack back to ``(text index, start, end)`` in its text.

    Example:
        >>> p = pack(["ip 8.8.4.4", "ssh 1.1.1.1 now"], run_pattern("IP_ADDRESS"))[0]
        >>> locate(p, 10, 17)
        (1, 4, 11)
    """
    k = bisect.bisect_right(p.starts, start) - 1
    i, offset, length = p.origins[k]
    local_start, local_end = start - p.starts[k], end - p.starts[k]
    if local_end > length:
        # impossible by construction (no detection holds a cut character); a recognizer
        # that breaks the rule must not be windowed
        raise RuntimeError(
            f"a detection at {start}:{end} crosses a window edge; the windowing rule does "
            f"not hold for this recognizer"
        )
    return i, offset + local_start, offset + local_end
