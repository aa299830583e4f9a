import json
import subprocess
import sys

import instructkit as ik
from instructkit.cli import main


def test_demo_prints_one_row_per_step_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    from instructkit.demo import demo_path

    steps = ik.Pipeline.from_yaml(demo_path("demo_recipe.yaml")).steps
    for step in steps:
        assert f"│ {step.name} " in printed
    clean = ik.read(out / "clean.jsonl")
    removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    n_in = len(ik.read([demo_path("demo.jsonl"), demo_path("demo_chat.jsonl")]))
    assert len(clean) + len(removed) == n_in
    assert {r["reason"] for r in removed} >= {"empty_output", "refusal", "blacklisted_task"}


def test_stats_and_convert(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "q1", "answer": "a1"}\n{"question": "q2", "answer": "a2"}\n')
    assert main(["stats", str(src)]) == 0
    assert "2 records" in capsys.readouterr().out
    dst = tmp_path / "out.json"
    assert main(["convert", str(src), str(dst), "--to", "sharegpt"]) == 0
    data = json.loads(dst.read_text())
    assert data[0]["conversations"][0] == {"from": "human", "value": "q1"}
    assert ik.read(dst)[1]["output"] == "a2"


def test_run_recipe_command(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (tmp_path / "r.yaml").write_text("inputs: [in.jsonl]\nsteps: [normalize]\noutput: {path: o.jsonl}\n")
    assert main(["run", str(tmp_path / "r.yaml")]) == 0
    assert "normalize" in capsys.readouterr().out
    assert (tmp_path / "o.jsonl").exists()


def test_run_recipe_out_of_core_command(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"instruction": f"q{i % 5}", "output": "a"}) + "\n"
                                               for i in range(20)))
    (tmp_path / "r.yaml").write_text("inputs: [in.jsonl]\nsteps: [dedup.exact]\n")
    out = tmp_path / "shards"
    assert main(["run", str(tmp_path / "r.yaml"), "--batch-size", "8", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dedup.exact" in printed and f"output: {out}" in printed
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    assert sum(len(f) for f in ik.scan(out / "data")) == 5


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "instructkit.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout
