"""MedQuAD and the generic XML reader: small fixtures, plus the real collection when present."""

from __future__ import annotations

import tarfile
import time

import pytest

import instructkit as ik

STANDARD = """<?xml version="1.0" encoding="UTF-8"?>
<Document id="0000001" source="GARD" url="https://example.org/flu">
<Focus>Influenza</Focus>
<QAPairs>
  <QAPair pid="1"><Question qid="0000001-1" qtype="information">What is (are) Influenza ?</Question>
    <Answer>  A viral <b>infection</b>. </Answer></QAPair>
  <QAPair pid="2"><Question qid="0000001-2" qtype="symptoms">What are the symptoms of Influenza ?</Question>
    <Answer></Answer></QAPair>
</QAPairs>
</Document>"""
# four NINDS files in MedQuAD use this lowercase schema
LOWERCASE = """<doc docid="0000007" corpus="NINDS" url="https://example.org/has">
<doctitle-focus>Holmes-Adie</doctitle-focus>
<qaPairs><pair pid="1"><question qid="0000007-1" qtype="treatment">How to treat HAS ?</question>
<answer>Glasses.</answer></pair></qaPairs></doc>"""


@pytest.fixture
def medquad_dir(tmp_path):
    root = tmp_path / "MedQuAD"
    (root / "2_GARD_QA").mkdir(parents=True)
    (root / "6_NINDS_QA").mkdir()
    (root / "2_GARD_QA" / "0000001.xml").write_text(STANDARD)
    (root / "6_NINDS_QA" / "0000007.xml").write_text(LOWERCASE)
    return root


def test_read_medquad_folder(medquad_dir):
    ds = ik.read_medquad(medquad_dir)
    assert len(ds) == 2
    flu = ds[0]
    assert flu["id"] == "medquad:2_GARD_QA/0000001:0"
    assert (flu["instruction"], flu["input"], flu["output"]) == ("What is (are) Influenza ?", "", "A viral infection.")
    assert flu["meta"] == {
        "qtype": "information", "focus": "Influenza", "qid": "0000001-1", "document_id": "0000001",
        "url": "https://example.org/flu", "collection": "2_GARD_QA", "document_source": "GARD",
    }
    assert ds[1]["meta"]["focus"] == "Holmes-Adie" and ds[1]["meta"]["qtype"] == "treatment"
    removed = ds.removed.row(0, named=True)
    assert removed["reason"] == "empty_answer"
    assert removed["id"] == "medquad:2_GARD_QA/0000001:1"
    assert "0000001-2" in removed["detail"] and "symptoms" in removed["detail"]
    assert ds.history[0]["records_in"] == 3


def test_tar_gz_equals_folder(medquad_dir, tmp_path):
    archive = tmp_path / "medquad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(medquad_dir / "6_NINDS_QA", arcname="6_NINDS_QA")
        tar.add(medquad_dir / "2_GARD_QA", arcname="2_GARD_QA")
    a, b = ik.read_medquad(medquad_dir), ik.read_medquad(archive)
    assert list(a) == list(b)
    assert a.removed.equals(b.removed)


def test_bad_xml_names_the_file(tmp_path):
    (tmp_path / "broken.xml").write_text("<Document><QAPairs>")
    with pytest.raises(ValueError, match=r"broken\.xml: invalid XML at line 1"):
        ik.read_medquad(tmp_path)
    with pytest.raises(FileNotFoundError):
        ik.read_medquad(tmp_path / "absent")


def test_read_xml_generic(tmp_path):
    path = tmp_path / "faq.xml"
    path.write_text('<faq site="s1"><entry n="1"><q kind="x">Q1?</q><a>A1.</a></entry>'
                    '<entry n="2"><q kind="y">Q2?</q><a>A2.</a></entry></faq>')
    ds = ik.read_xml(path, "entry", {"question": "q", "answer": "a", "kind": "q/@kind", "n": "@n", "site": "/@site"})
    assert [r["instruction"] for r in ds] == ["Q1?", "Q2?"]
    assert ds[1]["meta"] == {"kind": "y", "n": "2", "site": "s1"}
    assert ds[0]["id"] == "faq:faq.xml:0"
    # templating straight after reading: closed-book QA
    out = ds.pipe(ik.templates.closed_qa(phrasings=["Q: {question}"]))
    assert out[0]["instruction"] == "Q: Q1?"


def test_read_xml_skip_bad_files(tmp_path):
    (tmp_path / "a.xml").write_text("<r><i>x</i></r>")
    (tmp_path / "b.xml").write_text("<r><i>")
    ds = ik.read_xml(tmp_path, ".", {"instruction": "i"}, source="d", on_error="skip")
    assert len(ds) == 1
    assert ds.removed["reason"].to_list() == ["parse_error"]


def test_medquad_real_collection(shared_data):
    path = shared_data / "raw" / "medquad_xml.tar.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    start = time.perf_counter()
    ds = ik.read_medquad(path)
    seconds = time.perf_counter() - start
    assert seconds < 30
    # 47,441 pairs in the standard <Document>/<QAPairs>/<QAPair> schema (31,034 with empty
    # answers) plus 16 answered pairs in four NINDS files that use the lowercase schema
    assert ds.history[0]["records_in"] == 47_457
    assert ds.removed.height == 31_034
    assert set(ds.removed["reason"].unique()) == {"empty_answer"}
    assert len(ds) == 47_457 - 31_034 == 16_423
    frame = ds.to_polars()
    assert frame["output"].str.strip_chars().str.len_chars().min() > 0
    assert frame["id"].n_unique() == len(ds)
    lowercase = frame.filter(frame["id"].str.starts_with("medquad:6_NINDS_QA/0000007:"))
    assert lowercase.height == 4
    qtypes = {r["meta"]["qtype"] for r in ds.head(2000)}
    assert "information" in qtypes
