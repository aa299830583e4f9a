"""Leading verbs of instructions and their objects, by a parser-free heuristic.

Alpaca's diversity plot parses each instruction and takes the root verb and its direct
object. Parsing millions of records is slow and needs a model, so instructkit uses a
heuristic that fits imperative instructions ("Write a short poem about ..."):

1. lower-case the instruction, keep its first 200 characters and the words ``[a-z'-]+``
   (so the heuristic reads English; text with no Latin words is *other*);
2. drop leading fillers (``please``, ``kindly``, ``now``, ``can/could/would you``,
   ``i want you to``, ``help me``, ``let's`` ...);
3. an instruction whose first word is a question word or an auxiliary (``what``, ``how``,
   ``is``, ``does`` ...) is a *question*; one whose first word is another closed-class word
   (a pronoun, article, preposition, conjunction) or ends in ``-ing``, that is a label
   (``Summary: ...``) or a subject (the second word is ``is/has/was/...`` or ends in
   ``-ed``: "John has 5 apples") is *other*; otherwise the first word is the **verb**. A leading clause such as "Given a list of
   numbers," or "Using the text below," is skipped first, up to its comma;
4. the **object** is the first of the next six words, before any preposition, that is not
   a determiner, pronoun, number, question word or a common instruction adjective (``short``, ``brief``, ``new``,
   ``following`` ...): "Generate a list of 5 ideas" gives (generate, list).

It reads verbs well on Alpaca-style data and says nothing useful about free-form chat;
the report shows the share of questions and others next to it so that is visible.

Example:
    >>> import polars as pl
    >>> s = pl.Series(["Please write a short poem about cats.", "What is 2+2?", "Give me 3 tips."])
    >>> leading_verbs(s).rows()
    [('write', 'poem', 'verb'), (None, None, 'question'), ('give', 'tips', 'verb')]
"""

from __future__ import annotations

import polars as pl

FILLERS = (
    "please", "kindly", "now", "also", "then", "so", "ok", "okay", "hey", "hi", "hello",
    "can you", "could you", "would you", "will you", "you should", "you must", "you need to",
    "i want you to", "i need you to", "i would like you to", "i'd like you to", "help me",
    "let's", "lets", "let us", "just", "quickly", "briefly", "simply", "carefully",
)

QUESTION_WORDS = frozenset(
    "what what's whats how how's why who who's whom whose which when where is are was were "
    "do does did can could would will should shall may might am has have had isn't aren't "
    "doesn't don't didn't can't won't".split()
)

NOT_VERBS = frozenset(
    "a an the this that these those it its it's i i'm i've my me we our us you your you're "
    "he she they them their his her there here in on at of for from by with without to into "
    "as if and or but not no yes given using based according following below above after "
    "before during while since because although though each every all any some one two "
    "three four five six seven eight nine ten s mr mrs ms dr".split()
)

SUBJECT_FOLLOWERS = frozenset(
    "is are was were has have had will would can could should does did may might must "
    "wants needs likes says said".split()
)

PREPOSITIONS = frozenset(
    "in on at of for from by with without to into onto about as than and or but over under "
    "across through via per between within like".split()
)

SKIP_BEFORE_OBJECT = NOT_VERBS | QUESTION_WORDS | frozenset(
    "me us him them myself yourself short brief new simple detailed creative good single "
    "possible appropriate suitable different unique original sample quick catchy concise "
    "small random few several many more most other another same similar interesting funny "
    "brand best main key important complete full proper correct valid basic python sql "
    "javascript java list's up out down about over".split()
)

_FILLER_RE = r"^(?:(?:" + "|".join(sorted(FILLERS, key=len, reverse=True)) + r")\b[\s,]*)+"
# "Given a list of numbers, sort it." -> "sort it.": a leading clause ending in a comma
_CLAUSE_RE = (
    r"^(?:given|using|based on|from|for|in|with|after|according to|considering)\b"
    r"[^,.:;?!]{0,150}[,:]\s*"
)

#: How an instruction was classified: it starts with a ``verb``, is a ``question``, ``other``.
KINDS = ("verb", "question", "other", "empty")


def leading_verbs(instructions: pl.Series) -> pl.DataFrame:
    """Per instruction: ``verb``, ``object`` (null when not found) and ``kind``.

    ``kind`` is ``verb``, ``question``, ``other`` or ``empty``; see the module docstring for
    the heuristic.

    Example:
        >>> import polars as pl
        >>> leading_verbs(pl.Series(["Translate the following sentence into French."])).row(0)
        ('translate', 'sentence', 'verb')
    """
    words = (
        instructions.cast(pl.String).fill_null("").str.slice(0, 200).str.to_lowercase()
        .str.replace_all("\u2019", "'")
        .str.replace(r"^[^a-z']+", "")
        .str.replace(_CLAUSE_RE, "")
        .str.replace(_FILLER_RE, "")
        .str.slice(0, 90)  # seven words fit; extracting from less text is much faster
        .str.extract_all(r"[a-z][a-z'-]*")
        .list.head(7)
    )
    # "Toolformer: enabled", "Summary: ..." start with a label, not a verb
    labelled = instructions.cast(pl.String).fill_null("").str.contains(r"^\s*[\w'-]+\s*:")
    blank = instructions.cast(pl.String).fill_null("").str.strip_chars() == ""
    frame = pl.DataFrame({"w": words, "blank": blank, "labelled": labelled})
    first = pl.col("w").list.first()
    second = pl.col("w").list.get(1, null_on_oob=True)
    rest = pl.col("w").list.slice(1, 6)
    kind = (
        pl.when(pl.col("blank")).then(pl.lit("empty"))
        .when(first.is_null()).then(pl.lit("other"))
        .when(first.is_in(list(QUESTION_WORDS))).then(pl.lit("question"))
        .when(
            first.is_in(list(NOT_VERBS))
            | first.str.ends_with("ing")
            | pl.col("labelled")
            # "John has 5 apples", "Mary earned $3": a subject, then a verb
            | second.is_in(list(SUBJECT_FOLLOWERS)).fill_null(False)
            | second.str.ends_with("ed").fill_null(False)
            | (first.str.len_chars() < 2)
        ).then(pl.lit("other"))
        .otherwise(pl.lit("verb"))
    )
    # the object comes before the first preposition: "sort it in ascending order" has none
    is_prep = rest.list.eval(pl.element().is_in(list(PREPOSITIONS)))
    cut = pl.when(is_prep.list.any()).then(is_prep.list.arg_max()).otherwise(pl.lit(6))
    obj = rest.list.head(cut).list.eval(
        pl.element().filter(
            ~pl.element().is_in(list(SKIP_BEFORE_OBJECT)) & (pl.element().str.len_chars() > 1)
        )
    ).list.first()
    out = frame.select(
        pl.when(kind == "verb").then(first).alias("verb"),
        pl.when(kind == "verb").then(obj).alias("object"),
        kind.alias("kind"),
    )
    return out


def verb_table(instructions: pl.Series | pl.DataFrame, top: int = 20, objects: int = 4) -> pl.DataFrame:
    """The ``top`` verbs with their count and, per verb, its ``objects`` commonest objects.

    ``instructions`` is a Series of instructions, or what :func:`leading_verbs` returned
    for them (to classify them only once).

    Columns: ``verb, count, object, object_count`` (one row per verb-object pair, ordered by
    verb count then object count; a verb's objects beyond the top ones are left out).

    Example:
        >>> import polars as pl
        >>> s = pl.Series(["Write a poem.", "Write a story.", "Write a poem now.", "List 3 cats."])
        >>> verb_table(s, top=2, objects=1).rows()
        [('write', 3, 'poem', 2), ('list', 1, 'cats', 1)]
    """
    found = instructions if isinstance(instructions, pl.DataFrame) else leading_verbs(instructions)
    found = found.filter(pl.col("kind") == "verb")
    verbs = (
        found.group_by("verb").len("count")
        .sort(["count", "verb"], descending=[True, False]).head(top)
    )
    pairs = (
        found.join(verbs, on="verb").filter(pl.col("object").is_not_null())
        .group_by("verb", "object").len("object_count")
        .sort(["object_count", "object"], descending=[True, False])
        .group_by("verb", maintain_order=True).head(objects)
    )
    return (
        verbs.join(pairs, on="verb", how="left")
        .sort(["count", "verb", "object_count", "object"],
              descending=[True, False, True, False], nulls_last=True)
        .with_columns(pl.col("object_count").cast(pl.Int64), pl.col("count").cast(pl.Int64))
    )
