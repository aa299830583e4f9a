"""Seeded synthetic corpora with known ground truth, for tests and benchmarks.

- :func:`near_duplicates` / :func:`iter_near_duplicates`: originals plus copies with a
  fraction of their words changed, each copy carrying the id of its original and the true
  Jaccard similarity of their word n-gram shingle sets (for dedup benchmarks).

Everything here is deterministic: the same arguments give the same records, byte for byte,
whether the corpus is built at once or streamed in batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from instructkit.dataset import Dataset

#: Records per generation block. Copies only point to originals of their own block, so a
#: stream can be cut into batches of any size without changing a single record.
BLOCK = 10_000
_VOCAB_SIZE = 4096  # 12 bits per word: a 5-gram packs into one uint64 exactly
_INSTRUCTION_WORDS = 12


def vocabulary(seed: int = 0, size: int = _VOCAB_SIZE) -> list[str]:
    """``size`` distinct lower-case pseudo-words of 2 to 9 letters.

    Example:
        >>> words = vocabulary(seed=0)
        >>> len(words), len(set(words)), words[0].isalpha()
        (4096, 4096, True)
    """
    rng = np.random.default_rng([seed, 0xC0FFEE])
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out: dict[str, None] = {}
    while len(out) < size:
        lengths = rng.integers(2, 10, size)
        chars = letters[rng.integers(0, 26, (size, 9))]
        for row, n in zip(chars, lengths.tolist(), strict=True):
            out.setdefault("".join(row[:n]), None)
            if len(out) == size:
                break
    return list(out)


def iter_near_duplicates(
    n: int,
    *,
    words: int = 100,
    dup_fraction: float = 0.3,
    edit_fraction: float = 0.1,
    ngram: int = 5,
    seed: int = 0,
    batch_size: int = 100_000,
) -> Iterator[Dataset]:
    """Stream a near-duplicate corpus of ``n`` records in batches of ``batch_size``.

    A ``dup_fraction`` of the records are copies of an original with between 0 and
    ``edit_fraction * words`` of their words replaced by random words (so the first
    copies are exact duplicates). Each record has ``words`` words drawn from a Zipf-like
    vocabulary; the first 12 are its ``instruction``, the rest its ``output``. Ground truth
    comes in two extra columns: ``dup_of`` (the original's id, null for originals) and
    ``jaccard`` (true Jaccard similarity of the copy's and the original's word
    ``ngram``-shingle sets, null for originals). Ids are ``synth:<position>``.

    Example:
        >>> parts = list(iter_near_duplicates(2_500, words=30, batch_size=1_000, seed=3))
        >>> [len(p) for p in parts]
        [1000, 1000, 500]
    """
    if n < 0 or words < 1 or not 0 <= dup_fraction < 1 or not 0 <= edit_fraction <= 1:
        raise ValueError(
            f"need n >= 0, words >= 1, 0 <= dup_fraction < 1, 0 <= edit_fraction <= 1; got "
            f"n={n}, words={words}, dup_fraction={dup_fraction}, edit_fraction={edit_fraction}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    vocab = pl.Series(vocabulary(seed))
    pending: list[pl.DataFrame] = []
    have = 0
    for start in range(0, n, BLOCK):
        block = _block(start, min(BLOCK, n - start), words, dup_fraction, edit_fraction, ngram, seed, vocab)
        pending.append(block)
        have += block.height
        while have >= batch_size:
            frame = pl.concat(pending)
            yield Dataset(frame.head(batch_size))
            rest = frame.slice(batch_size)
            pending, have = [rest], rest.height
    if have:
        yield Dataset(pl.concat(pending))


def near_duplicates(
    n: int,
    *,
    words: int = 100,
    dup_fraction: float = 0.3,
    edit_fraction: float = 0.1,
    ngram: int = 5,
    seed: int = 0,
) -> Dataset:
    """A near-duplicate corpus of ``n`` records with ground truth (see :func:`iter_near_duplicates`).

    Example:
        >>> ds = near_duplicates(1_000, words=50, seed=1)
        >>> frame = ds.to_polars()
        >>> frame["dup_of"].is_not_null().sum(), bool(frame["jaccard"].drop_nulls().min() >= 0)
        (300, True)
    """
    parts = list(iter_near_duplicates(
        n, words=words, dup_fraction=dup_fraction, edit_fraction=edit_fraction,
        ngram=ngram, seed=seed, batch_size=max(n, 1),
    ))
    return parts[0] if parts else Dataset(_empty())


def _empty() -> pl.DataFrame:
    from instructkit.schema import SCHEMA

    return pl.DataFrame(schema={**SCHEMA, "dup_of": pl.String, "jaccard": pl.Float64})


def _block(
    start: int, m: int, words: int, dup_fraction: float, edit_fraction: float,
    ngram: int, seed: int, vocab: pl.Series,
) -> pl.DataFrame:
    rng = np.random.default_rng([seed, start])
    n_copy = int(round(m * dup_fraction))
    n_orig = m - n_copy
    if n_orig == 0:
        n_orig, n_copy = 1, m - 1
    # Zipf-like word frequencies, as in real text: a few words are very common
    weights = 1.0 / (np.arange(_VOCAB_SIZE) + 10.0)
    cdf = np.cumsum(weights / weights.sum())
    originals = np.searchsorted(cdf, rng.random((n_orig, words)), side="right").clip(0, _VOCAB_SIZE - 1)
    parent = rng.integers(0, n_orig, n_copy)
    copies = originals[parent].copy()
    max_edits = int(round(edit_fraction * words))
    edits = rng.integers(0, max_edits + 1, n_copy)
    rank = np.argsort(rng.random((n_copy, words)), axis=1)
    changed = np.zeros((n_copy, words), dtype=bool)
    np.put_along_axis(changed, rank, np.arange(words)[None, :] < edits[:, None], axis=1)
    replacement = np.searchsorted(cdf, rng.random((n_copy, words)), side="right").clip(0, _VOCAB_SIZE - 1)
    copies[changed] = replacement[changed]
    jaccard = _jaccard(originals[parent], copies, ngram)
    rows = np.concatenate([originals, copies])
    order = rng.permutation(m)  # copies come before or after their originals at random
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m)
    ids = pl.Series([f"synth:{start + p}" for p in range(m)])
    parent_pos = position[parent]
    dup_of = np.full(m, -1, dtype=np.int64)
    dup_of[position[n_orig:]] = start + parent_pos
    jac = np.full(m, np.nan)
    jac[position[n_orig:]] = jaccard
    text = vocab.gather(rows[order].ravel()).reshape((m, words)).arr.to_list()
    return pl.DataFrame(
        {
            "id": ids,
            "source": pl.Series(["synth"] * m),
            "instruction": text.list.slice(0, _INSTRUCTION_WORDS).list.join(" "),
            "input": pl.Series([""] * m),
            "output": text.list.slice(_INSTRUCTION_WORDS).list.join(" "),
            "system": pl.Series([None] * m, dtype=pl.String),
            "messages": pl.Series([None] * m, dtype=pl.List(pl.Struct({"role": pl.String, "content": pl.String}))),
            "meta": pl.Series([None] * m, dtype=pl.String),
            "dup_of": pl.Series([f"synth:{d}" if d >= 0 else None for d in dup_of.tolist()], dtype=pl.String),
            "jaccard": pl.Series(jac).fill_nan(None),
        }
    )


def _jaccard(a: np.ndarray, b: np.ndarray, ngram: int) -> np.ndarray:
    """Exact Jaccard of the n-gram shingle sets of each row pair (word ids < 4096)."""
    sa, sb = _shingle_codes(a, ngram), _shingle_codes(b, ngram)
    sa.sort(axis=1)
    sb.sort(axis=1)
    # within a row, a repeated shingle counts once: replace repeats by values no other row
    # position can hold (above every real code, distinct between a and b)
    width = sa.shape[1]
    top = np.uint64(1) << np.uint64(63)
    rep_a = np.zeros_like(sa, dtype=bool)
    rep_a[:, 1:] = sa[:, 1:] == sa[:, :-1]
    rep_b = np.zeros_like(sb, dtype=bool)
    rep_b[:, 1:] = sb[:, 1:] == sb[:, :-1]
    cols = np.arange(width, dtype=np.uint64)[None, :]
    sa = np.where(rep_a, top + cols, sa)
    sb = np.where(rep_b, top + np.uint64(width) + cols, sb)
    both = np.sort(np.concatenate([sa, sb], axis=1), axis=1)
    inter = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    size_a = width - rep_a.sum(axis=1)
    size_b = width - rep_b.sum(axis=1)
    return inter / (size_a + size_b - inter)


def _shingle_codes(rows: np.ndarray, ngram: int) -> np.ndarray:
    words = rows.shape[1]
    if words < ngram:
        ngram = words
    count = words - ngram + 1
    code = np.zeros((rows.shape[0], count), dtype=np.uint64)
    for k in range(ngram):
        part = rows[:, k : k + count].astype(np.uint64)
        if 12 * ngram <= 62:
            code = (code << np.uint64(12)) | part  # exact: 12 bits per word
        else:
            code = code * np.uint64(0x9E3779B97F4A7C15) + part + np.uint64(1)
    return code


# =============================================================================================
# corpus(): multilingual corpora of any size with duplicates, PII and benchmark items planted,
# written to disk block by block with ground-truth tables (owned by the executors/bench work).
# =============================================================================================

#: Common words per language; word order is frequency order (weights fall off like Zipf's law).
#: Chinese is written as space-separated words so word shingles are defined for every language.
WORDS: dict[str, tuple[str, ...]] = {
    "en": tuple(
        "the of and to in is that it was for on are with as his they be at one have this from "
        "or had by word but what some we can out other were all there when up use your how said "
        "an each she which do their time if will way about many then them write would like so "
        "these her long make thing see him two has look more day could go come did number sound "
        "no most people my over know water than call first who may down side been now find any "
        "new work part take get place made live where after back little only round man year came "
        "show every good me give our under name very through just form sentence great think say "
        "help low line differ turn cause much mean before move right boy old too same tell does "
        "set three want air well also play small end put home read hand port large spell add even "
        "land here must big high such follow act why ask men change went light kind off need house "
        "picture try us again animal point mother world near build self earth father head stand "
        "own page should country found answer school grow study still learn plant cover food sun "
        "four between state keep eye never last let thought city tree cross farm hard start might "
        "story saw far sea draw left late run while press close night real life few north".split()
    ),
    "fr": tuple(
        "le de un être et à il avoir ne je son que se qui ce dans en du elle au pour pas que vous "
        "par sur faire plus dire me on mon lui nous comme mais pouvoir avec tout y aller voir en "
        "bien où sans tu ou leur homme si deux mari moi vouloir te femme venir quand grand celui "
        "notre devoir là jour prendre même votre rien petit encore aussi quelque dont tout mer "
        "trouver donner temps ça peu même falloir sous parler alors main chose savoir jamais "
        "passer regarder monde maison après vie nuit porte pays toujours enfant ville rue aimer "
        "croire laisser tête yeux depuis cœur pendant père mère heure premier chercher bon".split()
    ),
    "de": tuple(
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es "
        "an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so "
        "zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei hatte kann gegen "
        "vom können schon wenn habe seine ihre dann unter wir soll ich eines jahr zwei jahren "
        "diese dieser wieder keine seiner worden will zwischen immer millionen was sagte gibt "
        "alle diesem seit muss doch uns heute wo ihr neue ganz beim haus stadt kinder welt".split()
    ),
    "es": tuple(
        "de la que el en y a los se del las un por con no una su para es al lo como más pero sus "
        "le ya o este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien "
        "desde todo nos durante todos uno les ni contra otros ese eso ante ellos e esto mí antes "
        "algunos qué unos yo otro otras otra él tanto esa estos mucho quienes nada muchos cual "
        "poco ella estar estas algunas algo nosotros mi mis tú te ti tu tus ellas casa ciudad "
        "tiempo vida mundo año día hombre mujer niño agua tierra ahora siempre nunca".split()
    ),
    "it": tuple(
        "di e il la che a per in un è non una del le si con da i mi sono ma gli al ho lo come ci "
        "se io ti della più questo anche ha alla cosa bene dei nel tutto fatto sei hai perché "
        "allora era mio loro quando solo così lei molto fare cosa dove suo niente sempre ancora "
        "chi qui essere poi sua prima casa dopo tempo vita uomo giorno donna anni mondo città "
        "acqua terra notte parte paese lavoro bambino storia nostro vostro sapere dire".split()
    ),
    "pt": tuple(
        "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao "
        "ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso "
        "ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram "
        "essa num nem suas meu às minha têm numa pelos elas havia seja qual será nós tenho lhe "
        "casa cidade tempo vida mundo ano dia homem mulher criança água terra agora sempre".split()
    ),
    "ru": tuple(
        "и в не на я быть он с что а по это она этот к но они мы как из у который то за свой "
        "весь год от так о для ты же все тот мочь вы человек такой его сказать только или ещё "
        "бы себя один как уже до время если сам когда другой вот говорить наш мой знать стать "
        "при чтобы дело жизнь кто первый очень два день её новый рука даже во со раз где там "
        "под можно ну какой после их работа без самый потом надо хотеть ли слово идти".split()
    ),
    "zh": tuple(
        "的 一 是 在 不 了 有 和 人 这 中 大 为 上 个 国 我 以 要 他 时 来 用 们 生 到 作 地 于 "
        "出 就 分 对 成 会 可 主 发 年 动 同 工 也 能 下 过 子 说 产 种 面 而 方 后 多 定 行 学 "
        "法 所 民 得 经 十 三 之 进 着 等 部 度 家 电 力 里 如 水 化 高 自 二 理 起 小 物 现 实 "
        "加 量 都 两 体 制 机 当 使 点 从 业 本 去 把 性 好 应 开 它 合 还 因 由 其 些 然 前 外".split()
    ),
}

_PII_KINDS = ("email", "phone", "ip_address", "credit_card")


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _pii_value(kind: str, rng: np.random.Generator) -> str:
    if kind == "email":
        user = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 8))
        return f"{user}.{int(rng.integers(10, 99))}@example.com"
    if kind == "phone":
        return f"+1 415-555-{int(rng.integers(0, 10_000)):04d}"
    if kind == "ip_address":
        return ".".join(str(int(x)) for x in rng.integers(1, 255, 4))
    return _luhn("4" + "".join(str(int(d)) for d in rng.integers(0, 10, 14)))  # a Visa-like 16 digits


@dataclass(frozen=True)
class SynthCorpus:
    """A corpus written by :func:`corpus` and its ground-truth tables (Parquet files).

    - ``duplicates``: ``id, dup_of, jaccard, edits`` for every planted copy (``jaccard`` is the
      exact Jaccard of the word ``ngram``-shingle sets of instruction + output).
    - ``pii``: ``id, field, kind, value`` for every planted PII value.
    - ``contamination``: ``id, benchmark_index`` for every planted benchmark item.
    - ``languages``: ``id, lang`` for every record.
    """

    path: Path
    n: int
    truth: dict[str, Path]

    def duplicates(self) -> pl.DataFrame:
        """Planted copies: ``id, dup_of, jaccard, edits``."""
        return pl.read_parquet(self.truth["duplicates"])

    def pii(self) -> pl.DataFrame:
        """Planted PII: ``id, field, kind, value``."""
        return pl.read_parquet(self.truth["pii"])

    def contamination(self) -> pl.DataFrame:
        """Planted benchmark items: ``id, benchmark_index``."""
        return pl.read_parquet(self.truth["contamination"])

    def languages(self) -> pl.DataFrame:
        """Language of every record: ``id, lang``."""
        return pl.read_parquet(self.truth["languages"])


def _language_weights(languages: Sequence[str] | Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    shares = dict(languages) if isinstance(languages, Mapping) else {lang: 1.0 for lang in languages}
    unknown = sorted(set(shares) - set(WORDS))
    if unknown or not shares:
        raise ValueError(f"languages must be among {sorted(WORDS)}; got {sorted(shares) or 'none'}")
    names = sorted(shares)
    weights = np.array([shares[k] for k in names], dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"language shares must be >= 0 with a positive sum; got {shares}")
    return names, weights / weights.sum()


def _benchmark_items(benchmark: Any) -> list[tuple[str, str]]:
    if benchmark is None:
        return []
    if isinstance(benchmark, (str, Path)):
        from instructkit.io.scan import scan

        frames = list(scan(benchmark, batch_size=1 << 30))
        rows = pl.concat(frames) if frames else pl.DataFrame(schema={"instruction": pl.String, "output": pl.String})
        return list(zip(rows["instruction"].to_list(), rows["output"].to_list(), strict=True))
    items = []
    for item in benchmark:
        if isinstance(item, str):
            items.append((item, ""))
        elif isinstance(item, Mapping) and "question" in item:
            items.append((str(item["question"]), str(item.get("answer", ""))))
        else:
            raise ValueError(f"benchmark items must be strings or {{question, answer}} dicts; got {item!r:.80}")
    return items


def corpus(
    n: int,
    seed: int = 0,
    dup_fraction: float = 0.1,
    edit_fraction: float = 0.1,
    languages: Sequence[str] | Mapping[str, float] = ("en",),
    pii_rate: float = 0.0,
    contamination: float = 0.0,
    *,
    path: str | Path,
    benchmark: Any = None,
    words: int = 100,
    ngram: int = 5,
) -> SynthCorpus:
    """Write a synthetic corpus of ``n`` records to ``path`` (.jsonl, .jsonl.gz or .parquet).

    Records are generated and written block by block (10,000 at a time), so ``n`` may
    exceed memory. Each record has ``words`` words of one language (``languages``: names, or
    ``{name: share}``), drawn with Zipf-like frequencies from :data:`WORDS`; the first 12 are
    the ``instruction``, the rest the ``output``. ``words`` sets the record size: a JSONL
    record of en/fr/de text takes about 4.3 bytes per word plus ~50 bytes of keys and id
    (100 words: ~480 B; 220 words: ~1 KB, so 10M records make ~10 GB). Ground truth goes
    to ``<path>.truth/``:

    - each record is, with probability ``dup_fraction``, a copy of an earlier record of its block with up to
      ``edit_fraction * words`` words replaced (true Jaccard of word ``ngram``-shingles kept);
    - a ``pii_rate`` of records get one email, phone, IP address or card number in their
      output;
    - a ``contamination`` share of records are benchmark items (``benchmark``: a file
      :func:`instructkit.scan` reads, or strings, or ``{question, answer}`` dicts), verbatim.

    PII and benchmark items are planted only in records outside any duplicate pair, so each
    truth table can be scored on its own. Same arguments, same bytes.

    Example:
        >>> import tempfile, instructkit as ik
        >>> c = ik.synth.corpus(2_000, seed=1, dup_fraction=0.2, pii_rate=0.05,
        ...                     path=tempfile.mkdtemp() + "/c.jsonl")
        >>> len(c.duplicates()), len(c.pii()), c.languages()["lang"].unique().to_list()
        (355, 100, ['en'])
    """
    if n < 0 or words < ngram or not 0 <= dup_fraction < 1 or not 0 <= edit_fraction <= 1:
        raise ValueError(
            f"need n >= 0, words >= ngram, 0 <= dup_fraction < 1, 0 <= edit_fraction <= 1; got "
            f"n={n}, words={words}, ngram={ngram}, dup_fraction={dup_fraction}, edit_fraction={edit_fraction}"
        )
    if not 0 <= pii_rate <= 1 or not 0 <= contamination <= 1:
        raise ValueError(f"pii_rate and contamination are shares in [0, 1]; got {pii_rate}, {contamination}")
    names, shares = _language_weights(languages)
    items = _benchmark_items(benchmark)
    if contamination > 0 and not items:
        raise ValueError("contamination > 0 needs benchmark= (a file, strings or {question, answer} dicts)")
    path = Path(path)
    kind = path.name.lower()
    if not kind.endswith((".jsonl", ".jsonl.gz", ".parquet")):
        raise ValueError(f"{path}: corpus() writes .jsonl, .jsonl.gz or .parquet")
    truth_dir = path.with_name(path.name + ".truth")
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth = {k: truth_dir / f"{k}.parquet" for k in ("duplicates", "pii", "contamination", "languages")}
    vocabs = {lang: pl.Series(WORDS[lang]) for lang in names}
    zipf = {lang: np.cumsum(w := 1.0 / (np.arange(len(WORDS[lang])) + 2.0)) / w.sum() for lang in names}

    import pyarrow.parquet as pq

    writers: dict[str, Any] = {}
    tmp = path.with_name(path.name + ".tmp")

    def put(name: str, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if name not in writers:
            writers[name] = pq.ParquetWriter(truth[name].with_suffix(".tmp"), table.schema)
        writers[name].write_table(table)

    data_writer: Any = None
    import gzip

    raw = None if kind.endswith(".parquet") else open(tmp, "wb")
    sink: Any = raw
    if kind.endswith(".gz"):
        # no file name and no time stamp in the header, so the bytes depend on the arguments only
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
    try:
        for start in range(0, n, BLOCK):
            frame, dups, pii, contam, langs = _corpus_block(
                start, min(BLOCK, n - start), seed, dup_fraction, edit_fraction, names, shares,
                vocabs, zipf, pii_rate, contamination, items, words, ngram,
            )
            if sink is not None:
                sink.write(frame.write_ndjson().encode())
            else:
                table = frame.to_arrow()
                if data_writer is None:
                    data_writer = pq.ParquetWriter(tmp, table.schema)
                data_writer.write_table(table)
            put("duplicates", dups)
            put("pii", pii)
            put("contamination", contam)
            put("languages", langs)
    finally:
        if sink is not None:
            sink.close()
        if raw is not None:
            raw.close()
        if data_writer is not None:
            data_writer.close()
        for w in writers.values():
            w.close()
    if n == 0:
        if kind.endswith(".parquet"):
            pl.DataFrame(schema={"id": pl.String, "instruction": pl.String, "input": pl.String, "output": pl.String}).write_parquet(tmp)
        elif sink is None:
            tmp.write_bytes(b"")
    for name, target in truth.items():
        part = target.with_suffix(".tmp")
        if part.exists():
            part.replace(target)
        else:
            _TRUTH_SCHEMAS[name].write_parquet(target)
    tmp.replace(path)
    return SynthCorpus(path, n, truth)


_TRUTH_SCHEMAS = {
    "duplicates": pl.DataFrame(schema={"id": pl.String, "dup_of": pl.String, "jaccard": pl.Float64, "edits": pl.Int64}),
    "pii": pl.DataFrame(schema={"id": pl.String, "field": pl.String, "kind": pl.String, "value": pl.String}),
    "contamination": pl.DataFrame(schema={"id": pl.String, "benchmark_index": pl.Int64}),
    "languages": pl.DataFrame(schema={"id": pl.String, "lang": pl.String}),
}


def _corpus_block(
    start: int, m: int, seed: int, dup_fraction: float, edit_fraction: float,
    names: list[str], shares: np.ndarray, vocabs: dict[str, pl.Series], zipf: dict[str, np.ndarray],
    pii_rate: float, contamination: float, items: list[tuple[str, str]], words: int, ngram: int,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One block of records: originals, copies of earlier originals of the block, plants."""
    rng = np.random.default_rng([seed, 0x5EED, start])
    lang = rng.choice(len(names), m, p=shares)
    cdf_len = {k: len(zipf[names[k]]) for k in range(len(names))}
    tokens = np.zeros((m, words), dtype=np.int64)
    u = rng.random((m, words))
    for k in range(len(names)):
        rows = lang == k
        tokens[rows] = np.searchsorted(zipf[names[k]], u[rows], side="right").clip(0, cdf_len[k] - 1)
    # copies: a record at position i > 0 copies an earlier position of the block
    is_copy = rng.random(m) < dup_fraction
    is_copy[0] = False
    positions = np.arange(m)
    parent = np.full(m, -1, dtype=np.int64)
    parent[is_copy] = (rng.random(is_copy.sum()) * positions[is_copy]).astype(np.int64)
    # a copy of a copy would chain; point it at the first original instead
    for i in np.flatnonzero(is_copy):
        while is_copy[parent[i]]:
            parent[i] = parent[parent[i]]
    max_edits = int(round(edit_fraction * words))
    edits = np.zeros(m, dtype=np.int64)
    edits[is_copy] = rng.integers(0, max_edits + 1, is_copy.sum())
    replacement_u = rng.random((m, words))
    order = np.argsort(rng.random((m, words)), axis=1)
    for i in np.flatnonzero(is_copy):
        p = parent[i]
        lang[i] = lang[p]
        tokens[i] = tokens[p]
        if edits[i]:
            where = order[i, : edits[i]]
            cdf = zipf[names[lang[i]]]
            tokens[i, where] = np.searchsorted(cdf, replacement_u[i, where], side="right").clip(0, len(cdf) - 1)
    copies = np.flatnonzero(is_copy)
    jaccard = _jaccard(tokens[parent[copies]], tokens[copies], ngram) if len(copies) else np.zeros(0)
    # text, per language
    instruction = [""] * m
    output = [""] * m
    for k, name in enumerate(names):
        rows = np.flatnonzero(lang == k)
        if not len(rows):
            continue
        text = vocabs[name].gather(tokens[rows].ravel()).reshape((len(rows), words)).arr.to_list()
        ins = text.list.slice(0, _INSTRUCTION_WORDS).list.join(" ").to_list()
        out = text.list.slice(_INSTRUCTION_WORDS).list.join(" ").to_list()
        for j, r in enumerate(rows.tolist()):
            instruction[r], output[r] = ins[j], out[j]
    ids = [f"synth:{start + i}" for i in range(m)]
    # plants go to records outside every duplicate pair
    in_pair = is_copy.copy()
    in_pair[parent[copies]] = True
    free = np.flatnonzero(~in_pair)
    pick = rng.permutation(free)
    n_contam = min(int(round(m * contamination)), len(pick))
    n_pii = min(int(round(m * pii_rate)), len(pick) - n_contam)
    contam_rows, pii_rows = pick[:n_contam], pick[n_contam : n_contam + n_pii]
    contam_index = rng.integers(0, max(len(items), 1), n_contam)
    for r, b in zip(contam_rows.tolist(), contam_index.tolist(), strict=True):
        instruction[r], output[r] = items[b]
    pii_truth = []
    kinds = rng.integers(0, len(_PII_KINDS), n_pii)
    cut = rng.integers(1, words - _INSTRUCTION_WORDS, n_pii)
    for r, kind, at in zip(pii_rows.tolist(), kinds.tolist(), cut.tolist(), strict=True):
        value = _pii_value(_PII_KINDS[kind], rng)
        parts = output[r].split(" ")
        output[r] = " ".join([*parts[:at], value, *parts[at:]])
        pii_truth.append({"id": ids[r], "field": "output", "kind": _PII_KINDS[kind], "value": value})
    frame = pl.DataFrame({
        "id": ids,
        "instruction": instruction,
        "input": [""] * m,
        "output": output,
        "lang": [names[k] for k in lang.tolist()],
    })
    dups = pl.DataFrame({
        "id": [ids[i] for i in copies.tolist()],
        "dup_of": [ids[p] for p in parent[copies].tolist()],
        "jaccard": jaccard.astype(np.float64),
        "edits": edits[copies],
    }, schema=_TRUTH_SCHEMAS["duplicates"].schema)
    pii = pl.DataFrame(pii_truth, schema=_TRUTH_SCHEMAS["pii"].schema)
    contam = pl.DataFrame({
        "id": [ids[r] for r in contam_rows.tolist()],
        "benchmark_index": contam_index,
    }, schema=_TRUTH_SCHEMAS["contamination"].schema)
    return frame.drop("lang"), dups, pii, contam, frame.select("id", "lang")
