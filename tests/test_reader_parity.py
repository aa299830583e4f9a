"""One reader (issue 16 points 1-2, issue 17 points 3-5): ik.read and ik.scan see the same
files, records, ids and errors; bad input is named and never copied; round trips hold."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik
from instructkit.io.files import ParseError
from instructkit.io.formats import RecordError
from instructkit.io.read import detect_format
from instructkit.io.scan import Scan
from instructkit.schema import COLUMNS
from instructkit.transform import parse_detail


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(prefix: str, n: int = 2, **extra) -> list[dict]:
    return [{"instruction": f"{prefix}{k}", "output": f"o{k}", **extra} for k in range(n)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Issue 16 D1: a.jsonl b.json c.csv d.parquet f.json.gz sub/e.jsonl."""
    _jsonl(tmp_path / "a.jsonl", _rows("a", 3, topic="t"))
    (tmp_path / "b.json").write_text(json.dumps(_rows("b")))
    (tmp_path / "c.csv").write_text('instruction,output\nc0,o0\n"c\n1",o1\n')
    pl.DataFrame(_rows("d")).write_parquet(tmp_path / "d.parquet")
    with gzip.open(tmp_path / "f.json.gz", "wt") as f:
        f.write(json.dumps(_rows("f")))
    _jsonl(tmp_path / "sub" / "e.jsonl", [{"id": "own", "instruction": "e", "output": "x"}])
    return tmp_path


def _scanned(path, batch_size, **kw) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts = list(ik.scan(path, batch_size=batch_size, **kw).batches())
    return pl.concat([f for _, f, _ in parts]), pl.concat([r for _, _, r in parts])


def test_folder_same_records_through_read_and_scan(folder: Path) -> None:
    ds = ik.read(folder)
    frame = ds.to_polars()
    assert len(ds) == 3 + 2 + 2 + 2 + 2 + 1
    assert frame["source"].unique(maintain_order=True).to_list() == ["a", "b", "c", "d", "f", "e"]
    assert frame.filter(pl.col("source") == "e")["id"].to_list() == ["e:own"]
    assert frame.filter(pl.col("source") == "c")["instruction"].to_list() == ["c0", "c\n1"]
    for batch_size in (1, 2, 1000):
        scanned, removed = _scanned(folder, batch_size)
        assert scanned.equals(frame), batch_size
        assert removed.height == 0
    # Pipeline.run reads the same folder through scan: nothing is left out
    res = ik.Pipeline([]).run(folder, output=folder.parent / "out", batch_size=2)
    assert res.to_dataset().to_polars().sort("id").equals(frame.sort("id"))


def test_errors_are_the_same_through_read_and_scan(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"instruction": "a"}\nnot json\n\n{"output": "b"}\n{"instruction": "c", "output": true}\n')
    ds = ik.read(path, format="alpaca", on_error="skip")
    for batch_size in (1, 2, 10):
        frame, removed = _scanned(path, batch_size, format="alpaca", on_error="skip")
        assert frame.equals(ds.to_polars()) and removed.equals(ds.removed)
    assert ds.removed.select("id", "reason").rows() == [
        ("m:1", "parse_error"), ("m:2", "missing_field"), ("m:3", "invalid_record")]
    for reader in (ik.read, lambda p: list(ik.scan(p, batch_size=1))):
        with pytest.raises(ParseError, match="m.jsonl, line 2, column 1"):
            reader(path)


# issue 16 D3: no raw text in messages or details ------------------------------------------------


def test_read_errors_never_copy_the_text(tmp_path: Path) -> None:
    secret = "jane.doe@corp-mail.org"
    path = tmp_path / "p.jsonl"
    path.write_text(f'{{"instruction": "ok"}}\n{{"instruction": "{secret}" oops}}\n'
                    f'{{"instruction": "x", "output": ["{secret}"]}}\n')
    with pytest.raises(ParseError) as e:
        ik.read(path)
    assert secret not in str(e.value) and "line 2" in str(e.value)
    ds = ik.read(path, on_error="skip")
    assert secret not in ds.removed.write_csv()
    parse, invalid = (parse_detail(d) for d in ds.removed["detail"])
    assert parse == {"file": str(path), "line": 2, "column": 42, "offset": 63,
                     "error": "invalid JSON: Expecting ',' delimiter"}
    assert invalid == {"file": str(path), "line": 3, "error": "invalid_record", "field": "output"}
    assert ds.removed["instruction"].to_list() == [None, None]


# issue 16 D6: an executor's output reads back as it is -------------------------------------------


def test_canonical_output_reads_back(tmp_path: Path) -> None:
    conv = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}], "system": "s"}
    ds = ik.concat([
        ik.read(_jsonl(tmp_path / "in" / "x.jsonl", _rows("x", 3, topic="t"))),
        ik.read(_jsonl(tmp_path / "in" / "y.jsonl", [conv])),
    ])
    frame = ds.to_polars()
    frame.write_ndjson(tmp_path / "shard.jsonl")
    frame.write_parquet(tmp_path / "shard.parquet")
    for name in ("shard.jsonl", "shard.parquet"):
        assert ik.read(tmp_path / name).to_polars().equals(frame), name
        assert pl.concat(list(ik.scan(tmp_path / name, batch_size=2))).equals(frame), name
    assert detect_format(tmp_path / "shard.jsonl") == "canonical"
    # a bad line in a canonical JSONL file: skipped with a parse_error, not a crash (D11)
    with (tmp_path / "shard.jsonl").open("a") as f:
        f.write("{broken\n")
    frame2, removed = _scanned(tmp_path / "shard.jsonl", 2, on_error="skip")
    assert frame2.equals(frame) and removed["reason"].to_list() == ["parse_error"]


def test_pipeline_output_folder_reads_back(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "d.jsonl", _rows("d", 5, topic="t"))
    for fmt in ("jsonl", "parquet"):
        res = ik.Pipeline([]).run(src, output=tmp_path / fmt, batch_size=2, format=fmt)
        back = ik.read(res.output / "data")
        assert back.to_polars().equals(res.to_dataset().to_polars()), fmt
        assert back[0]["meta"] == {"topic": "t"}


# issue 16 D8-D15 --------------------------------------------------------------------------------


def test_empty_seed_instances_are_removed(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "seed.jsonl", [
        {"id": "s1", "instruction": "a", "instances": []},
        {"id": "s2", "instruction": "b", "instances": [{"input": "", "output": "o"}]},
    ])
    ds = ik.read(path, on_error="skip")
    assert [r["id"] for r in ds] == ["s2:0"]
    assert ds.removed["reason"].to_list() == ["invalid_record"]
    assert parse_detail(ds.removed["detail"][0])["field"] == "instances"
    assert ds.history[0]["records_in"] == len(ds) + ds.removed.height


def test_byte_order_mark(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.jsonl").write_bytes(bom + b'{"instruction": "a"}\n{"instruction": "b"}\n')
    (tmp_path / "b.json").write_bytes(bom + b'[{"instruction": "c"}]')
    (tmp_path / "c.csv").write_bytes(bom + b"instruction\nd\n")
    ds = ik.read(tmp_path)
    assert [r["instruction"] for r in ds] == ["a", "b", "c", "d"]
    assert pl.concat(list(ik.scan(tmp_path, batch_size=1))).equals(ds.to_polars())


def test_gzipped_json_array_is_an_array_in_scan(tmp_path: Path) -> None:
    path = tmp_path / "a.json.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(_rows("a", 5), indent=2))
    assert pl.concat(list(ik.scan(path, batch_size=2)))["instruction"].to_list() == [f"a{k}" for k in range(5)]
    assert len(ik.read(path)) == 5


def test_unreadable_files_name_the_file_and_skip_to_one_row(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in _rows("t", 50)))
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "p.parquet").write_bytes(b"PAR1 not parquet at all")
    (tmp_path / "j.json").write_text('[{"instruction": "a"}, {"instruction": ')
    _jsonl(tmp_path / "ok.jsonl", _rows("ok"))
    for name, message in (("t.jsonl.gz", "truncated gzip"), ("p.parquet", "Parquet"), ("j.json", "line 1")):
        for reader in (ik.read, lambda p: list(ik.scan(p))):
            with pytest.raises(ParseError, match=message) as e:
                reader(tmp_path / name)
            assert name in str(e.value)
    ds = ik.read(tmp_path, on_error="skip")
    assert [r["instruction"] for r in ds] == ["ok0", "ok1"]
    assert ds.removed.select("id", "reason").rows() == [("j:0", "read_error"), ("p:0", "read_error"), ("t:0", "read_error")]
    assert {Path(parse_detail(d)["file"]).name for d in ds.removed["detail"]} == {"j.json", "p.parquet", "t.jsonl.gz"}
    frame, removed = _scanned(tmp_path, 1, on_error="skip")
    assert frame.equals(ds.to_polars()) and removed.equals(ds.removed)
    scan = ik.scan(tmp_path, batch_size=1, on_error="skip")
    for split, f, r in scan.batches():
        again, again_removed = scan.read_split(split)
        assert again.equals(f) and again_removed.equals(r)


def test_csv_line_numbers_after_multiline_cells_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('instruction,output\n"multi\nline\ncell",o\na,b,c\nx,y\n')
    with pytest.raises(ParseError, match=r"r.csv, line 5: 3 cells where the header has 2"):
        ik.read(path)
    ds = ik.read(path, on_error="skip")
    assert [r["instruction"] for r in ds] == ["multi\nline\ncell", "x"]
    assert parse_detail(ds.removed["detail"][0])["line"] == 5
    frame, removed = _scanned(path, 1, on_error="skip")
    assert frame.equals(ds.to_polars()) and removed.equals(ds.removed)


def test_duplicate_keys_are_invalid_records(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "output": "1"}\n{"instruction": "a", "output": "1", "output": "2"}\n'
                    '{"instruction": "b", "info": {"k": 1, "k": 2}}\n')
    with pytest.raises(RecordError, match="line 2: key 'output' appears more than once"):
        ik.read(path)
    ds = ik.read(path, on_error="skip")
    assert [parse_detail(d)["field"] for d in ds.removed["detail"]] == ["output", "info.k"]
    doc = tmp_path / "d.json"
    doc.write_text('[{"instruction": "a", "instruction": "b"}]')
    with pytest.raises(RecordError, match="record 0: key 'instruction' appears more than once"):
        ik.read(doc)


def test_values_where_text_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_text(
        '{"id": 123456789012345678901234567890, "instruction": "a", "input": 1.50, "output": 7}\n'
        '{"instruction": "b", "output": true}\n'
        '{"instruction": "c", "output": [1]}\n'
        '{"instruction": "d", "output": {"x": 1}}\n'
        '{"instruction": "e", "output": NaN}\n'
    )
    ds = ik.read(path, format=None, on_error="skip")
    first = ds[0]
    assert (first["id"], first["input"], first["output"]) == ("123456789012345678901234567890", "1.50", "7")
    reasons = [(parse_detail(d).get("field"), r) for d, r in ds.removed.select("detail", "reason").rows()]
    assert reasons == [("output", "invalid_record"), ("output", "invalid_record"), ("output", "invalid_record"),
                       (None, "parse_error")]
    conv = _jsonl(tmp_path / "c.jsonl", [{"conversations": [{"from": "human", "value": None}]}])
    assert parse_detail(ik.read(conv, on_error="skip").removed["detail"][0])["field"] == "conversations[0].value"
    # big ids from CSV and Parquet keep every digit; NaN in Parquet text is invalid
    (tmp_path / "b.csv").write_text("id,instruction\n123456789012345678901234567890,a\n")
    assert ik.read(tmp_path / "b.csv")[0]["id"] == "123456789012345678901234567890"
    pl.DataFrame({"id": [2**63 - 1], "instruction": ["a"], "output": [float("nan")]}).write_parquet(tmp_path / "n.parquet")
    pq = ik.read(tmp_path / "n.parquet", on_error="skip")
    assert pq.removed["id"].to_list() == ["n:0"] and parse_detail(pq.removed["detail"][0])["field"] == "output"
    pl.DataFrame({"id": [2**63 - 1], "instruction": ["a"]}).write_parquet(tmp_path / "m.parquet")
    assert ik.read(tmp_path / "m.parquet")[0]["id"] == str(2**63 - 1)


# the column-wise JSONL path: proven equal to the precise path, or not taken ----------------------


@pytest.mark.parametrize("late", [
    '{"instruction": "z", "extra_key_late": "v"}',  # a key the first rows did not have
    '{"instruction": "z", "output": 5}',  # a number where the first rows had text
    '{"instruction": "z", "output": null}',  # an explicit null
    '{"instruction": "z", "output": "a", "output": "b"}',  # a repeated key
    '{"instruction": "z\\u0022:", "output": "a"}',  # an escaped quote and colon
    '{"instruction": "\\ud83d\\ude00"}',  # a surrogate pair
    '{"instruction": "z", "output": 1.50}',
])
def test_column_path_guard_falls_back_exactly(tmp_path: Path, late: str) -> None:
    from instructkit.io import scan as scan_mod
    from instructkit.io.files import load
    from instructkit.io.formats import canonical_frame_precise

    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows("r", 150)) + late + "\n")
    records, locations = load(path, on_error="skip")
    precise, precise_removed = canonical_frame_precise(
        records, source="g", origin=str(path), locations=list(locations), on_error="skip")
    ds = ik.read(path, on_error="skip")
    assert ds.to_polars().equals(precise) and ds.removed.equals(precise_removed)
    reader = Scan([path], 1 << 62, None, None, None, "skip")
    split = reader.splits()[0]
    assert reader._fast_jsonl(split, path, "g", None) is None  # the guard refused the column path
    assert scan_mod._byte_counts(b'{"a": "\\u0041"}') is not None


def test_column_path_taken_for_clean_files(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [{"id": f"i{k}", "instruction": f"Ünï {k}: \"q\"", "input": "",
                                            "output": "é\n\t\\", "tag": "x"} for k in range(300)])
    reader = Scan([path], 1 << 62, None, None, None, "raise")
    fast = reader._fast_jsonl(reader.splits()[0], path, "c", None)
    assert fast is not None
    from instructkit.io.files import load
    from instructkit.io.formats import canonical_frame_precise

    records, locations = load(path)
    precise, _ = canonical_frame_precise(records, source="c", locations=list(locations))
    assert fast.equals(precise) and ik.read(path).to_polars().equals(precise)


# issue 17.3: ids unique across files ----------------------------------------------------------------


def test_own_ids_colliding_across_files(tmp_path: Path) -> None:
    seed = {"id": "seed_task_1", "instruction": "a", "instances": [{"input": "", "output": "o"}]}
    _jsonl(tmp_path / "x.jsonl", [seed])
    _jsonl(tmp_path / "y.jsonl", [seed])
    ds = ik.read(tmp_path)
    assert [r["id"] for r in ds] == ["x:seed_task_1:0", "y:seed_task_1:0"]
    assert pl.concat(list(ik.scan(tmp_path, batch_size=1)))["id"].to_list() == ["x:seed_task_1:0", "y:seed_task_1:0"]
    # one file: own ids as they are, or prefixed by source= when given
    assert ik.read(tmp_path / "x.jsonl")[0]["id"] == "seed_task_1:0"
    assert ik.read(tmp_path / "x.jsonl", source="web")[0]["id"] == "web:seed_task_1:0"
    assert next(iter(ik.scan(tmp_path / "x.jsonl", source="web")))["id"][0] == "web:seed_task_1:0"
    # the same stem twice: the file name tells them apart
    (tmp_path / "x.json").write_text(json.dumps([seed]))
    assert [r["id"] for r in ik.read(tmp_path)] == ["x.json:seed_task_1:0", "x.jsonl:seed_task_1:0", "y:seed_task_1:0"]
    # source= for several files: default ids still name the file
    _jsonl(tmp_path / "z" / "p.jsonl", _rows("p", 1))
    _jsonl(tmp_path / "z" / "q.jsonl", _rows("q", 1))
    both = ik.read(tmp_path / "z", source="web")
    assert [(r["id"], r["source"]) for r in both] == [("p:0", "web"), ("q:0", "web")]


def test_shared_instructions_folder_reads_and_combines(shared_data: Path) -> None:
    folder = shared_data / "instructions"
    ds = ik.read(folder, on_error="skip")  # the README / docs/io.md example
    assert len(ds) == 28945 and ds.removed["reason"].to_list() == ["parse_error"] * 5
    assert ds.to_polars()["id"].is_unique().all()
    seeds = ds.to_polars().filter(pl.col("source") == "stanford_alpaca_seed_tasks")
    assert seeds["id"][0] == "stanford_alpaca_seed_tasks:seed_task_0:0"
    scanned, removed = _scanned(folder, 5000, on_error="skip")
    assert scanned.equals(ds.to_polars()) and removed.equals(ds.removed)
    # datasets read one file at a time combine when each has its own source=
    seeds = [ik.read(folder / f"{name}_seed_tasks.jsonl", source=name) for name in ("stanford_alpaca", "code_alpaca")]
    assert seeds[0][0]["id"] == "stanford_alpaca:seed_task_0:0"
    both = ik.concat(seeds)
    assert len(both) == len(seeds[0]) + len(seeds[1])
    mixed = ik.mix({"s": seeds[0], "c": seeds[1]}, weights={"s": 0.5, "c": 0.5}, total=40, seed=0)
    assert len(mixed) == 40 and mixed.to_polars()["id"].is_unique().all()


# issue 17.4: conversations in LLaMA-Factory's alpaca and sharegpt layouts ----------------------


def test_alpaca_history_and_system_become_messages(tmp_path: Path) -> None:
    rec = {"instruction": "Q2", "input": "ctx", "output": "A2", "system": "S",
           "history": [["Q0", "A0"], ["Q1", "A1"]], "tag": "t"}
    row = ik.read(_jsonl(tmp_path / "h.jsonl", [rec, {"instruction": "solo", "output": "x"}]))[0]
    assert row["messages"] == [
        {"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0"},
        {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2\nctx"}, {"role": "assistant", "content": "A2"},
    ]
    assert (row["instruction"], row["input"], row["output"], row["system"]) == ("Q2", "ctx", "A2", "S")
    assert row["meta"] == {"_format": "alpaca_history", "tag": "t"}
    bad = _jsonl(tmp_path / "b.jsonl", [{"instruction": "a", "output": "b", "history": [["only one"]]}])
    ds = ik.read(bad, on_error="skip")
    assert parse_detail(ds.removed["detail"][0])["field"] == "history[0]"


def test_sharegpt_tools_and_function_turns_are_kept(tmp_path: Path) -> None:
    rec = {"conversations": [
        {"from": "human", "value": "weather?"}, {"from": "function_call", "value": '{"name": "w"}'},
        {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "It is sunny"}],
        "tools": '[{"name": "w"}]', "system": "sys"}
    row = ik.read(_jsonl(tmp_path / "s.jsonl", [rec]))[0]
    assert [m["role"] for m in row["messages"]] == ["user", "function_call", "tool", "assistant"]
    assert row["meta"] == {"tools": '[{"name": "w"}]'} and row["system"] == "sys"


# issue 17.5: round trips through Arrow ----------------------------------------------------------


def _mixed_dataset(tmp_path: Path) -> ik.Dataset:
    conv = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    return ik.concat([
        ik.read(_jsonl(tmp_path / "a.jsonl", _rows("a", 3, topic="t"))),
        ik.read(_jsonl(tmp_path / "b.jsonl", [conv])),
    ])


def test_pandas_round_trip_gives_equal_records(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    ds = _mixed_dataset(tmp_path)
    back = ik.from_pandas(ds.to_pandas())
    assert back.to_polars().equals(ds.to_polars())
    assert list(back) == list(ds)


def test_hf_round_trip_gives_equal_records(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    ds = _mixed_dataset(tmp_path)
    hf = ds.to_hf()
    assert hf.column_names[:8] == list(COLUMNS)
    assert ik.from_hf(hf).to_polars().equals(ds.to_polars())
    assert ik.from_hf(hf.select([3, 1])).to_polars().equals(ds.to_polars()[[3, 1]])


def test_json_lines_in_a_json_file_with_a_bad_first_line(tmp_path: Path) -> None:
    path = tmp_path / "jl.json"
    path.write_text('{"instruction": bad}\n{"instruction": "b"}\n')
    ds = ik.read(path, on_error="skip")
    assert [r["instruction"] for r in ds] == ["b"]
    assert ds.removed.select("id", "reason").rows() == [("jl:0", "parse_error")]
    frame, removed = _scanned(path, 1, on_error="skip")
    assert frame.equals(ds.to_polars()) and removed.equals(ds.removed)


def test_column_path_equals_precise_path_on_random_files(tmp_path: Path) -> None:
    """Seeded fuzz: texts full of quotes, colons, backslashes, braces and escapes, with rare
    nulls, numbers, booleans, lists, repeated keys and broken lines. Whatever path a file
    takes, ``ik.read`` equals the precise reader; clean files take the column path."""
    import random

    from instructkit.io.files import load
    from instructkit.io.formats import canonical_frame_precise

    rng = random.Random(7)
    alphabet = ["a", ":", '"', "\\", "\n", "é", " ", "{", "}", "[", "/", "\x00", "\u2028"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))

    def odd() -> object:
        return rng.choice([None, 7, 10**20, True, 1.5, [text()], {"k": text()}])

    used_fast = 0
    for trial in range(40):
        dirty = trial % 2  # half the files carry anomalies at 2% of fields
        lines = []
        for k in range(rng.randint(1, 150)):
            rec = {"instruction": text() or "x"}
            for key in ("input", "output", "id", "extra", "e:x", 'q"k', "source", "system"):
                if rng.random() < 0.6:
                    rec[key] = odd() if dirty and key != "id" and rng.random() < 0.02 else text()
            if "id" in rec:
                rec["id"] += f"-{k}"
            line = json.dumps(rec, ensure_ascii=trial % 3 == 0, separators=rng.choice([(",", ":"), (", ", ": ")]))
            if dirty and rng.random() < 0.01:
                line = line[:-1] + ', "output": "again"}'
            if dirty and rng.random() < 0.005:
                line = line[:-1]
            lines.append(line)
        path = tmp_path / f"f{trial}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        records, locations = load(path, on_error="skip")
        precise, precise_removed = canonical_frame_precise(
            records, source=path.stem, origin=str(path), locations=list(locations), on_error="skip")
        ds = ik.read(path, on_error="skip")
        assert ds.to_polars().equals(precise), trial
        assert ds.removed.equals(precise_removed), trial
        reader = Scan([path], 1 << 62, None, None, None, "skip")
        used_fast += reader._fast_jsonl(reader.splits()[0], path, path.stem, None) is not None
    assert used_fast >= 15
