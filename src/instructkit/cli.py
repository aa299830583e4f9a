"""The ``instructkit`` command: run recipes, inspect and convert files, run the demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

# modules that add their own subcommands through add_parser(subparsers)
_PLUGINS: tuple[str, ...] = (
    "instructkit.training.cli",
    "instructkit.reports.cli",
    "instructkit.profiling.cli",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``instructkit`` command.

    Example:
        >>> from instructkit.cli import main
        >>> main(["stats", "data.jsonl"])            # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "quiet", False):
        from instructkit import set_quiet

        set_quiet(True)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"instructkit: error: {e}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="instructkit", description="Clean instruction data and fine-tune on it."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("run", help="run a YAML recipe (inputs, steps, output)",
                       description="Run a YAML recipe. Any of the options below runs it out of core "
                                   "(they add to or override the recipe's 'run:' section): inputs "
                                   "scanned in batches, records written to shards in --output-dir.")
    p.add_argument("recipe", type=Path)
    p.add_argument("--executor", choices=["local", "ray"], default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--output-dir", type=Path, default=None, help="folder for the shards and manifest")
    p.add_argument("--address", default=None, help="Ray cluster to join (auto, ray://head:10001)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    p.add_argument("--workers", type=int, default=None, help="worker processes of the local executor (-1: all cores)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    p.set_defaults(func=_run)

    p = sub.add_parser("stats", help="counts and lengths of a data file, per source")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", default=None, help="input format (default: detected)")
    p.set_defaults(func=_stats)

    p = sub.add_parser("convert", help="convert between formats (alpaca, sharegpt, messages, text)")
    p.add_argument("input")
    p.add_argument("output", type=Path)
    p.add_argument("--to", required=True, dest="to_format")
    p.add_argument("--from", default=None, dest="from_format", help="input format (default: detected)")
    p.add_argument("--template", default=None, help="prompt format for --to text")
    p.add_argument("--turns", default=None, choices=["first", "last", "split"])
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    p.set_defaults(func=_convert)

    p = sub.add_parser("demo", help="run the default pipeline on the bundled demo dataset")
    p.add_argument("--output", type=Path, default=Path("instructkit-demo"))
    p.set_defaults(func=_demo)

    for name in _PLUGINS:
        importlib.import_module(name).add_parser(sub)
    return parser


def _print_table(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=100, tbl_cols=20, fmt_str_lengths=60, tbl_width_chars=160,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        print(frame)


def _run(args: argparse.Namespace) -> int:
    from instructkit.pipeline import run_recipe

    run = {k: v for k, v in {
        "executor": args.executor, "batch_size": args.batch_size,
        "output": str(args.output_dir.resolve()) if args.output_dir else None,
        "address": args.address, "num_cpus": args.num_cpus, "workers": args.workers, "resume": False if args.no_resume else None,
    }.items() if v is not None}
    result = run_recipe(args.recipe, run=run or None)
    _print_table(result.report())
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from instructkit.io.read import read

    ds = read(args.files, format=args.format, on_error="skip")
    print(f"{len(ds)} records, {ds.removed.height} unreadable")
    _print_table(ds.stats())
    return 0


def _convert(args: argparse.Namespace) -> int:
    from instructkit.io.read import read

    ds = read(args.input, format=args.from_format, on_error=args.on_error)
    path = ds.write(args.output, format=args.to_format, template=args.template, turns=args.turns)
    print(f"wrote {len(ds)} records to {path} ({ds.removed.height} unreadable records skipped)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from instructkit.demo import run_demo

    result = run_demo(args.output)
    _print_table(result.dataset.report())
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
