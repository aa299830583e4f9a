"""``ik.read_medquad``: the MedQuAD XML collection (abachaa/MedQuAD) as closed-book QA records.

Each ``QAPair`` becomes a record: ``instruction`` is the question, ``output`` the answer
(outer whitespace stripped), ``input`` is empty. ``meta`` holds ``qtype`` (question type),
``focus`` (the document's topic), ``qid``, ``document_id``, ``url``, ``collection`` (the
folder, e.g. ``2_GARD_QA``) and ``document_source``. Ids are
``"<source>:<collection>/<file stem>:<k>"`` because MedQuAD's own ``qid`` repeats across
files (CancerGov splits one document into several).

Pairs whose answer is empty (MedlinePlus answers were removed upstream for copyright) go to
``removed`` with reason ``empty_answer``.

A few files use a lowercase schema (``<doc>``, ``<qaPairs>``, ``<pair>``, ``<question>``,
``<doctitle-focus>``; four NINDS files); tag names are matched case-insensitively and
``doctitle-focus`` counts as the focus, so their pairs are read too.

Example:
    >>> import instructkit as ik
    >>> ds = ik.read_medquad("../shared/data/raw/medquad_xml.tar.gz")   # doctest: +SKIP
    >>> ds[0]["meta"]["qtype"], ds.removed["reason"].unique().to_list()  # doctest: +SKIP
    ('information', ['empty_answer'])
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import polars as pl

from instructkit.dataset import Dataset
from instructkit.io.read import assemble
from instructkit.io.xml import parse, text_of, xml_documents
from instructkit.schema import REMOVED_SCHEMA

_PAIRS = {"qapairs"}
_PAIR = {"qapair", "pair"}
_FOCUS = {"focus", "doctitle-focus"}


def _child(element: ET.Element, names: set[str]) -> ET.Element | None:
    return next((c for c in element if c.tag.lower() in names), None)


def _pairs(root: ET.Element) -> list[ET.Element]:
    container = _child(root, _PAIRS)
    return [] if container is None else [c for c in container if c.tag.lower() in _PAIR]


def medquad_records(name: str, root: ET.Element, source: str) -> list[dict[str, Any]]:
    """Raw QA records (``question``, ``answer`` and meta fields) of one MedQuAD document.

    Example:
        >>> import xml.etree.ElementTree as ET
        >>> root = ET.fromstring('<Document id="1" url="u"><Focus>Flu</Focus><QAPairs>'
        ...     '<QAPair pid="1"><Question qid="1-1" qtype="symptoms">Flu signs?</Question>'
        ...     '<Answer> Fever. </Answer></QAPair></QAPairs></Document>')
        >>> rec = medquad_records("2_GARD_QA/1.xml", root, "medquad")[0]
        >>> rec["id"], rec["answer"], rec["qtype"], rec["focus"]
        ('medquad:2_GARD_QA/1:0', 'Fever.', 'symptoms', 'Flu')
    """
    stem = name[:-4] if name.lower().endswith(".xml") else name
    collection = name.split("/")[0] if "/" in name else ""
    focus = text_of(_child(root, _FOCUS))
    doc_id = root.get("id") or root.get("docid") or root.get("fid")
    doc_source = root.get("source") or root.get("corpus")
    records = []
    for k, pair in enumerate(_pairs(root)):
        question = _child(pair, {"question"})
        answer = _child(pair, {"answer"})
        record = {
            "id": f"{source}:{stem}:{k}",
            "question": text_of(question) or "",
            "answer": text_of(answer) or "",
            "qtype": question.get("qtype") if question is not None else None,
            "focus": focus,
            "qid": question.get("qid") if question is not None else None,
            "document_id": doc_id,
            "url": root.get("url"),
            "collection": collection,
            "document_source": doc_source,
        }
        records.append({k: v for k, v in record.items() if v is not None})
    return records


def read_medquad(path: str | Path, source: str = "medquad") -> Dataset:
    """Read MedQuAD from its folder or a .tar.gz of it; pairs with empty answers go to
    ``removed`` (reason ``empty_answer``).

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "2_GARD_QA"; d.mkdir()
        >>> _ = (d / "1.xml").write_text('<Document id="1"><Focus>Flu</Focus><QAPairs><QAPair>'
        ...     '<Question qtype="information">What is flu?</Question><Answer>A virus.</Answer>'
        ...     '</QAPair><QAPair><Question qtype="cause">Why?</Question><Answer/></QAPair>'
        ...     '</QAPairs></Document>')
        >>> ds = read_medquad(d.parent)
        >>> len(ds), ds[0]["meta"]["focus"], ds.removed["reason"].to_list()
        (1, 'Flu', ['empty_answer'])
    """
    from instructkit.io.formats import canonical_frame

    start = time.perf_counter()
    path = Path(path)
    raw: list[dict[str, Any]] = []
    for name, data in xml_documents(path):
        raw.extend(medquad_records(name, parse(name, data, str(path)), source))
    frame, removed = canonical_frame(raw, source=source, format="qa", origin=str(path))
    empty = frame["output"].str.strip_chars() == ""
    dropped = frame.filter(empty)
    meta = dropped["meta"].str.json_decode(
        pl.Struct({"qid": pl.String, "qtype": pl.String, "collection": pl.String})
    )
    empties = dropped.select(
        "id",
        pl.lit("read").alias("step"),
        pl.lit("empty_answer").alias("reason"),
        pl.format(
            "question {} ({}) in {} has an empty answer",
            meta.struct.field("qid").fill_null("?"),
            meta.struct.field("qtype").fill_null("no qtype"),
            meta.struct.field("collection").fill_null(str(path.name)),
        ).alias("detail"),
        "source", "instruction", "input", "output",
    ).cast(REMOVED_SCHEMA)  # type: ignore[arg-type]
    removed = pl.concat([removed, empties], how="vertical_relaxed")
    return assemble([frame.filter(~empty)], [removed], len(raw), time.perf_counter() - start, f"read_medquad {path}")
