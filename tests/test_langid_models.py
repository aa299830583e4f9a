"""Language ID with fastText models other than lid.176 (GlotLID / OpenLID labels)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

import instructkit as ik
from instructkit.filters.langid import LID176_SHA256, bundled_model_path, label_to_code

# fastText's binary model format (version 12), as fasttext's Args/Dictionary/Matrix save it
_MAGIC, _VERSION = 793712314, 12
_LOSS_SOFTMAX, _MODEL_SUPERVISED = 3, 3


def write_fasttext_model(path: Path, words: dict[str, int], labels: list[str]) -> Path:
    """A tiny supervised fastText model: each word votes for one label.

    The input vector of a word is the one-hot of its label and the output matrix is a scaled
    identity, so the softmax over a text's averaged word vectors picks the label most of its
    known words vote for. That is what training would converge to on such a vocabulary.
    """
    dim = len(labels)
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", _MAGIC, _VERSION))
        # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate, t
        f.write(struct.pack("<12id", dim, 5, 1, 1, 5, 1, _LOSS_SOFTMAX, _MODEL_SUPERVISED, 0, 0, 0, 100, 1e-4))
        f.write(struct.pack("<iiiqq", len(words) + len(labels), len(words), len(labels), 100, -1))
        for word in words:
            f.write(word.encode() + b"\0" + struct.pack("<qb", 10, 0))
        for label in labels:
            f.write(label.encode() + b"\0" + struct.pack("<qb", 10, 1))
        inputs = np.zeros((len(words), dim), dtype=np.float32)
        for row, label_index in enumerate(words.values()):
            inputs[row, label_index] = 1.0
        outputs = np.eye(len(labels), dim, dtype=np.float32) * 8.0
        for matrix in (inputs, outputs):
            f.write(struct.pack("<?qq", False, *matrix.shape))
            f.write(matrix.tobytes())
    return path


WORDS = {
    "the": 0, "weather": 0, "is": 0, "nice": 0, "today": 0, "please": 0, "write": 0, "poem": 0,
    "le": 1, "temps": 1, "est": 1, "beau": 1, "aujourd'hui": 1, "écris": 1, "un": 1, "poème": 1,
    "das": 2, "wetter": 2, "ist": 2, "heute": 2, "schön": 2, "schreibe": 2, "ein": 2, "gedicht": 2,
}
GLOTLID_LABELS = ["__label__eng_Latn", "__label__fra_Latn", "__label__deu_Latn"]


def _records() -> list[dict[str, str]]:
    return [
        {"instruction": "please write the poem today", "output": "ok"},
        {"instruction": "écris un poème le temps est beau", "output": "ok"},
        {"instruction": "schreibe ein gedicht das wetter ist schön", "output": "ok"},
    ]


def test_glotlid_labels_map_to_the_same_codes(tmp_path: Path) -> None:
    model = write_fasttext_model(tmp_path / "glotlid-tiny.bin", WORDS, GLOTLID_LABELS)
    ds = ik.Dataset.from_records(_records())
    tagged = ds.pipe(ik.langid(model_path=str(model), min_chars=1))
    assert tagged.to_polars()["lang"].to_list() == ["en", "fr", "de"]
    kept = ds.pipe(ik.langid(keep=["en"], model_path=str(model), min_chars=1))
    assert kept.to_polars()["instruction"].to_list() == ["please write the poem today"]
    assert sorted(kept.removed["reason"].to_list()) == ["language", "language"]


def test_topk_uses_the_mapped_codes(tmp_path: Path) -> None:
    model = write_fasttext_model(tmp_path / "openlid-tiny.bin", WORDS, GLOTLID_LABELS)
    ds = ik.Dataset.from_records(_records()[:1])
    topk = ds.pipe(ik.langid(model_path=str(model), min_chars=1, k=3)).to_polars()["lang_topk"][0]
    # fr and de tie on an English text: only the best one's place is defined
    assert topk[0]["lang"] == "en" and sorted(t["lang"] for t in topk) == ["de", "en", "fr"]


def test_label_to_code_covers_lid176_glotlid_and_unknown_labels() -> None:
    assert label_to_code("__label__als") == "gsw"  # lid.176's Alemannic Wikipedia label
    assert label_to_code("__label__fra_Latn") == "fr"
    assert label_to_code("__label__arb_Arab") == "ar"  # an individual language of a macrolanguage
    assert label_to_code("__label__xyz_Zzzz") == "xyz_zzzz"  # unknown: kept, not guessed


def test_the_bundled_model_is_fasttexts_published_file() -> None:
    digest = hashlib.sha256(bundled_model_path().read_bytes()).hexdigest()
    assert digest == LID176_SHA256
