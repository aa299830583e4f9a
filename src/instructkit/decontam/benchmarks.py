"""Evaluation benchmarks to decontaminate against, read from local files (never downloaded).

Each loader returns a :class:`Benchmark`: a name, one id and one text per item (the text the
n-gram index is built from) and a *query* per item (the prompt side, which the semantic stage
embeds). Loaders:

- :func:`humaneval`: ``HumanEval.jsonl.gz`` (text = prompt + canonical solution).
- :func:`gsm8k`: the GSM8K ``test.jsonl`` (text = question + answer, calculator
  annotations ``<<...>>`` removed so the text reads as it does in training sets).
- :func:`mmlu`: the MMLU CSV folder or its ``.tar``/``.tar.gz`` (text = question + choices).
- :func:`from_file`: any json, jsonl, csv or parquet file, with the fields you name.

Example:
    >>> import instructkit as ik
    >>> bench = ik.benchmarks.from_records(
    ...     "toy", [{"q": "What is the boiling point of water at sea level in Celsius?"}],
    ...     fields=["q"])
    >>> bench.name, len(bench)
    ('toy', 1)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import xxhash

#: Where to get each benchmark when the file is missing.
SOURCES: dict[str, str] = {
    "humaneval": "https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
    "gsm8k": "https://raw.githubusercontent.com/openai/grade-school-math/master/"
    "grade_school_math/data/test.jsonl",
    "mmlu": "https://people.eecs.berkeley.edu/~hendrycks/data.tar "
    "(or the CSVs in https://github.com/hendrycks/test)",
}

_CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True)
class Benchmark:
    """Items of one evaluation set: ``ids``, ``texts`` (indexed) and ``queries`` (embedded).

    ``source`` says where the items came from (a path, or ``"records"``); ``spec`` is the
    loader call that made it, ``{"gsm8k": "test.jsonl"}``, the form a recipe holds
    (:meth:`to_config`).

    Example:
        >>> b = Benchmark("toy", ("0",), ("What is 2 + 2? 4",), ("What is 2 + 2?",))
        >>> b.head(1).ids
        ('0',)
    """

    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    queries: tuple[str, ...] = ()
    source: str = "records"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    spec: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a benchmark needs a non-empty name")
        if not self.queries:
            object.__setattr__(self, "queries", self.texts)
        if not (len(self.ids) == len(self.texts) == len(self.queries)):
            raise ValueError(
                f"benchmark {self.name!r}: {len(self.ids)} ids, {len(self.texts)} texts and "
                f"{len(self.queries)} queries; they must have the same length"
            )
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"benchmark {self.name!r}: item ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Benchmark({self.name!r}, {len(self)} items, source={self.source!r})"

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the name, ids and texts: indexes are cached under it."""
        h = xxhash.xxh64()
        for part in (self.name, *self.ids, *self.texts, *self.queries):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()

    def to_config(self) -> dict[str, Any]:
        """The recipe form: the loader call that read it (``{"gsm8k": "test.jsonl"}``), or,
        for items built in memory, the items themselves (``{"items": {name, ids, texts,
        queries}}``). :func:`resolve` turns either back into this benchmark.

        Example:
            >>> b = from_records("toy", [{"q": "a"}], fields=["q"])
            >>> b.to_config()
            {'items': {'name': 'toy', 'ids': ['0'], 'texts': ['a'], 'queries': ['a']}}
            >>> resolve(b.to_config()) == b
            True
        """
        if self.spec is not None:
            return {k: dict(v) if isinstance(v, Mapping) else v for k, v in self.spec.items()}
        return {"items": {"name": self.name, "ids": list(self.ids), "texts": list(self.texts),
                          "queries": list(self.queries)}}

    def text(self, item: str) -> str:
        """The text of the item with id ``item``."""
        return self.texts[self._positions[item]]

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.ids)}

    def head(self, n: int) -> Benchmark:
        """The first ``n`` items (for quick experiments)."""
        return self.take(range(min(n, len(self))))

    def take(self, positions: Iterable[int]) -> Benchmark:
        """The items at ``positions``, in that order."""
        pos = list(positions)
        return Benchmark(
            self.name,
            tuple(self.ids[i] for i in pos),
            tuple(self.texts[i] for i in pos),
            tuple(self.queries[i] for i in pos),
            self.source,
        )


def humaneval(
    path: str | Path, name: str = "humaneval", include_solution: bool = False
) -> Benchmark:
    """HumanEval from ``HumanEval.jsonl.gz`` (or an uncompressed ``.jsonl``).

    Text = the prompt (signature, docstring and examples), plus the canonical solution when
    ``include_solution``; query = the prompt. Solutions are left out by default because
    they are short generic code (prime loops, digit sums) found in any code corpus: indexed,
    they flag 7 of the 2,017 Code Alpaca records, none of them a HumanEval problem, while
    every planted prompt is caught without them.

    Example:
        >>> import instructkit as ik
        >>> ik.benchmarks.humaneval("HumanEval.jsonl.gz")  # doctest: +SKIP
        Benchmark('humaneval', 164 items, source='HumanEval.jsonl.gz')
    """
    given, path = path, _existing(path, "humaneval")
    rows = _read_jsonl(path)
    ids, texts, queries = [], [], []
    for i, row in enumerate(rows):
        prompt = _field(row, "prompt", path, i)
        ids.append(str(row.get("task_id", i)))
        solution = _field(row, "canonical_solution", path, i)
        texts.append(prompt + solution if include_solution else prompt)
        queries.append(prompt)
    spec = _spec("humaneval", given, name=(name, "humaneval"), include_solution=(include_solution, False))
    return Benchmark(name, tuple(ids), tuple(texts), tuple(queries), str(path), spec=spec)


def gsm8k(path: str | Path, name: str = "gsm8k") -> Benchmark:
    """GSM8K from its ``test.jsonl`` (``question``/``answer`` per line).

    Text = question + answer with the ``<<48/2=24>>`` calculator annotations removed;
    query = the question. Item ids are line numbers (from 0).

    Example:
        >>> import instructkit as ik
        >>> ik.benchmarks.gsm8k("gsm8k_test.jsonl")  # doctest: +SKIP
        Benchmark('gsm8k', 1319 items, source='gsm8k_test.jsonl')
    """
    given, path = path, _existing(path, "gsm8k")
    ids, texts, queries = [], [], []
    for i, row in enumerate(_read_jsonl(path)):
        question = _field(row, "question", path, i)
        answer = _CALCULATOR.sub("", _field(row, "answer", path, i))
        ids.append(str(i))
        texts.append(f"{question}\n{answer}")
        queries.append(question)
    spec = _spec("gsm8k", given, name=(name, "gsm8k"))
    return Benchmark(name, tuple(ids), tuple(texts), tuple(queries), str(path), spec=spec)


def mmlu(
    path: str | Path, splits: Sequence[str] = ("test",), name: str = "mmlu"
) -> Benchmark:
    """MMLU from a folder of CSVs or the ``.tar``/``.tar.gz`` archive of one.

    Files are ``<subject>_<split>.csv`` without a header: question, A, B, C, D, answer.
    Text = question + the four choices; item ids are ``<subject>/<split>/<row>``.

    Example:
        >>> import instructkit as ik
        >>> ik.benchmarks.mmlu("mmlu_dev_val_test_csv.tar.gz")  # doctest: +SKIP
        Benchmark('mmlu', 14042 items, source='mmlu_dev_val_test_csv.tar.gz')
    """
    given, path = path, _existing(path, "mmlu")
    wanted = set(splits)
    files: list[tuple[str, str, str]] = []  # (subject, split, csv text)
    pattern = re.compile(r"(?:^|/)([a-z_]+)_(dev|val|test)\.csv$")
    if path.is_dir():
        for csv_path in sorted(path.rglob("*.csv")):
            m = pattern.search(csv_path.as_posix())
            if m and m.group(2) in wanted:
                files.append((m.group(1), m.group(2), csv_path.read_text(encoding="utf-8")))
    else:
        try:
            with tarfile.open(path) as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    m = pattern.search(member.name)
                    if member.isfile() and m and m.group(2) in wanted:
                        data = tar.extractfile(member)
                        assert data is not None  # a regular file always has data
                        files.append((m.group(1), m.group(2), data.read().decode("utf-8")))
        except tarfile.TarError as e:
            raise ValueError(f"{path}: not a folder of MMLU CSVs nor a tar archive ({e})") from e
    if not files:
        raise ValueError(
            f"{path}: no MMLU files '<subject>_<split>.csv' for splits {sorted(wanted)}"
        )
    ids, texts = [], []
    for subject, split, text in files:
        for row_no, row in enumerate(csv.reader(io.StringIO(text))):
            if len(row) != 6:
                raise ValueError(
                    f"{path}: {subject}_{split}.csv row {row_no} has {len(row)} columns, "
                    "expected 6 (question, A, B, C, D, answer)"
                )
            ids.append(f"{subject}/{split}/{row_no}")
            texts.append("\n".join(row[:5]))
    spec = _spec("mmlu", given, splits=(list(splits), ["test"]), name=(name, "mmlu"))
    return Benchmark(name, tuple(ids), tuple(texts), tuple(texts), str(path), spec=spec)


def from_file(
    path: str | Path,
    fields: Sequence[str],
    name: str | None = None,
    id_field: str | None = None,
) -> Benchmark:
    """Any json, jsonl(.gz), csv or parquet file; the item text joins ``fields`` in order.

    The query (what the semantic stage embeds) is the first field. Item ids come from
    ``id_field`` or are row numbers. ``name`` defaults to the file stem.

    Example:
        >>> import instructkit as ik
        >>> ik.benchmarks.from_file("gsm8k_train_alpaca.json",
        ...     fields=["instruction", "output"], name="gsm8k_train")  # doctest: +SKIP
        Benchmark('gsm8k_train', 7473 items, source='gsm8k_train_alpaca.json')
    """
    if isinstance(fields, str) or not fields:
        raise ValueError(f"from_file({path!r}): fields must be a non-empty list of field names")
    given, path = path, _existing(path, None)
    rows = _read_rows(path)
    ids, texts, queries = [], [], []
    for i, row in enumerate(rows):
        values = [_field(row, f, path, i, allow_null=True) for f in fields]
        ids.append(str(row[id_field]) if id_field is not None and id_field in row else str(i))
        if id_field is not None and id_field not in row:
            raise ValueError(f"{path}: row {i} has no id field {id_field!r}")
        texts.append("\n".join(v for v in values if v))
        queries.append(values[0])
    stem = path.name.split(".")[0]
    spec = _spec("from_file", given, fields=(list(fields), None), name=(name, None),
                 id_field=(id_field, None))
    return Benchmark(name or stem, tuple(ids), tuple(texts), tuple(queries), str(path), spec=spec)


def from_records(
    name: str, records: Iterable[Mapping[str, Any]], fields: Sequence[str], id_field: str | None = None
) -> Benchmark:
    """A benchmark from in-memory dicts (tests, or items fetched by other means).

    Example:
        >>> from_records("toy", [{"q": "a"}, {"q": "b"}], fields=["q"]).texts
        ('a', 'b')
    """
    rows = list(records)
    ids = tuple(str(r[id_field]) if id_field else str(i) for i, r in enumerate(rows))
    values = [[_field(r, f, Path(name), i, allow_null=True) for f in fields] for i, r in enumerate(rows)]
    texts = tuple("\n".join(v for v in vals if v) for vals in values)
    return Benchmark(name, ids, texts, tuple(v[0] for v in values), "records")


def items(name: str, ids: Sequence[str], texts: Sequence[str], queries: Sequence[str] = ()) -> Benchmark:
    """A benchmark from its items as lists (the recipe form of an in-memory benchmark).

    Example:
        >>> items("toy", ["0"], ["What is 2 + 2?"]).texts
        ('What is 2 + 2?',)
    """
    return Benchmark(name, tuple(map(str, ids)), tuple(texts), tuple(queries), "records")


#: Loader names a recipe may use: ``{"gsm8k": "path"}`` or ``{"mmlu": {"path": ..., ...}}``.
LOADERS = {"humaneval": humaneval, "gsm8k": gsm8k, "mmlu": mmlu, "from_file": from_file,
           "items": items}


def resolve(spec: Benchmark | Mapping[str, Any]) -> Benchmark:
    """Turn one recipe entry into a :class:`Benchmark` (objects pass through).

    Example:
        >>> resolve({"from_file": {"path": "train.json", "fields": ["q"]}})  # doctest: +SKIP
    """
    if isinstance(spec, Benchmark):
        return spec
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError(
            f"a benchmark is a Benchmark object or one {{loader: path}} mapping with loader in "
            f"{sorted(LOADERS)}, got {spec!r}"
        )
    (loader, args), = spec.items()
    if loader not in LOADERS:
        raise ValueError(f"unknown benchmark loader {loader!r}; known: {sorted(LOADERS)}")
    if isinstance(args, (str, Path)):
        return LOADERS[loader](args)
    if isinstance(args, Mapping):
        try:
            return LOADERS[loader](**args)
        except TypeError as e:
            raise ValueError(f"bad arguments for benchmark loader {loader!r}: {e}") from e
    raise ValueError(f"benchmark {loader!r}: expected a path or a mapping of arguments, got {args!r}")


# helpers ----------------------------------------------------------------------------------
def _spec(loader: str, path: str | Path, **args: tuple[Any, Any]) -> dict[str, Any]:
    """``{loader: path}``, or ``{loader: {path, ...}}`` with the arguments (given as
    ``(value, default)``) that differ from their defaults."""
    extra = {k: v for k, (v, default) in args.items() if v != default}
    path = str(path)
    return {loader: {"path": path, **extra} if extra else path}


def _existing(path: str | Path, kind: str | None) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        where = f" Get it from {SOURCES[kind]} and pass its local path." if kind else ""
        raise FileNotFoundError(
            f"benchmark file {str(p)!r} does not exist (instructkit never downloads "
            f"benchmarks).{where}"
        )
    return p


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 (closed by the caller's with)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {line_no} is not valid JSON ({e})") from e
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {line_no} is not a JSON object")
            rows.append(row)
    return rows


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffixes = [s.lower() for s in path.suffixes]
    kind = suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1 else (
        suffixes[-1] if suffixes else ""
    )
    if kind == ".jsonl":
        return _read_jsonl(path)
    if kind == ".json":
        with _open_text(path) as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from e
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ValueError(f"{path}: expected a JSON list of objects")
            data = lists[0]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path}: expected a JSON list of objects")
        return data
    if kind in (".csv", ".parquet"):
        import polars as pl

        frame = pl.read_csv(path, infer_schema=False) if kind == ".csv" else pl.read_parquet(path)
        return frame.to_dicts()
    raise ValueError(f"{path}: unsupported benchmark file type; use json, jsonl, csv or parquet")


def _field(
    row: Mapping[str, Any], name: str, path: Path, index: int, allow_null: bool = False
) -> str:
    if name not in row:
        raise ValueError(f"{path}: item {index} has no field {name!r}; fields: {sorted(row)}")
    value = row[name]
    if value is None and allow_null:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{path}: item {index} field {name!r} is {type(value).__name__}, expected text")
    return value
