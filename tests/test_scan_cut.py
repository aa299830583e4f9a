"""The JSONL line cutter (array operations over blocks) against the plain line-by-line
definition of a batch, on files with blank lines, CRLF, a BOM, no final newline, gzip, and
blocks that cut lines anywhere."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from instructkit.io import scan as scan_module
from instructkit.io.files import BOM


def reference(data: bytes, batch_size: int, keep: bool) -> list[tuple[int, int, int, int, int, bytes]]:
    """Batches of ``batch_size`` non-blank lines: from a batch's first non-blank line to its
    last one (the file's last batch: to the end of the file), each line ending in a newline."""
    pos = len(BOM) if data.startswith(BOM) else 0
    lines = data[pos:].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out, pending, rows, row = [], [], 0, 0
    start = first_line = first_row = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if rows == 0:
                start, first_line, first_row = pos, number, row
            rows, row = rows + 1, row + 1
        if rows:
            pending.append(line + b"\n")
        pos += len(line) + 1
        if rows == batch_size:
            out.append((start, pos, first_row, first_line, rows, b"".join(pending) if keep else b""))
            pending, rows = [], 0
    if rows:
        out.append((start, pos, first_row, first_line, rows, b"".join(pending) if keep else b""))
    return out


def _random_file(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 30)):
        if rng.random() < 0.25:
            lines.append(rng.choice(["", " ", "\t", "  \r", "\x0b"]))
        else:
            lines.append('{"a": "' + "x" * rng.randint(0, 12) + '"}' + ("\r" if rng.random() < 0.1 else ""))
    data = "\n".join(lines).encode() + (b"\n" if rng.random() < 0.5 else b"")
    return BOM + data if rng.random() < 0.2 else data


@pytest.mark.parametrize("seed", range(4))
def test_cut_lines_matches_the_line_by_line_definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    for case in range(300):
        data = _random_file(rng)
        gz = rng.random() < 0.2
        path = tmp_path / f"{case}.jsonl{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        block = rng.choice([1, 2, 3, 7, 16, 1 << 20])
        if data.startswith(BOM):
            block = max(block, len(BOM))  # the BOM is looked for in the first block
        monkeypatch.setattr(scan_module, "_BLOCK", block)
        monkeypatch.setattr(scan_module, "_GZ_BLOCK", block)
        batch_size = rng.choice([1, 2, 3, 5, 100])
        for keep in (True, False):
            got = list(scan_module._cut_lines(path, "jsonl.gz" if gz else "jsonl", batch_size, keep))
            assert got == reference(data, batch_size, keep), (case, block, batch_size, keep, data)


def test_a_broken_gzip_stream_yields_the_lines_before_the_break(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"".join(b'{"a": "%d"}\n' % i for i in range(2000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(data)[:-40])
    monkeypatch.setattr(scan_module, "_GZ_BLOCK", 4096)
    got = []
    with pytest.raises(scan_module.ParseError, match=r"cut\.jsonl\.gz, line \d+: cannot read the rest"):
        for batch in scan_module._cut_lines(path, "jsonl.gz", 300, True):
            got.append(batch)
    assert got, "the complete lines before the break come out"
    joined = b"".join(b[5] for b in got)
    assert data.startswith(joined) and joined.endswith(b"\n")
    assert [b[2] for b in got] == [300 * i for i in range(len(got))]
