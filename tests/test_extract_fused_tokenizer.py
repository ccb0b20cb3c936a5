"""RoBERTa BPE from a local folder (egoflow.extract.fused.tokenizer); the test writes a toy vocabulary itself."""
import json

import pytest

from egoflow.extract.fused import FusedModelError
from egoflow.extract.fused.tokenizer import RobertaBPE, write_tiny_vocab


def test_ids_masks_and_specials(tmp_path):
    d = write_tiny_vocab(tmp_path / "tok", ["person", "opens", "the", "door"])
    tok = RobertaBPE(d)
    ids, mask = tok(["person opens the door", "the door"])
    vocab = json.loads((d / "vocab.json").read_text())
    assert ids[0, 0] == vocab["<s>"] and ids[0, int(mask[0].sum()) - 1] == vocab["</s>"]
    assert mask[1].sum() < mask[0].sum() and (ids[1][mask[1] == 0] == vocab["<pad>"]).all()
    # same string, same ids whatever the batch
    assert tok(["the door"])[0][0].tolist() == ids[1][mask[1] == 1].tolist()


def test_bad_folders(tmp_path):
    d = write_tiny_vocab(tmp_path / "tok", ["a"])
    (d / "merges.txt").unlink()
    with pytest.raises(FusedModelError, match="missing merges.txt"):
        RobertaBPE(d)
    e = tmp_path / "novocab"
    e.mkdir()
    (e / "vocab.json").write_text(json.dumps({"a": 0}))
    (e / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(FusedModelError, match="special tokens"):
        RobertaBPE(e)
