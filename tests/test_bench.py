"""ik.bench, ik.sweep and the bench/sweep commands."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from extras import require

import instructkit as ik
from instructkit.profiling import cli
from instructkit.profiling.bench import can_measure_memory
from instructkit.transform import Filter, Global, detail_expr


class MinChars(Filter):
    name = "test_bench.min_chars"

    def __init__(self, min_chars: int = 3) -> None:
        self.min_chars = min_chars

    def reasons(self, frame: pl.DataFrame) -> pl.Expr:
        return pl.when(pl.col("output").str.len_chars() < self.min_chars).then(pl.lit("too_short"))


class SameLength(Global):
    """Drops records whose output length equals an earlier one's, within ``tolerance``."""

    name = "test_bench.same_length"
    decide_params = ("tolerance",)
    observed = 0

    def __init__(self, tolerance: int = 0) -> None:
        self.tolerance = tolerance

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        SameLength.observed += 1
        return batch.select("id", pl.col("output").str.len_chars().alias("n"))

    def decide(self, states: list[Any]) -> pl.DataFrame:
        frame = pl.concat(states).with_columns((pl.col("n") // (self.tolerance + 1)).alias("b"))
        first = frame.group_by("b", maintain_order=True).agg(pl.col("id").first().alias("of"))
        return frame.join(first, on="b").filter(pl.col("id") != pl.col("of")).select(
            "id", pl.lit("same_length").alias("reason"), detail_expr(kept=pl.col("of")).alias("detail"))


def _data(n: int = 60) -> ik.Dataset:
    return ik.Dataset.from_records(
        [{"instruction": f"q{i}", "output": "x" * (i % 20)} for i in range(n)], source="d")


def test_bench_counts_speed_memory_projection(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "x" * (i % 20)}) + "\n" for i in range(60)))
    result = ik.bench([MinChars(), SameLength()], path, sample=30,
                      json_path=tmp_path / "b.json", chart=tmp_path / "b.png")
    f = result.frame
    assert f["step"].to_list() == ["test_bench.min_chars", "test_bench.same_length"]
    assert f.row(0, named=True)["records_in"] == 30 and f.row(0, named=True)["removed"] == 6
    assert f.row(0, named=True)["reasons"] == "too_short=6"
    assert f.row(1, named=True)["records_in"] == 24 and f.row(1, named=True)["records_out"] == 17
    assert result.total == 60 and result.scale == 2.0
    assert f["projected_s"].to_list() == pytest.approx([s * 2 for s in f["seconds"].to_list()])
    assert (f["records_per_s"] > 0).all()
    if can_measure_memory():
        assert f["peak_mb"].null_count() == 0
    assert json.loads((tmp_path / "b.json").read_text())["steps"][0]["removed"] == 6
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert "projected full-corpus time" in str(result)


@pytest.mark.skipif(not can_measure_memory(), reason="needs /proc/self/clear_refs (Linux)")
def test_peak_memory_sees_native_allocations() -> None:
    # a fresh process: in this one, earlier tests leave freed memory that numpy may reuse
    # without the resident size growing, which is right for the OS but not for this check
    code = (
        "import numpy as np\n"
        "from instructkit.profiling.bench import peak_memory\n"
        "with peak_memory() as mem:\n"
        "    block = np.ones(40_000_000 // 8)  # 40 MB outside Python's allocator\n"
        "del block\n"
        "with peak_memory() as small:\n"
        "    pass\n"
        "print(mem.mb, small.mb)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    big, small = (float(x) for x in out.stdout.split())
    assert big >= 35
    assert small < 20  # the counter was reset in between


def test_sweep_global_observes_once() -> None:
    SameLength.observed = 0
    result = ik.sweep(SameLength(), "tolerance", [0, 1, 4], _data(), examples=2)
    assert result.reused and SameLength.observed == 1
    assert result.frame["removed"].to_list() == [40, 50, 56]
    assert result.frame["newly_removed"].to_list() == [40, 10, 8]  # a bucket's kept record can change
    assert result.examples["1"].height == 2 and set(result.examples["1"].columns) >= {"id", "reason", "instruction"}
    # what the sweep says equals running the step at that value
    for value, removed in zip([0, 1, 4], [40, 50, 56], strict=True):
        assert _data().pipe(SameLength(tolerance=value)).removed.height == removed


def test_sweep_reruns_other_params_and_says_so(tmp_path: Path) -> None:
    result = ik.sweep(MinChars(), "min_chars", [1, 5, 10], _data())
    assert not result.reused and "reran" in result.note
    assert result.frame["removed"].to_list() == [3, 15, 30]
    assert result.frame["newly_removed"].to_list() == [3, 12, 15]
    result.plot(tmp_path / "s.png")
    assert json.loads(result.to_json(tmp_path / "s.json").read_text())["settings"][2]["removed"] == 30
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        ik.sweep(MinChars(), "nope", [1], _data())


def test_sweep_langid_predicts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    langid = require("instructkit.filters.langid")
    calls = []
    original = langid.LangID.predict

    def counted(self: Any, frame: pl.DataFrame) -> pl.DataFrame:
        calls.append(frame.height)
        return original(self, frame)

    monkeypatch.setattr(langid.LangID, "predict", counted)
    data = ik.Dataset.from_records([
        {"instruction": "Please write a short poem about the sea at night.", "output": "The waves sing."},
        {"instruction": "Écris un court poème sur la mer la nuit, s'il te plaît.", "output": "Les vagues."},
        {"instruction": "ok", "output": "k"},
    ])
    result = ik.sweep(ik.langid(keep="en"), "min_score", [0.0, 0.5, 0.99], data)
    assert result.reused and len(calls) == 1
    removed = result.frame["removed"].to_list()
    assert removed == sorted(removed) and removed[0] >= 1


def test_bench_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require("instructkit.dedup")  # registers dedup.* for the recipe
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - normalize: {}\n  - dedup.exact: {}\n")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n" * 1 + json.dumps({"instruction": "a", "output": "b"}) + "\n")
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", str(recipe), str(data), "--json", str(tmp_path / "o.json")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "dedup.exact" in out and "exact_duplicate=1" in out
    args = parser.parse_args(["sweep", str(data), "--step", "dedup.minhash", "--param", "threshold",
                              "--values", "0.9,0.5", "--set", "num_perm=32"])
    assert args.func(args) == 0
    assert "observed once" in capsys.readouterr().out
