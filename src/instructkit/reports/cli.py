"""``instructkit report FILE``: the HTML report of a data file from the command line.

Example:
    instructkit report clean.jsonl --removed removed.jsonl -o report.html
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to the ``instructkit`` parser's subparsers.

    Example:
        >>> import argparse
        >>> sub = argparse.ArgumentParser(prog="instructkit").add_subparsers()
        >>> add_parser(sub).parse_args(["data.jsonl"]).output
        PosixPath('report.html')
    """
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (lengths, languages, duplicates, ...)",
        description="Write a self-contained HTML report of one or more data files.",
    )
    p.add_argument("files", nargs="+", help="data files, folders or globs (any readable format)")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"),
                   help="HTML file to write (default: report.html)")
    p.add_argument("--removed", type=Path, default=None,
                   help="removed log (JSON Lines, as a recipe's 'removed:' writes) to show "
                        "duplicates, contamination and the removal waterfall")
    p.add_argument("--format", default=None, help="input format (default: detected)")
    p.add_argument("--tokenizer", default=None,
                   help="Hugging Face tokenizer name or local path for token lengths "
                        "(must be available offline)")
    p.add_argument("--title", default=None, help="page heading")
    p.add_argument("--samples", type=int, default=3, help="sample records per source (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample draw")
    p.add_argument("--timings", action="store_true",
                   help="show each step's seconds (the file then differs from run to run)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Read the files (and the removed log), write the report, print where it is."""
    import polars as pl

    from instructkit.dataset import Dataset
    from instructkit.io.read import read
    from instructkit.reports.html import report
    from instructkit.schema import REMOVED_SCHEMA

    ds = read(args.files, format=args.format, on_error="skip")
    if args.removed is not None:
        if not args.removed.is_file():
            raise FileNotFoundError(f"removed log {args.removed} does not exist")
        try:
            logged = pl.read_ndjson(args.removed, schema=REMOVED_SCHEMA)
        except pl.exceptions.ComputeError as e:
            raise ValueError(f"{args.removed}: not a removed log in JSON Lines ({e})") from e
        removed = pl.concat([ds.removed, logged], how="vertical_relaxed")
        ds = Dataset(ds.to_polars(), removed, ds.history)
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    path = report(ds, args.output, tokenizer=tokenizer, title=args.title,
                  samples=args.samples, seed=args.seed, timings=args.timings)
    print(f"wrote {path} ({len(ds)} records, {ds.removed.height} removed)")
    return 0
