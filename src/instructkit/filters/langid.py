"""Language identification with fastText lid.176, offline.

:class:`LangID` tags each record with a ``lang`` code and a ``lang_score`` and, with ``keep``,
drops the records in other languages (reason ``language``). The model is the compressed
``lid.176.ftz``, shipped inside instructkit (``instructkit/data/lid.176.ftz``, CC BY-SA 3.0,
see ``instructkit/data/NOTICE-lid176.md``) and loaded once per process with the ``fasttext``
(fasttext-predict) binding: nothing is downloaded, ever. Any other fastText language-ID
model (GlotLID, OpenLID: ``__label__eng_Latn``) works through ``model_path``; its labels are
mapped to the same codes (:func:`label_to_code`).

Example:
    >>> import instructkit as ik
    >>> ds = ik.Dataset.from_records([
    ...     {"instruction": "Write a short poem about the sea.", "output": "..."},
    ...     {"instruction": "Écris un court poème sur la mer.", "output": "..."},
    ... ])
    >>> out = ds.pipe(ik.langid(keep=["English"]))
    >>> out.to_polars()["lang"].to_list(), out.removed["detail"].to_list()
    (['en'], ['{"lang":"fr","score":0.92}'])
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from instructkit.text import record_text, resolve_fields
from instructkit.transform import Filter, detail_expr, mark

#: Tag for a text too short to identify, or with no text at all (ISO 639-2 "undetermined").
UND = "und"
#: ``lang`` of a record whose fields (``per_field=True``) are in different languages.
MIXED = "mixed"

# One row per lid.176 label: (label, ISO 639-1 or "", ISO 639-3, ISO 639-2/B or "", English
# names). The code we emit is the 639-1 code, else the 639-3 one. lid.176 takes its labels from
# Wikipedia language editions, which is why "als" (Alemannic Wikipedia) is really gsw: in
# ISO 639-3 "als" is Tosk Albanian, so we emit gsw. bh, nah and eml are collective or retired
# codes with no better single code; we keep them as lid.176 has them.
_LANGUAGES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("af", "af", "afr", "", ("Afrikaans",)),
    ("als", "", "gsw", "", ("Alemannic", "Swiss German", "Alsatian")),
    ("am", "am", "amh", "", ("Amharic",)),
    ("an", "an", "arg", "", ("Aragonese",)),
    ("ar", "ar", "ara", "", ("Arabic",)),
    ("arz", "", "arz", "", ("Egyptian Arabic",)),
    ("as", "as", "asm", "", ("Assamese",)),
    ("ast", "", "ast", "", ("Asturian",)),
    ("av", "av", "ava", "", ("Avaric", "Avar")),
    ("az", "az", "aze", "", ("Azerbaijani", "Azeri")),
    ("azb", "", "azb", "", ("South Azerbaijani",)),
    ("ba", "ba", "bak", "", ("Bashkir",)),
    ("bar", "", "bar", "", ("Bavarian",)),
    ("bcl", "", "bcl", "", ("Central Bikol", "Bikol")),
    ("be", "be", "bel", "", ("Belarusian",)),
    ("bg", "bg", "bul", "", ("Bulgarian",)),
    ("bh", "bh", "bih", "", ("Bihari",)),
    ("bn", "bn", "ben", "", ("Bengali", "Bangla")),
    ("bo", "bo", "bod", "tib", ("Tibetan",)),
    ("bpy", "", "bpy", "", ("Bishnupriya", "Bishnupriya Manipuri")),
    ("br", "br", "bre", "", ("Breton",)),
    ("bs", "bs", "bos", "", ("Bosnian",)),
    ("bxr", "", "bxr", "", ("Russia Buriat", "Buryat", "Buriat")),
    ("ca", "ca", "cat", "", ("Catalan", "Valencian")),
    ("cbk", "", "cbk", "", ("Chavacano",)),
    ("ce", "ce", "che", "", ("Chechen",)),
    ("ceb", "", "ceb", "", ("Cebuano",)),
    ("ckb", "", "ckb", "", ("Central Kurdish", "Sorani")),
    ("co", "co", "cos", "", ("Corsican",)),
    ("cs", "cs", "ces", "cze", ("Czech",)),
    ("cv", "cv", "chv", "", ("Chuvash",)),
    ("cy", "cy", "cym", "wel", ("Welsh",)),
    ("da", "da", "dan", "", ("Danish",)),
    ("de", "de", "deu", "ger", ("German",)),
    ("diq", "", "diq", "", ("Dimli", "Zazaki")),
    ("dsb", "", "dsb", "", ("Lower Sorbian",)),
    ("dty", "", "dty", "", ("Dotyali",)),
    ("dv", "dv", "div", "", ("Dhivehi", "Divehi", "Maldivian")),
    ("el", "el", "ell", "gre", ("Greek", "Modern Greek")),
    ("eml", "", "eml", "", ("Emilian-Romagnol", "Emiliano-Romagnolo")),
    ("en", "en", "eng", "", ("English",)),
    ("eo", "eo", "epo", "", ("Esperanto",)),
    ("es", "es", "spa", "", ("Spanish", "Castilian")),
    ("et", "et", "est", "", ("Estonian",)),
    ("eu", "eu", "eus", "baq", ("Basque",)),
    ("fa", "fa", "fas", "per", ("Persian", "Farsi")),
    ("fi", "fi", "fin", "", ("Finnish",)),
    ("fr", "fr", "fra", "fre", ("French",)),
    ("frr", "", "frr", "", ("Northern Frisian", "North Frisian")),
    ("fy", "fy", "fry", "", ("Western Frisian", "West Frisian", "Frisian")),
    ("ga", "ga", "gle", "", ("Irish",)),
    ("gd", "gd", "gla", "", ("Scottish Gaelic", "Gaelic")),
    ("gl", "gl", "glg", "", ("Galician",)),
    ("gn", "gn", "grn", "", ("Guarani",)),
    ("gom", "", "gom", "", ("Goan Konkani", "Konkani")),
    ("gu", "gu", "guj", "", ("Gujarati",)),
    ("gv", "gv", "glv", "", ("Manx",)),
    ("he", "he", "heb", "", ("Hebrew",)),
    ("hi", "hi", "hin", "", ("Hindi",)),
    ("hif", "", "hif", "", ("Fiji Hindi",)),
    ("hr", "hr", "hrv", "", ("Croatian",)),
    ("hsb", "", "hsb", "", ("Upper Sorbian",)),
    ("ht", "ht", "hat", "", ("Haitian Creole", "Haitian")),
    ("hu", "hu", "hun", "", ("Hungarian",)),
    ("hy", "hy", "hye", "arm", ("Armenian",)),
    ("ia", "ia", "ina", "", ("Interlingua",)),
    ("id", "id", "ind", "", ("Indonesian",)),
    ("ie", "ie", "ile", "", ("Interlingue", "Occidental")),
    ("ilo", "", "ilo", "", ("Iloko", "Ilocano")),
    ("io", "io", "ido", "", ("Ido",)),
    ("is", "is", "isl", "ice", ("Icelandic",)),
    ("it", "it", "ita", "", ("Italian",)),
    ("ja", "ja", "jpn", "", ("Japanese",)),
    ("jbo", "", "jbo", "", ("Lojban",)),
    ("jv", "jv", "jav", "", ("Javanese",)),
    ("ka", "ka", "kat", "geo", ("Georgian",)),
    ("kk", "kk", "kaz", "", ("Kazakh",)),
    ("km", "km", "khm", "", ("Khmer", "Central Khmer")),
    ("kn", "kn", "kan", "", ("Kannada",)),
    ("ko", "ko", "kor", "", ("Korean",)),
    ("krc", "", "krc", "", ("Karachay-Balkar",)),
    ("ku", "ku", "kur", "", ("Kurdish",)),
    ("kv", "kv", "kom", "", ("Komi",)),
    ("kw", "kw", "cor", "", ("Cornish",)),
    ("ky", "ky", "kir", "", ("Kyrgyz", "Kirghiz")),
    ("la", "la", "lat", "", ("Latin",)),
    ("lb", "lb", "ltz", "", ("Luxembourgish", "Letzeburgesch")),
    ("lez", "", "lez", "", ("Lezghian", "Lezgian")),
    ("li", "li", "lim", "", ("Limburgish", "Limburgan")),
    ("lmo", "", "lmo", "", ("Lombard",)),
    ("lo", "lo", "lao", "", ("Lao",)),
    ("lrc", "", "lrc", "", ("Northern Luri",)),
    ("lt", "lt", "lit", "", ("Lithuanian",)),
    ("lv", "lv", "lav", "", ("Latvian",)),
    ("mai", "", "mai", "", ("Maithili",)),
    ("mg", "mg", "mlg", "", ("Malagasy",)),
    ("mhr", "", "mhr", "", ("Eastern Mari", "Meadow Mari")),
    ("min", "", "min", "", ("Minangkabau",)),
    ("mk", "mk", "mkd", "mac", ("Macedonian",)),
    ("ml", "ml", "mal", "", ("Malayalam",)),
    ("mn", "mn", "mon", "", ("Mongolian",)),
    ("mr", "mr", "mar", "", ("Marathi",)),
    ("mrj", "", "mrj", "", ("Western Mari", "Hill Mari")),
    ("ms", "ms", "msa", "may", ("Malay",)),
    ("mt", "mt", "mlt", "", ("Maltese",)),
    ("mwl", "", "mwl", "", ("Mirandese",)),
    ("my", "my", "mya", "bur", ("Burmese", "Myanmar")),
    ("myv", "", "myv", "", ("Erzya",)),
    ("mzn", "", "mzn", "", ("Mazanderani",)),
    ("nah", "", "nah", "", ("Nahuatl",)),
    ("nap", "", "nap", "", ("Neapolitan",)),
    ("nds", "", "nds", "", ("Low German", "Low Saxon")),
    ("ne", "ne", "nep", "", ("Nepali",)),
    ("new", "", "new", "", ("Newari", "Nepal Bhasa")),
    ("nl", "nl", "nld", "dut", ("Dutch", "Flemish")),
    ("nn", "nn", "nno", "", ("Norwegian Nynorsk", "Nynorsk")),
    ("no", "no", "nor", "", ("Norwegian",)),
    ("oc", "oc", "oci", "", ("Occitan",)),
    ("or", "or", "ori", "", ("Odia", "Oriya")),
    ("os", "os", "oss", "", ("Ossetian", "Ossetic")),
    ("pa", "pa", "pan", "", ("Punjabi", "Panjabi")),
    ("pam", "", "pam", "", ("Pampanga", "Kapampangan")),
    ("pfl", "", "pfl", "", ("Palatine German", "Pfaelzisch")),
    ("pl", "pl", "pol", "", ("Polish",)),
    ("pms", "", "pms", "", ("Piedmontese",)),
    ("pnb", "", "pnb", "", ("Western Punjabi",)),
    ("ps", "ps", "pus", "", ("Pashto", "Pushto")),
    ("pt", "pt", "por", "", ("Portuguese",)),
    ("qu", "qu", "que", "", ("Quechua",)),
    ("rm", "rm", "roh", "", ("Romansh",)),
    ("ro", "ro", "ron", "rum", ("Romanian", "Moldavian")),
    ("ru", "ru", "rus", "", ("Russian",)),
    ("rue", "", "rue", "", ("Rusyn",)),
    ("sa", "sa", "san", "", ("Sanskrit",)),
    ("sah", "", "sah", "", ("Yakut", "Sakha")),
    ("sc", "sc", "srd", "", ("Sardinian",)),
    ("scn", "", "scn", "", ("Sicilian",)),
    ("sco", "", "sco", "", ("Scots",)),
    ("sd", "sd", "snd", "", ("Sindhi",)),
    ("sh", "sh", "hbs", "", ("Serbo-Croatian",)),
    ("si", "si", "sin", "", ("Sinhala", "Sinhalese")),
    ("sk", "sk", "slk", "slo", ("Slovak",)),
    ("sl", "sl", "slv", "", ("Slovenian", "Slovene")),
    ("so", "so", "som", "", ("Somali",)),
    ("sq", "sq", "sqi", "alb", ("Albanian",)),
    ("sr", "sr", "srp", "", ("Serbian",)),
    ("su", "su", "sun", "", ("Sundanese",)),
    ("sv", "sv", "swe", "", ("Swedish",)),
    ("sw", "sw", "swa", "", ("Swahili",)),
    ("ta", "ta", "tam", "", ("Tamil",)),
    ("te", "te", "tel", "", ("Telugu",)),
    ("tg", "tg", "tgk", "", ("Tajik",)),
    ("th", "th", "tha", "", ("Thai",)),
    ("tk", "tk", "tuk", "", ("Turkmen",)),
    ("tl", "tl", "tgl", "", ("Tagalog", "Filipino")),
    ("tr", "tr", "tur", "", ("Turkish",)),
    ("tt", "tt", "tat", "", ("Tatar",)),
    ("tyv", "", "tyv", "", ("Tuvinian", "Tuvan")),
    ("ug", "ug", "uig", "", ("Uyghur", "Uighur")),
    ("uk", "uk", "ukr", "", ("Ukrainian",)),
    ("ur", "ur", "urd", "", ("Urdu",)),
    ("uz", "uz", "uzb", "", ("Uzbek",)),
    ("vec", "", "vec", "", ("Venetian",)),
    ("vep", "", "vep", "", ("Veps", "Vepsian")),
    ("vi", "vi", "vie", "", ("Vietnamese",)),
    ("vls", "", "vls", "", ("West Flemish", "Vlaams")),
    ("vo", "vo", "vol", "", ("Volapük", "Volapuk")),
    ("wa", "wa", "wln", "", ("Walloon",)),
    ("war", "", "war", "", ("Waray",)),
    ("wuu", "", "wuu", "", ("Wu Chinese", "Wu")),
    ("xal", "", "xal", "", ("Kalmyk",)),
    ("xmf", "", "xmf", "", ("Mingrelian",)),
    ("yi", "yi", "yid", "", ("Yiddish",)),
    ("yo", "yo", "yor", "", ("Yoruba",)),
    ("yue", "", "yue", "", ("Cantonese", "Yue Chinese")),
    ("zh", "zh", "zho", "chi", ("Chinese",)),
)

# Individual-language ISO 639-3 codes that other tools (NLLB, FLORES, GlotLID) emit for a
# language lid.176 knows under its macrolanguage or a close variety: "cmn" text is what lid.176
# calls zh, "nob" what it calls no, and so on.
_INDIVIDUAL: dict[str, str] = {
    "cmn": "zh", "mandarin": "zh", "arb": "ar", "pes": "fa", "prs": "fa", "zsm": "ms",
    "swh": "sw", "ekk": "et", "lvs": "lv", "khk": "mn", "uzn": "uz", "npi": "ne", "ory": "or",
    "pbt": "ps", "pbu": "ps", "ydd": "yi", "nb": "no", "nob": "no", "bokmal": "no",
    "norwegian bokmal": "no", "norwegian bokmål": "no", "bokmål": "no", "fil": "tl",
    "kmr": "ku", "als": "gsw", "sh": "sh",
}

#: lid.176 label -> the code LangID emits.
LABEL_TO_CODE: dict[str, str] = {row[0]: row[1] or row[2] for row in _LANGUAGES}


def _build_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for _label, part1, part3, part2b, names in _LANGUAGES:
        code = part1 or part3
        for key in (part1, part3, part2b, *names):
            if key:
                aliases[key.lower()] = code
    aliases.update(_INDIVIDUAL)
    aliases[UND] = UND
    aliases[MIXED] = MIXED
    return aliases


_ALIASES = _build_aliases()


def to_code(language: str) -> str:
    """The code :class:`LangID` emits for a language given as a code or an English name.

    Accepts ISO 639-1 (``"en"``), 639-3 (``"eng"``), 639-2/B (``"ger"``), English names
    (``"English"``, any case) and tags with a region or script (``"en-US"``, ``"zh_Hans"``,
    ``"zho_Hans"``). ``"und"`` and ``"mixed"`` name themselves. Raises ``ValueError`` with the
    closest known spellings for anything else.

    Example:
        >>> [to_code(x) for x in ["en", "eng", "English", "zh-CN", "fre", "Farsi"]]
        ['en', 'en', 'en', 'zh', 'fr', 'fa']
    """
    if not isinstance(language, str) or not language.strip():
        raise ValueError(f"a language is a non-empty string, got {language!r}")
    key = language.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    # BCP 47 / FLORES tags: the primary subtag carries the language ("en-US", "zho_Hans")
    primary = key.replace("_", "-").split("-", 1)[0]
    if primary in _ALIASES:
        return _ALIASES[primary]
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown language {language!r}: give an ISO 639-1/639-3 code or an English name "
        f"of one of the 176 lid.176 languages{hint}"
    )


@functools.lru_cache(maxsize=4)
def load_model(path: str | None = None) -> Any:
    """The fastText model at ``path`` (default: the lid.176.ftz shipped with instructkit), cached.

    Loaded with the ``fasttext`` binding (fasttext-predict); never downloads anything.

    Example:
        >>> load_model().predict("Bonjour tout le monde")[0]
        ('__label__fr',)
    """
    if path is None:
        path = str(bundled_model_path())
    elif not Path(path).is_file():
        raise FileNotFoundError(f"langid model file {path!r} does not exist")
    try:
        import fasttext
    except ImportError as e:  # pragma: no cover - fasttext-predict is a core dependency
        raise ImportError(
            "language ID needs the fastText binding: pip install fasttext-predict"
        ) from e
    return fasttext.load_model(path)


#: SHA-256 of the lid.176.ftz instructkit ships (fastText's published file).
LID176_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"


def bundled_model_path() -> Path:
    """Path of the ``lid.176.ftz`` that ships inside instructkit.

    Example:
        >>> bundled_model_path().name
        'lid.176.ftz'
    """
    path = Path(__file__).resolve().parents[1] / "data" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(
            f"instructkit's bundled language-ID model {path} is missing; reinstall instructkit"
        )
    return path


@functools.lru_cache(maxsize=4096)
def label_to_code(label: str) -> str:
    """The code :class:`LangID` emits for a fastText label of any language-ID model.

    lid.176 labels (``__label__en``, ``__label__als``) use its own table; GlotLID / OpenLID
    labels (``__label__eng_Latn``, ``__label__zho_Hans``) and plain ISO codes go through
    :func:`to_code`. A label no table knows is kept as it is, lower-cased, without the prefix.

    Example:
        >>> [label_to_code(x) for x in ["__label__en", "__label__eng_Latn", "__label__cmn_Hani"]]
        ['en', 'en', 'zh']
    """
    name = label.removeprefix("__label__")
    if name in LABEL_TO_CODE:
        return LABEL_TO_CODE[name]
    try:
        return to_code(name)
    except ValueError:
        return name.lower()


# Texts are prepared in polars, vectorized, before the one Python loop that calls the model,
# and each step only touches the rows that need it, so the overhead over calling the model
# directly stays small (see benchmarks/bench_langid.py):
# - whitespace other than a plain space becomes a space: a newline ends a fastText line, and
#   fastText does not split words on Unicode spaces such as the ideographic space;
# - text with no lower-case letter is lower-cased: lid.176 takes ALL-CAPS English for other
#   languages;
# - Han characters are spaced apart: lid.176 splits words on whitespace, and an unsegmented run
#   of Chinese is one long unknown "word" that it often takes for ja, wuu, yue or even en.
_OTHER_SPACE = r"[^\S ]+"
_HAN = r"(\p{Han})"
_KANA = r"[\p{Hiragana}\p{Katakana}]"
# a CJK character is a syllable or a word, not a letter: min_chars counts it twice
_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"


def _at_least(char_class: str, count: int) -> str:
    """A regex that matches text holding ``count`` or more characters of ``char_class``.

    ``str.contains`` with it stops at the ``count``-th match, unlike counting every letter.
    """
    return char_class if count <= 1 else rf"{char_class}(?s:.*?{char_class}){{{count - 1}}}"


def _subset(
    mask: pl.Series, values: pl.Series, fn: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """``values`` with ``fn`` applied to the rows where ``mask`` is true (and only to those)."""
    rows = mask.arg_true()
    if len(rows) == 0:
        return values
    return values.scatter(rows, fn(values.gather(rows)))


class LangID(Filter):
    """Tag each record's language with fastText lid.176; optionally keep only some languages.

    Adds ``lang`` (ISO 639-1, or 639-3 where a language has none; ``und`` when a text has
    fewer than ``min_chars`` letters) and ``lang_score`` (the model's probability for it, null
    for ``und``). With ``k > 1`` it also adds ``lang_topk``: the ``k`` best
    ``{lang, score}``. With ``per_field=True`` each field is identified on its own and
    ``lang_fields`` holds every field's code; a record whose fields disagree gets
    ``lang="mixed"``.

    A record is dropped (reason ``language``, detail ``{"lang":"xx","score":0.93}``) when ``keep``
    is given and its language is not in it (``und`` and ``mixed`` records are dropped unless
    ``keep`` names them, except that a mixed record whose every field is in ``keep`` stays),
    or when its score is below ``min_score``.

    Args:
        keep: languages to keep, as codes or English names (``"en"``, ``"eng"``,
            ``"English"``); None keeps every language.
        field: the text to identify: a field name, several (joined with a space), or
            ``"all"``. The default is the instruction because outputs are often code, which
            lid.176 labels as English or noise whatever the human language of the record.
            In a conversation ``instruction`` means every user turn and ``output`` every
            assistant turn (``messages``: every turn), so a later turn is read too.
        min_score: drop records whose ``lang_score`` is below this (``und`` ones included).
        min_chars: texts with fewer letters than this are tagged ``und`` rather than guessed;
            a CJK character (Han, kana, Hangul) is a syllable or a word, so it counts as two.
        k: how many of the best languages to list in ``lang_topk`` (1 adds no column).
        per_field: identify each field on its own (see above) instead of their concatenation.
        model_path: a fastText language-ID model to use instead of the bundled lid.176.ftz
            (for example the larger ``lid.176.bin``); it is read from disk, never downloaded.

    Prediction and thresholding are separate, so a sweep over ``keep`` / ``min_score``
    (listed in ``decide_params``) predicts once with :meth:`predict` and re-applies
    :meth:`verdict` per setting.

    Example:
        >>> import instructkit as ik
        >>> ds = ik.Dataset.from_records([
        ...     {"instruction": "Explain photosynthesis in one paragraph.", "output": "..."},
        ...     {"instruction": "请解释光合作用。", "output": "..."},
        ...     {"instruction": "Hi", "output": "Hello!"},
        ... ])
        >>> ds.pipe(ik.langid()).to_polars()["lang"].to_list()
        ['en', 'zh', 'und']
        >>> len(ds.pipe(ik.langid(keep=["zh", "und"])))
        2
    """

    name: ClassVar[str] = "langid"
    decide_params: ClassVar[tuple[str, ...]] = ("keep", "min_score")

    def __init__(
        self,
        keep: Sequence[str] | str | None = None,
        field: str | Sequence[str] = "instruction",
        min_score: float = 0.0,
        min_chars: int = 5,
        k: int = 1,
        per_field: bool = False,
        model_path: str | None = None,
    ) -> None:
        self.keep = keep
        self.field = field
        self.min_score = min_score
        self.min_chars = min_chars
        self.k = k
        self.per_field = per_field
        self.model_path = model_path
        # validate now so a bad recipe fails before any data is read
        self._keep_codes()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"langid: k must be an int >= 1, got {k!r}")
        if k > 1 and per_field:
            raise ValueError("langid: lang_topk (k > 1) is for the joined text; use per_field=False")
        if not isinstance(min_chars, int) or min_chars < 0:
            raise ValueError(f"langid: min_chars must be an int >= 0, got {min_chars!r}")
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"langid: min_score must be in [0, 1], got {min_score!r}")

    @classmethod
    def preload(cls) -> None:
        """Load the packaged lid.176 model (a step with its own ``model_path`` loads that
        one on its first batch)."""
        load_model(None)

    # prediction ---------------------------------------------------------------------------
    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The columns this step adds, one row per row of ``frame``; no thresholds applied.

        Example:
            >>> import polars as pl
            >>> LangID().predict(pl.DataFrame({"instruction": ["Guten Morgen, wie geht es dir?"]}))["lang"][0]
            'de'
        """
        fields = resolve_fields(self.field, frame)
        if not self.per_field or len(fields) == 1:
            out = self._predict_texts(_joined_text(frame, fields))
            if self.per_field:
                out = out.with_columns(pl.struct(pl.col("lang").alias(fields[0])).alias("lang_fields"))
            return out
        parts = {f: self._predict_texts(_joined_text(frame, [f])) for f in fields}
        langs = pl.DataFrame({f: p["lang"] for f, p in parts.items()})
        scores = pl.DataFrame({f: p["lang_score"] for f, p in parts.items()})
        # the distinct identified languages of a row, und left out
        known = pl.concat_list(
            [pl.when(pl.col(f) != UND).then(pl.col(f)) for f in fields]
        ).list.drop_nulls().list.unique()
        lang = langs.select(
            pl.when(known.list.len() == 0)
            .then(pl.lit(UND))
            .when(known.list.len() == 1)
            .then(known.list.first())
            .otherwise(pl.lit(MIXED))
            .alias("lang")
        )["lang"]
        # a record is only as sure as its least sure field
        score = scores.select(pl.min_horizontal(pl.all()).alias("lang_score"))["lang_score"]
        return pl.DataFrame(
            {"lang": lang, "lang_score": score, "lang_fields": langs.to_struct("lang_fields")}
        )

    def _predict_texts(self, texts: pl.Series) -> pl.DataFrame:
        n = len(texts)
        text = texts.fill_null("").str.replace_all(_OTHER_SPACE, " ")
        need = max(self.min_chars, 1)
        enough = text.str.contains(_at_least(r"\p{L}", need))
        # the rare text short in letters may still hold enough CJK characters (worth two each)
        short = (~enough).arg_true()
        if len(short):
            cjk = text.gather(short).str.contains(_at_least(_CJK, -(-need // 2)))
            enough = enough.scatter(short, cjk)
        rows = enough.arg_true()
        todo = text.gather(rows)
        todo = _subset(~todo.str.contains(r"\p{Ll}"), todo, lambda t: t.str.to_lowercase())
        todo = _subset(todo.str.contains(r"\p{Han}"), todo, lambda t: t.str.replace_all(_HAN, " $1 "))
        model = load_model(self.model_path)
        predict, k = model.f.predict, self.k
        # the binding's raw predict: its list API (multilinePredict) returns labels without
        # probabilities, and its Python wrapper re-checks every text for newlines
        results = [predict(t, k, 0.0, "strict") for t in (todo + "\n").to_list()]
        labels = pl.Series([r[0][1] if r else "__label__" + UND for r in results], dtype=pl.String)
        scores = pl.Series([r[0][0] if r else None for r in results], dtype=pl.Float64)
        # Japanese writing always mixes in kana: only those rows need the kana check
        if k == 1:
            maybe_ja = (labels == "__label__ja").arg_true()
        else:
            maybe_ja = pl.Series(
                [i for i, r in enumerate(results) if any(lb == "__label__ja" for _, lb in r)],
                dtype=pl.UInt32,
            )
        kana = pl.repeat(True, len(todo), eager=True)
        if len(maybe_ja):
            kana = kana.scatter(maybe_ja, todo.gather(maybe_ja).str.contains(_KANA))
        top = pl.DataFrame({"label": labels, "score": scores}).select(
            _code(pl.col("label"), kana).alias("lang"),
            # lid.176.ftz's quantized softmax can exceed 1 by a hair
            pl.col("score").clip(0.0, 1.0).alias("lang_score"),
        )
        lang = pl.repeat(UND, n, eager=True, dtype=pl.String).scatter(rows, top["lang"])
        score = pl.repeat(None, n, eager=True, dtype=pl.Float64).scatter(rows, top["lang_score"])
        out = pl.DataFrame({"lang": lang, "lang_score": score})
        if k > 1:
            out = out.with_columns(_topk(results, rows, kana, n))
        return out

    # thresholds ---------------------------------------------------------------------------
    def verdict(self, predictions: pl.DataFrame) -> pl.DataFrame:
        """``reason`` / ``detail`` per row (null = keep) from :meth:`predict`'s columns.

        Only ``keep`` and ``min_score`` matter here, so a sweep reuses one prediction.

        Example:
            >>> import polars as pl
            >>> p = pl.DataFrame({"lang": ["en", "fr"], "lang_score": [0.9, 0.8]})
            >>> LangID(keep="fr").verdict(p)["detail"].to_list()
            ['{"lang":"en","score":0.9}', None]
        """
        keep = self._keep_codes()
        lang, score = pl.col("lang"), pl.col("lang_score")
        ok = pl.lit(True)
        if keep is not None:
            in_keep = lang.is_in(sorted(keep))
            if "lang_fields" in predictions.columns and MIXED not in keep:
                # a mixed record stays when each of its identified fields is a kept language
                fields = pl.col("lang_fields")
                names = [f.name for f in predictions.schema["lang_fields"].fields]
                each = [
                    fields.struct.field(n).is_in(sorted(keep | {UND})) for n in names
                ]
                in_keep = in_keep | ((lang == MIXED) & pl.all_horizontal(each))
            ok = ok & in_keep
        if self.min_score > 0:
            ok = ok & score.fill_null(0.0).ge(self.min_score)
        rounded = score.cast(pl.Float64).round(2)
        detail = detail_expr(lang=lang, score=rounded)
        if "lang_fields" in predictions.columns:
            # a mixed record names the language of each field
            detail = pl.when(lang == MIXED).then(
                detail_expr(fields=pl.col("lang_fields"), lang=lang, score=rounded)
            ).otherwise(detail)
        return predictions.select(
            pl.when(~ok).then(pl.lit("language")).alias("reason"),
            pl.when(~ok).then(detail).alias("detail"),
        )

    def _keep_codes(self) -> set[str] | None:
        if self.keep is None:
            return None
        keep = [self.keep] if isinstance(self.keep, str) else list(self.keep)
        if not keep:
            raise ValueError("langid: keep=[] would drop everything; use keep=None to keep all")
        return {to_code(x) for x in keep}

    # the Filter protocol ------------------------------------------------------------------
    def reasons(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self.verdict(self.predict(frame))

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        predictions = self.predict(frame)
        # a re-run replaces every column an earlier langid added, not just the ones it adds
        out = frame.drop(_ADDED, strict=False).with_columns(predictions.get_columns())
        return mark(out, self.verdict(predictions))


_ADDED = ("lang", "lang_score", "lang_topk", "lang_fields")
_TOPK = pl.List(pl.Struct({"lang": pl.String, "score": pl.Float64}))


def _code(label: pl.Expr, kana: pl.Series) -> pl.Expr:
    """Model label -> emitted code; kanji-only text taken for Japanese becomes Chinese."""
    code = label.map_batches(_labels_to_codes, return_dtype=pl.String)
    # Japanese writing always mixes in kana; lid.176 labels short all-Han (Chinese) text ja
    return pl.when((code == "ja") & ~pl.lit(kana)).then(pl.lit("zh")).otherwise(code)


def _labels_to_codes(labels: pl.Series) -> pl.Series:
    # a model has a few hundred labels at most: map each distinct one once
    distinct = labels.drop_nulls().unique().to_list()
    return labels.replace_strict({lb: label_to_code(lb) for lb in distinct}, default=None, return_dtype=pl.String)


def _topk(results: list[Any], rows: pl.Series, kana: pl.Series, n: int) -> pl.Series:
    """``lang_topk`` from the raw predictions: the best languages, each listed once."""
    # position in ``results`` of every (score, label) pair, to find its row and kana flag
    which = pl.Series([i for i, r in enumerate(results) for _ in r], dtype=pl.UInt32)
    flat = pl.DataFrame(
        {
            "row": rows.cast(pl.UInt32).gather(which),
            "label": [label for r in results for _, label in r],
            "score": [score for r in results for score, _ in r],
        },
        schema={"row": pl.UInt32, "label": pl.String, "score": pl.Float64},
    )
    grouped = (
        flat.select(
            "row",
            _code(pl.col("label"), kana.gather(which)).alias("lang"),
            pl.col("score").clip(0.0, 1.0),
        )
        # ja relabelled zh may repeat zh: keep its first (best) entry
        .unique(subset=["row", "lang"], keep="first", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(pl.struct("lang", "score").alias("lang_topk"))
    )
    full = pl.DataFrame({"row": pl.int_range(0, n, eager=True, dtype=pl.UInt32)})
    return full.join(grouped, on="row", how="left", maintain_order="left").select(
        pl.col("lang_topk").cast(_TOPK).fill_null(pl.lit([], dtype=_TOPK))
    )["lang_topk"]


def _joined_text(frame: pl.DataFrame, fields: Sequence[str]) -> pl.Series:
    """The text of ``fields`` per row, joined with a space; for a conversation, every turn
    the fields stand for (``instruction``: each user turn; see :func:`record_text`)."""
    if not fields:
        raise ValueError("langid: field names no field")
    for name in fields:
        if name != "messages" and frame.schema[name] != pl.String:
            raise ValueError(f"langid: field {name!r} holds {frame.schema[name]}, not text")
    return record_text(frame, fields, separator=" ")
