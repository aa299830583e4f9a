"""The local executor's contract, written to kill the mutants of ``executors/local.py`` that
the other tests let survive (``scripts/mutation.py``; see benchmarks/results/mutation.md).

Each test checks behaviour a user or another executor relies on: what ``as_source`` accepts,
that timings are real durations, that a resumed run refuses another pipeline and names what
changed, that a run folder is cleaned completely, that a decided pass is not recomputed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from test_executors import STEPS, FirstOfText, MinChars, Shout, _records

import instructkit as ik
from instructkit.executors import run
from instructkit.executors.local import (
    FrameSource,
    RunResult,
    as_source,
    decide,
    observe_batch,
    process_batch,
    run_local,
)
from instructkit.schema import empty_removed
from instructkit.transform import Global, Map


class Count(Map):
    """Counts the batches it is applied to (a step before a global one)."""

    name = "test.count"
    calls: ClassVar[int] = 0

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        Count.calls += 1
        return frame


class SlowObserve(FirstOfText):
    """``FirstOfText`` whose observe takes at least ``pause`` seconds per batch."""

    name = "test.slow_observe"
    pause = 0.15

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        time.sleep(self.pause)
        return super().observe(batch)


class NoReason(Global):
    """A global step whose ``decide`` forgets the ``reason`` column."""

    name = "test.no_reason"

    def observe(self, batch: pl.DataFrame) -> pl.DataFrame:
        return batch.select("id")

    def decide(self, states: list[Any]) -> pl.DataFrame:
        return pl.concat(states).head(1)


class Crash(Map):
    name = "test.crash_mutants"
    armed: ClassVar[bool] = False

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if Crash.armed:
            raise RuntimeError("crash")
        return frame


def _jsonl(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(n)))
    return path


# --- what can be run ---------------------------------------------------------------------


def test_as_source_accepts_frames_and_sources_and_names_what_it_refuses(tmp_path: Path) -> None:
    frame = ik.Dataset.from_records(_records(5)).to_polars()
    src = as_source(frame, batch_size=2)
    assert isinstance(src, FrameSource) and [len(f) for _, f, _ in src.batches()] == [2, 2, 1]
    assert as_source(src, batch_size=100) is src  # its own batch size wins
    assert run([Shout()], frame, batch_size=2).records_out == 5
    for bad in (42, [tmp_path / "a.jsonl", 3], {"a": 1}):
        with pytest.raises(TypeError, match=r"cannot run on a (int|list|dict): pass a path"):
            as_source(bad, batch_size=10)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 6])
@pytest.mark.parametrize("size", [1, 2])
def test_frame_source_splits_cover_the_frame_once(n: int, size: int) -> None:
    frame = ik.Dataset.from_records(_records(max(n, 1))).to_polars().head(n)
    splits = FrameSource(frame, batch_size=size).splits()
    assert len(splits) == max(1, -(-n // size))  # an empty frame is one empty batch
    assert [(s.start, s.stop) for s in splits][:1] == [(0, min(n, size))]
    assert sum(s.stop - s.start for s in splits) == n


def test_process_and_observe_batch_are_the_steps_on_one_batch() -> None:
    ds = ik.Dataset.from_records(_records(30))
    frame = ds.to_polars()
    steps = [Shout(), MinChars(), Shout(field="instruction")]
    one = process_batch(steps, {}, frame, empty_removed())
    assert one.to_polars().equals(steps[2](steps[1](steps[0](ds))).to_polars())
    assert len(one) < 30 and one.removed.height == 30 - len(one)
    state, seconds = observe_batch([Shout(), MinChars(), FirstOfText()], 2, {}, frame)
    kept = MinChars()(Shout()(ds)).to_polars()
    assert state.equals(FirstOfText().observe(kept))
    assert 0 <= seconds < 60


def test_decide_checks_the_columns_a_global_step_returns() -> None:
    frame = ik.Dataset.from_records(_records(4)).to_polars()
    with pytest.raises(ValueError, match=r"step 'test.no_reason': decide\(\) returned no \['reason'\]"):
        decide(NoReason(), [NoReason().observe(frame)])
    drops = decide(FirstOfText(), [FirstOfText().observe(pl.concat([frame, frame.with_columns(
        pl.col("id") + "x")]))])
    assert drops.columns == ["id", "reason", "detail"] and drops.height == 4


def test_run_result_defaults_to_nothing_skipped_and_no_time() -> None:
    result = RunResult(output=None, shards=[], removed_shards=[], history=[], records_in=0, records_out=0)
    assert result.skipped == 0 and result.seconds == 0.0 and result.global_seconds == {}


# --- timings are durations -----------------------------------------------------------------


def test_every_reported_time_is_a_duration_within_the_run(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", 60)
    slow = SlowObserve()
    steps = [Shout(), MinChars(), slow, Shout(field="instruction")]
    started = time.perf_counter()
    result = run(steps, path, batch_size=20, output=tmp_path / "out")
    wall = time.perf_counter() - started
    assert 0 < result.seconds <= wall
    report = result.report()
    assert report["step"].to_list()[0] == "read"
    assert all(0 <= s <= wall for s in report["seconds"].to_list())
    # the global step's observe time (3 batches x pause) is on its own row, not its neighbour's
    row = report.filter(pl.col("step") == slow.name)
    assert row["seconds"][0] >= 3 * slow.pause
    assert 3 * slow.pause <= result.global_seconds["2"] <= wall
    # an in-memory source has no read row: the offset of the global step's row is 0
    mem = run(steps, ik.Dataset.from_records(_records(60)), batch_size=20)
    rows = mem.report()
    assert rows["step"].to_list()[0] == "test.shout"
    assert rows.filter(pl.col("step") == slow.name)["seconds"][0] >= 3 * slow.pause
    assert all(0 <= s <= wall + 60 for s in rows["seconds"].to_list())


def test_records_in_counts_the_read_errors_of_an_in_memory_dataset(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(6)) + "{not json\n")
    ds = ik.read(path, on_error="skip")
    assert len(ds) == 6 and ds.removed.height == 1
    result = run([Shout()], ds, batch_size=4)
    assert result.records_in == 7 and result.records_out == 6
    no_steps = run([], ds, batch_size=4, output=tmp_path / "out")
    assert no_steps.history == [] and no_steps.records_in == 7 and no_steps.records_out == 6


def test_an_empty_input_has_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    result = run([Shout()], path, output=tmp_path / "out")
    assert result.history == [] and result.records_in == result.records_out == 0
    assert result.report().height == 0


# --- results can be read back ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_result_reads_its_shards_back(tmp_path: Path, fmt: str) -> None:
    ds = ik.Dataset.from_records(_records(25))
    result = run(STEPS, ds, batch_size=10, output=tmp_path / "out", format=fmt)
    assert result.dataset is None and len(result.shards) == 3
    in_memory = run(STEPS, ds, batch_size=10)
    assert in_memory.to_dataset() is in_memory.dataset and len(in_memory.dataset) == result.records_out
    loaded = result.to_dataset()
    expected = run(STEPS, ds, batch_size=10).dataset
    assert loaded.to_polars().sort("id").equals(expected.to_polars().sort("id"))
    assert loaded.removed.height == expected.removed.height > 0
    streamed = pl.concat(list(result.read()), how="diagonal_relaxed")
    assert streamed.sort("id").select("id", "output").equals(loaded.to_polars().sort("id").select("id", "output"))


# --- resume and the run folder ---------------------------------------------------------------


def test_run_local_resumes_by_default(tmp_path: Path) -> None:
    src = as_source(ik.Dataset.from_records(_records(9)), batch_size=3)
    first = run_local([Shout()], src, tmp_path / "out")
    again = run_local([Shout()], src, tmp_path / "out")
    assert first.skipped == 0 and again.skipped == 3 and again.records_out == first.records_out == 9


def test_resume_refuses_another_in_memory_input(tmp_path: Path) -> None:
    run([Shout()], ik.Dataset.from_records(_records(9)), batch_size=3, output=tmp_path / "out")
    other = ik.Dataset.from_records([{**r, "output": r["output"] + "!"} for r in _records(9)])
    with pytest.raises(ValueError, match=r"different pipeline or input \(changed: \['source'\]\)"):
        run([Shout()], other, batch_size=3, output=tmp_path / "out")


def test_resume_names_exactly_what_changed(tmp_path: Path) -> None:
    ds = ik.Dataset.from_records(_records(9))
    out = tmp_path / "out"
    run([Shout()], ds, batch_size=3, output=out)
    with pytest.raises(ValueError, match=r"\(changed: \['format'\]\)"):
        run([Shout()], ds, batch_size=3, output=out, format="jsonl")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["fingerprint"]  # a marked manifest without a fingerprint: everything changed
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"\(changed: \['executor', 'format', 'source', 'steps'\]\)"):
        run([Shout()], ds, batch_size=3, output=out)


def test_a_manifest_without_the_marker_is_never_cleaned_even_beside_run_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([Shout()], ik.Dataset.from_records(_records(4)), batch_size=2, output=out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["format"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    for resume in (False, True):
        with pytest.raises(FileExistsError, match=r'has no "format": "instructkit-run/1" marker'):
            run([Shout()], ik.Dataset.from_records(_records(4)), batch_size=2, output=out, resume=resume)
    assert (out / "data" / "part-00000.parquet").exists()


def test_an_unreadable_manifest_is_never_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([Shout()], ik.Dataset.from_records(_records(4)), batch_size=2, output=out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(FileExistsError, match=r"manifest.json is not an instructkit run manifest"):
        run([Shout()], ik.Dataset.from_records(_records(4)), batch_size=2, output=out, resume=False)
    assert (out / "data" / "part-00000.parquet").exists()


def test_starting_over_removes_every_file_of_the_old_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([Shout()], ik.Dataset.from_records(_records(4)), batch_size=2, output=out)
    # what a killed run may leave: a spill folder inside state/ and the provenance record
    (out / "state" / "spill-2").mkdir()
    (out / "state" / "spill-2" / "part-00000.arrow").write_bytes(b"x")
    (out / "instructkit_run.json").write_text("{}")
    again = run([MinChars()], ik.Dataset.from_records(_records(4)), batch_size=4, output=out, resume=False)
    assert again.records_in == 4
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["data", "data/part-00000.parquet", "manifest.json", "removed",
                    "removed/part-00000.parquet", "state", "state/ids-00000.npy"]


def test_a_decided_pass_is_not_recomputed_and_a_resume_after_two_globals_finishes(tmp_path: Path) -> None:
    ds = ik.Dataset.from_records(_records(60))
    steps = [Count(), FirstOfText(), FirstOfText(field="output"), Crash()]
    Count.calls = 0
    expected = run(steps, ds, batch_size=20)
    # the steps before the first global step run once per batch: its pass spills, the next
    # passes start from the spill
    assert Count.calls == 3
    out = tmp_path / "out"
    Crash.armed = True
    try:
        with pytest.raises(RuntimeError, match="crash"):
            run(steps, ds, batch_size=20, output=out)
    finally:
        Crash.armed = False
    resumed = run(steps, ds, batch_size=20, output=out)
    assert resumed.to_dataset().to_polars().sort("id").equals(expected.dataset.to_polars().sort("id"))
    assert not list((out / "state").glob("spill-*"))


def test_a_repeated_id_in_memory_names_the_batches(tmp_path: Path) -> None:
    frame = ik.Dataset.from_records(_records(6)).to_polars()
    frame = frame.with_columns(pl.Series("id", ["a", "b", "c", "d", "a", "f"]))
    with pytest.raises(ValueError, match=r"id 'a' appears in input batch 2 and in input batch 0: ids must"):
        run([Shout()], frame, batch_size=2, output=tmp_path / "out")
