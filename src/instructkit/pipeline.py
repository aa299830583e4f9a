"""``Pipeline``: an ordered list of transforms, savable as a YAML recipe.

A recipe file holds the steps, and optionally where the data comes from and goes::

    inputs:                      # optional: files to read (paths relative to the recipe)
      - {path: data/code.jsonl, source: code, license: CC-BY-NC-4.0}
      - {path: data/chat.json, source: chat, on_error: skip}
    steps:
      - normalize
      - quality: {min_words: {instruction: 3}}
      - dedup.exact
    mix: {weights: {code: 0.3, chat: 0.7}, total: 5000, seed: 0}   # optional, after the steps
    split: {eval_fraction: 0.05, seed: 0}                           # optional, after mix
    output: {path: out/clean.jsonl, format: alpaca}                 # optional
    removed: out/removed.jsonl                                      # optional
    report: out/report.html                                         # optional

The order is always: read, steps, mix, split, write. ``mix`` may instead be an item of
``steps`` (``- mix: {...}``) where it should run between steps. ``Pipeline.from_yaml``
reads just the steps; ``run_recipe`` runs the whole job and writes ``instructkit_run.json``
(see :mod:`instructkit.provenance`) next to its output.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Mapping, Sequence
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
        With an ``output`` folder, the run also writes ``instructkit_run.json`` there: the
        steps as a recipe, each input file with its size and SHA-256, what each step did
        and the steps' seeds (see :mod:`instructkit.provenance`).

        Example:
            >>> import instructkit as ik
            >>> ik.Pipeline([ik.normalize()]).run("big/*.jsonl", output="out/")  # doctest: +SKIP
        """
        from instructkit.executors import run
        from instructkit.provenance import hash_inputs

        inputs = _source_inputs(source)
        # the run record hashes every input file: on a thread while the run works (its
        # driver mostly waits on workers), rather than after it; a daemon thread, so a run
        # stopped with Ctrl-C does not wait for the hashes of a big corpus
        hashed = _Background(hash_inputs, inputs) if options.get("output") else None
        result = run(self.steps, source, executor=executor, **options)
        if hashed is not None:
            inputs = hashed.result()
        if result.output is not None:
            from instructkit.provenance import write_run_record

            try:
                recipe, problem = self.to_yaml(), None
            except (yaml.YAMLError, TypeError, ValueError) as e:
                # the records are written; the run record says why it holds no recipe
                recipe, problem = None, f"{type(e).__name__}: {e}"
                warnings.warn(f"the run record {Path(result.output) / 'instructkit_run.json'} "
                              f"holds no recipe: the steps do not convert to YAML ({problem})",
                              stacklevel=2)
            write_run_record(
                result.output, recipe=recipe, inputs=inputs,
                history=result.history, seeds=_step_seeds(self.steps),
                outputs={"data": Path(result.output) / "data"}, recipe_error=problem,
            )
        return result

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
        for i, step in enumerate(steps):
            if _is_mix(step):
                raise ValueError(
                    f"step {i} is 'mix', which a recipe run (run_recipe, `instructkit run`) "
                    "handles between the steps; in Python call ik.mix(dataset, ...), and in an "
                    "out-of-core pipeline use the 'sample' step"
                )
        return cls([from_config(s) for s in steps])

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> Pipeline:
        """Load the steps of a YAML recipe (a file path or the YAML text itself).

        Example:
            >>> import instructkit as ik
            >>> ik.Pipeline.from_yaml("steps: [normalize, {quality: {empty_output: false}}]")
            Pipeline([
              Normalize(),
              Quality(empty_output=False),
            ])
        """
        return cls.from_config(_load_yaml(path_or_text))


@dataclass
class RecipeResult:
    """What :func:`run_recipe` produced: the clean data, the eval split and written files
    (``files["provenance"]`` is the run record); for a recipe with a ``run:`` section, the
    out-of-core run (``dataset`` is then None: the records are in the shards of
    ``run.output``). ``inputs`` holds each input's path, source, ``license`` and ``origin``
    as the recipe gave them."""

    dataset: Dataset | None
    eval: Dataset | None = None
    files: dict[str, Path] = field(default_factory=dict)
    run: RunResult | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: The fine-tune a ``finetune:`` section ran (:class:`instructkit.training.qlora.FinetuneResult`).
    finetune: Any = None

    def report(self) -> pl.DataFrame:
        """Per step: records in and out, removed by reason, seconds."""
        if self.run is not None:
            return self.run.report()
        assert self.dataset is not None
        return self.dataset.report()


#: Keys of a recipe's ``run:`` section (see :func:`instructkit.executors.run`).
RUN_OPTIONS = ("executor", "batch_size", "output", "format", "resume", "address", "num_cpus", "workers")

#: Top-level sections of a recipe.
SECTIONS = ("inputs", "steps", "mix", "split", "output", "removed", "report", "card", "finetune", "run")
#: Keys of a recipe's ``card:`` section (see :func:`instructkit.card`); a string is its path.
CARD_KEYS = ("path", "license", "pretty_name", "limitations")

#: Keys an input entry may hold besides ``path`` and ``ik.read``'s options: kept with the
#: input in ``RecipeResult.inputs`` and the run record, for the dataset card.
INPUT_NOTES = ("license", "origin")


def run_recipe(
    path_or_text: str | Path, base: str | Path | None = None, run: dict[str, Any] | None = None
) -> RecipeResult:
    r"""Run a whole recipe: read the inputs, run the steps, mix, split, write, report.

    The order never depends on where a section sits in the file: **read, steps, mix,
    split, write**. So ``mix:`` draws its exact ``total`` and per-source quotas from the
    records the steps kept (dedup and langid run first; a source short of its quota is
    upsampled with a warning, or refused with ``replace: false``), and ``split:`` then
    keeps every repeat on the side of its original. To mix between steps instead, put
    ``- mix: {...}`` in ``steps`` (and no top-level ``mix:``). Every input needs a weight
    in ``mix.weights`` (``0`` drops one).

    Relative paths resolve against the recipe's folder (or ``base``). Unknown keys, at any
    level, are errors naming the valid ones. Inputs may carry ``license:`` and ``origin:``
    (kept in ``RecipeResult.inputs`` and the run record). The run record
    ``instructkit_run.json`` goes next to the output (see :mod:`instructkit.provenance`).

    A ``run:`` section (or ``run=``, whose keys override it) runs the steps out of core
    instead: inputs are scanned in batches and the records go to shards in ``run.output``,
    on the ``local`` or the ``ray`` executor (see :func:`instructkit.executors.run` and
    docs/scaling.md). On the local executor a recipe uses every core unless it sets
    ``workers`` (its steps come from the registry, so worker processes can import them; a
    script that runs such a recipe needs ``if __name__ == "__main__":``, or ``workers: 1``)::

        inputs: [{path: corpus/*.jsonl.gz, on_error: skip}]
        steps: [normalize, quality, dedup.exact, dedup.minhash]
        run: {executor: local, batch_size: 100000, output: clean/}

    Example:
        >>> import tempfile, pathlib, warnings
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.jsonl").write_text("".join(
        ...     f'{{"instruction": "task {i % 8}", "output": "ok"}}\n' for i in range(10)))
        >>> _ = (d / "b.jsonl").write_text('{"instruction": "other", "output": "ok"}\n')
        >>> recipe = (
        ...     "inputs: [a.jsonl, b.jsonl]\n"
        ...     "steps: [dedup.exact]\n"
        ...     "mix: {weights: {a: 3, b: 1}, total: 12}\n"
        ...     "output: {path: out/clean.jsonl}\n")
        >>> with warnings.catch_warnings(record=True):
        ...     result = run_recipe(recipe, base=d)
        >>> result.dataset.report()["step"].to_list()
        ['read', 'dedup.exact', 'mix']
        >>> sorted(result.dataset.to_polars().group_by("source").len().rows())
        [('a', 9), ('b', 3)]
        >>> sorted(result.files)
        ['output', 'provenance']
    """
    text = _recipe_text(path_or_text)
    config = _parse_yaml(text)
    if base is None:
        base = Path(path_or_text).parent if _is_path(path_or_text) else Path.cwd()
    base = Path(base)
    check_recipe(config)
    if run is not None or config.get("run") is not None:
        return _run_out_of_core(config, base, {**(config.get("run") or {}), **(run or {})}, text)
    entries = _input_entries(config.get("inputs"), base)
    dataset = _read_inputs(entries)
    for segment in _segments(config):
        if isinstance(segment, Mapping):
            dataset = _mix(dataset, segment)
        else:
            dataset = Pipeline(segment)(dataset)
    result = RecipeResult(dataset, inputs=[_notes(e) for e in entries])
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
    if config.get("card"):
        from instructkit.reports.card import card

        spec = {"path": config["card"]} if isinstance(config["card"], str) else dict(config["card"])
        target = base / spec.pop("path")
        card(result.dataset, target, **spec)
        result.files["card"] = target
    if result.files:
        from instructkit.provenance import write_run_record

        first = next(iter(result.files.values()))
        result.files["provenance"] = write_run_record(
            first.parent, recipe=text, inputs=entries, history=dataset.history,
            seeds=_recipe_seeds(config), outputs=dict(result.files),
        )
    if config.get("finetune"):
        from instructkit.training.config import resolve_paths
        from instructkit.training.qlora import finetune

        options = resolve_paths(config["finetune"], base)
        written = [str(result.files["output"])] if "output" in result.files else None
        result.finetune = finetune(result.dataset, eval_dataset=result.eval, data_files=written, **options)
    return result


def check_recipe(config: Mapping[str, Any]) -> None:
    """Raise a ``ValueError`` naming every unknown key of a recipe, with the valid ones.

    Checks the top-level sections, every input entry (``path``, ``ik.read``'s options,
    ``license``, ``origin``), ``output`` (``path`` and ``ds.write``'s options), ``split``,
    ``mix`` (top-level or in ``steps``) and ``run``.

    Example:
        >>> check_recipe({"steps": [], "split": {"eval_frac": 0.1}})
        Traceback (most recent call last):
        ...
        ValueError: unknown key(s) ['eval_frac'] in the recipe's 'split' section; valid: ['eval_fraction', 'group_by', 'seed', 'stratify']
    """
    from instructkit.io.read import read
    from instructkit.sampling.mix import CONFIG_KEYS
    from instructkit.sampling.split import split

    unknown = sorted(str(k) for k in set(config) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown recipe section(s) {unknown}; valid: {sorted(SECTIONS)}")
    inputs = config.get("inputs")
    if inputs is not None:
        reader = _params(read)[1:]
        for i, entry in enumerate(inputs if isinstance(inputs, list) else [inputs]):
            if isinstance(entry, Mapping):
                if "path" not in entry:
                    raise ValueError(f"input {i} has no 'path': {dict(entry)!r}")
                _check_keys(f"input {i} ({entry['path']})", entry, ["path", *reader, *INPUT_NOTES])
            elif not isinstance(entry, str):
                raise ValueError(f"input {i} must be a path or a {{path: ...}} mapping, got {entry!r}")
    output = config.get("output")
    if output is not None:
        if not isinstance(output, Mapping) or "path" not in output:
            raise ValueError(
                f"the recipe's 'output' needs a path (output: {{path: out.jsonl}}), got {output!r}")
        writer = _params(Dataset.write)[2:]
        if "system" in output and "system" not in writer:
            raise ValueError(
                "the recipe's 'output' has 'system', but this instructkit's ds.write takes no "
                f"system= option; valid keys: {sorted(['path', *writer])}"
            )
        _check_keys("the recipe's 'output' section", output, ["path", *writer])
    for name, valid in (("split", _params(split)[1:]),):
        section = config.get(name)
        if section is not None:
            if not isinstance(section, Mapping):
                raise ValueError(f"the recipe's {name!r} section must be a mapping, got {section!r}")
            _check_keys(f"the recipe's {name!r} section", section, valid)
    steps = config.get("steps") or []
    if not isinstance(steps, list):
        raise ValueError(f"the recipe's 'steps' must be a list, got {steps!r}")
    mixes = [("the recipe's 'mix' section", config["mix"])] if config.get("mix") is not None else []
    mixes += [(f"step {i} (mix)", _mix_config(s)) for i, s in enumerate(steps) if _is_mix(s)]
    for where, section in mixes:
        if not isinstance(section, Mapping):
            raise ValueError(f"{where} must be a mapping of mix options, got {section!r}")
        _check_keys(where, section, CONFIG_KEYS)
    if config.get("mix") is not None and len(mixes) > 1:
        raise ValueError(
            "the recipe has a top-level 'mix' section and a 'mix' item in 'steps': keep one "
            "(a top-level mix runs after every step; a mix item runs where it stands)"
        )
    for name in ("removed", "report"):
        if config.get(name) is not None and not isinstance(config[name], str):
            raise ValueError(f"the recipe's {name!r} is a file path, got {config[name]!r}")
    if config.get("finetune") is not None:
        from instructkit.training.config import check_config

        if not isinstance(config["finetune"], Mapping):
            raise ValueError(f"the recipe's 'finetune' section is a mapping of finetune options, got {config['finetune']!r}")
        check_config(config["finetune"], "the recipe's 'finetune' section", allow_data=False)
    card = config.get("card")
    if card is not None and not isinstance(card, str):
        if not isinstance(card, Mapping) or "path" not in card:
            raise ValueError(f"the recipe's 'card' is a path or {{path: README.md, license: ...}}, got {card!r}")
        _check_keys("the recipe's 'card' section", card, CARD_KEYS)


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


def _run_out_of_core(config: dict[str, Any], base: Path, options: dict[str, Any], text: str) -> RecipeResult:
    from instructkit.executors import run
    from instructkit.io.scan import scan

    in_memory = sorted(k for k in ("mix", "split", "output", "removed", "report", "card", "finetune") if config.get(k))
    if in_memory:
        raise ValueError(
            f"recipe section(s) {in_memory} need the whole dataset in memory, and this recipe runs "
            "out of core ('run:'): its records and removed log go to shards in run.output "
            "(read them back with ik.scan). Drop those sections, or the 'run:' section."
        )
    if any(_is_mix(s) for s in config.get("steps") or []):
        raise ValueError(
            "a 'mix' step needs the whole dataset in memory, and this recipe runs out of core "
            "('run:'); use the 'sample' step (a mixture that only downsamples) instead"
        )
    unknown = sorted(set(options) - set(RUN_OPTIONS))
    if unknown:
        raise ValueError(f"unknown 'run:' option(s) {unknown}; known: {list(RUN_OPTIONS)}")
    if not options.get("output"):
        raise ValueError("an out-of-core run needs an output folder: run: {output: clean/}")
    options["output"] = base / options["output"]
    entries = _input_entries(config.get("inputs"), base)
    readers = [{k: v for k, v in e.items() if k != "path" and k not in INPUT_NOTES} for e in entries]
    if any(r != readers[0] for r in readers):
        raise ValueError(
            "an out-of-core run scans its inputs as one stream, so they must share their reader "
            f"options (format, mapping, source, on_error); got {readers}"
        )
    if options.get("executor", "local") == "local":
        options.setdefault("workers", -1)
    paths = [p for e in entries for p in (e["path"] if isinstance(e["path"], list) else [e["path"]])]
    source = scan(paths, batch_size=options.pop("batch_size", 100_000), **readers[0])
    pipeline = Pipeline.from_config({"steps": config.get("steps") or []})
    result = run(pipeline.steps, source, **options)
    from instructkit.provenance import write_run_record

    record = write_run_record(
        options["output"], recipe=text, inputs=entries, history=result.history,
        seeds=_recipe_seeds(config), outputs={"data": Path(options["output"]) / "data"},
    )
    return RecipeResult(None, files={"output": options["output"], "provenance": record}, run=result,
                        inputs=[_notes(e) for e in entries])


def _segments(config: Mapping[str, Any]) -> list[list[Transform] | Mapping[str, Any]]:
    """The recipe's work in order: runs of steps, and mix sections between or after them."""
    out: list[list[Transform] | Mapping[str, Any]] = []
    run: list[Transform] = []
    for item in config.get("steps") or []:
        if _is_mix(item):
            out.append(run)
            out.append(_mix_config(item))
            run = []
        else:
            run.append(from_config(item))
    out.append(run)
    if config.get("mix") is not None:
        out.append(config["mix"])
    return [s for s in out if isinstance(s, Mapping) or s]


def _mix(dataset: Dataset, section: Mapping[str, Any]) -> Dataset:
    from instructkit.sampling.mix import mix_from_config

    try:
        return mix_from_config(dataset, section)
    except ValueError as e:
        raise ValueError(f"recipe mix: {e}") from e


def _is_mix(step: Any) -> bool:
    return step == "mix" or (isinstance(step, Mapping) and len(step) == 1 and "mix" in step)


def _mix_config(step: Any) -> Any:
    return {} if step == "mix" else (step["mix"] if step["mix"] is not None else {})


def _check_keys(where: str, given: Mapping[str, Any], valid: Any) -> None:
    unknown = sorted(str(k) for k in set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; valid: {sorted(valid)}")


def _params(func: Any) -> list[str]:
    """The names of a function's parameters, in order (``*args``/``**kwargs`` left out)."""
    return [
        name for name, p in inspect.signature(func).parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _recipe_seeds(config: Mapping[str, Any]) -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for i, step in enumerate(config.get("steps") or []):
        if _is_mix(step):
            seeds[f"steps[{i}].mix"] = _mix_config(step).get("seed", 0)
        elif isinstance(step, Mapping):
            (name, params), = step.items()
            if isinstance(params, Mapping) and "seed" in params:
                seeds[f"steps[{i}].{name}"] = params["seed"]
    for name in ("mix", "split"):
        if isinstance(config.get(name), Mapping):
            seeds[name] = config[name].get("seed", 0)
    return seeds


def _step_seeds(steps: Sequence[Transform]) -> dict[str, Any]:
    return {
        f"steps[{i}].{s.name}": s.get_params()["seed"] for i, s in enumerate(steps)
        if "seed" in s.get_params()
    }


class _Background:
    """``function(*args)`` on a daemon thread; :meth:`result` waits for it and returns its
    value or raises its exception."""

    def __init__(self, function: Any, *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True,
                                        name="instructkit-background")
        self._thread.start()

    def _run(self, function: Any, args: tuple[Any, ...]) -> None:
        try:
            self._value = function(*args)
        except BaseException as e:  # handed to the caller of result()
            self._error = e

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _source_inputs(source: Any) -> list[dict[str, Any]]:
    """What ``Pipeline.run`` read, for its run record: files by path, in-memory data by size."""
    if isinstance(source, (str, Path)):
        return [{"path": source}]
    if isinstance(source, (list, tuple)) and all(isinstance(p, (str, Path)) for p in source):
        return [{"path": list(source)}]
    paths = getattr(source, "paths", None)
    if paths is not None:
        return [{"path": [Path(p) for p in paths]}]
    return [{"in_memory": type(source).__name__, "records": len(source)}]


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


def _notes(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("path", "source", *INPUT_NOTES) if k in entry}


def _read_inputs(entries: list[dict[str, Any]]) -> Dataset:
    from instructkit.dataset import concat
    from instructkit.io.read import read

    datasets = []
    for entry in entries:
        options = {k: v for k, v in entry.items() if k != "path"}
        datasets.append(read(entry["path"], **options))
    return datasets[0] if len(datasets) == 1 else concat(datasets)


def _is_path(value: str | Path) -> bool:
    return isinstance(value, Path) or ("\n" not in value and value.endswith((".yaml", ".yml")))


def _recipe_text(path_or_text: str | Path) -> str:
    return Path(path_or_text).read_text(encoding="utf-8") if _is_path(path_or_text) else str(path_or_text)


def _parse_yaml(text: str) -> dict[str, Any]:
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise ValueError("a recipe is a YAML mapping with a 'steps' list")
    return config


def _load_yaml(path_or_text: str | Path) -> dict[str, Any]:
    return _parse_yaml(_recipe_text(path_or_text))
