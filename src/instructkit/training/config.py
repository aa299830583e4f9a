"""Fine-tuning as data: a run described in YAML, and the checks made before any weight loads.

A config file holds what ``instructkit finetune`` takes on its command line, with the
keyword names of :func:`instructkit.finetune`::

    data: clean/train.jsonl          # or a list, a folder, a glob
    eval_data: clean/eval.jsonl      # optional (else eval_fraction is held out)
    base_model: models/Llama-3.2-1B
    output_dir: out/adapter
    template: llama2
    max_steps: 500
    target_modules: [q_proj, v_proj]

Run it with ``instructkit finetune --config ft.yaml`` or :func:`finetune_from_config`; a
recipe's ``finetune:`` section takes the same keys (without ``data``: the recipe's output is
the data). Relative paths resolve against the config file's folder.

Two mistakes used to surface late, after seconds of loading: a local model folder that does
not exist came back as a Hub repository-id error, and a mistyped ``target_modules`` failed
only once the model was in memory. :func:`check_base_model` and :func:`check_target_modules`
catch both before anything heavy loads (the second builds the model's skeleton on the
``meta`` device, with no weights).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

#: Keys of a config that are not :func:`instructkit.finetune` parameters.
DATA_KEYS = ("data", "eval_data", "format")


def finetune_keys() -> list[str]:
    """Every key a finetune config or a recipe's ``finetune:`` section may hold.

    Example:
        >>> "base_model" in finetune_keys() and "data" in finetune_keys()
        True
    """
    from instructkit.training.qlora import finetune

    names = [p for p in inspect.signature(finetune).parameters if p not in ("dataset", "eval_dataset", "data_files")]
    return [*DATA_KEYS, *names]


def check_config(config: Mapping[str, Any], where: str, allow_data: bool = True) -> None:
    """Raise ``ValueError`` naming unknown or missing keys of a finetune config.

    Example:
        >>> check_config({"base_model": "m", "output_dir": "o", "data": "d.jsonl", "lr": 1}, "ft.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ft.yaml: unknown key(s) ['lr']; valid: ['base_model', 'batch_size', ...]
    """
    valid = finetune_keys() if allow_data else [k for k in finetune_keys() if k not in DATA_KEYS]
    unknown = sorted(str(k) for k in config if k not in valid)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {sorted(valid)}")
    required = ["base_model", "output_dir", *(["data"] if allow_data else [])]
    missing = [k for k in required if config.get(k) in (None, "")]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")


def load_config(path: str | Path) -> dict[str, Any]:
    """A finetune config file, checked, with relative paths resolved against its folder.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "ft.yaml"
        >>> _ = p.write_text("data: train.jsonl\\nbase_model: m\\noutput_dir: out\\n")
        >>> load_config(p)["data"] == str(p.parent / "train.jsonl")
        True
    """
    path = Path(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a finetune config is a YAML mapping of finetune options")
    check_config(config, str(path))
    return resolve_paths(config, path.parent)


def resolve_paths(config: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """``config`` with its data, output and local model paths made relative to ``base``."""
    out = dict(config)

    def local(value: str) -> str:
        return value if os.path.isabs(value) else str(base / value)

    for key in ("data", "eval_data"):
        if isinstance(out.get(key), str):
            out[key] = local(out[key])
        elif isinstance(out.get(key), list):
            out[key] = [local(v) for v in out[key]]
    out["output_dir"] = local(str(out["output_dir"]))
    model = str(out["base_model"])
    if _looks_local(model) or (base / model).exists():
        out["base_model"] = local(model)
    return out


def finetune_from_config(config: str | Path | Mapping[str, Any]) -> Any:
    """Run :func:`instructkit.finetune` as a config file (or mapping) describes it.

    Example:
        >>> from instructkit.training.config import finetune_from_config
        >>> finetune_from_config("ft.yaml").output_dir    # doctest: +SKIP
        PosixPath('out/adapter')
    """
    from instructkit.io.read import read
    from instructkit.training.qlora import finetune

    if not isinstance(config, Mapping):
        config = load_config(config)
    else:
        check_config(config, "finetune config")
    options = {k: v for k, v in config.items() if k not in DATA_KEYS}
    dataset = read(config["data"], format=config.get("format"))
    if config.get("eval_data"):
        options["eval_dataset"] = read(config["eval_data"], format=config.get("format"))
    data = config["data"]
    files = [data] if isinstance(data, str) else list(data)
    return finetune(dataset, data_files=files, **options)


# ------------------------------------------------------------------------------------------
# checks before loading


def _looks_local(name: str) -> bool:
    # a Hub id is "name" or "org/name"; a path starts with . / ~ or has more parts
    return name.startswith((".", "/", "~")) or name.count("/") > 1


def check_base_model(base_model: str | Path) -> None:
    """Refuse, at once, a base model that cannot load: a local path that does not exist, or,
    offline (``HF_HUB_OFFLINE=1``), a name that is no local folder.

    Example:
        >>> check_base_model("./no/such/model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: base model folder './no/such/model' does not exist
    """
    name = str(base_model)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"base model folder {name!r} has no config.json: not a transformers model")
        return
    if isinstance(base_model, Path) or _looks_local(name):
        raise FileNotFoundError(f"base model folder {name!r} does not exist")
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise FileNotFoundError(
            f"base model {name!r} is not a local folder, and HF_HUB_OFFLINE is set: download it "
            "first, or give its folder"
        )


def linear_module_names(base_model: str | Path) -> list[str]:
    """The names of the model's ``nn.Linear`` modules, from its skeleton (no weights load).

    Example:
        >>> linear_module_names("models/tiny-llama")[:2]   # doctest: +SKIP
        ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj']
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(base_model))
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    return [n for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear)]


def check_target_modules(base_model: str | Path, target_modules: str | Sequence[str]) -> None:
    """Refuse ``target_modules`` that match none of the model's linear layers, naming them
    and the names the model has, before any weight loads. A list names module suffixes (as
    peft matches them); a string other than ``"all-linear"`` is a regular expression that
    must match a whole module name.

    Example:
        >>> check_target_modules("models/tiny-llama", ["q_prj"])  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        ValueError: target_modules ['q_prj'] match no linear layer of models/tiny-llama; ...
    """
    if target_modules == "all-linear":
        return
    names = linear_module_names(base_model)
    if isinstance(target_modules, str):
        if not any(re.fullmatch(target_modules, n) for n in names):
            raise ValueError(f"target_modules {target_modules!r} (a regular expression) matches no "
                             f"linear layer of {base_model}; its linear layers: {_suffixes(names)}")
        return
    missing = [t for t in target_modules if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ValueError(f"target_modules {missing} match no linear layer of {base_model}; "
                         f"its linear layers end in: {_suffixes(names)}")


def _suffixes(names: list[str]) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n in names})
