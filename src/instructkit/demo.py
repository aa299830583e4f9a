"""``instructkit demo``: the bundled recipe on the bundled demo dataset."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from instructkit.pipeline import RecipeResult, run_recipe


def demo_path(name: str = "demo.jsonl") -> Path:
    """Path of a bundled demo file (``demo.jsonl``, ``demo_chat.jsonl``, ``demo_recipe.yaml``,
    ``demo_benchmark.jsonl``).

    Example:
        >>> import instructkit as ik
        >>> len(ik.read(demo_path())) > 200
        True
    """
    path = Path(str(resources.files("instructkit") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"bundled demo file {name!r} is missing from {path.parent}")
    return path


def run_demo(output: str | Path = "instructkit-demo") -> RecipeResult:
    """Run the demo recipe, writing the clean data, removed log and report under ``output``.

    Example:
        >>> result = run_demo("/tmp/ik-demo")                # doctest: +SKIP
        >>> print(result.dataset.report())                   # doctest: +SKIP
    """
    recipe_path = demo_path("demo_recipe.yaml")
    config = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    for entry in config["inputs"]:
        entry["path"] = str(recipe_path.parent / entry["path"])
    for step in config["steps"]:
        if isinstance(step, dict) and "decontaminate" in step:
            for bench in step["decontaminate"].get("benchmarks", []):
                for kind, spec in bench.items():
                    if isinstance(spec, dict):
                        spec["path"] = str(recipe_path.parent / spec["path"])
                    else:
                        bench[kind] = str(recipe_path.parent / spec)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    return run_recipe(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), base=output)
