"""Workflow (e): MedQuAD XML into a text-generation-webui training dataset.

A subset of raw/medquad_xml.tar.gz (the 5_NIDDK_QA and 9_CDC_QA collections, 216 XML
files) is extracted, read with ``ik.read_medquad``, normalized and deduplicated, and
written as a JSON list with only the fields webui's format file names. The dataset is then
fed through webui's own ``generate_prompt`` key-set matching (modules/training.py, copied
below) with its ``alpaca-format.json``; every record must match a key set.

Measured on ../shared/data: 1,462 QA pairs (none with an empty answer in these two
collections), 48 exact duplicates, 1,414 written.
"""

from __future__ import annotations

import inspect
import json
import tarfile
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik
from instructkit.templates.formats import WebUIFormat

# oobabooga/text-generation-webui, training/formats/alpaca-format.json
ALPACA_FORMAT = {
    "instruction,output": "Below is an instruction that describes a task. Write a response that "
    "appropriately completes the request.\n\n### Instruction:\n%instruction%\n\n### Response:\n%output%",
    "instruction,input,output": "Below is an instruction that describes a task, paired with an input "
    "that provides further context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n%instruction%\n\n### Input:\n%input%\n\n### Response:\n%output%",
}


def webui_generate_prompt(format_data: dict[str, str], data_point: dict) -> str:
    """text-generation-webui modules/training.py ``generate_prompt``."""
    for options, data in format_data.items():
        if set(options.split(",")) == {
                x[0] for x in data_point.items() if (type(x[1]) is str and len(x[1].strip()) > 0)}:
            for key, val in data_point.items():
                if type(val) is str:
                    data = data.replace(f"%{key}%", val)
            return data
    raise RuntimeError(f'Data-point "{data_point}" has no keyset match within format "{list(format_data.keys())}"')


def own_fields_only(ds: ik.Dataset) -> tuple[ik.Dataset, dict]:
    """Write only the format's own fields: the writer's option when it has one, else clear
    ``meta`` (which the alpaca writer spreads into every row)."""
    params = inspect.signature(ik.Dataset.write).parameters
    if "meta" in params:
        return ds, {"meta": False}
    if "columns" in params:
        return ds, {"columns": ["instruction", "input", "output"]}
    return ds.with_columns(pl.lit(None, dtype=pl.String).alias("meta")), {}


def test_medquad_into_webui_format(shared_data: Path, tmp_path: Path) -> None:
    archive = shared_data / "raw" / "medquad_xml.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} is absent")
    folder = tmp_path / "medquad"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith(("5_NIDDK_QA/", "9_CDC_QA/"))]
        tar.extractall(folder, members=members, filter="data")
    assert len(members) == 216
    ds = ik.read_medquad(folder).pipe(ik.normalize(), ik.dedup.exact())
    assert ds.report()["records_in"][0] == 1462
    assert len(ds) == 1414 and dict(ds.removed.group_by("reason").len().rows()) == {"exact_duplicate": 48}
    assert {r["meta"]["collection"] for r in ds} == {"5_NIDDK_QA", "9_CDC_QA"}

    plain, options = own_fields_only(ds)
    dataset_path = plain.write(tmp_path / "medquad.json", format="alpaca", ids=False, **options)
    (tmp_path / "alpaca-format.json").write_text(json.dumps(ALPACA_FORMAT, indent=4))
    rows = json.loads(dataset_path.read_text(encoding="utf-8"))
    assert len(rows) == 1414
    assert {frozenset(k for k, v in r.items() if isinstance(v, str) and v.strip()) for r in rows} == {
        frozenset({"instruction", "output"})}
    prompts = [webui_generate_prompt(ALPACA_FORMAT, r) for r in rows]
    for prompt, record in zip(prompts, ds, strict=True):
        assert prompt == ALPACA_FORMAT["instruction,output"].replace(
            "%instruction%", record["instruction"]).replace("%output%", record["output"])
    # instructkit's own reading of the same format file renders the same training text
    fmt = WebUIFormat.from_file(tmp_path / "alpaca-format.json")
    assert [fmt.render(r) for r in rows[:100]] == prompts[:100]
    # a row with meta keys spread into it would match no key set
    with pytest.raises(RuntimeError, match="no keyset match"):
        webui_generate_prompt(ALPACA_FORMAT, {**rows[0], "qtype": "information"})
