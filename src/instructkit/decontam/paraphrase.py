"""Deterministic paraphrases of word problems, to measure how well rephrases are caught.

A leaked benchmark item is rarely verbatim: it is reworded, its people renamed, its
numbers changed. :func:`paraphrase` applies those edits with a seeded RNG so a recall
figure can be reproduced: names (capitalized words inside a sentence) become other names,
integers change, common words and phrases are swapped for synonyms, and the question
sentence may move to the front.

Example:
    >>> paraphrase("Janet has 3 apples. She buys 2 more. How many apples does Janet have?", seed=1)
    'Mei owns 4 apples. She purchases 3 more. What number of apples does Mei own?'
"""

from __future__ import annotations

import random
import re

NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan",
    "Aisha", "Omar", "Priya", "Ravi", "Chen", "Mei", "Kofi", "Amara", "Diego", "Lucia",
    "Hannah", "Jonas", "Ingrid", "Tariq", "Yuki", "Kenji", "Fatima", "Samir", "Elena", "Ivan",
)

#: Word or phrase -> replacement (matched on word boundaries, case kept for the first letter).
SYNONYMS: dict[str, str] = {
    "how many": "what number of",
    "how much": "what amount",
    "buys": "purchases",
    "bought": "purchased",
    "buy": "purchase",
    "has": "owns",
    "have": "own",
    "each": "every",
    "total": "overall",
    "wants to": "would like to",
    "costs": "is priced at",
    "cost": "price",
    "every day": "daily",
    "makes": "earns",
    "gives": "hands",
    "gave": "handed",
    "store": "shop",
    "friends": "pals",
    "twice": "two times",
    "money": "cash",
    "sells": "offers",
    "sold": "offered",
    "takes": "needs",
    "spends": "uses",
    "spent": "used",
    "more than": "in excess of",
    "remaining": "left over",
    "then": "after that",
    "altogether": "in all",
    "if": "suppose",
    "week": "seven-day period",
    "decides to": "chooses to",
    "earns": "makes",
    "per": "for each",
    "amount": "quantity",
    "find": "work out",
    "calculate": "compute",
}
_SYN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.I)
_NUMBER = re.compile(r"(?<![\d.,])\d+(?![\d.,]\d)")
_CAPITAL = re.compile(r"\b[A-Z][a-z]+\b")
#: Capitalized words that are not names (sentence starters, days, months, units).
NOT_NAMES = frozenset(
    "The A An If How What Which Who Whom Whose When Where Why She He They It This That These "
    "Those There Each Every In On At After Before During For From One Two Three Four Five Six "
    "Seven Eight Nine Ten Half His Her Their Its Our My Your We You I As But And Or So Then "
    "Since While Today Yesterday Tomorrow Monday Tuesday Wednesday Thursday Friday Saturday "
    "Sunday January February March April May June July August September October November "
    "December Mr Mrs Ms Dr Some All Both Only Of To By With Now Also Together Last Next First "
    "Second Third Suppose Given Find Calculate Compute Assume Let Is Are Was Were Do Does Did "
    "Can Could Will Would Should".split()
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def paraphrase(text: str, seed: int = 0, names: bool = True, numbers: bool = True) -> str:
    """A reworded copy of ``text``: new names and numbers, synonyms, maybe reordered.

    ``names=False`` / ``numbers=False`` keep the people and the numbers, as an LLM asked to
    "rephrase this question" does (the answer stays the same). The same arguments always
    give the same result.

    Example:
        >>> paraphrase("Janet has 3 apples. How many apples does Janet have?", seed=1, names=False, numbers=False)
        'Janet owns 3 apples. What number of apples does Janet own?'
    """
    rng = random.Random(f"{seed}:{text}")
    if not names:
        mapping: dict[str, str] = {}
    else:
        found = {m.group(0) for m in _CAPITAL.finditer(text)}
        found = {n for n in found if n not in NOT_NAMES and n.lower() not in SYNONYMS}
        pool = [n for n in NAMES if n not in found]
        mapping = dict(zip(sorted(found), rng.sample(pool, min(len(pool), len(found))), strict=False))
    if mapping:
        text = re.sub(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b", lambda m: mapping[m.group(0)], text)
    if numbers:
        text = _NUMBER.sub(lambda m: str(int(m.group(0)) + rng.randint(1, 3)), text)

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        new = SYNONYMS[word.lower()]
        return new[0].upper() + new[1:] if word[0].isupper() else new

    text = _SYN.sub(swap, text)
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    if len(sentences) > 1 and sentences[-1].endswith("?") and rng.random() < 0.5:
        sentences = [sentences[-1], *sentences[:-1]]
    return " ".join(sentences)
