"""Mutation testing for one source file: how many small bugs does a chosen set of tests catch?

Each mutant changes one thing in the file's syntax tree (an operator, a comparison, a
constant, a condition, a ``raise``), the file is rewritten in a private copy of ``src/``, and
the chosen tests run against that copy with a timeout. A mutant is *killed* when the tests
fail (or time out), and *survives* when they pass. Docstrings, type annotations and string
constants are left alone: mutating them gives mostly equivalent or noise mutants.

Mutants are named ``Qualname: description #n`` (``n`` counts equal descriptions within the
same function), a name that survives edits elsewhere in the file, so a list of equivalent
mutants (``--equivalent FILE``, JSON ``{name: why}``) stays valid while the file evolves.

Usage (from the repository root; heavy, so under the shared lock):

    flock /tmp/ik-heavy.lock nice python scripts/mutation.py src/instructkit/transform.py \\
        --tests "tests/test_transform_mutants.py tests/test_pipeline.py" \\
        --equivalent benchmarks/results/mutation_equivalent.json --json /tmp/mut-transform.json

``--list`` prints the mutants without running anything; ``--only NAME`` runs one mutant
(repeatable) and shows its diff, to check a survivor by hand. ``--fork`` runs each mutant's
tests in a fork of this process after importing polars, numpy, pytest, ... once: on a
short selection that import is about half of a run's CPU time (POSIX only).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# operator swaps: each maps to the one most likely to slip through (mutmut's choices)
_BINOPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.Mult, ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
_CMPOPS: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
    ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_BOOLOPS: dict[type, type] = {ast.And: ast.Or, ast.Or: ast.And}
_SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>",
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.And: "and",
    ast.Or: "or",
}


@dataclass
class Mutant:
    index: int
    name: str
    line: int
    status: str = "pending"  # killed, survived, timeout, equivalent
    seconds: float = 0.0


def _skip_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings and annotations (with everything inside them)."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for a in [*node.args.args, *node.args.posonlyargs, *node.args.kwonlyargs,
                      node.args.vararg, node.args.kwarg]:
                if a is not None:
                    mark(a.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        # `if TYPE_CHECKING:` imports and `__all__` never run in a way tests can see
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            mark(node)
    return skip


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str, str]]:
    """Every (node, kind, description) that can be mutated, in a fixed traversal order."""
    skip = _skip_nodes(tree)
    found: list[tuple[ast.AST, str, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            found.append((node, "binop", f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[_BINOPS[type(node.op)]]}"))
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOPS:
            found.append((node, "augop", f"{_SYMBOL[type(node.op)]}= -> {_SYMBOL[_BINOPS[type(node.op)]]}="))
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMPOPS:
                    found.append((node, f"cmp{i}", f"{_SYMBOL[type(op)]} -> {_SYMBOL[_CMPOPS[type(op)]]}"))
        elif isinstance(node, ast.BoolOp):
            found.append((node, "boolop", f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[_BOOLOPS[type(node.op)]]}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((node, "not", "drop `not`"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            found.append((node, "neg", "drop unary -"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            found.append((node, "num", f"{node.value!r} -> {node.value + 1!r}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            found.append((node, "bool", f"{node.value} -> {not node.value}"))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            found.append((node, "cond", f"{type(node).__name__.lower()} condition negated"))
        elif isinstance(node, ast.Raise):
            found.append((node, "raise", "raise -> pass"))
        elif isinstance(node, ast.Return) and node.value is not None \
                and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            found.append((node, "return", "return value -> None"))
        elif isinstance(node, ast.Break):
            found.append((node, "break", "break -> continue"))
        elif isinstance(node, ast.Continue):
            found.append((node, "continue", "continue -> break"))
    return found


def _qualnames(tree: ast.AST) -> dict[int, str]:
    """id(node) -> the qualified name of the function or class that holds it."""
    names: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                here = f"{prefix}.{child.name}" if prefix else child.name
            names[id(child)] = here or "<module>"
            visit(child, here)

    visit(tree, "")
    return names


def _mutate(node: ast.AST, kind: str) -> ast.AST | None:
    """Change ``node`` in place; returns a replacement node for statement mutants."""
    if kind == "binop" or kind == "augop":
        node.op = _BINOPS[type(node.op)]()
    elif kind.startswith("cmp"):
        i = int(kind[3:])
        node.ops[i] = _CMPOPS[type(node.ops[i])]()
    elif kind == "boolop":
        node.op = _BOOLOPS[type(node.op)]()
    elif kind in ("not", "neg"):
        return node.operand
    elif kind == "num":
        node.value = node.value + 1
    elif kind == "bool":
        node.value = not node.value
    elif kind == "cond":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "raise":
        return ast.Pass()
    elif kind == "return":
        node.value = ast.Constant(value=None)
    elif kind == "break":
        return ast.Continue()
    elif kind == "continue":
        return ast.Break()
    return None


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return ast.copy_location(self.replacement, node)
        return super().generic_visit(node)


def mutants(source: str) -> list[Mutant]:
    """The mutants of ``source`` with stable names."""
    tree = ast.parse(source)
    quals = _qualnames(tree)
    seen: Counter[str] = Counter()
    out = []
    for i, (node, _kind, desc) in enumerate(_sites(tree)):
        base = f"{quals.get(id(node), '<module>')}: {desc}"
        name = f"{base} #{seen[base]}"
        seen[base] += 1
        out.append(Mutant(i, name, getattr(node, "lineno", 0)))
    return out


def mutated_source(source: str, index: int) -> str:
    """``source`` with mutant ``index`` applied (the code is re-generated by ``ast.unparse``)."""
    tree = ast.parse(source)
    node, kind, _ = _sites(tree)[index]
    replacement = _mutate(node, kind)
    if replacement is not None:
        tree = _Replace(node, replacement).visit(tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def _run_tests(src_dir: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src_dir), INSTRUCTKIT_QUIET="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        return "survived", seconds
    if done.returncode in (1, 2, 3):  # tests failed, interrupted, or an error at collection
        return "killed", seconds
    raise RuntimeError(f"pytest exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


# third-party modules a forked test run starts with: importing them is most of a short run's
# CPU time (polars alone ~1 s), and none of them holds state from the code under test
_PRELOAD = ("numpy", "polars", "pyarrow", "pyarrow.parquet", "pandas", "xxhash", "pytest",
            "hypothesis", "_pytest.python", "_pytest.assertion.rewrite")


def preload() -> None:
    """Import :data:`_PRELOAD` (those installed) once, so forked runs start warm."""
    import importlib

    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # the children must import the package from the mutated copy, not from this process
    assert not any(m == "instructkit" or m.startswith("instructkit.") for m in sys.modules)


def _run_tests_forked(src_dir: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """:func:`_run_tests` in a fork of this (preloaded) process instead of a fresh interpreter.

    The child runs ``pytest.main`` in its own process group, so a timeout also ends the
    worker processes it started; its output goes to ``src_dir/../pytest.log`` (last run).
    """
    log = src_dir.parent / "pytest.log"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 4
        try:
            os.setpgid(0, 0)
            os.chdir(ROOT)
            os.environ.update(PYTHONPATH=str(src_dir), INSTRUCTKIT_QUIET="1", PYTHONDONTWRITEBYTECODE="1")
            sys.path.insert(0, str(src_dir))
            sys.dont_write_bytecode = True
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]))
        except BaseException:  # noqa: BLE001 - any failure in the child is reported by its code
            code = 4
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - start
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived", seconds
    if code in (1, 2, 3):
        return "killed", seconds
    raise RuntimeError(f"pytest exited {code}:\n{log.read_text(errors='replace')[-3000:]}")


def argv_text(argv: list[str] | None) -> str:
    """The command line that ran this script, quoted so it can be pasted back."""
    args = sys.argv[1:] if argv is None else argv

    def quote(arg: str) -> str:
        if arg == shlex.quote(arg) or any(c in arg for c in '"$`\\!'):
            return shlex.quote(arg)
        return f'"{arg}"'  # reads better than shlex's '...'"'"'...' around inner quotes

    return "python scripts/mutation.py " + " ".join(quote(a) for a in args)


def write_section(page: Path, file: str, found: list[Mutant], equivalent: dict[str, str],
                  command: str) -> None:
    """Replace (or add) the ``## file`` section of ``page`` with this run's score."""
    counts = Counter(m.status for m in found)
    scored = len(found) - counts["equivalent"]
    killed = counts["killed"] + counts["timeout"]
    lines = [
        f"## {file}", "",
        f"**{killed}/{scored} non-equivalent mutants killed ({killed / max(scored, 1):.1%})**; "
        f"{len(found)} mutants, {counts['equivalent']} equivalent, {counts['timeout']} of the "
        f"killed by timeout, {counts['survived']} survived.", "",
        "    " + command, "",
    ]
    if counts["equivalent"]:
        lines += ["Equivalent (not run):", ""]
        lines += [f"- `{m.name}` (line {m.line}): {equivalent[m.name]}"
                  for m in found if m.status == "equivalent"]
        lines.append("")
    if counts["survived"]:
        lines += ["Survived:", ""]
        lines += [f"- `{m.name}` (line {m.line})" for m in found if m.status == "survived"]
        lines.append("")
    section = "\n".join(lines)
    text = page.read_text(encoding="utf-8") if page.exists() else (
        "# Mutation testing\n\nScores of `scripts/mutation.py` (see its docstring): each mutant "
        "changes one operator, comparison, constant, condition, return or raise of the file; it "
        "is killed when the listed tests fail on it.\n")
    head, sep, rest = text.partition(f"\n## {file}\n")
    if sep:  # drop the old section, up to the next one
        nxt = rest.find("\n## ")
        rest = rest[nxt + 1:] if nxt >= 0 else ""
        text = head.rstrip("\n") + "\n\n" + section + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="source file under src/ to mutate")
    parser.add_argument("--tests", default="tests", help="pytest arguments (one string), e.g. "
                        "\"tests/test_pipeline.py -k batched\"")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 3x the clean run + 10)")
    parser.add_argument("--equivalent", type=Path, default=None,
                        help="JSON {mutant name: why it is equivalent}; those are not run")
    parser.add_argument("--json", type=Path, default=None, help="write every mutant's result here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="write (or replace) this file's section in a results page, e.g. "
                             "benchmarks/results/mutation.md")
    parser.add_argument("--rerun-survivors", type=Path, default=None, metavar="JSON",
                        help="a previous --json: keep its killed mutants, run only the others "
                             "(after adding tests: tests only added kill at least as much)")
    parser.add_argument("--fork", action="store_true",
                        help="run each mutant's tests in a fork of a process that has already "
                             "imported polars, numpy, pytest, ... (POSIX; a short test selection "
                             "then costs about half the CPU)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this mutant (repeatable) and print its diff")
    args = parser.parse_args(argv)

    path = args.file.resolve()
    rel = path.relative_to(ROOT / "src")
    source = path.read_text()
    found = mutants(source)
    if args.list:
        for m in found:
            print(f"{m.line:5d}  {m.name}")
        print(f"{len(found)} mutants")
        return 0
    equivalent: dict[str, str] = {}
    if args.equivalent and args.equivalent.exists():
        equivalent = json.loads(args.equivalent.read_text()).get(str(Path("src") / rel), {})
    if args.only:
        unknown = set(args.only) - {m.name for m in found}
        if unknown:
            parser.error(f"unknown mutants: {sorted(unknown)}")
        found = [m for m in found if m.name in args.only]
    tests = shlex.split(args.tests)
    previous: dict[str, dict] = {}
    if args.rerun_survivors:
        previous = {m["name"]: m for m in json.loads(args.rerun_survivors.read_text())["mutants"]}
    # a plain `kill` still removes the private copy of src/
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    run_tests = _run_tests
    if args.fork:
        preload()
        run_tests = _run_tests_forked

    with tempfile.TemporaryDirectory(prefix="ik-mutation-") as tmp:
        src_dir = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src_dir, ignore=shutil.ignore_patterns("__pycache__"))
        target = src_dir / rel
        status, clean = run_tests(src_dir, tests, timeout=3600)
        if status != "survived":
            print(f"the tests fail on the unmutated code ({status}); fix that first", file=sys.stderr)
            return 1
        timeout = args.timeout or 3 * clean + 10
        print(f"clean run {clean:.1f}s, timeout {timeout:.0f}s, {len(found)} mutants of {rel}", flush=True)
        try:
            for m in found:
                if m.name in equivalent:
                    m.status = "equivalent"
                    continue
                if previous.get(m.name, {}).get("status") in ("killed", "timeout"):
                    m.status, m.seconds = previous[m.name]["status"], previous[m.name]["seconds"]
                    continue
                mutated = mutated_source(source, m.index)
                if args.only:
                    sys.stdout.writelines(difflib.unified_diff(
                        ast.unparse(ast.parse(source)).splitlines(True), mutated.splitlines(True),
                        "original", "mutant", n=2))
                    print()
                target.write_text(mutated)
                m.status, m.seconds = run_tests(src_dir, tests, timeout)
                print(f"{m.status:9s} {m.seconds:5.1f}s  L{m.line:<4d} {m.name}", flush=True)
        finally:
            target.write_text(source)

    counts = Counter(m.status for m in found)
    scored = len(found) - counts["equivalent"]
    killed = counts["killed"] + counts["timeout"]
    score = killed / scored if scored else 1.0
    print(f"\n{rel}: {killed}/{scored} non-equivalent mutants killed ({score:.1%}); "
          f"{counts['equivalent']} equivalent, {counts['survived']} survived")
    for m in found:
        if m.status == "survived":
            print(f"  survived  L{m.line:<4d} {m.name}")
    if args.markdown and not args.only:
        write_section(args.markdown, str(Path("src") / rel), found, equivalent, argv_text(argv))
    if args.json:
        args.json.write_text(json.dumps({
            "file": str(Path("src") / rel), "tests": args.tests, "killed": killed, "scored": scored,
            "equivalent": {m.name: equivalent[m.name] for m in found if m.status == "equivalent"},
            "mutants": [asdict(m) for m in found],
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
