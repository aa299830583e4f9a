"""Nothing leaked: once a pipeline holds ``pii.scrub``, no planted value leaves by any path.

E-mails, phone numbers, Luhn-valid cards and IBANs are planted in every field, in every turn
of a conversation, in nested strings of ``meta``, in records that earlier steps remove
(exact duplicates, quality failures, another language) and in a malformed JSONL line. The
pipeline runs in memory (records, removed log and report written) and streamed
(``Pipeline.run`` with 2-record batches), and one streamed run is killed with SIGKILL in the
middle of a global step that runs before the scrub. Then every file under the output folders,
the report and the temp folder (``TMPDIR``) is searched for every planted value, as written
and in its common normalised forms (digits only, no spaces, lower case). Compressed files
(parquet, Arrow IPC, gzip) are decoded first, so a value cannot hide in a compressed page.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

import instructkit as ik
from instructkit.pipeline import write_removed
from instructkit.reports.html import render

SRC = Path(ik.__file__).resolve().parents[1]


# planted values ----------------------------------------------------------------------------
def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i:i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(str(rng.randrange(10)) for _ in range(18))  # DE: 8-digit bank, 10-digit account
    check = 98 - int(bban + "131400") % 97  # "DE00" moved to the end, letters as numbers
    s = f"DE{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _plant(rng: random.Random, where: str, n: int) -> dict[str, str]:
    return {
        "email": f"{where.replace('_', '.')}.{n}@corp-mail.org",
        "phone": f"(212) 734-{2300 + n:04d}",
        "card": _luhn_card(rng),
        "iban": _iban(rng),
    }


def _forms(kind: str, value: str) -> set[str]:
    """The value as written and its common normalised forms."""
    forms = {value}
    if kind in ("phone", "card", "iban"):
        forms.add("".join(value.split()))
        forms.add("".join(c for c in value if c.isalnum()))
    if kind in ("phone", "card"):
        forms.add("".join(c for c in value if c.isdigit()))
    if kind == "email":
        forms |= {value.lower(), value.split("@")[0]}
    return forms


class Corpus:
    """Input files with planted values, and every form of every value to search for."""

    def __init__(self, folder: Path) -> None:
        rng = random.Random(7)
        self.values: dict[str, dict[str, str]] = {}
        n = 0

        def plant(where: str) -> dict[str, str]:
            nonlocal n
            n += 1
            self.values[where] = _plant(rng, where, n)
            return self.values[where]

        def text(v: dict[str, str], lead: str) -> str:
            return (f"{lead}: mail {v['email']}, call {v['phone']}, card {v['card']}, "
                    f"iban {v['iban']}.")

        alpaca = []
        for i in range(6):  # ordinary records: PII in every field and in nested meta
            fields = {f: plant(f"{f}_{i}") for f in ("instruction", "input", "output", "system")}
            meta = plant(f"meta_{i}")
            alpaca.append({
                "instruction": text(fields["instruction"], f"Please write letter number {i} to the client"),
                "input": text(fields["input"], "The client details are"),
                "output": text(fields["output"], f"Dear client {i}, we have your details"),
                "system": text(fields["system"], "You are a helpful assistant"),
                "contact": {"email": meta["email"], "phones": [meta["phone"]],
                            "billing": {"card": meta["card"], "iban": meta["iban"]}},
                "notes": f"ticket {i}",
            })
        dup = plant("duplicate")  # two identical copies: dedup.exact removes one
        alpaca += [{"instruction": text(dup, "Forward this customer record to billing"),
                    "output": "Forwarded to the billing team."}] * 2
        bad = plant("quality_failure")  # empty output: quality removes it
        alpaca.append({"instruction": text(bad, "Summarise the customer record"), "output": ""})
        foreign = plant("other_language")  # German: langid removes it
        alpaca.append({
            "instruction": text(foreign, "Bitte schreiben Sie dem Kunden sofort eine freundliche "
                                         "Antwort auf seine Beschwerde über die Rechnung"),
            "output": "Sehr geehrter Kunde, vielen Dank für Ihre Nachricht über die Rechnung.",
        })
        broken = plant("malformed_line")
        lines = [json.dumps(r, ensure_ascii=False) for r in alpaca]
        self.malformed = f'{{"instruction": "{text(broken, "Malformed zebra-quokka line")}", "output": '
        lines.insert(3, self.malformed)

        chat = []
        for i in range(4):
            turns = [plant(f"turn_{i}_{t}") for t in range(4)]
            chat.append({"conversations": [
                {"from": "system", "value": text(turns[0], "You are a support agent for account holders")},
                {"from": "human", "value": text(turns[1], f"Please update my account number {i}")},
                {"from": "gpt", "value": text(turns[2], "Certainly, I have updated the account")},
                {"from": "human", "value": text(turns[3], "Thank you, please confirm the details")},
            ]})

        self.inputs = folder / "in"
        self.inputs.mkdir(parents=True)
        (self.inputs / "letters.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.inputs / "chats.jsonl").write_text(
            "\n".join(json.dumps(r) for r in chat) + "\n", encoding="utf-8")
        self.needles = {
            form: f"{where}/{kind}"
            for where, planted in self.values.items()
            for kind, value in planted.items()
            for form in _forms(kind, value)
        }

    def leaks(self, *roots: Path) -> dict[str, list[str]]:
        """``{file: [where/kind of each planted value found in it]}`` under ``roots``."""
        found: dict[str, list[str]] = {}
        for root in roots:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in files:
                blob = _readable(path)
                hits = sorted({label for form, label in self.needles.items() if form in blob})
                if hits:
                    found[str(path)] = hits
        return found


def _assert_none(leaks: dict[str, list[str]]) -> None:
    """No planted value, in any form, in any file."""
    assert leaks == {}


def _readable(path: Path) -> str:
    """The file's bytes as text, plus its decoded contents for compressed formats."""
    raw = path.read_bytes()
    parts = [raw.decode("utf-8", errors="replace"), raw.decode("latin-1")]
    name = path.name.removesuffix(".tmp")
    if name.endswith(".gz"):
        parts.append(gzip.decompress(raw).decode("utf-8", errors="replace"))
    elif name.endswith(".parquet"):
        parts.append(pl.read_parquet(path).write_ndjson())
    elif name.endswith((".arrow", ".ipc", ".feather")):
        parts.append(pl.read_ipc(io.BytesIO(raw)).write_ndjson())
    return "\n".join(parts)


def _pipeline() -> ik.Pipeline:
    return ik.Pipeline([
        ik.normalize(),
        ik.quality(),
        ik.langid(keep=["en"]),
        ik.dedup.exact(),
        ik.pii.scrub(),
    ])


@pytest.fixture()
def corpus(tmp_path: Path) -> Corpus:
    return Corpus(tmp_path)


@pytest.fixture()
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TMPDIR for this test, searched like the outputs."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp


def test_corpus_plants_detectable_values(corpus: Corpus) -> None:
    # the search is only meaningful if the raw values really are in the input, and the
    # detector really finds every planted kind
    assert len(corpus.leaks(corpus.inputs)) == 2
    sample = corpus.values["instruction_0"]
    found = ik.pii.scrub().detector().find(list(sample.values()))
    assert [s[0].entity for s in found] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE"]


@pytest.mark.parametrize("operator", ["replace", "mask", "hash", "redact", "drop"])
def test_in_memory_run_leaks_nothing(corpus: Corpus, tmpdir_env: Path, tmp_path: Path,
                                     operator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IK_PII_SALT", "leak-test-pepper")
    steps = _pipeline().steps[:-1] + [ik.pii.scrub(operator=operator, salt="${env:IK_PII_SALT}")]
    ds = ik.read(corpus.inputs, on_error="skip")
    n_in = len(ds) + ds.removed.height
    out = ik.Pipeline(steps)(ds)
    assert len(out) + out.removed.height == n_in
    # every path the issue names removed something before the scrub
    assert {"read", "quality", "langid", "dedup.exact"} <= set(out.removed["step"])
    if operator == "drop":
        assert len(out) == 0
    else:
        assert len(out) == 10
    folder = tmp_path / "out"
    folder.mkdir()
    out.write(folder / "clean.jsonl", turns="split")
    out.write(folder / "clean.parquet", turns="split")
    out.write(folder / "chat.jsonl", format="messages")
    write_removed(out.removed, folder / "removed.jsonl")
    ik.report(out, folder / "report.html")
    ik.Pipeline(steps).to_yaml(folder / "recipe.yaml")
    (folder / "views.txt").write_text("\n".join([
        repr(out), str(out.report()), json.dumps(out.history), repr(ik.Pipeline(steps)),
        str(out.to_polars().write_ndjson()), str(out.removed.write_ndjson()), str(list(out)),
    ]))
    _assert_none(corpus.leaks(folder, tmpdir_env))


def test_removed_before_scrub_is_scrubbed() -> None:
    # D2: the README's own order, dedup before scrub
    ds = ik.Dataset.from_records(
        [{"instruction": "Mail jane.doe@corp-mail.org", "output": "ok"}] * 2
    ).pipe(ik.dedup.exact(), ik.pii.scrub())
    assert ds.removed["instruction"].to_list() == ["Mail <EMAIL_ADDRESS>"]
    assert "jane.doe" not in ds.removed.write_ndjson()


def test_meta_is_scrubbed_unless_fields_narrow_it() -> None:
    # D4: meta holds every extra field; its string leaves are scrubbed, at any depth
    ds = ik.Dataset.from_records([{
        "instruction": "Say hi.", "output": "hi",
        "contact": {"email": "jane.doe@corp-mail.org", "phones": ["(212) 734-2368", "none"]},
        "ticket": 2127342368, "note": "plain",
    }])
    row = ds.pipe(ik.pii.scrub())[0]
    assert row["meta"] == {"contact": {"email": "<EMAIL_ADDRESS>", "phones": ["<PHONE_NUMBER>", "none"]},
                           "note": "plain", "ticket": "<PHONE_NUMBER>"}
    assert row["pii_counts"]["EMAIL_ADDRESS"] == 1 and row["pii_counts"]["PHONE_NUMBER"] == 2
    spans = ds.pipe(ik.pii.detect(spans=True))[0]["pii_spans"]
    assert sorted(s["field"] for s in spans) == ["meta.contact.email", "meta.contact.phones.0", "meta.ticket"]
    # fields= narrows the scan; "meta" names meta's strings
    assert ds.pipe(ik.pii.scrub(fields=["instruction"]))[0]["meta"] == ds[0]["meta"]
    only_meta = ds.pipe(ik.pii.scrub(fields=["meta"]))[0]["meta"]
    assert only_meta["contact"]["email"] == "<EMAIL_ADDRESS>"
    # a meta without findings keeps its exact text
    clean = ik.Dataset.from_records([{"instruction": "a", "output": "b", "x": {"y": "z  w"}}])
    assert clean.pipe(ik.pii.scrub()).to_polars()["meta"].equals(clean.to_polars()["meta"])
    # operator="drop" drops a record whose only PII is in meta
    assert len(ds.pipe(ik.pii.scrub(operator="drop"))) == 0


def test_removed_detail_is_scrubbed_json_kept() -> None:
    frame = ik.Dataset.from_records([{"instruction": "a", "output": "b"}]).to_polars()
    removed = pl.DataFrame({
        "id": ["x:0", "x:1"], "step": ["s", "s"], "reason": ["r", "r"],
        "detail": ['{"kept":"x:9","note":"from jane.doe@corp-mail.org"}', "legacy 212-734-2368"],
        "source": ["x", "x"], "instruction": ["ok", None], "input": [None, None], "output": [None, "ok"],
    })
    out = ik.Dataset(frame, removed).pipe(ik.pii.scrub())
    assert out.removed["detail"].to_list() == [
        '{"kept":"x:9","note":"from <EMAIL_ADDRESS>"}', "legacy <PHONE_NUMBER>"]


def test_streamed_run_leaks_nothing(corpus: Corpus, tmpdir_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    source = ik.scan(corpus.inputs, batch_size=2, on_error="skip")
    result = _pipeline().run(source, output=out)
    kept = result.to_dataset()
    assert result.records_out == len(kept) == 10
    assert kept.removed.height >= 4
    # the same records as in memory
    mem = _pipeline()(ik.read(corpus.inputs, on_error="skip"))
    assert sorted(kept.to_polars()["id"]) == sorted(mem.to_polars()["id"])
    ik.report(kept, tmp_path / "report.html")
    _assert_none(corpus.leaks(out, tmp_path / "report.html", tmpdir_env))


_KILLED_RUN = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import polars as pl
    import instructkit as ik

    class Pause(ik.Global):
        """Keeps every record; with a marker path, its third observed batch writes the
        marker and waits (to be killed)."""
        name = "test.pause"
        def __init__(self) -> None:
            self._seen = 0
        def observe(self, batch):
            self._seen += 1
            if marker and self._seen == 3:
                Path(marker).write_text("paused")
                time.sleep(600)
            return batch.height
        def decide(self, states):
            return pl.DataFrame(schema={"id": pl.String, "reason": pl.String, "detail": pl.String})

    inputs, out, marker = sys.argv[1:4]
    steps = [ik.normalize(), ik.quality(), ik.langid(keep=["en"]), ik.dedup.exact(),
             Pause(), ik.pii.scrub()]
    result = ik.Pipeline(steps).run(ik.scan(inputs, batch_size=2, on_error="skip"), output=out)
    print(result.records_out)
''')


def test_killed_streamed_run_leaks_nothing(corpus: Corpus, tmpdir_env: Path, tmp_path: Path) -> None:
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    out, marker = tmp_path / "run", tmp_path / "paused"
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmpdir_env)}
    proc = subprocess.Popen([sys.executable, str(script), str(corpus.inputs), str(out), str(marker)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the pause: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run never reached the paused global step")
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the run really stopped in the middle: no final shard was written
    assert not list((out / "data").glob("part-*"))
    killed = corpus.leaks(out, tmpdir_env)
    # resuming (without the pause) finishes the run, and leaves nothing raw either
    done = subprocess.run([sys.executable, str(script), str(corpus.inputs), str(out), ""],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "10"
    _assert_none(corpus.leaks(out, tmpdir_env))
    _assert_none(killed)


def test_malformed_line_leaves_no_raw_text_in_details(corpus: Corpus) -> None:
    out = _pipeline()(ik.read(corpus.inputs, on_error="skip"))
    read_errors = out.removed.filter(pl.col("step") == "read")
    assert read_errors.height == 1
    details = "\n".join(out.removed["detail"].drop_nulls())
    assert "@corp-mail.org" not in details
    assert "zebra-quokka" not in details
    assert "Malformed" not in details


def test_salt_is_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    step = ik.pii.scrub(operator="hash", salt="pepper-secret")
    pipe = ik.Pipeline([ik.normalize(), step])
    texts = [pipe.to_yaml(), json.dumps(pipe.to_config()), repr(pipe), repr(step),
             str(step.to_config())]
    assert not [t for t in texts if "pepper-secret" in t]
    assert "salt: ${env:IK_PII_SALT}" in pipe.to_yaml()
    rebuilt = ik.Pipeline.from_yaml(pipe.to_yaml())
    ds = ik.Dataset.from_records([{"instruction": "Mail jane.doe@corp-mail.org", "output": "ok"}])
    monkeypatch.delenv("IK_PII_SALT", raising=False)
    with pytest.raises(ValueError, match="IK_PII_SALT, which is not set"):
        rebuilt(ds)
    monkeypatch.setenv("IK_PII_SALT", "pepper-secret")
    assert rebuilt(ds)[0]["instruction"] == pipe(ds)[0]["instruction"]
    assert "<EMAIL_ADDRESS:" in pipe(ds)[0]["instruction"]
    # a reference is kept as written, and shown (it is not the secret)
    ref = ik.pii.scrub(operator="hash", salt="${env:MY_SALT}")
    assert ref.to_config()["pii.scrub"]["salt"] == "${env:MY_SALT}" and "MY_SALT" in repr(ref)


_REPORT_RUN = textwrap.dedent('''
    import sys
    import instructkit as ik
    inputs, path = sys.argv[1], sys.argv[2]
    ds = ik.read(inputs, on_error="skip").pipe(
        ik.normalize(), ik.quality(), ik.langid(keep=["en"]), ik.dedup.exact(), ik.pii.scrub())
    ik.report(ds, path, samples=2, seed=3)
''')


def test_report_is_byte_reproducible(corpus: Corpus, tmp_path: Path) -> None:
    # D17: two runs of the same pipeline on the same input (separate processes, different
    # hash seeds) give the same report, byte for byte; timings only when asked for
    script = tmp_path / "report_run.py"
    script.write_text(_REPORT_RUN)
    pages = []
    for run in range(2):
        path = tmp_path / f"report-{run}.html"
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": str(run + 1)}
        subprocess.run([sys.executable, str(script), str(corpus.inputs), str(path)],
                       env=env, check=True, capture_output=True, timeout=600)
        pages.append(path.read_bytes())
    assert pages[0] == pages[1]
    assert b"<th>seconds</th>" not in pages[0]
    ds = ik.Dataset.from_records([{"instruction": "a b c", "output": ""}]).pipe(ik.quality())
    assert "<th>seconds</th>" in render(ds, timings=True)
    assert render(ds) == render(ds)


def test_decontaminate_with_benchmarks_round_trips_through_yaml(tmp_path: Path) -> None:
    # D16: benchmarks are written as their loader call and rebuilt from it
    gsm = tmp_path / "gsm8k_test.jsonl"
    question = "Natalia sold clips to 48 of her friends in April and then half as many in May"
    gsm.write_text(json.dumps({"question": question, "answer": "<<48/2=24>>72"}) + "\n")
    toy = ik.benchmarks.from_records("toy", [{"q": "a question that is long enough to be indexed"}], ["q"])
    pipe = ik.Pipeline([ik.decontaminate([ik.benchmarks.gsm8k(gsm), toy], n=5),
                        ik.pii.scrub(operator="hash", salt="pepper-secret")])
    text = pipe.to_yaml()
    assert f"gsm8k: {gsm}" in text and "pepper-secret" not in text
    config = ik.Pipeline.from_yaml(text).steps[0].to_config()["decontaminate"]
    assert config["benchmarks"] == [{"gsm8k": str(gsm)},
                                    {"items": {"name": "toy", "ids": ["0"], "texts": list(toy.texts),
                                               "queries": list(toy.queries)}}]
    rebuilt = ik.Pipeline.from_yaml(text).steps[0]
    assert rebuilt.loaded() == pipe.steps[0].loaded()
    ds = ik.Dataset.from_records([{"instruction": question.lower() + ". How many?", "output": "72"},
                                  {"instruction": "Write a haiku.", "output": "..."}])
    assert ds.pipe(rebuilt).removed["id"].to_list() == ds.pipe(pipe.steps[0]).removed["id"].to_list() == ["records:0"]
    # a loader's non-default arguments are kept
    named = ik.benchmarks.gsm8k(gsm, name="gsm_test")
    assert named.to_config() == {"gsm8k": {"path": str(gsm), "name": "gsm_test"}}
    assert ik.benchmarks.resolve(named.to_config()).name == "gsm_test"


def test_large_removed_log_is_scrubbed_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ik.pii.Scrub, "batch_size", 3)
    rows = [{"instruction": f"Mail p{i}@corp-mail.org" if i % 2 else f"plain {i}", "output": "ok"}
            for i in range(8)]
    ds = ik.Dataset.from_records(rows + rows, source="s")  # ids differ, texts repeat
    out = ds.pipe(ik.dedup.exact(), ik.pii.scrub())
    assert out.removed.height == 8
    assert out.removed["instruction"].to_list() == [
        "Mail <EMAIL_ADDRESS>" if i % 2 else f"plain {i}" for i in range(8)]


def test_meta_that_is_not_json_is_an_error_naming_the_record() -> None:
    frame = ik.Dataset.from_records([{"instruction": "a", "output": "b"}]).to_polars()
    bad = ik.Dataset(frame.with_columns(meta=pl.lit("{not json 2127342368")))
    with pytest.raises(ValueError, match="record 'records:0': meta is not a JSON object string"):
        bad.pipe(ik.pii.scrub())
