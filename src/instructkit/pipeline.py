"""``Pipeline``: an ordered list of transforms, savable as a YAML recipe.

A recipe file holds the steps, and optionally where the data comes from and goes::

    inputs:                      # optional: files to read (paths relative to the recipe)
      - {path: data/code.jsonl, source: code}
      - {path: data/chat.json, source: chat, on_error: skip}
    mix: {weights: {code: 0.3, chat: 0.7}, total: 5000, seed: 0}   # optional
    steps:
      - normalize
      - quality: {min_words: {instruction: 3}}
      - dedup.exact
    output: {path: out/clean.jsonl, format: alpaca}                 # optional
    removed: out/removed.jsonl                                      # optional
    split: {eval_fraction: 0.05, seed: 0}                           # optional
    report: out/report.html                                         # optional

``Pipeline.from_yaml`` reads just the steps; ``run_recipe`` runs the whole job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from instructkit.dataset import Dataset
from instructkit.transform import Transform, from_config

if TYPE_CHECKING:
    from instructkit.executors.local import RunResult


class Pipeline:
    """Transforms run in order; each records what it removed and why.

    Example:
        >>> import instructkit as ik
        >>> pipe = ik.Pipeline([ik.normalize(), ik.quality()])
        >>> ds = ik.Dataset.from_records([{"instruction": "Hi", "output": " "}])
        >>> len(pipe(ds)), pipe(ds).removed["reason"][0]
        (0, 'empty_output')
        >>> print(pipe.to_yaml().strip())
        steps:
        - normalize: {}
        - quality: {}
    """

    def __init__(self, steps: Sequence[Transform]) -> None:
        for i, step in enumerate(steps):
            if not isinstance(step, Transform):
                raise TypeError(f"step {i} is a {type(step).__name__}, not a Transform")
        self.steps = list(steps)

    def __call__(self, dataset: Dataset) -> Dataset:
        return dataset.pipe(*self.steps)

    def __repr__(self) -> str:
        inner = "".join(f"\n  {s!r}," for s in self.steps)
        return f"Pipeline([{inner}\n])"

    def __len__(self) -> int:
        return len(self.steps)

    def run(self, source: Any, executor: str = "local", **options: Any) -> Any:
        """Run out of core (batch by batch, writing shards) or on Ray.

        See :func:`instructkit.executors.run` for ``batch_size``, ``output`` and ``resume``.

        Example:
            >>> ik.Pipeline([ik.normalize()]).run("big/*.jsonl", output="out/")  # doctest: +SKIP
        """
        from instructkit.executors import run

        return run(self.steps, source, executor=executor, **options)

    def to_config(self) -> dict[str, Any]:
        """The recipe form: ``{"steps": [{name: params}, ...]}``."""
        return {"steps": [s.to_config() for s in self.steps]}

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The recipe as YAML text, also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_config(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Pipeline:
        """Build from a recipe mapping with a ``steps`` list."""
        steps = config.get("steps")
        if not isinstance(steps, list):
            raise ValueError("a recipe needs a 'steps' list")
        return cls([from_config(s) for s in steps])

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> Pipeline:
        """Load the steps of a YAML recipe (a file path or the YAML text itself).

        Example:
            >>> ik.Pipeline.from_yaml("steps: [normalize, {quality: {empty_output: false}}]")
            Pipeline([
              Normalize(),
              Quality(empty_output=False),
            ])
        """
        return cls.from_config(_load_yaml(path_or_text))


@dataclass
class RecipeResult:
    """What :func:`run_recipe` produced: the clean data, the eval split and written files;
    for a recipe with a ``run:`` section, the out-of-core run (``dataset`` is then None:
    the records are in the shards of ``run.output``)."""

    dataset: Dataset | None
    eval: Dataset | None = None
    files: dict[str, Path] = field(default_factory=dict)
    run: RunResult | None = None

    def report(self) -> pl.DataFrame:
        """Per step: records in and out, removed by reason, seconds."""
        if self.run is not None:
            return self.run.report()
        assert self.dataset is not None
        return self.dataset.report()


#: Keys of a recipe's ``run:`` section (see :func:`instructkit.executors.run`).
RUN_OPTIONS = ("executor", "batch_size", "output", "format", "resume", "address", "num_cpus", "workers")


def run_recipe(
    path_or_text: str | Path, base: str | Path | None = None, run: dict[str, Any] | None = None
) -> RecipeResult:
    """Run a whole recipe: read inputs, mix, run the steps, split, write, report.

    Relative paths resolve against the recipe's folder (or ``base``). A ``run:`` section
    (or ``run=``, whose keys override it) runs the steps out of core instead: inputs are
    scanned in batches and the records go to shards in ``run.output``, on the ``local`` or
    the ``ray`` executor (see :func:`instructkit.executors.run` and docs/scaling.md)::

        inputs: [{path: corpus/*.jsonl.gz, on_error: skip}]
        steps: [normalize, quality, dedup.exact, dedup.minhash]
        run: {executor: local, batch_size: 100000, output: clean/}

    Example:
        >>> from instructkit.pipeline import run_recipe
        >>> run_recipe("recipe.yaml").dataset.report()     # doctest: +SKIP
    """
    config = _load_yaml(path_or_text)
    if base is None:
        base = Path(path_or_text).parent if _is_path(path_or_text) else Path.cwd()
    base = Path(base)
    known = {"inputs", "mix", "steps", "output", "split", "removed", "report", "run"}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown recipe section(s) {sorted(unknown)}; known: {sorted(known)}")
    if run is not None or config.get("run") is not None:
        return _run_out_of_core(config, base, {**(config.get("run") or {}), **(run or {})})
    dataset = _read_inputs(config.get("inputs"), base)
    if config.get("mix"):
        from instructkit.sampling.mix import mix_from_config

        dataset = mix_from_config(dataset.by_source(), config["mix"])
    dataset = Pipeline.from_config({"steps": config.get("steps") or []})(dataset)
    result = RecipeResult(dataset)
    if config.get("split"):
        from instructkit.sampling.split import split

        result.dataset, result.eval = split(dataset, **config["split"])
    if config.get("output"):
        out = dict(config["output"])
        target = base / out.pop("path")
        result.files["output"] = result.dataset.write(target, **out)
        if result.eval is not None:
            eval_path = target.with_name(target.name.replace(".", ".eval.", 1))
            result.files["eval"] = result.eval.write(eval_path, **out)
    if config.get("removed"):
        result.files["removed"] = write_removed(result.dataset.removed, base / config["removed"])
    if config.get("report"):
        from instructkit.reports.html import report

        result.files["report"] = Path(report(result.dataset, base / config["report"]))
    return result


def write_removed(removed: pl.DataFrame, path: str | Path) -> Path:
    """Write the removed log as JSON Lines (atomically: a temp file, then a rename).

    Example:
        >>> import instructkit as ik, tempfile
        >>> ds = ik.Dataset.from_records([{"instruction": "a", "output": ""}]).pipe(ik.quality())
        >>> write_removed(ds.removed, tempfile.mkdtemp() + "/removed.jsonl").name
        'removed.jsonl'
    """
    from instructkit.io.write import atomic_file

    path = Path(path)
    with atomic_file(path) as f:
        removed.write_ndjson(f)
    return path


def _run_out_of_core(config: dict[str, Any], base: Path, options: dict[str, Any]) -> RecipeResult:
    from instructkit.io.scan import scan

    in_memory = sorted(k for k in ("mix", "split", "output", "removed", "report") if config.get(k))
    if in_memory:
        raise ValueError(
            f"recipe section(s) {in_memory} need the whole dataset in memory, and this recipe runs "
            "out of core ('run:'): its records and removed log go to shards in run.output "
            "(read them back with ik.scan). Drop those sections, or the 'run:' section."
        )
    unknown = sorted(set(options) - set(RUN_OPTIONS))
    if unknown:
        raise ValueError(f"unknown 'run:' option(s) {unknown}; known: {list(RUN_OPTIONS)}")
    if not options.get("output"):
        raise ValueError("an out-of-core run needs an output folder: run: {output: clean/}")
    options["output"] = base / options["output"]
    entries = _input_entries(config.get("inputs"), base)
    readers = [{k: v for k, v in e.items() if k != "path"} for e in entries]
    if any(r != readers[0] for r in readers):
        raise ValueError(
            "an out-of-core run scans its inputs as one stream, so they must share their reader "
            f"options (format, mapping, source, on_error); got {readers}"
        )
    paths = [p for e in entries for p in (e["path"] if isinstance(e["path"], list) else [e["path"]])]
    source = scan(paths, batch_size=options.pop("batch_size", 100_000), **readers[0])
    result = Pipeline.from_config({"steps": config.get("steps") or []}).run(source, **options)
    return RecipeResult(None, files={"output": options["output"]}, run=result)


def _input_entries(inputs: Any, base: Path) -> list[dict[str, Any]]:
    """The recipe's ``inputs`` as ``{path, **reader options}`` with paths resolved."""
    if not inputs:
        raise ValueError("a recipe run needs an 'inputs' list of {path: ...} entries")
    if isinstance(inputs, (str, dict)):
        inputs = [inputs]
    entries = []
    for entry in inputs:
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        path = entry["path"]
        entry["path"] = [base / p for p in path] if isinstance(path, list) else base / path
        entries.append(entry)
    return entries


def _read_inputs(inputs: Any, base: Path) -> Dataset:
    from instructkit.dataset import concat
    from instructkit.io.read import read

    datasets = []
    for entry in _input_entries(inputs, base):
        datasets.append(read(entry.pop("path"), **entry))
    return datasets[0] if len(datasets) == 1 else concat(datasets)


def _is_path(value: str | Path) -> bool:
    return isinstance(value, Path) or ("\n" not in value and value.endswith((".yaml", ".yml")))


def _load_yaml(path_or_text: str | Path) -> dict[str, Any]:
    text = Path(path_or_text).read_text(encoding="utf-8") if _is_path(path_or_text) else str(path_or_text)
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise ValueError("a recipe is a YAML mapping with a 'steps' list")
    return config
