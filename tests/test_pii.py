"""PII scrubbing: operators, code-aware rules, offline engine, no leaks, speed paths, accuracy."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import warnings

import polars as pl
import pytest

import instructkit as ik
from instructkit.pii import detector as detector_mod
from instructkit.pii.detector import Detector
from instructkit.pii.recognizers import DEFAULT_ALLOW, Allow, Span, is_code
from instructkit.transform import from_config, parse_detail

EMAIL = "jane.roe@acme-mail.org"
PHONE = "(212) 734-2368"
SSN = "078-41-1929"
CARD = "4111 1111 1111 1111"
IP = "8.8.4.4"
IBAN = "DE89 3704 0044 0532 0130 00"
URL = "https://janeroe.net/about"
PLANTED = [EMAIL, PHONE, SSN, CARD, IP, IBAN, URL]


def _ds() -> ik.Dataset:
    flat = ik.Dataset.from_records([
        {"instruction": f"Write to {EMAIL} or call {PHONE}.", "input": f"SSN {SSN}",
         "output": f"Card {CARD}, host {IP}, IBAN {IBAN}, site {URL}."},
        {"instruction": "Add 2 and 3.", "output": "5"},
    ], source="t")
    chat = ik.Dataset.from_records([
        {"conversations": [
            {"from": "human", "value": f"My email is {EMAIL}"},
            {"from": "gpt", "value": "Noted."},
            {"from": "human", "value": f"And my phone is {PHONE}"},
            {"from": "gpt", "value": "Thanks."},
        ]},
    ], source="c")
    return ik.concat([flat, chat])


def test_import_does_not_load_presidio() -> None:
    code = "import sys, instructkit as ik; ik.pii; print(any(m.startswith(('presidio', 'spacy')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_replace_all_fields_and_turns() -> None:
    out = _ds().pipe(ik.pii.scrub())
    first = out[0]
    assert first["instruction"] == "Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    assert first["input"] == "SSN <US_SSN>"
    assert first["output"] == (
        "Card <CREDIT_CARD>, host <IP_ADDRESS>, IBAN <IBAN_CODE>, site <URL>.")
    turns = [m["content"] for m in out[2]["messages"]]
    assert turns == ["My email is <EMAIL_ADDRESS>", "Noted.", "And my phone is <PHONE_NUMBER>",
                     "Thanks."]
    assert out[2]["instruction"] == "My email is <EMAIL_ADDRESS>"
    counts = out.to_polars()["pii_counts"].to_list()
    assert counts[0] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1, "IP_ADDRESS": 1,
                         "US_SSN": 1, "IBAN_CODE": 1, "URL": 1}
    assert sum(counts[1].values()) == 0
    # a conversation's instruction/output mirror its turns: counted once
    assert counts[2]["EMAIL_ADDRESS"] == 1 and counts[2]["PHONE_NUMBER"] == 1


def test_user_placeholders_mask_redact() -> None:
    ds = ik.Dataset.from_records([{"instruction": f"mail {EMAIL} now", "output": f"ssn {SSN}"}])
    row = ds.pipe(ik.pii.scrub(placeholders={"EMAIL_ADDRESS": "[email]"}))[0]
    assert row["instruction"] == "mail [email] now" and row["output"] == "ssn <US_SSN>"
    row = ds.pipe(ik.pii.scrub(operator="mask", mask_char="#"))[0]
    assert row["instruction"] == "mail ####.###@####-####.### now" and row["output"] == "ssn ###-##-####"
    row = ds.pipe(ik.pii.scrub(operator="redact"))[0]
    assert row["instruction"] == "mail  now"


def test_hash_is_stable_across_records_and_salted() -> None:
    ds = ik.Dataset.from_records([
        {"instruction": f"a {EMAIL}", "output": "x"},
        {"instruction": f"b {EMAIL.upper()}", "output": "y"},
        {"instruction": "c other.person@acme-mail.org", "output": "z"},
    ])
    rows = ds.pipe(ik.pii.scrub(operator="hash", salt="pepper")).to_polars()["instruction"].to_list()
    tok = [r.split(" ", 1)[1] for r in rows]
    assert tok[0] == tok[1] != tok[2] and tok[0].startswith("<EMAIL_ADDRESS:")
    other = ds.pipe(ik.pii.scrub(operator="hash", salt="salt2")).to_polars()["instruction"][0]
    assert other != rows[0]
    with pytest.raises(ValueError, match="needs a salt"):
        ik.pii.scrub(operator="hash")
    # the salt never reaches the history
    hist = ds.pipe(ik.pii.scrub(operator="hash", salt="pepper")).history
    assert "pepper" not in json.dumps(hist)


def test_drop_scrubs_removed_copies_and_never_leaks() -> None:
    out = _ds().pipe(ik.pii.scrub(operator="drop"))
    assert len(out) == 1 and out[0]["instruction"] == "Add 2 and 3."
    removed = out.removed
    assert removed["reason"].to_list() == ["pii", "pii"]
    assert parse_detail(removed["detail"][0]) == {"entities": [
        "CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "PHONE_NUMBER", "URL", "US_SSN"]}
    assert "<EMAIL_ADDRESS>" in removed["instruction"][0]
    _assert_no_leak(out)


@pytest.mark.parametrize("operator", ["replace", "mask", "redact", "hash"])
def test_no_raw_value_in_any_output(operator: str) -> None:
    out = _ds().pipe(ik.pii.scrub(operator=operator, salt="s"), ik.quality())
    _assert_no_leak(out)
    frame_text = out.to_polars().write_json()
    assert not [v for v in PLANTED if v in frame_text]


def _assert_no_leak(out: ik.Dataset) -> None:
    blobs = [out.removed.write_json(), json.dumps(out.history), str(out.report()), repr(out)]
    leaked = [v for v in PLANTED for b in blobs if v in b]
    assert not leaked


def test_detect_adds_counts_and_spans_without_changing_text() -> None:
    ds = _ds()
    out = ds.pipe(ik.pii.detect(spans=True))
    assert out.to_polars().select("instruction", "output").equals(
        ds.to_polars().select("instruction", "output"))
    row = out[2]
    spans = row["pii_spans"]
    turns = {(s["field"], s["turn"]) for s in spans}
    assert ("messages", 0) in turns and ("messages", 2) in turns
    s = next(s for s in out[0]["pii_spans"] if s["entity"] == "EMAIL_ADDRESS")
    assert out[0][s["field"]][s["start"]:s["end"]] == EMAIL
    assert ik.pii.detect().name == "pii.detect" and ik.pii.scrub().name == "pii.scrub"


def test_recipe_round_trip() -> None:
    step = ik.pii.scrub(operator="mask", entities=["EMAIL_ADDRESS"], n_jobs=2)
    assert step.to_config() == {"pii.scrub": {"entities": ["EMAIL_ADDRESS"], "operator": "mask", "n_jobs": 2}}
    assert repr(from_config(step.to_config())) == repr(step)


@pytest.mark.parametrize("text", [
    "Upgrade to version 1.2.3.4 today",
    "pip install numpy==1.21.2.1",
    "__version__ = '10.0.0.1'",
    "x = 0x1234567890 & mask",
    "color: #333333;",
    "lo = -2147483648",
    "print(1 2 3 4 5 6 7 8 9 10)",
    "Scanner sc = new Scanner(System.in);",
    "my_list.append(item)",
    "import java.net.URL;",
    "see README.md and run.sh, then self.name = model.fit(x)",
    "mail admin@example.com or see https://www.example.com/docs",
    "bind to 127.0.0.1 or 0.0.0.0",
    "call (212) 555-0123 for the demo",
    "placeholder 1234567890 and 9999999999",
])
def test_code_and_allowed_values_are_not_pii(text: str) -> None:
    assert Detector(allow=DEFAULT_ALLOW).find([text]) == [[]]


@pytest.mark.parametrize("text,entity", [
    ("the server is at 1.2.3.4 now", "IP_ADDRESS"),
    ("call 212-734-2368 today", "PHONE_NUMBER"),
    ("visit janeroe.com for more", "URL"),
    ("mail jo@example.company.org", "EMAIL_ADDRESS"),
])
def test_real_values_still_found(text: str, entity: str) -> None:
    assert [s.entity for s in Detector(allow=DEFAULT_ALLOW).find([text])[0]] == [entity]


def test_is_code_and_allow_units() -> None:
    assert is_code("version 1.2.3.4", Span(8, 15, "IP_ADDRESS", 0.6))
    assert not is_code("IP 1.2.3.4", Span(3, 10, "IP_ADDRESS", 0.6))
    allow = Allow(["example.com", "555-01xx"])
    assert allow("URL", "https://docs.example.com/x") and not allow("URL", "https://notexample.com")
    assert allow("PHONE_NUMBER", "+1 (415) 555-0199") and not allow("PHONE_NUMBER", "415-555-0299")


def test_tldextract_is_offline_and_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = Detector(entities=("EMAIL_ADDRESS",)).find([f"write {EMAIL}", "x@y.notatld"])
    assert [[s.entity for s in f] for f in found] == [["EMAIL_ADDRESS"], []]


def test_ner_model_missing_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an installed spaCy pipeline"):
        ik.pii.scrub(ner_model="en_core_web_nonexistent").detector().find(["Ada Lovelace"])
    with pytest.raises(ValueError, match="need an NER model"):
        ik.pii.scrub(entities=["PERSON"])
    with pytest.raises(ValueError, match="unknown PII entity"):
        ik.pii.scrub(entities=["EMAIL"])
    with pytest.raises(ValueError, match="unknown operator"):
        ik.pii.scrub(operator="shred")


def test_ner_model_from_an_installed_pipeline(tmp_path: pytest.TempPathFactory) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([
        {"label": "PERSON", "pattern": "Ada Lovelace"}, {"label": "GPE", "pattern": "London"}])
    path = str(tmp_path / "pipeline")  # type: ignore[operator]
    nlp.to_disk(path)
    ds = ik.Dataset.from_records([{"instruction": "Ada Lovelace lives in London.", "output": "ok"}])
    row = ds.pipe(ik.pii.scrub(ner_model=path))[0]
    assert row["instruction"] == "<PERSON> lives in <LOCATION>."


def _mixed_texts(n: int) -> list[str | None]:
    base = [f"mail {EMAIL}", "nothing here", f"call {PHONE}; IP {IP}", None, "",
            "x = a.b + 1", f"card {CARD} and {URL}", "version 1.2.3.4"]
    return [base[i % len(base)] for i in range(n)]


def test_packing_and_prefilter_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _mixed_texts(80)
    packed = Detector().find(texts)
    monkeypatch.setattr(detector_mod, "PACK_TEXTS", 1)
    single = Detector(prefilter=False).find(texts)
    assert packed == single
    assert sum(map(len, packed)) == 10 * 5


def test_processes_give_the_same_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detector_mod, "CHUNK_TEXTS", 16)
    monkeypatch.setattr(detector_mod, "MIN_PARALLEL", 32)
    texts = _mixed_texts(200)
    assert Detector().find(texts, n_jobs=2) == Detector().find(texts, n_jobs=1)
    with pytest.raises(ValueError, match="n_jobs"):
        Detector().find(texts, n_jobs=0)


# --- integration: real instructions with planted PII ------------------------------------


def _base_texts(shared_data: object, n: int) -> list[str]:
    folder = shared_data / "instructions"  # type: ignore[operator]
    alpaca = json.loads((folder / "alpaca_en_demo.json").read_text())
    code = json.loads((folder / "code_alpaca_2k.json").read_text())
    texts = [r["instruction"] for r in alpaca[:n]] + [r["output"] for r in alpaca[n:2 * n]]
    texts += [r["instruction"] + "\n" + r["input"] for r in code[:n]]
    texts += [r["output"] for r in code[n:2 * n]]
    return texts


def test_accuracy_on_planted_pii(shared_data: object) -> None:
    from instructkit.pii.evaluate import labelled_set, score

    texts, labels = labelled_set(_base_texts(shared_data, 150), seed=7)
    table = score(Detector(allow=DEFAULT_ALLOW), texts, labels)
    assert table["planted"].min() >= 40
    bad = table.filter((pl.col("recall") < 0.95) | (pl.col("precision") < 0.90))
    assert bad.is_empty(), bad
    # the pre-filter, windows and packing lose nothing: presidio on each whole text finds
    # exactly the same spans
    sub = texts[:300]
    det = Detector(allow=DEFAULT_ALLOW)
    assert det.find(sub) == _whole(det, sub)
    assert Detector(allow=DEFAULT_ALLOW, prefilter=False).find(sub) == _whole(det, sub)


# --- windows: costly recognizers run on candidate windows only, same spans ---------------


def _window_fixtures() -> list[str]:
    """Values at text edges, right after or before cut characters, several per run, values
    that presidio rejects in context (letters glued on, time stamps, dates), long texts."""
    values = [PHONE, "+44 20 7946 0958", "030 901820", "+1-202-555-2368 ext. 204", IP,
              "2001:db8::8a2e:370:7334", "::1", URL, "www.janeroe.org/a?b=1", "'http://x.io/p'",
              "1640", CARD, SSN, "2021-05-06 12:30:45", "12/05/2021", "v1.2.3.4"]
    out = list(values)
    for v in values:
        out += [f"x{v}y", f"call {v}", f"{v}\ncall", f"b{v}", f"{v}b", f"({v})", f"'{v}'",
                f"tel:{v}:45", f"see {v}, {v} and {v}.", f"{v}/{v}", f"{v} x 12"]
    out.append(" ".join(values) * 30)
    out.append("\n".join(values))
    return out


def _whole(det: Detector, texts: list[str]) -> list[list]:
    from instructkit.pii.engine import analyzer

    engine = analyzer(det.language, det.entities, None)
    check = Allow(det.allow)
    return [det.finish(check, t, det.analyze(engine, det.entities, t)) for t in texts]


@pytest.mark.parametrize("code_aware", [True, False])
def test_windows_give_the_spans_of_whole_text_analysis(code_aware: bool) -> None:
    texts = _window_fixtures()
    det = Detector(code_aware=code_aware)
    assert det.find(texts) == _whole(det, texts)
    assert Detector(code_aware=code_aware, windows=False).find(texts) == _whole(det, texts)
    # the fixtures do exercise the windowed recognizers
    found = {s.entity for spans in det.find(texts) for s in spans}
    assert {"PHONE_NUMBER", "URL", "IP_ADDRESS"} <= found


def test_windows_on_random_text_near_cut_characters() -> None:
    import random

    rng = random.Random(3)
    atoms = ["212", "734", "2368", "555", "0", "1", "+", "(", ")", "-", ".", " ", "\n", ":",
             "/", "x", "ext", "#", "a", "b", "q", "@", "'", "\"", "com", "org", "www", "::",
             "http://", "e", "t", "\t", ",", "ab12cd"]
    texts = ["".join(rng.choice(atoms) for _ in range(rng.randint(5, 60))) for _ in range(400)]
    det = Detector(code_aware=False)
    assert det.find(texts) == _whole(det, texts)


def test_window_rules() -> None:
    from instructkit.pii.windows import locate, pack, run_pattern, windows

    text = "call 212-734-2368 now, or www.acme.org/x at 8.8.4.4"
    phone = windows(text, run_pattern("PHONE_NUMBER"))
    assert [text[s:e] for s, e in phone] == ["l 212-734-2368 now", "g/x at 8.8.4.4"]
    url = windows(text, run_pattern("URL"))
    assert [text[s:e] for s, e in url] == [" www.acme.org/x ", " 8.8.4.4"]
    # a window at the very start or end of a text has no cut character on that side
    assert windows("8.8.4.4", run_pattern("IP_ADDRESS")) == [(0, 7)]
    # runs without the trigger are skipped; three digits are never a phone number
    assert windows("call 911 or 112", run_pattern("PHONE_NUMBER")) == []
    # packs map every span back to its text
    texts = ["ip 8.8.4.4", "no address", "then 1.1.1.1 and 9.9.9.9"]
    [p] = pack(texts, run_pattern("IP_ADDRESS"))
    spans = [locate(p, m.start(), m.end()) for m in re.finditer(r"\d\.\S+\d", p.text)]
    assert [texts[i][s:e] for i, s, e in spans] == ["8.8.4.4", "1.1.1.1", "9.9.9.9"]
    with pytest.raises(RuntimeError, match="window edge"):
        locate(p, 1, len(p.text))


def test_min_phone_digits_holds_for_the_default_regions() -> None:
    import phonenumbers

    from instructkit.pii.windows import min_phone_digits

    assert min_phone_digits() == 4
    # shortest valid numbers phonenumbers knows are found in a window
    assert Detector(entities=("PHONE_NUMBER",)).find(["call 1640 now"]) == _whole(
        Detector(entities=("PHONE_NUMBER",)), ["call 1640 now"])
    assert phonenumbers.is_valid_number(phonenumbers.parse("+683 4002", None))


def test_long_texts_are_analysed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # past phonenumbers' try limit a text is analysed whole, with the same spans
    monkeypatch.setattr(detector_mod, "MAX_TEXT", 40)
    texts = _window_fixtures()[:60]
    assert any(len(t) > 40 for t in texts) and any(len(t) <= 40 for t in texts)
    det = Detector()
    assert det.find(texts) == _whole(det, texts)
