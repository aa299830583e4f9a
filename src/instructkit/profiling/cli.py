"""``instructkit bench`` and ``instructkit sweep``: the profiling commands.

    instructkit bench recipe.yaml data.jsonl --sample 100000 --json bench.json --chart bench.png
    instructkit sweep data.jsonl --step dedup.minhash --param threshold --values 0.95,0.9,0.8,0.7
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Add the ``bench`` and ``sweep`` subcommands to the ``instructkit`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_parser(parser.add_subparsers())
        >>> parser.parse_args(["bench", "r.yaml", "d.jsonl", "--sample", "10"]).sample
        10
    """
    p = subparsers.add_parser(
        "bench", help="per step: records removed, records/s, peak memory, projected time"
    )
    p.add_argument("recipe", type=Path, help="YAML recipe whose steps to benchmark")
    p.add_argument("data", nargs="+", type=Path, help="data files (.jsonl, .jsonl.gz, .parquet, .json)")
    p.add_argument("--sample", type=int, default=None, help="benchmark the first N records and project")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--chart", type=Path, default=None, help="also draw a PNG chart here")
    p.set_defaults(func=_bench)

    p = subparsers.add_parser(
        "sweep", help="removal counts of one step at several values of one parameter"
    )
    p.add_argument("data", nargs="+", type=Path, help="data files")
    p.add_argument("--step", required=True, help="recipe name of the step, e.g. dedup.minhash")
    p.add_argument("--param", required=True, help="parameter to vary, e.g. threshold")
    p.add_argument("--values", required=True, help="comma-separated values, e.g. 0.95,0.9,0.8")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="other step parameters (YAML values), repeatable")
    p.add_argument("--sample", type=int, default=None, help="use the first N records")
    p.add_argument("--examples", type=int, default=3, help="examples shown per value")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--chart", type=Path, default=None, help="also draw a PNG chart here")
    p.set_defaults(func=_sweep)


def _bench(args: argparse.Namespace) -> int:
    from instructkit.profiling.bench import bench

    result = bench(args.recipe, args.data, sample=args.sample, json_path=args.json, chart=args.chart)
    print(result)
    return 0


def _yaml_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _sweep(args: argparse.Namespace) -> int:
    from instructkit.profiling.sweep import sweep
    from instructkit.transform import from_config

    params = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        params[name] = _yaml_value(value)
    step = from_config({args.step: params})
    values = [_yaml_value(v) for v in args.values.split(",") if v.strip()]
    result = sweep(step, args.param, values, args.data, sample=args.sample, examples=args.examples)
    print(result)
    if args.json:
        result.to_json(args.json)
    if args.chart:
        result.plot(args.chart)
    return 0
