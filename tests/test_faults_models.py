"""Fault matrix, part 3 (issue 22): the model files of ``extract`` (``--pretrained`` checkpoints,
``--fusion-checkpoint``, tokenizer folders), query and video lists, ``--queries`` without ``--tokenizer`` and ``plan``
on a missing path. Every case: exit 2, one line naming the file (and line or key), no traceback, before any video.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egoflow.cli import main
from egoflow.extract.fused.config import FusedModelError

NON_UTF8 = b"caf\xe9\n"


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# ---- model files: checkpoints, --fusion-checkpoint, tokenizer folders ---------------------------------------------
FUSED = ["--encoder", "fused", "--device", "cpu", "--precision", "fp32", "--quiet"]
CLIP_FUSED = "clip-fused-egoflow-tiny-ViT"


def _weights(path: Path, kind: str) -> Path:
    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "no tensors":
        torch.save({"epoch": 3}, path)
    elif kind == "text":
        path.write_bytes(NON_UTF8)
    return path


@pytest.mark.parametrize("kind", ["garbage", "empty", "no tensors", "text", "folder"])
@pytest.mark.parametrize("option", ["--pretrained", "--fusion-checkpoint"])
def test_weight_files(tmp_path, capsys, option, kind):
    path = tmp_path / "w.pt"
    if kind == "folder":
        path.mkdir()
    else:
        _weights(path, kind)
    model = "egovlpv2-tiny" if option == "--pretrained" else CLIP_FUSED
    assert main(["extract", str(tmp_path / "none.mp4"), "--store", str(tmp_path / "s.zarr"), "--model", model,
                 option, str(path), *FUSED]) == 2
    line = _last_line(capsys)
    assert str(path) in line, line
    assert any(m in line for m in ("cannot be read", "no state dict", "not a file")), line


def test_fusion_checkpoint_reader_names_the_file(tmp_path):
    from egoflow.extract.fused.checkpoint import read_weights

    with pytest.raises(FusedModelError, match=r"--fusion-checkpoint .*w.pt: cannot be read by torch.load"):
        read_weights(_weights(tmp_path / "w.pt", "garbage"), "--fusion-checkpoint")


TOKENIZER = {  # fault -> (vocab.json bytes, merges.txt bytes or None (absent), file named, message)
    "invalid JSON": (b'{"<s>": 0,', b"#version: 0.2\n", "vocab.json: line 1", "invalid JSON"),
    "non-UTF-8 vocab": (b'{"caf\xe9": 0}', b"#version: 0.2\n", "vocab.json: line 1 (byte", "not UTF-8"),
    "5000-digit id": (b'{"<s>": ' + b"9" * 5000 + b"}", b"#version: 0.2\n", "vocab.json: line 1", "5000 digits"),
    "not a vocabulary": (b'["<s>"]', b"#version: 0.2\n", "vocab.json", "not a vocabulary"),
    "duplicate token": (b'{"<s>": 0, "<s>": 1}', b"#version: 0.2\n", "vocab.json: key '<s>'", "appears twice"),
    "no specials": (b'{"a": 0}', b"#version: 0.2\n", "vocab.json", "special tokens"),
    "non-UTF-8 merges": (None, NON_UTF8, "merges.txt: line 1 (byte", "not UTF-8"),
    "missing merges": (None, None, "", "missing merges.txt"),
}


@pytest.mark.parametrize("fault", TOKENIZER)
def test_tokenizer_folders(tmp_path, fault):
    from egoflow.extract.fused.tokenizer import SPECIALS, RobertaBPE

    vocab, merges, named, message = TOKENIZER[fault]
    d = tmp_path / "tok"
    d.mkdir()
    (d / "vocab.json").write_bytes(vocab or json.dumps({s: i for i, s in enumerate(SPECIALS)}).encode())
    if merges is not None:
        (d / "merges.txt").write_bytes(merges)
    with pytest.raises(FusedModelError) as e:
        RobertaBPE(d)
    msg = str(e.value)
    assert str(d) in msg and named in msg and message in msg and "\n" not in msg, msg


def test_queries_without_tokenizer_is_a_user_error_before_any_video(tmp_path, capsys):
    q = tmp_path / "q.txt"
    q.write_text("where is the kettle\n")
    assert main(["extract", str(tmp_path / "none.mp4"), "--store", str(tmp_path / "s.zarr"), "--model",
                 "egovlpv2-tiny", "--queries", str(q), *FUSED]) == 2
    line = _last_line(capsys)
    assert "--queries" in line and "--tokenizer" in line
    assert not (tmp_path / "s.zarr").exists()  # nothing ran, nothing written


@pytest.mark.parametrize("content,message", [(NON_UTF8, "not UTF-8"), (b'{"c": ["a"], "c": ["b"]}', "appears twice"),
                                             (b'{"videos": [{"clips": [{}]}]}', "videos[0].clips[0].clip_uid")])
def test_queries_file_is_checked(tmp_path, capsys, content, message):
    q = tmp_path / ("q.txt" if content == NON_UTF8 else "q.json")
    q.write_bytes(content)
    assert main(["extract", str(tmp_path / "none.mp4"), "--store", str(tmp_path / "s.zarr"), "--model", CLIP_FUSED,
                 "--queries", str(q), *FUSED]) == 2
    line = _last_line(capsys)
    assert str(q) in line and message in line, line


def test_plan_on_a_missing_path_says_it_does_not_exist(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "gone.mp4"), "--model", "egoflow-tiny-ViT"]) == 2
    assert f"{tmp_path / 'gone.mp4'} does not exist" in _last_line(capsys)


def test_video_list_that_is_not_utf8_names_the_list(tmp_path, capsys):
    lst = tmp_path / "videos.txt"
    lst.write_bytes(b"a.mp4\n" + NON_UTF8)
    assert main(["extract", str(lst), "--store", str(tmp_path / "s.zarr"), "--model", "egoflow-tiny-ViT",
                 "--device", "cpu", "--precision", "fp32", "--quiet"]) == 2
    line = _last_line(capsys)
    assert f"{lst}: line 2 (byte 9): not UTF-8" in line, line
