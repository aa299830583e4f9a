"""Streaming executor, resume, scan and the Ray executor."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from extras import require

import instructkit as ik
from instructkit.executors import run
from instructkit.executors.local import needs_pass
from instructkit.io.scan import Scan
from instructkit.schema import empty_removed
from instructkit.transform import Filter, Global, Map, detail_expr

# --- small transforms of each kind, so these tests do not depend on other modules -----------


class Shout(Map):
    name = "test.shout"

    def __init__(self, field: str = "output") -> None:
        self.field = field

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(self.field).str.to_uppercase())


class MinChars(Filter):
    name = "test.min_chars"

    def __init__(self, min_chars: int = 3) -> None:
        self.min_chars = min_chars

    def reasons(self, frame: pl.DataFrame) -> pl.Expr:
        return pl.when(pl.col("output").str.len_chars() < self.min_chars).then(pl.lit("too_short"))


class FirstOfText(Global):
    """Exact dedup on instruction+output; keeps the first occurrence (state: 8-byte hashes)."""

    name = "test.first_of_text"

    def __init__(self, field: str = "instruction") -> None:
        self.field = field

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        return batch.select("id", pl.col(self.field).hash(seed=7).alias("h"))

    def decide(self, states: list[Any]) -> pl.DataFrame:
        allh = pl.concat(states)
        first = allh.group_by("h", maintain_order=True).agg(pl.col("id").first().alias("of"))
        return (
            allh.join(first, on="h", maintain_order="left")
            .filter(pl.col("id") != pl.col("of"))
            .select("id", pl.lit("exact_duplicate").alias("reason"), detail_expr(kept=pl.col("of")).alias("detail"))
        )


class Threads(Map):
    """Records the thread counts polars and numba run with where the batch is processed."""

    name = "test.threads"

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        import numba

        return frame.with_columns(pl.lit(f"{pl.thread_pool_size()}/{numba.config.NUMBA_NUM_THREADS}").alias("threads"))


class Tripwire(Map):
    """Fails on a batch holding ``fail_id`` while ``armed``; counts the batches it saw."""

    name = "test.tripwire"
    armed: ClassVar[bool] = False
    seen: ClassVar[int] = 0

    def __init__(self, fail_id: str = "") -> None:
        self.fail_id = fail_id

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if Tripwire.armed and self.fail_id in frame["id"].to_list():
            raise RuntimeError("injected failure")
        Tripwire.seen += 1
        return frame


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {"instruction": f"task {i % 200}", "input": "", "output": "ok" if i % 11 == 0 else f"answer {i}"}
        for i in range(n)
    ]


@pytest.fixture()
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(250)))
    return path


STEPS = [Shout(), MinChars(), FirstOfText(), Shout(field="instruction")]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("id")


# --- local executor ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_streaming_equals_in_memory(jsonl: Path, tmp_path: Path, fmt: str) -> None:
    memory = ik.read(jsonl).pipe(*STEPS)
    result = run(STEPS, jsonl, batch_size=40, output=tmp_path / "out", format=fmt)
    streamed = result.to_dataset()
    assert len(result.shards) == 7  # 250 records in batches of 40
    assert streamed.to_polars().equals(memory.to_polars())
    assert _sorted(streamed.removed).equals(_sorted(memory.removed))
    assert result.report().drop("seconds").equals(memory.report().drop("seconds"))
    assert result.records_in == 250 and result.records_out == len(memory)
    assert not list((tmp_path / "out" / "state").glob("spill-*"))  # spills are cleaned up


def test_streaming_real_dedup_equals_in_memory(tmp_path: Path) -> None:
    dedup = require("instructkit.dedup")
    corpus = ik.synth.corpus(3_000, seed=2, dup_fraction=0.3, path=tmp_path / "c.jsonl")
    steps = [dedup.exact(), dedup.minhash(threshold=0.7, num_perm=64)]
    memory = ik.Dataset(pl.concat(list(ik.scan(corpus.path)))).pipe(*steps)
    streamed = run(steps, corpus.path, batch_size=700).dataset
    assert streamed.to_polars().equals(memory.to_polars())
    assert _sorted(streamed.removed).equals(_sorted(memory.removed))
    assert memory.removed.height > 300  # planted pairs span Jaccard 0.3-1


def test_output_none_returns_dataset(jsonl: Path) -> None:
    result = run(STEPS, ik.scan(jsonl, batch_size=100))
    assert result.output is None and result.dataset is not None
    assert len(result.dataset) + result.dataset.removed.height == 250


def test_resume_skips_finished_shards(jsonl: Path, tmp_path: Path) -> None:
    steps = [*STEPS, Tripwire(fail_id="corpus:130")]
    out = tmp_path / "out"
    Tripwire.armed, Tripwire.seen = True, 0
    with pytest.raises(RuntimeError, match="injected failure"):
        run(steps, jsonl, batch_size=40, output=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["shards"]) == ["0", "1", "2"]  # 130 is in batch 3
    assert list(manifest["globals"]) == ["2"]
    Tripwire.armed, Tripwire.seen = False, 0
    resumed = run(steps, jsonl, batch_size=40, output=out)
    assert resumed.skipped == 3
    assert Tripwire.seen == 4  # only batches 3..6 ran, and the global step was not observed again
    fresh = run(steps, jsonl, batch_size=40, output=tmp_path / "fresh")
    for a, b in zip(resumed.shards, fresh.shards, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert resumed.report().drop("seconds").equals(fresh.report().drop("seconds"))


def test_resume_refuses_another_pipeline(jsonl: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(STEPS, jsonl, batch_size=40, output=out)
    with pytest.raises(ValueError, match="different pipeline or input"):
        run([MinChars(min_chars=5)], jsonl, batch_size=40, output=out)
    again = run([MinChars(min_chars=5)], jsonl, batch_size=40, output=out, resume=False)
    assert again.skipped == 0 and len(again.shards) == 7


def test_refuses_foreign_folder(jsonl: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        run(STEPS, jsonl, output=tmp_path / "out")


KILLER = """
import os, signal, sys
import instructkit as ik
from instructkit.executors import run
from instructkit.transform import Map

class Kill(Map):
    name = "test.kill"
    batches = 0

    def apply(self, frame):
        Kill.batches += 1
        if os.environ.get("ARMED") and Kill.batches == 4:  # while MinHash observes batch 3
            os.kill(os.getpid(), signal.SIGKILL)
        return frame

result = run([Kill(), ik.dedup.minhash(threshold=0.7)], sys.argv[1], batch_size=700, output=sys.argv[2])
print(result.records_out)
"""


def test_killed_run_leaves_no_spill_files_behind(tmp_path: Path) -> None:
    """A run killed while MinHash observes leaves its signature files in the run folder, not
    the system temp dir, and resuming deletes them."""
    import os
    import subprocess
    import sys

    corpus = ik.synth.corpus(3_000, seed=2, dup_fraction=0.3, path=tmp_path / "c.jsonl")
    script, out = tmp_path / "killer.py", tmp_path / "out"
    script.write_text(KILLER)
    killed = subprocess.run([sys.executable, str(script), str(corpus.path), str(out)],
                            env={**os.environ, "ARMED": "1"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = sorted(p.name for p in (out / "state" / "tmp").iterdir())
    assert len(left) == 3 and all(n.startswith("instructkit-minhash-") for n in left)  # batches 0-2
    resumed = subprocess.run([sys.executable, str(script), str(corpus.path), str(out)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not (out / "state" / "tmp").exists()
    fresh = run([ik.dedup.minhash(threshold=0.7)], corpus.path, batch_size=700)
    assert int(resumed.stdout.split()[-1]) == fresh.records_out < 3_000


# --- protocol hooks, history, cleanup, redaction ---------------------------------------


def test_flagging_global_step_keeps_records_on_every_path(tmp_path: Path) -> None:
    """F1: apply_decision is the one hook every path calls, so action='flag' keeps records."""
    item = "natalia sold clips to forty eight of her friends in april and then half as many in may"
    toy = ik.benchmarks.from_records("toy", [{"q": item}], ["q"])
    ds = ik.Dataset.from_records([{"instruction": item if i % 3 == 0 else f"task {i}", "output": "ok"}
                                  for i in range(9)], source="f")
    step = ik.decontaminate([toy], n=5, action="flag")
    memory = ds.pipe(step)
    streamed = run([step], ds, batch_size=2, output=tmp_path / "out").to_dataset()
    assert len(memory) == len(streamed) == 9 and streamed.removed.height == 0
    assert streamed.to_polars()["contaminated"].to_list() == [i % 3 == 0 for i in range(9)]
    assert streamed.to_polars().equals(memory.to_polars())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_per_record_global_step_needs_no_pass_of_its_own(tmp_path: Path, workers: int) -> None:
    """decontaminate decides per record: streamed, it runs on each batch like a filter (no
    decision in the manifest, no spill for it), with the drops of the in-memory path."""
    item = "natalia sold clips to forty eight of her friends in april and then half as many in may"
    toy = ik.benchmarks.from_records("toy", [{"q": item}], ["q"])
    ds = ik.Dataset.from_records(
        [{"instruction": item if i % 4 == 0 else f"task number {i % 5}", "output": "ok"} for i in range(12)], source="p"
    )
    steps = [ik.dedup.exact(), ik.decontaminate([toy], n=5), ik.normalize()]
    assert [needs_pass(s) for s in steps] == [True, False, False]
    memory = ds.pipe(*steps)
    result = run(steps, ds, batch_size=3, output=tmp_path / "out", workers=workers)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(manifest["globals"]) == ["0"]  # the exact dedup's decision only
    assert not (tmp_path / "out" / "state" / "global-1.parquet").exists()
    streamed = result.to_dataset()
    assert streamed.to_polars().equals(memory.to_polars())
    log = ["id", "step", "reason", "detail"]
    assert streamed.removed.select(log).sort("id").equals(memory.removed.select(log).sort("id"))
    assert set(streamed.removed["reason"]) == {"exact_duplicate", "contamination"}


class Counted(Global):
    """Records how many rows each ``observe`` and each ``decide`` saw (decide must see them all)."""

    name = "test.counted"
    batch_size: ClassVar[int] = 3
    seen: ClassVar[list[int]] = []
    decided: ClassVar[list[int]] = []

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        Counted.seen.append(batch.height)
        return batch.select("id")

    def decide(self, states: list[Any]) -> pl.DataFrame:
        ids = pl.concat(states)["id"]
        Counted.decided.append(len(ids))
        return pl.DataFrame({"id": ids.tail(1), "reason": ["last"], "detail": [None]})


class Slices(Map):
    name = "test.slices"
    batch_size: ClassVar[int] = 3

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.lit(frame.height).cast(pl.String).alias("system"))


class Shrinks(Map):
    name = "test.shrinks"
    batch_size: ClassVar[int] = 3

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.head(frame.height - 1)


def test_global_steps_see_every_row_and_maps_run_in_slices() -> None:
    ds = ik.Dataset.from_records([{"instruction": f"t{i}"} for i in range(10)], source="g")
    Counted.seen, Counted.decided = [], []
    out = ds.pipe(Counted())
    # observed in slices of batch_size (so a progress bar moves), decided once over all rows
    assert Counted.seen == [3, 3, 3, 1] and Counted.decided == [10]
    assert out.removed["id"].to_list() == ["g:9"] and len(out) == 9
    assert ds.pipe(Slices()).to_polars()["system"].to_list() == ["3"] * 9 + ["1"]
    with pytest.raises(RuntimeError, match=r"step 'test.shrinks' returned 6 rows for 10"):
        ds.pipe(Shrinks())
    with pytest.raises(RuntimeError, match=r"returned 1 rows for 2"):
        ds.head(2).pipe(Shrinks())  # unsliced too


def test_read_errors_are_counted_once(tmp_path: Path) -> None:
    """D7: records_in is the reader's count, which has the bad line already."""
    path = tmp_path / "c.jsonl"
    lines = [json.dumps(r) for r in _records(10)]
    lines.insert(4, "{not json")
    path.write_text("\n".join(lines) + "\n")
    result = run([Shout(), MinChars()], ik.scan(path, batch_size=4, on_error="skip"), output=tmp_path / "out")
    assert result.records_in == 11
    assert result.records_in == result.records_out + result.to_dataset().removed.height
    memory = run([Shout()], ik.read(path, on_error="skip"))  # an in-memory source: errors counted once too
    assert memory.records_in == 11


def test_history_is_one_typed_record_per_step_with_params(jsonl: Path, tmp_path: Path) -> None:
    from instructkit.history import StepRecord

    memory = ik.read(jsonl).pipe(*STEPS)
    result = run(STEPS, jsonl, batch_size=40, output=tmp_path / "out")
    assert all(isinstance(r, StepRecord) for r in result.history)
    # the read record names the reader (a Scan here, a file for ik.read); every step's params match
    assert [(r.step, r.params) for r in result.history][1:] == [(h["step"], h["params"]) for h in memory.history][1:]
    assert result.history[3].params == "FirstOfText()"
    # write_shard keeps every field, params included
    shard = json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]["0"]
    assert shard["history"][1]["params"] == "Shout()"
    edited = memory.with_columns(pl.col("output").str.to_lowercase())
    assert edited.history[-1]["step"] == "with_columns" and edited.history[-1]["params"] == "columns=output"


def test_dedup_reads_against_on_the_driver_before_any_batch(tmp_path: Path) -> None:
    reference = tmp_path / "ref.jsonl"
    reference.write_text(json.dumps({"instruction": "task 3", "output": "answer 3"}) + "\n")
    step = ik.dedup.exact(fields=("instruction",), against=str(reference))
    step.prepare()  # what every executor calls once on the driver
    reference.unlink()  # nothing reads the file after prepare()
    result = run([step], ik.Dataset.from_records(_records(12), source="c"), batch_size=5)
    assert "c:3" in result.dataset.removed["id"].to_list()


def test_executors_know_no_particular_step() -> None:
    """The executors' code names no step: no step module imported (the scratch-folder
    helper of spill files aside), no step class, no comparison with a step's name."""
    import ast

    from instructkit.executors import local

    for path in (Path(local.__file__), Path(local.__file__).with_name("ray.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("instructkit.decontam", "instructkit.filters", "instructkit.pii")), node.module
                assert not node.module.startswith("instructkit.dedup") or node.module == "instructkit.dedup._spill"
            if isinstance(node, ast.Name):
                assert node.id not in ("MinHash", "Decontaminate", "BandShuffle"), (path.name, node.id)
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("_CACHE", "_CACHE_LOCK"), (path.name, node.attr)
            if isinstance(node, ast.Compare) and ast.unparse(node.left) in ("step.name", "s.name", "steps[position].name"):
                raise AssertionError(f"{path.name}:{node.lineno} compares a step's name")


def test_resume_false_never_deletes_a_foreign_folder(tmp_path: Path) -> None:
    """D5: only a folder whose manifest carries the run format marker, holding only a run's
    files, is ever cleaned."""
    foreign = tmp_path / "theirs"
    (foreign / "data").mkdir(parents=True)
    (foreign / "manifest.json").write_text(json.dumps({"shards": {}, "globals": {}, "fingerprint": {}}))
    (foreign / "data" / "precious.parquet").write_bytes(b"PAR1")
    for resume in (False, True):
        with pytest.raises(FileExistsError, match=r'theirs.manifest\.json has no "format": "instructkit-run/1"'):
            run([Shout()], ik.Dataset.from_records(_records(3)), output=foreign, resume=resume)
    assert (foreign / "data" / "precious.parquet").read_bytes() == b"PAR1"
    assert json.loads((foreign / "manifest.json").read_text())["shards"] == {}

    ours = tmp_path / "ours"
    run([Shout()], ik.Dataset.from_records(_records(5)), batch_size=2, output=ours)
    assert json.loads((ours / "manifest.json").read_text())["format"] == "instructkit-run/1"
    (ours / "data" / "notes.txt").write_text("added by hand")
    with pytest.raises(FileExistsError, match=r"holds 'data/notes.txt', which no instructkit run writes"):
        run([Shout()], ik.Dataset.from_records(_records(5)), batch_size=2, output=ours, resume=False)
    assert (ours / "data" / "notes.txt").exists() and (ours / "data" / "part-00000.parquet").exists()
    (ours / "data" / "notes.txt").unlink()
    again = run([MinChars()], ik.Dataset.from_records(_records(5)), batch_size=5, output=ours, resume=False)
    assert sorted(p.name for p in (ours / "data").iterdir()) == ["part-00000.parquet"]
    assert again.records_in == 5


SECRET = "jane.doe@corp-mail.org"


class Redact(Map):
    """A tiny redacting step: replaces :data:`SECRET` (``redacts``: executors must not write
    a batch to disk before it has passed this step)."""

    name = "test.redact"
    redacts: ClassVar[bool] = True

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("instruction").str.replace_all(SECRET, "<EMAIL>", literal=True))


class NotRedact(Redact):
    name = "test.not_redact"
    redacts: ClassVar[bool] = False


class Crash(Map):
    """Fails on the final pass while ``armed``: a crash after the global step's observe pass."""

    name = "test.crash"
    armed: ClassVar[bool] = False

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if Crash.armed:
            raise RuntimeError("crash")
        return frame


def _files_holding(folder: Path, needle: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())


@pytest.mark.parametrize("redactor", [Redact, NotRedact])
def test_no_pre_scrub_batch_is_written_before_a_redacting_step(tmp_path: Path, redactor: type) -> None:
    """D19: with a redacting step after a global one, the observe pass spills nothing (the
    final pass recomputes from the source), so a crash leaves no raw value on disk."""
    records = [{"instruction": f"write to {SECRET} about task {i % 5}", "output": f"ok {i % 4}"} for i in range(12)]
    ds = ik.Dataset.from_records(records, source="p")
    # two global steps sharing a pass: the final pass recomputes from the source and applies both
    steps = [FirstOfText(), require("instructkit.dedup").exact(fields=("output",)), redactor(), Crash()]
    out = tmp_path / "out"
    Crash.armed = True
    try:
        with pytest.raises(RuntimeError, match="crash"):
            run(steps, ds, batch_size=3, output=out)
    finally:
        Crash.armed = False
    leaked = _files_holding(out, SECRET)
    if redactor is Redact:
        assert leaked == [], leaked
        globals_ = json.loads((out / "manifest.json").read_text())["globals"]
        assert globals_["0"]["spill"] is None and globals_["1"]["spill"] is None
    else:  # without the flag the batches are spilled as they are: the test can see a leak
        assert any(p.startswith("state/spill-0/") for p in leaked), leaked
    # resumed on two workers: their final pass too starts from the source
    resumed = run(steps, ds, batch_size=3, output=out, workers=2)
    memory = ds.pipe(*steps)
    assert resumed.to_dataset().to_polars().equals(memory.to_polars())
    assert "dedup.exact" in set(memory.removed["step"])
    if redactor is Redact:
        assert SECRET not in "".join(resumed.to_dataset().to_polars()["instruction"])
        # the duplicates FirstOfText removed before the scrub are the removed log's business
        assert all(p.startswith("removed/") for p in _files_holding(out, SECRET))


def _with_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "instruction": f"task {i}", "output": "ok"}) + "\n" for i in ids))
    return path


@pytest.mark.parametrize("with_global", [False, True])
def test_repeated_id_across_batches_is_an_error(tmp_path: Path, with_global: bool) -> None:
    ids = [f"r{i}" for i in range(100)]
    ids[87] = "r12"  # batch 2 repeats an id of batch 0
    path = _with_ids(tmp_path / "c.jsonl", ids)
    steps = [Shout(), *([FirstOfText()] if with_global else [])]
    where = r"input batch 2 \(.*c\.jsonl, 20 records from line 81\) and in input batch 0 \(.*line 1\)"
    with pytest.raises(ValueError, match=rf"id 'r12' appears in {where}: ids must be unique"):
        run(steps, path, batch_size=40, output=tmp_path / "out")
    shards = json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]
    # with a global step the check ends the observe pass, before any shard is written
    assert sorted(shards) == ([] if with_global else ["0", "1"])
    ids[87] = "r87"
    ids[30] = "r31"  # inside one batch
    with pytest.raises(ValueError, match=r"id 'r31' appears in input batch 0 \(.*\): ids must"):
        run(steps, _with_ids(tmp_path / "d.jsonl", ids), batch_size=40, output=tmp_path / "out2")


def test_resumed_run_checks_ids_against_finished_shards(tmp_path: Path) -> None:
    ids = [f"r{i}" for i in range(160)]
    ids[130] = "r5"  # batch 3 repeats an id of batch 0
    path = _with_ids(tmp_path / "c.jsonl", ids)
    steps = [Shout(), Tripwire(fail_id="r85")]  # stops in batch 2, before batch 3 is read
    Tripwire.armed = True
    with pytest.raises(RuntimeError, match="injected failure"):
        run(steps, path, batch_size=40, output=tmp_path / "out")
    Tripwire.armed = False
    with pytest.raises(ValueError, match=r"id 'r5' appears in input batch 3 .* and in input batch 0"):
        run(steps, path, batch_size=40, output=tmp_path / "out")


def test_id_ledger_tells_hash_collisions_from_repeats() -> None:
    import numpy as np

    from instructkit.executors.ids import IdLedger

    batches = {0: pl.Series(["a", "b"]), 1: pl.Series(["c", "d"]), 2: pl.Series(["e", "e"])}
    ledger = IdLedger(batches.__getitem__)
    ledger.add(0, np.array([1, 2], np.uint64))
    ledger.add(1, np.array([2, 3], np.uint64))  # "c" shares a hash with "b": not a repeat
    assert len(ledger) == 4 and ledger.nbytes() == 4 * 12
    assert ledger.hashes.tolist() == [1, 2, 2, 3] and ledger.batches.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="id 'e' appears in input batch 2: ids must be unique"):
        ledger.add(2, np.array([9, 9], np.uint64))


# --- scan ------------------------------------------------------------------------------------


def test_scan_ids_blank_lines_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('\n{"instruction": "a"}\n\n{"instruction": "b", "id": "own"}\nnot json\n{"instruction": "c"}\n')
    scan = ik.scan(path, batch_size=2, on_error="skip")
    got = [(f["id"].to_list(), r["id"].to_list(), r["reason"].to_list()) for _, f, r in scan.batches()]
    assert got == [(["d:0", "own"], [], []), (["d:3"], ["d:2"], ["parse_error"])]
    assert '"line":5' in next(r for _, _, r in scan.batches() if r.height)["detail"][0]  # JSON detail (issue 16 D3)
    with pytest.raises(ValueError, match="line 5"):
        list(ik.scan(path, batch_size=2))
    # reading a split on its own gives what the sequential reader gives
    for split, frame, removed in scan.batches():
        again, again_removed = scan.read_split(split)
        assert again.equals(frame) and again_removed.equals(removed)


def test_scan_gz_parquet_and_canonical_roundtrip(tmp_path: Path) -> None:
    records = _records(30)
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    frames = list(ik.scan(gz, batch_size=8))
    assert [len(f) for f in frames] == [8, 8, 8, 6]
    whole = pl.concat(frames)
    assert whole["id"].to_list() == [f"c:{i}" for i in range(30)]
    pq = tmp_path / "c.parquet"
    pl.DataFrame(records).write_parquet(pq)
    assert pl.concat(list(ik.scan(pq, batch_size=7))).drop("id", "source").equals(whole.drop("id", "source"))
    # executor shards (canonical columns) read back unchanged, as jsonl or parquet
    for fmt in ("jsonl", "parquet"):
        res = run([Shout()], gz, batch_size=8, output=tmp_path / fmt, format=fmt)
        back = pl.concat(list(ik.scan(res.output / "data", batch_size=100)))
        assert back.equals(res.to_dataset().to_polars())


def test_scan_rejects_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="matches no file"):
        ik.scan(tmp_path / "*.jsonl")
    (tmp_path / "b.jsonl").write_text('{"instruction": "b"}\n')
    (tmp_path / "a.jsonl").write_text('{"instruction": "a"}\n')
    assert [f["id"][0] for f in ik.scan(str(tmp_path / "*.jsonl"))] == ["a:0", "b:0"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        ik.scan(tmp_path / "missing.jsonl")
    (tmp_path / "x.txt").write_text("a,b\n")  # csv is read since issue 16 D1
    with pytest.raises(ValueError, match="cannot scan"):
        ik.scan(tmp_path / "x.txt")


# --- Ray -------------------------------------------------------------------------------------


BENCH_ITEM = "Natalia sold clips to forty eight of her friends in April and then half as many in May"


#: Outputs already in another set: exact dedup drops them (some are MinHash's near duplicates
#: of others, so MinHash must decide without them)
SEEN_OUTPUTS = ik.Dataset.from_records([{"instruction": "seen", "output": f"answer {i}"} for i in range(0, 250, 7)])


@pytest.fixture()
def mixed_inputs(tmp_path: Path) -> Scan:
    """A JSONL file with a bad line and a Parquet file holding a benchmark item."""
    lines = [json.dumps(r) for r in _records(250)]
    lines.insert(101, "not json")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    pl.DataFrame([
        {"instruction": BENCH_ITEM if i % 10 == 0 else f"question {i}", "output": f"reply {i}"}
        for i in range(70)
    ]).write_parquet(tmp_path / "b.parquet")
    return ik.scan([tmp_path / "a.jsonl", tmp_path / "b.parquet"], batch_size=60, on_error="skip")


def test_ray_equals_local(mixed_inputs: Scan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray gives the local executor's shards, removed log and report both ways: on one node
    (spilling between passes, MinHash grouped on the driver) and as on a cluster (each pass
    recomputed from the source, MinHash's band hashes shuffled on Ray Data)."""
    require("ray", reason="the Ray executor needs ray (pip install instructkit[ray])")
    import ray

    from instructkit.executors import ray_minhash

    dedup = require("instructkit.dedup")
    toy = ik.benchmarks.from_records("toy", [{"q": BENCH_ITEM}], ["q"])
    # exact dedup and MinHash are observed in one pass
    steps = [
        *STEPS,
        ik.decontaminate([toy], n=5),
        dedup.exact(fields=("output",), against=SEEN_OUTPUTS),
        dedup.minhash(threshold=0.6, num_perm=32, unit="char", ngram=3, fields=("output",)),
    ]
    local = run(steps, mixed_inputs, output=tmp_path / "local")
    try:
        # workers import instructkit from where this process does, and this test module (its
        # transforms) by name
        paths = [str(Path(ik.__file__).parents[1]), str(Path(__file__).parent)]
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
        distributed = run(steps, mixed_inputs, executor="ray", output=tmp_path / "ray")
        with monkeypatch.context() as m:
            m.setattr(ray_minhash, "alive_nodes", lambda: 2)  # what a cluster of two reports
            clustered = run(steps, mixed_inputs, executor="ray", output=tmp_path / "cluster", spill=False)
        # each task holds one CPU, so its polars and numba run one thread each
        threads = run([Threads()], mixed_inputs, executor="ray", output=tmp_path / "threads")
        assert set(threads.to_dataset().to_polars()["threads"]) == {"1/1"}
        # Ray Data drops empty blocks; an empty input still gets its (empty) shard
        nothing = run(steps, ik.Dataset(), executor="ray", output=tmp_path / "empty")
        ids = [f"r{i}" for i in range(100)]
        ids[87] = "r12"
        repeated = _with_ids(tmp_path / "repeated.jsonl", ids)
        for with_global in (False, True):
            with pytest.raises(ValueError, match=r"id 'r12' appears in input batch 2 .* and in input batch 0"):
                run([Shout(), *([FirstOfText()] if with_global else [])], repeated, executor="ray",
                    batch_size=40, output=tmp_path / f"repeated-{with_global}")
    finally:
        ray.shutdown()
    local_removed = local.to_dataset().removed
    for result in (distributed, clustered):
        assert len(result.shards) == len(local.shards) == 7  # 5 JSONL + 2 Parquet batches
        for a, b in zip(result.shards, local.shards, strict=True):
            assert pl.read_parquet(a).equals(pl.read_parquet(b)), a.name
        assert _sorted(result.to_dataset().removed).equals(_sorted(local_removed))
        assert result.report().drop("seconds").equals(local.report().drop("seconds"))
    # every kind of removal crossed the Ray boundary: a read error, a filter, three global steps
    steps_seen = set(local_removed["step"])
    assert {"read", "test.min_chars", "test.first_of_text", "decontaminate", "dedup.exact", "dedup.minhash"} <= steps_seen
    assert len(nothing.shards) == 1 and nothing.records_out == 0
    # one node: every pass after the first started from a spill (deleted when done), and
    # MinHash grouped its band hashes on the driver
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert all(g["spill"] for g in manifest["globals"].values())
    assert manifest["globals"]["6"]["spill"] == manifest["globals"]["5"]["spill"] == "state/spill-5"
    assert not list((tmp_path / "ray" / "state").glob("spill-*"))
    (shuffle,) = [g["shuffle"] for g in manifest["globals"].values() if g["step"] == "dedup.minhash"]
    assert shuffle["where"] == "driver" and shuffle["pairs"] > 0 and shuffle["partitions"] == 0
    # as on a cluster: no spill, the band hashes went through a Ray shuffle
    manifest = json.loads((tmp_path / "cluster" / "manifest.json").read_text())
    assert not any(g["spill"] for g in manifest["globals"].values())
    (shuffle,) = [g["shuffle"] for g in manifest["globals"].values() if g["step"] == "dedup.minhash"]
    assert shuffle["where"] == "cluster" and shuffle["band_rows"] > 0 and shuffle["pairs"] > 0
    assert shuffle["partitions"] >= 1


def test_band_shuffle_finds_the_local_pairs() -> None:
    """The Ray band shuffle gives the candidate pairs, and so the drops, of the local grouping,
    with and without a reference set."""
    require("ray", reason="the Ray executor needs ray (pip install instructkit[ray])")
    import numpy as np
    import ray

    from instructkit.dedup.minhash import Bands, band_candidates
    from instructkit.executors.ray_minhash import BandShuffle

    corpus = ik.synth.near_duplicates(3_000, words=40, seed=3).to_polars().drop("dup_of", "jaccard")
    reference = corpus.slice(2_500, 300)
    corpus = corpus.slice(0, 2_500)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for verify, against in (("exact", None), ("none", ik.Dataset(reference))):
            step = ik.dedup.minhash(threshold=0.7, verify=verify, against=against)
            states = [step.observe(corpus.slice(s, 600)) for s in range(0, corpus.height, 600)]
            shuffle, seen = BandShuffle(partitions=3, where="cluster"), {}

            def recorded(bands: Bands, shuffle: BandShuffle = shuffle, seen: dict = seen) -> Any:
                seen["ray"], seen["local"] = shuffle(bands), band_candidates(bands)
                return seen["ray"]

            drops = step.decide(states, candidates=recorded)
            ray_pairs, local_pairs = ({tuple(p) for p in np.stack(seen[k], axis=1).tolist()} for k in ("ray", "local"))
            assert ray_pairs == local_pairs and len(ray_pairs) > 100, verify
            n_ref = 300 if against is not None else 0
            assert shuffle.band_rows == (corpus.height + n_ref) * step.banding()[0] and shuffle.partitions == 3
            local = step.decide(states)
            assert len(local) > 100 and drops.equals(local), verify
            # on one node "auto" groups on the driver: the same drops, no partitions
            on_driver = BandShuffle()
            assert step.decide(states, candidates=on_driver).equals(local)
            assert on_driver.where == "driver" and on_driver.partitions == 0
            assert on_driver.band_rows == shuffle.band_rows and on_driver.pairs == shuffle.pairs
    finally:
        ray.shutdown()


def test_ray_blocks_roundtrip(mixed_inputs: Scan) -> None:
    require("ray", reason="the Ray executor needs ray (pip install instructkit[ray])")
    from instructkit.executors.ray import decode, encode

    conversation = ik.Dataset.from_records([{"messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}]}]).to_polars()
    for _split, frame, removed in [*mixed_inputs.batches(), (None, conversation, empty_removed())]:
        index, dataset = decode(encode(7, frame, removed))
        assert index == 7
        assert dataset.to_polars().equals(frame) and dataset.removed.equals(removed)


# --- the parallel local executor (workers=) -------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    """Every file a run left, by path, except the manifest (it holds timings)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _shards(folder: Path) -> dict[str, Any]:
    """The manifest's shards and decided steps without timings."""
    body = json.loads((folder / "manifest.json").read_text())
    for entry in body["shards"].values():
        entry["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in entry["history"]]
    return {"shards": body["shards"], "fingerprint": body["fingerprint"],
            "globals": {k: {n: v for n, v in g.items() if n != "seconds"} for k, g in body["globals"].items()}}


# six workers: more than this machine's cores and than half the 7 batches, so batches finish
# out of order and workers stand idle, as on a many-core machine
@pytest.mark.parametrize(("fmt", "workers"), [("parquet", 2), ("jsonl", 2), ("jsonl", 6)])
def test_workers_write_the_bytes_of_one_worker(mixed_inputs: Scan, tmp_path: Path, fmt: str, workers: int) -> None:
    dedup = pytest.importorskip("instructkit.dedup")
    toy = ik.benchmarks.from_records("toy", [{"q": BENCH_ITEM}], ["q"])
    steps = [*STEPS, ik.decontaminate([toy], n=5), dedup.exact(fields=("output",), against=SEEN_OUTPUTS),
             dedup.minhash(threshold=0.6, num_perm=32, unit="char", ngram=3, fields=("output",))]
    one = run(steps, mixed_inputs, output=tmp_path / "one", format=fmt)
    many = run(steps, mixed_inputs, output=tmp_path / "many", format=fmt, workers=workers)
    assert one.records_out == many.records_out and many.records_out > 0
    # exact dedup and MinHash shared a pass, with the records of running them in turn
    memory = ik.Dataset(pl.concat(list(mixed_inputs))).pipe(*steps)
    assert many.to_dataset().to_polars().equals(memory.to_polars())
    assert one.records_in == many.records_in == 321  # 250 + a bad line + 70
    assert _files(tmp_path / "one") == _files(tmp_path / "many")
    assert _shards(tmp_path / "one") == _shards(tmp_path / "many")
    assert one.report().drop("seconds").equals(many.report().drop("seconds"))
    # the spills and scratch files of the passes are gone, as with one worker
    assert not list((tmp_path / "many" / "state").glob("spill-*")) and not (tmp_path / "many" / "state" / "tmp").exists()


def test_workers_without_global_steps_and_resume(jsonl: Path, tmp_path: Path) -> None:
    steps = [Shout(), MinChars()]
    one = run(steps, jsonl, batch_size=40, output=tmp_path / "one")
    two = run(steps, jsonl, batch_size=40, output=tmp_path / "two", workers=-1)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")  # state/ids-*.npy included
    assert two.records_out == one.records_out
    # a run with other workers resumes the same run: every shard is finished
    again = run(steps, jsonl, batch_size=40, output=tmp_path / "two", workers=1)
    assert again.skipped == 7 and again.records_out == one.records_out


def test_workers_on_an_in_memory_dataset_keep_order_and_log() -> None:
    ds = ik.Dataset.from_records(_records(90))
    expected = ds.pipe(*STEPS)
    got = run(STEPS, ds, batch_size=20, workers=2).dataset
    assert got is not None
    assert got.to_polars().equals(expected.to_polars())
    assert got.removed.select("id", "step", "reason", "detail").equals(
        expected.removed.select("id", "step", "reason", "detail"))


def test_workers_check_repeated_ids(tmp_path: Path) -> None:
    ids = [f"r{i}" for i in range(100)]
    ids[87] = "r12"
    path = _with_ids(tmp_path / "c.jsonl", ids)
    where = r"input batch 2 \(.*c\.jsonl, 20 records from line 81\) and in input batch 0 \(.*line 1\)"
    with pytest.raises(ValueError, match=rf"id 'r12' appears in {where}: ids must be unique"):
        run([Shout(), FirstOfText()], path, batch_size=40, output=tmp_path / "out", workers=2)


def test_workers_argument_is_checked(jsonl: Path) -> None:
    from instructkit.executors.parallel import available_cores, resolve_workers

    assert resolve_workers(-1) == available_cores() >= 1
    with pytest.raises(ValueError, match="workers must be >= 1, or -1"):
        run([Shout()], jsonl, workers=0)
    with pytest.raises(TypeError, match="workers must be an int"):
        run([Shout()], jsonl, workers=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers= is for the local executor"):
        run([Shout()], jsonl, executor="ray", workers=2)


class Sleepy(Map):
    """Sleeps on each batch and leaves a file with its process id and start and end times."""

    name = "test.sleepy"

    def __init__(self, folder: str = "", seconds: float = 0.5) -> None:
        self.folder = folder
        self.seconds = seconds

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        import time

        start = time.time()
        time.sleep(self.seconds)
        (Path(self.folder) / f"{frame['id'][0]}.json").write_text(json.dumps([os.getpid(), start, time.time()]))
        return frame


def test_workers_run_batches_at_the_same_time(tmp_path: Path) -> None:
    ds = ik.Dataset.from_records([{"instruction": f"t{i}", "output": "o"} for i in range(8)])
    run([Sleepy(str(tmp_path))], ds, batch_size=2, workers=2)
    spans = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(spans) == 4 and len({pid for pid, _, _ in spans}) == 2
    assert os.getpid() not in {pid for pid, _, _ in spans}
    # two batches overlapped in time: they ran in two processes at once
    assert any(a[1] < b[2] and b[1] < a[2] for a in spans for b in spans if a is not b)


def test_a_failing_step_on_a_worker_stops_the_run_and_resumes(jsonl: Path, tmp_path: Path) -> None:
    steps = [Shout(field="no_such_column")]
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match="no_such_column"):
        run(steps, jsonl, batch_size=40, output=tmp_path / "out", workers=2)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["shards"] == {}
    # a fixed pipeline is another run: the folder is refused until resume=False
    with pytest.raises(ValueError, match="different pipeline"):
        run([Shout()], jsonl, batch_size=40, output=tmp_path / "out", workers=2)
    assert run([Shout()], jsonl, batch_size=40, output=tmp_path / "out", workers=2, resume=False).records_out == 250


def test_workers_from_a_recipe_and_the_command_line(tmp_path: Path) -> None:
    from instructkit.cli import main
    from instructkit.executors.parallel import available_cores
    from instructkit.pipeline import run_recipe

    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"instruction": f"q{i % 5}", "output": "a"}) + "\n"
                                               for i in range(20)))
    (tmp_path / "r.yaml").write_text("inputs: [in.jsonl]\nsteps: [normalize, dedup.exact]\n"
                                     "run: {output: one, batch_size: 8}\n")
    one = run_recipe(tmp_path / "r.yaml", run={"workers": 1})
    two = run_recipe(tmp_path / "r.yaml", run={"output": "two", "workers": 2})
    assert one.run is not None and two.run is not None
    assert (one.run.workers, two.run.workers) == (1, 2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two") and two.run.records_out == 5
    assert main(["run", str(tmp_path / "r.yaml"), "--workers", "2", "--output-dir", str(tmp_path / "cli")]) == 0
    assert _files(tmp_path / "cli") == _files(tmp_path / "one")
    # a recipe that does not say uses every core, no more workers than its 3 batches
    default = run_recipe(tmp_path / "r.yaml", run={"output": "default"})
    assert default.run is not None and default.run.workers == min(available_cores(), 3)
    assert _files(tmp_path / "default") == _files(tmp_path / "one")
    # the Python entry point stays in this process unless asked
    assert run([Shout()], tmp_path / "in.jsonl", batch_size=8).workers == 1


def test_workers_capped_at_the_batches_keep_the_thread_share_they_were_started_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instructkit.executors import parallel

    # on 8 cores, 8 workers asked for and 3 batches found: the worker server started with
    # one thread per worker, so the 3 workers keep that share rather than spawn with 2 each
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    ds = ik.Dataset.from_records([{"instruction": f"t{i}", "output": "o"} for i in range(6)])
    result = run([Threads()], ds, batch_size=2, workers=8)
    assert result.workers == 3
    assert set(result.dataset.to_polars()["threads"]) == {"1/1"}


def test_an_unguarded_script_with_workers_stops_with_the_guard_in_the_message(tmp_path: Path) -> None:
    # each worker imports the main script to find what it defines: without the __main__
    # guard it would start the run again, and that second run must fail with the fix in
    # the message (in the worker) and the parent must say what a dead worker means
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n"
                                               for i in range(20)))
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import instructkit as ik\n"
        f"ik.Pipeline([ik.normalize()]).run({str(tmp_path / 'in.jsonl')!r}, batch_size=5, "
        f"output={str(tmp_path / 'out')!r}, workers=2)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "INSTRUCTKIT_QUIET": "1"})
    assert done.returncode != 0
    assert "a run with workers > 1 was started while a worker process imported the main script" in done.stderr
    assert "BrokenProcessPool" in done.stderr and 'outside `if __name__ == "__main__":`' in done.stderr


def test_workers_refuse_a_step_they_cannot_receive(jsonl: Path, tmp_path: Path) -> None:
    class Local(Map):  # defined in a function: pickle cannot name it
        name = "test.local"

        def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
            return frame

    with pytest.raises(TypeError, match=r"step .*Local\(\) cannot be sent to worker processes .*workers=1"):
        run([Local()], jsonl, batch_size=40, output=tmp_path / "out", workers=2)
    assert not (tmp_path / "out").exists()
    assert run([Local()], jsonl, batch_size=40, output=tmp_path / "one").records_out == 250


_PRELOAD_PROBE = """
import os, sys
import instructkit  # noqa: F401 (registers every step)
from instructkit.transform import registry
from instructkit.dedup._kernel import start_numba

def threads():
    return sorted(open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task"))

start_numba()  # the threads importing polars, numpy and numba start (allocator, cleanup)
before = threads()
for name, cls in sorted(registry().items()):
    cls.preload()
    assert threads() == before, f"{name}.preload() started threads in a process that forks"
print("numba" in sys.modules)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_no_preload_starts_threads() -> None:
    """The worker server calls preload() and then forks: a thread pool started there
    (polars', numba's OpenMP) would deadlock or abort the workers."""
    probe = subprocess.run([sys.executable, "-c", _PRELOAD_PROBE], capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "True"  # the numba steps did load it


_FORKED_PROBE = """
import sys, tempfile
import polars as pl
import instructkit as ik
from instructkit.transform import Map

class NumbaLoaded(Map):
    name = "test.numba_loaded"
    def apply(self, frame):
        return frame.with_columns(pl.lit(str("numba.np.arraymath" in sys.modules)).alias("output"))

if __name__ == "__main__":
    ds = ik.Dataset.from_records([{"instruction": f"task number {i} of eight", "output": ""} for i in range(8)])
    result = ik.Pipeline([NumbaLoaded(), ik.dedup.minhash()]).run(ds, output=tempfile.mkdtemp(), batch_size=2, workers=2)
    print(sorted(set(result.to_dataset().to_polars()["output"].to_list())))
"""


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="needs the forkserver start method")
def test_workers_start_with_the_steps_preloaded(tmp_path: Path) -> None:
    """Workers fork from a server that ran MinHash.preload(): numba is loaded in each before
    its first batch (a spawned worker would load it only on its first MinHash batch)."""
    script = tmp_path / "probe.py"
    script.write_text(_FORKED_PROBE)
    probe = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "INSTRUCTKIT_QUIET": "1"})
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "['True']"


def test_a_run_needing_other_thread_settings_spawns_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' server keeps the thread settings it started with: a run that needs
    others gets spawned workers, and the same records."""
    from instructkit.executors import parallel

    steps = [ik.normalize(), ik.dedup.exact()]
    env = parallel.worker_env(2)
    monkeypatch.setattr(parallel, "_SERVER_ENV", {k: "7" for k in env})
    assert parallel.start_workers_context(steps, env).get_start_method() == "spawn"
    ds = ik.Dataset.from_records([{"instruction": f"Task {i % 4}.", "output": "ok"} for i in range(10)], source="t")
    assert run(steps, ds, batch_size=3, workers=2).dataset.to_polars().equals(ds.pipe(*steps).to_polars())


# --- adjacent global steps observed in one pass --------------------------------------------

_FOX = "the quick brown fox jumps over the lazy dog while the farmer counts his sheep in the valley"
_PASTA = "other text about cooking pasta with tomato sauce and basil leaves tonight"
# record 2 is an exact duplicate of record 0 (after normalizing) and the longest text of its
# near-duplicate cluster: a MinHash that saw it would keep it and drop records 0 and 3
_CHAIN = [
    {"instruction": _FOX, "output": "a"},
    {"instruction": _PASTA, "output": "b"},
    {"instruction": _FOX.upper().replace(" ", "  ") + " !!!", "output": "a"},
    {"instruction": _FOX.replace("farmer", "fermer"), "output": "a"},
    {"instruction": _PASTA + ".", "output": "b"},
]


def _chain_steps() -> list[Any]:
    dedup = require("instructkit.dedup")
    return [Shout(field="output"), dedup.exact(), dedup.minhash(keep="longest", threshold=0.5), MinChars(min_chars=1)]


def _removed(dataset: ik.Dataset) -> list[tuple[Any, ...]]:
    return sorted(dataset.removed.select("id", "step", "reason", "detail").rows())


@pytest.mark.parametrize("workers", [1, 2])
def test_adjacent_global_steps_share_one_pass(tmp_path: Path, workers: int) -> None:
    """Exact dedup and MinHash are observed in one pass; MinHash decides without the
    records exact dedup dropped, so the result is that of running them one after the other."""
    ds = ik.Dataset.from_records(_CHAIN)
    steps = _chain_steps()
    expected = ds.pipe(*steps)
    result = run(steps, ds, batch_size=2, output=tmp_path / "run", workers=workers)
    got = result.to_dataset()
    assert got.to_polars()["id"].to_list() == expected.to_polars()["id"].to_list() == ["records:0", "records:1"]
    assert _removed(got) == _removed(expected)
    assert result.report().drop("seconds").equals(expected.report().drop("seconds"))
    globals_ = json.loads((tmp_path / "run" / "manifest.json").read_text())["globals"]
    assert globals_["1"]["spill"] == globals_["2"]["spill"] == "state/spill-1"
    assert globals_["1"]["spill_before"] == globals_["2"]["spill_before"] == 1


def test_leaving_out_what_the_step_before_dropped_is_what_makes_one_pass_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``without``, MinHash would keep the exact duplicate and drop both others."""
    from instructkit.dedup.minhash import MinHash

    ds = ik.Dataset.from_records(_CHAIN)
    steps = _chain_steps()
    monkeypatch.setattr(MinHash, "without", lambda self, state, ids: state)
    assert run(steps, ds, batch_size=2, output=tmp_path / "run").records_out == 0
    assert len(ds.pipe(*steps)) == 2


def test_a_run_killed_between_the_decisions_of_one_pass_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instructkit.executors.local import Manifest

    ds = ik.Dataset.from_records(_CHAIN)
    steps = _chain_steps()
    record = Manifest.record_global

    def killed_after_the_first(self: Manifest, position: int, drops: pl.DataFrame, entry: dict[str, Any]) -> None:
        if position == 2:
            raise KeyboardInterrupt("killed")
        record(self, position, drops, entry)

    with monkeypatch.context() as m:
        m.setattr(Manifest, "record_global", killed_after_the_first)
        with pytest.raises(KeyboardInterrupt):
            run(steps, ds, batch_size=2, output=tmp_path / "run")
    globals_ = json.loads((tmp_path / "run" / "manifest.json").read_text())["globals"]
    assert list(globals_) == ["1"] and (tmp_path / "run" / "state" / "spill-1").is_dir()
    # the resumed run observes MinHash alone, from the spill of the pass that observed both
    resumed = run(steps, ds, batch_size=2, output=tmp_path / "run", workers=2)
    expected = ds.pipe(*steps)
    assert resumed.to_dataset().to_polars()["id"].to_list() == expected.to_polars()["id"].to_list()
    assert _removed(resumed.to_dataset()) == _removed(expected)
    globals_ = json.loads((tmp_path / "run" / "manifest.json").read_text())["globals"]
    assert globals_["2"]["spill"] == "state/spill-2" and globals_["2"]["spill_before"] == 2
    assert not list((tmp_path / "run" / "state").glob("spill-*"))


class FlagFirstOfText(FirstOfText):
    """FirstOfText that flags instead of dropping: it adds a column, so no step may be
    observed in its pass."""

    name = "test.flag_first_of_text"

    def apply_decision(self, frame: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("id").is_in(drops["id"].implode()).alias("flagged"))


def test_which_global_steps_share_a_pass() -> None:
    from instructkit.executors.local import observe_plan

    dedup = require("instructkit.dedup")
    exact, minhash = dedup.exact(), dedup.minhash()
    assert observe_plan([exact, minhash, exact], {}) == [[0, 1, 2]]
    # a step that does not observe per record, or one after a step that flags, gets its own pass
    assert observe_plan([exact, FirstOfText(), minhash], {}) == [[0], [1, 2]]
    assert observe_plan([FlagFirstOfText(), minhash], {}) == [[0], [1]]
    assert observe_plan([exact, Shout(), minhash], {}) == [[0], [2]]
    # decided steps stay grouped as they ran: by the spill their next pass starts from
    ran_together = {0: {"spill_before": 0}, 1: {"spill_before": 0}}
    ran_apart = {0: {"spill_before": 0}, 1: {"spill_before": 1}}
    assert observe_plan([exact, minhash], ran_together) == [[0, 1]]
    assert observe_plan([exact, minhash], ran_apart) == [[0], [1]]
    assert observe_plan([exact, minhash], {0: {"spill_before": 0}}) == [[0], [1]]
