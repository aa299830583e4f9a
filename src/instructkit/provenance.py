"""``instructkit_run.json``: what made a dataset, written next to it.

A run record holds the instructkit version, the recipe as YAML, every input file with its
size and SHA-256, what each step did (records in and out, removals by reason, no timings)
and the seeds. The same recipe on the same files gives the same file, byte for byte, so
two runs can be compared with ``diff``.

``instructkit run`` (:func:`instructkit.pipeline.run_recipe`) and ``Pipeline.run`` write it;
call :func:`write_run_record` to write one for any other job.

Example:
    >>> import instructkit as ik, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.jsonl").write_text('{"instruction": "a", "output": "b"}\\n')
    >>> ds = ik.read(folder / "in.jsonl").pipe(ik.normalize())
    >>> path = write_run_record(folder / "out", recipe=ik.Pipeline([ik.normalize()]).to_yaml(),
    ...                         inputs=[{"path": folder / "in.jsonl"}], history=ds.history)
    >>> record = read_run_record(path)
    >>> [s["step"] for s in record["steps"]], record["inputs"][0]["files"][0]["bytes"]
    (['read', 'normalize'], 36)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: The file name of a run record.
FILENAME = "instructkit_run.json"

#: Marks the file as an instructkit run record, and its layout's version.
FORMAT = "instructkit.run/1"

#: Keys of a history entry that go into the record: counts and reasons, never timings, so
#: the record is reproducible.
STEP_KEYS = ("step", "kind", "params", "records_in", "records_out", "removed", "added", "by_reason")


def write_run_record(
    folder: str | Path,
    *,
    recipe: str | None,
    inputs: Sequence[Mapping[str, Any]],
    history: Iterable[Any],
    seeds: Mapping[str, Any] | None = None,
    outputs: Mapping[str, str | Path] | None = None,
    recipe_error: str | None = None,
) -> Path:
    """Write ``folder/instructkit_run.json`` (atomically) and return its path.

    Args:
        folder: where the run's output is; created if missing.
        recipe: the recipe as YAML text (``None`` when it cannot be written as YAML; say
            why in ``recipe_error``, which the record then holds).
        inputs: one mapping per input: ``path`` (a file, folder, glob or list of them; every
            data file it names is hashed) and any other keys to keep with it (``source``,
            ``license``, ``origin``, reader options), or no ``path`` for in-memory data.
        history: the dataset's step history (``ds.history`` or ``RunResult.history``).
        seeds: the seeds of the run by where they are used (``{"mix": 0, "split": 3}``).
        outputs: the files the run wrote, by role; each is listed with its size and SHA-256
            (a folder: every file under it).

    Example:
        >>> write_run_record("out/", recipe="steps: []\\n", inputs=[], history=[])  # doctest: +SKIP
        PosixPath('out/instructkit_run.json')
    """
    from instructkit import __version__
    from instructkit.io.write import atomic_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    steps = [_step(entry) for entry in history]
    record = {
        "format": FORMAT,
        "instructkit_version": __version__,
        "recipe": recipe,
        **({"recipe_error": recipe_error} if recipe_error else {}),
        "inputs": [_input(entry) for entry in inputs],
        "steps": steps,
        "records_in": steps[0]["records_in"] if steps else None,
        "records_out": steps[-1]["records_out"] if steps else None,
        "seeds": dict(seeds or {}),
        "outputs": {role: _files(path, folder) for role, path in (outputs or {}).items()},
    }
    path = folder / FILENAME
    with atomic_file(path) as f:
        f.write(json.dumps(record, indent=2, ensure_ascii=False, default=str).encode("utf-8") + b"\n")
    return path


def read_run_record(path: str | Path) -> dict[str, Any]:
    """Load a run record (a file, or the folder that holds ``instructkit_run.json``).

    Example:
        >>> read_run_record("clean/")["inputs"][0]["files"][0]["sha256"]  # doctest: +SKIP
        '9f86d0...'
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable run record: {e}") from e
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path}: not an instructkit run record (no format {FORMAT!r})")
    return record


def entry_dict(entry: Any) -> dict[str, Any]:
    """A history entry as a plain dict, whether it is a mapping or a typed record."""
    if isinstance(entry, Mapping):
        return dict(entry)
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        out = dataclasses.asdict(entry)
        extra = out.pop("extra", None)
        return {**out, **extra} if isinstance(extra, Mapping) else out
    return dict(vars(entry))


def _step(entry: Any) -> dict[str, Any]:
    data = entry_dict(entry)
    out = {k: data[k] for k in STEP_KEYS if k in data and data[k] is not None}
    if "by_reason" in out:
        out["by_reason"] = dict(out["by_reason"])
    if isinstance(data.get("mix"), list):  # ik.mix's table: targets and repeats per source
        out["mix"] = data["mix"]
    return out


def hash_inputs(inputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``inputs`` as :func:`write_run_record` records them: each ``path`` expanded to its
    files, each with its size and SHA-256. An entry that already has ``files`` is kept as
    it is, so the hashing can run while the data is processed and be handed over after.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"instruction": "a"}\\n')
        >>> entry = hash_inputs([{"path": p, "source": "d"}])[0]
        >>> entry["files"][0]["bytes"], entry["source"], len(entry["files"][0]["sha256"])
        (21, 'd', 64)
    """
    return [_input(entry) for entry in inputs]


def _input(entry: Mapping[str, Any]) -> dict[str, Any]:
    from instructkit.io.read import expand
    from instructkit.io.write import file_sha256

    out = {k: _plain(v) for k, v in entry.items() if k != "path"}
    if entry.get("path") is None:
        return out
    out = {"path": _plain(entry["path"]), **out}
    if "files" not in out:
        out["files"] = [
            {"path": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in expand(entry["path"])
        ]
    return out


def _files(path: str | Path, folder: Path) -> list[dict[str, Any]]:
    from instructkit.io.write import file_sha256

    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [
        {"path": _relative(f, folder), "bytes": f.stat().st_size, "sha256": file_sha256(f)}
        for f in files
        if f.name != FILENAME
    ]


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


__all__ = ["FILENAME", "write_run_record", "read_run_record", "entry_dict"]
