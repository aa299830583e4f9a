import gzip
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import instructkit as ik
from instructkit import _progress
from instructkit.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


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


# failing quietly and clearly ---------------------------------------------------------------
def _fixtures(tmp: Path) -> dict[str, Path]:
    """One broken file of each kind, and recipes that are wrong in each way."""
    good = tmp / "good.jsonl"
    good.write_text('{"instruction": "a", "output": "b"}\n')
    files = {
        "good": good,
        "bad_json": tmp / "bad.json",
        "bad_jsonl": tmp / "bad.jsonl",
        "bad_parquet": tmp / "bad.parquet",
        "truncated_gz": tmp / "cut.jsonl.gz",
        "ragged_csv": tmp / "ragged.csv",
        "yaml_syntax": tmp / "syntax.yaml",
        "yaml_tag": tmp / "tag.yaml",
        "unknown_section": tmp / "section.yaml",
        "unknown_step": tmp / "step.yaml",
        "not_utf8": tmp / "latin.jsonl",
    }
    files["bad_json"].write_text('[{"instruction": "a"')
    files["bad_jsonl"].write_text('{"instruction": "a", "output": "b"}\n{bad\n')
    files["bad_parquet"].write_bytes(b"this is not parquet")
    files["truncated_gz"].write_bytes(gzip.compress(good.read_bytes() * 50)[:30])
    files["ragged_csv"].write_text('instruction,output\na,b\n"c\n')
    files["yaml_syntax"].write_text("inputs: [good.jsonl]\nsteps: [\n")
    files["yaml_tag"].write_text('inputs: [good.jsonl]\nsteps: [!!python/object/apply:os.system ["echo"]]\n')
    files["unknown_section"].write_text("inputs: [good.jsonl]\nstepz: [normalize]\n")
    files["unknown_step"].write_text("inputs: [good.jsonl]\nsteps: [no_such_step]\n")
    files["not_utf8"].write_bytes('{"instruction": "caf\u00e9", "output": "b"}\n'.encode("latin-1"))
    return files


FAILURES = [
    ("missing", ["stats", "{tmp}/missing.jsonl"], "missing.jsonl"),
    ("bad_json", ["stats", "{bad_json}"], "bad.json"),
    ("bad_jsonl", ["convert", "{bad_jsonl}", "{tmp}/o.jsonl", "--to", "alpaca"], "bad.jsonl"),
    ("bad_parquet", ["stats", "{bad_parquet}"], "bad.parquet"),
    ("truncated_gz", ["stats", "{truncated_gz}"], "cut.jsonl.gz"),
    ("ragged_csv", ["convert", "{ragged_csv}", "{tmp}/o.jsonl", "--to", "alpaca"], "ragged.csv"),
    ("not_utf8", ["convert", "{not_utf8}", "{tmp}/o.jsonl", "--to", "alpaca"], "latin.jsonl"),
    ("yaml_syntax", ["run", "{yaml_syntax}"], "syntax.yaml"),
    ("yaml_tag", ["run", "{yaml_tag}"], "tag.yaml"),
    ("unknown_section", ["run", "{unknown_section}"], "stepz"),
    ("unknown_step", ["run", "{unknown_step}"], "no_such_step"),
    ("missing_recipe", ["run", "{tmp}/none.yaml"], "none.yaml"),
    ("bad_output", ["convert", "{good}", "{tmp}/o.xyz", "--to", "alpaca"], "o.xyz"),
]


@pytest.mark.parametrize("case,argv,named", FAILURES, ids=[c[0] for c in FAILURES])
def test_user_errors_are_one_line_naming_the_file(tmp_path, capsys, case, argv, named):
    files = {k: str(v) for k, v in _fixtures(tmp_path).items()}
    argv = [a.format(tmp=tmp_path, **files) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("instructkit: error: ") and named in lines[0], lines[0]
    assert "may be a bug" not in lines[0], f"{case} is reported as a bug: {lines[0]}"


def test_yaml_tag_error_says_where_and_why(tmp_path, capsys):
    recipe = _fixtures(tmp_path)["yaml_tag"]
    assert main(["run", str(recipe)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"instructkit: error: {recipe}: line 2, column 9:")
    assert "python/object/apply:os.system" in err and "tags" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    bad = _fixtures(tmp_path)["bad_json"]
    assert main(["--debug", "convert", str(bad), str(tmp_path / "o.jsonl"), "--to", "alpaca"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith(f"instructkit: error: {bad}")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "only-one-arg"])
    assert e.value.code == 2
    assert "usage: instructkit convert" in capsys.readouterr().err
    assert main([]) == 2


def test_missing_extra_names_the_pip_install(tmp_path, capsys, monkeypatch):
    data = _fixtures(tmp_path)["good"]
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    assert main(["report", str(data), "--tokenizer", "gpt2", "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("instructkit: error: this needs the optional package 'transformers': "
                   "pip install 'instructkit[finetune]'")


def test_missing_ray_names_the_extra(tmp_path, capsys, monkeypatch):
    files = _fixtures(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"inputs: [{files['good'].name}]\nsteps: [normalize]\n")
    monkeypatch.setitem(sys.modules, "ray", None)
    argv = ["run", str(recipe), "--executor", "ray", "--output-dir", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'instructkit[ray]'" in err


def test_an_unexpected_error_is_one_line_that_says_so(capsys, monkeypatch):
    import instructkit.io.read as read_module

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'x'")

    monkeypatch.setattr(read_module, "read", broken)
    assert main(["stats", "x.jsonl"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("instructkit: error: x.jsonl: AttributeError: ")
    assert "--debug shows the traceback" in err and len(err.splitlines()) == 1


def test_ctrl_c_in_process_exits_130(capsys, monkeypatch):
    import instructkit.io.read as read_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(read_module, "read", interrupted)
    assert main(["stats", "x.jsonl"]) == 130
    assert capsys.readouterr().err == "instructkit: interrupted\n"


def test_ctrl_c_on_a_running_command_exits_130():
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen([sys.executable, "-m", "instructkit.cli", "-v", "stats", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        # wait until it is blocked reading stdin, inside the command
        seen = ""
        deadline = time.monotonic() + 120
        while "reading JSON Lines from stdin" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 1)
            if ready:
                seen += proc.stderr.readline()
        assert "reading JSON Lines from stdin" in seen, seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == "instructkit: interrupted\n"


# operations ----------------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"instructkit {ik.__version__}"


def run_cli(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "instructkit.cli", *argv], input=stdin,
                          capture_output=True, text=True, env=env, timeout=300)


def test_convert_from_stdin_to_stdout():
    lines = '{"question": "q1", "answer": "a1"}\n{"question": "q2", "answer": "a2"}\n'
    done = run_cli("convert", "-", "-", "--to", "sharegpt", stdin=lines)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["conversations"][1]["value"] for r in rows] == ["a1", "a2"]
    assert [r["id"] for r in rows] == ["stdin:0", "stdin:1"]
    assert done.stderr.strip() == "wrote 2 records to stdout (0 unreadable records skipped)"


def test_stdin_errors_name_stdin_and_stats_reads_stdin(tmp_path):
    done = run_cli("convert", "-", str(tmp_path / "o.jsonl"), "--to", "alpaca",
                   stdin='{"instruction": "a", "output": "b"}\n{bad\n')
    assert done.returncode == 1
    assert done.stderr.startswith("instructkit: error: <stdin>, line 2, column 2: invalid JSON") and "instructkit-stdin" not in done.stderr
    done = run_cli("stats", "-", stdin='{"instruction": "a", "output": "b"}\n{bad\n')
    assert done.returncode == 0 and done.stdout.startswith("1 records, 1 unreadable")


def test_verbose_and_log_level(tmp_path, capsys):
    data = _fixtures(tmp_path)["good"]
    assert main(["stats", str(data)]) == 0
    assert "INFO" not in capsys.readouterr().err
    assert main(["-v", "stats", str(data)]) == 0
    assert "INFO instructkit: read 1 records (0 unreadable)" in capsys.readouterr().err
    assert main(["--log-level", "error", "stats", str(data)]) == 0
    assert capsys.readouterr().err == ""
    assert logging.getLogger("instructkit").level == logging.ERROR
    main(["--log-level", "warning", "stats", str(data)])


def test_help_tells_about_stdin(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    assert "stdin" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["stats", "--help"])
    assert "'-' reads JSON Lines from stdin" in " ".join(capsys.readouterr().out.split())


# progress --------------------------------------------------------------------------------------
def test_progress_is_silent_when_quiet(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_quiet", True)
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    assert list(_progress.progress(range(3), total=3, desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_progress_in_a_batch_job_writes_plain_lines(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_quiet", False)
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    assert list(_progress.progress(range(2), total=2, desc="step", unit="batch")) == [0, 1]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("instructkit: step: 1/2 batch (50%), ")
    assert lines[-1].startswith("instructkit: step: done 2/2 batch (100%), ")
    assert "\r" not in "".join(lines)


def test_progress_lines_are_at_most_every_interval(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_quiet", False)
    assert _progress.LOG_EVERY == 10.0
    list(_progress.progress(range(1000), total=1000, desc="fast"))
    assert capsys.readouterr().err == ""  # a fast loop says nothing


def test_in_memory_dedup_and_decontamination_report_progress(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_quiet", False)
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    rows = [{"instruction": f"question {i % 3}", "output": "a"} for i in range(5)]
    data = ik.Dataset.from_records(rows, source="s")
    bench = ik.benchmarks.from_records("b", [{"q": "question 1 is here"}], ["q"])
    for step in (ik.dedup.exact(), ik.decontaminate([bench], n=2)):
        monkeypatch.setattr(type(step), "batch_size", 2)
        data.pipe(step)
        err = capsys.readouterr().err
        assert f"instructkit: observe {step.name}: done 3/3 batch (100%)" in err, err


def test_convert_takes_a_system_prompt_and_writes_only_the_formats_fields(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "Hi", "output": "Hello", "note": "x"}\n')
    out = tmp_path / "o.jsonl"
    assert main(["convert", str(data), str(out), "--to", "text", "--template", "chatml",
                 "--system", "Be kind."]) == 0
    assert "<|im_start|>system\nBe kind.<|im_end|>" in json.loads(out.read_text())["text"]
    assert main(["convert", str(data), str(out), "--to", "alpaca", "--no-meta", "--no-ids"]) == 0
    assert set(json.loads(out.read_text())) == {"instruction", "input", "output"}
