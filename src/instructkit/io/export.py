"""``ik.export``: a folder a trainer or the Hub takes as it is, and ``ik.push_to_hub``.

- ``target="llamafactory"``: ``<name>.jsonl`` plus its entry in ``dataset_info.json``
  (merged into one already there), so ``dataset: <name>`` with ``dataset_dir: <folder>``
  trains on it. The ``messages`` form uses LLaMA-Factory's ``sharegpt`` formatting with
  ``role``/``content`` tags; the ``alpaca`` form its alpaca columns with ``history``.
- ``target="axolotl"``: ``<name>.jsonl`` plus ``axolotl.yaml``, a ``datasets:`` snippet to
  paste into an axolotl config (``type: chat_template`` for messages, ``alpaca`` for alpaca).
- ``target="hf"``: ``data/train-*.parquet`` shards, so the folder loads with
  ``datasets.load_dataset("parquet", data_dir=folder)`` or as a Hub dataset repository.

Every target also writes the dataset card (``README.md``, see :func:`instructkit.card`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import polars as pl
import yaml

from instructkit.io.handoff import TRAINER_FORMATS, TrainerFormat, trainer_frame
from instructkit.io.write import atomic_file

if TYPE_CHECKING:
    from instructkit.dataset import Dataset

Target = Literal["llamafactory", "axolotl", "hf"]
TARGETS: tuple[str, ...] = ("llamafactory", "axolotl", "hf")

#: LLaMA-Factory ``dataset_info.json`` tags for the ``messages`` form (canonical role names).
LLAMAFACTORY_TAGS = {
    "role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
    "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system",
}


def export(
    dataset: Dataset,
    folder: str | Path,
    target: Target = "hf",
    *,
    name: str = "train",
    format: TrainerFormat = "messages",
    card: bool = True,
    license: str | None = None,
    pretty_name: str | None = None,
    shard_rows: int = 500_000,
) -> dict[str, Path]:
    """Write ``dataset`` into ``folder`` for ``target``; returns the files written by role.

    ``format`` is the record form (``messages`` or ``alpaca``; ``prompt_completion`` too for
    ``hf``). ``card`` writes ``README.md`` with ``license`` and ``pretty_name``.

    Example:
        >>> import json, tempfile, instructkit as ik
        >>> ds = ik.Dataset.from_records([{"instruction": "Add 2 and 3.", "output": "5"}])
        >>> files = ik.export(ds, tempfile.mkdtemp(), target="llamafactory", name="math", card=False)
        >>> json.loads(files["dataset_info"].read_text())["math"]["formatting"]
        'sharegpt'
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    allowed = TRAINER_FORMATS if target == "hf" else ("messages", "alpaca")
    if format not in allowed:
        raise ValueError(f"target {target!r} takes format {allowed}, got {format!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    records = trainer_frame(dataset.to_polars(), format)
    files: dict[str, Path] = {}
    if target == "hf":
        files.update(_write_shards(records, out, name, shard_rows))
    else:
        data = out / f"{name}.jsonl"
        _write_jsonl(records, data)
        files["data"] = data
        if target == "llamafactory":
            files["dataset_info"] = _llamafactory_entry(out, name, data.name, format, records.columns)
        else:
            files["config"] = _axolotl_snippet(out, data, format)
    if card:
        from instructkit.reports.card import card as make_card

        files["card"] = out / "README.md"
        make_card(dataset, files["card"], license=license, pretty_name=pretty_name)
    return files


def _write_jsonl(records: pl.DataFrame, path: Path) -> None:
    with atomic_file(path) as f:
        records.write_ndjson(f)


def _write_shards(records: pl.DataFrame, out: Path, name: str, shard_rows: int) -> dict[str, Path]:
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
    data = out / "data"
    data.mkdir(exist_ok=True)
    n = max(1, -(-records.height // shard_rows))
    files = {}
    for k in range(n):
        path = data / f"{name}-{k:05d}-of-{n:05d}.parquet"
        with atomic_file(path) as f:
            records.slice(k * shard_rows, shard_rows).write_parquet(f)
        files[f"shard-{k}"] = path
    return files


def _llamafactory_entry(out: Path, name: str, file_name: str, format: str, columns: list[str]) -> Path:
    if format == "messages":
        entry: dict[str, Any] = {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages", **({"tools": "tools"} if "tools" in columns else {})},
            "tags": dict(LLAMAFACTORY_TAGS),
        }
    else:
        entry = {
            "file_name": file_name,
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output",
                        "system": "system", "history": "history",
                        **({"tools": "tools"} if "tools" in columns else {})},
        }
    path = out / "dataset_info.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if not isinstance(info, dict):
        raise ValueError(f"{path}: a LLaMA-Factory dataset_info.json is a JSON object of datasets")
    info[name] = entry
    with atomic_file(path) as f:
        f.write(orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _axolotl_snippet(out: Path, data: Path, format: str) -> Path:
    if format == "messages":
        dataset: dict[str, Any] = {
            "path": str(data.resolve()),
            "ds_type": "json",
            "type": "chat_template",
            "field_messages": "messages",
            "message_property_mappings": {"role": "role", "content": "content"},
            "roles_to_train": ["assistant"],
        }
    else:
        # axolotl's alpaca type reads instruction / input / output
        dataset = {"path": str(data.resolve()), "ds_type": "json", "type": "alpaca"}
    path = out / "axolotl.yaml"
    text = "# paste under your axolotl config, or merge with its datasets: list\n" + yaml.safe_dump(
        {"datasets": [dataset]}, sort_keys=False
    )
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))
    return path


def push_to_hub(
    dataset: Dataset,
    repo_id: str,
    *,
    private: bool = True,
    format: TrainerFormat = "messages",
    license: str | None = None,
    token: str | None = None,
    api: Any = None,
    commit_message: str = "Upload dataset cleaned with instructkit",
) -> str:
    """Upload ``dataset`` as a Hub dataset repository: parquet shards plus its card.

    The folder is built with :func:`export` (``target="hf"``) in a temporary directory,
    then ``huggingface_hub.HfApi`` creates the repository (private by default) and uploads it.
    ``api`` takes another ``HfApi`` (an endpoint of your own). Returns the commit URL.

    Example:
        >>> ik.push_to_hub(clean, "me/my-clean-set", license="apache-2.0")  # doctest: +SKIP
    """
    import tempfile

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="ik-hub-") as folder:
        export(dataset, folder, target="hf", format=format, license=license,
               pretty_name=repo_id.split("/")[-1])
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=folder, commit_message=commit_message
        )
    return str(getattr(info, "commit_url", info))
