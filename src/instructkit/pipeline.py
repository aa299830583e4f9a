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
from typing import Any

import polars as pl
import yaml

from instructkit.dataset import Dataset
from instructkit.transform import Transform, from_config


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
    """What :func:`run_recipe` produced: the clean data, the eval split and written files."""

    dataset: Dataset
    eval: Dataset | None = None
    files: dict[str, Path] = field(default_factory=dict)


def run_recipe(path_or_text: str | Path, base: str | Path | None = None) -> RecipeResult:
    """Run a whole recipe: read inputs, mix, run the steps, split, write, report.

    Relative paths resolve against the recipe's folder (or ``base``).

    Example:
        >>> from instructkit.pipeline import run_recipe
        >>> run_recipe("recipe.yaml").dataset.report()     # doctest: +SKIP
    """
    config = _load_yaml(path_or_text)
    if base is None:
        base = Path(path_or_text).parent if _is_path(path_or_text) else Path.cwd()
    base = Path(base)
    known = {"inputs", "mix", "steps", "output", "split", "removed", "report"}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown recipe section(s) {sorted(unknown)}; known: {sorted(known)}")
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


def _read_inputs(inputs: Any, base: Path) -> Dataset:
    from instructkit.dataset import concat
    from instructkit.io.read import read

    if not inputs:
        raise ValueError("a recipe run needs an 'inputs' list of {path: ...} entries")
    if isinstance(inputs, (str, dict)):
        inputs = [inputs]
    datasets = []
    for entry in inputs:
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        path = entry.pop("path")
        paths = [base / p for p in path] if isinstance(path, list) else base / path
        datasets.append(read(paths, **entry))
    return datasets[0] if len(datasets) == 1 else concat(datasets)


def _is_path(value: str | Path) -> bool:
    return isinstance(value, Path) or ("\n" not in value and value.endswith((".yaml", ".yml")))


def _load_yaml(path_or_text: str | Path) -> dict[str, Any]:
    text = Path(path_or_text).read_text(encoding="utf-8") if _is_path(path_or_text) else str(path_or_text)
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise ValueError("a recipe is a YAML mapping with a 'steps' list")
    return config
