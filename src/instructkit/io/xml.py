"""``ik.read_xml``: records from XML files, a folder of them, or a .tar(.gz) of them.

A record path (ElementTree syntax, relative to each document's root, e.g.
``"QAPairs/QAPair"``) selects the elements that become records; field paths pick the
values of each record:

- ``"Question"``: the text of a child element (all its text, stripped);
- ``"Question/@qtype"``: an attribute of a child; ``"@pid"``: an attribute of the record;
- ``"/Focus"``, ``"/@url"``: from the document root (for document-level fields).

A path that matches nothing gives no value (the field is absent). The raw records then go
through the same format detection and ``mapping`` as :func:`instructkit.read`.

Example:
    >>> import pathlib, tempfile, instructkit as ik
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "faq.xml"
    >>> _ = p.write_text('<faq topic="tea"><item><q>Hot?</q><a>Yes.</a></item></faq>')
    >>> ds = ik.read_xml(p, "item", {"question": "q", "answer": "a", "topic": "/@topic"})
    >>> ds[0]["instruction"], ds[0]["output"], ds[0]["meta"]
    ('Hot?', 'Yes.', {'topic': 'tea'})
"""

from __future__ import annotations

import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from instructkit.dataset import Dataset
from instructkit.io.read import assemble

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def xml_documents(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """``(relative name, bytes)`` of every ``.xml`` file under ``path``, sorted by name.

    ``path`` is one XML file, a folder (searched recursively) or a tar archive. Sorting makes
    a folder and the archive of it give the same records in the same order.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "b.xml").write_text("<r/>"); _ = (d / "a.xml").write_text("<r/>")
        >>> [name for name, _ in xml_documents(d)]
        ['a.xml', 'b.xml']
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")
        if not files:
            raise FileNotFoundError(f"{path}: no .xml files found")
        for f in files:
            yield f.relative_to(path).as_posix(), f.read_bytes()
        return
    if path.name.lower().endswith(_TAR_SUFFIXES):
        members: list[tuple[str, bytes]] = []
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if m.isfile() and m.name.lower().endswith(".xml"):
                    f = tar.extractfile(m)
                    if f is not None:
                        members.append((m.name, f.read()))
        if not members:
            raise FileNotFoundError(f"{path}: the archive holds no .xml files")
        yield from sorted(members, key=lambda item: item[0])
        return
    yield path.name, path.read_bytes()


def parse(name: str, data: bytes, origin: str) -> ET.Element:
    """Parse one XML document; a syntax error names the file, line and column."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        line, col = e.position
        raise ValueError(f"{origin}: {name}: invalid XML at line {line}, column {col}: {e}") from e


def text_of(element: ET.Element | None) -> str | None:
    """All text inside ``element``, stripped (None when the element is absent)."""
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def field_value(record: ET.Element, root: ET.Element, path: str) -> str | None:
    """The value a field path names (see module docs), or None when nothing matches.

    Example:
        >>> import xml.etree.ElementTree as ET
        >>> root = ET.fromstring('<d id="7"><p n="1"><q t="x">Hi</q></p></d>')
        >>> rec = root.find("p")
        >>> [field_value(rec, root, p) for p in ("q", "q/@t", "@n", "/@id", "missing")]
        ['Hi', 'x', '1', '7', None]
    """
    base = record
    if path.startswith("/"):
        base, path = root, path[1:]
    element_path, _, attribute = path.partition("@")
    element_path = element_path.rstrip("/")
    target = base.find(element_path) if element_path else base
    if target is None:
        return None
    if attribute:
        return target.get(attribute)
    return text_of(target)


def read_xml(
    path: str | Path,
    record_path: str,
    fields: Mapping[str, str],
    *,
    source: str | None = None,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    on_error: str = "raise",
) -> Dataset:
    """Read records from XML: one per element matching ``record_path`` in each document.

    ``fields`` maps output field names to field paths; the resulting raw records are read
    like JSON records (format detected from the names, or given by ``format``/``mapping``).
    Ids are ``"<source>:<file>:<k>"`` (``k``: the record's position in its file). With
    ``on_error="skip"``, a file that is not valid XML goes to ``removed`` as ``parse_error``.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.xml"
        >>> _ = p.write_text('<d><r><i>Say hi</i><o>hi</o></r><r><i>Say yo</i><o>yo</o></r></d>')
        >>> [r["id"] for r in read_xml(p, "r", {"instruction": "i", "output": "o"}, source="x")]
        ['x:d.xml:0', 'x:d.xml:1']
    """
    from instructkit.io.formats import canonical_frame

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    start = time.perf_counter()
    path = Path(path)
    source = source or _stem(path)
    raw: list[dict[str, Any] | BaseException] = []
    locations: list[str] = []
    for name, data in xml_documents(path):
        try:
            root = parse(name, data, str(path))
        except ValueError as e:
            if on_error == "raise":
                raise
            raw.append(e)
            locations.append(name)
            continue
        for k, element in enumerate(root.iterfind(record_path)):
            record: dict[str, Any] = {"id": f"{source}:{name}:{k}"}
            for field, field_path in fields.items():
                value = field_value(element, root, field_path)
                if value is not None:
                    record[field] = value
            raw.append(record)
            locations.append(f"{name}, record {k}")
    frame, removed = canonical_frame(
        raw, source=source, format=format, mapping=mapping, origin=str(path),
        locations=locations, on_error=on_error,
    )
    return assemble([frame], [removed], len(raw), time.perf_counter() - start, f"read_xml {path}")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_TAR_SUFFIXES, ".xml"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
