"""Fault matrix (issue 22): every reader x every kind of bad input, through the reader and through every command
that reads the file (evaluate, train, encode-text). Each case must be one line naming the file and the key path
or row, exit code 2, no traceback, and nothing silently accepted.

The cases are generated: a valid file per reader, and per fault kind a mutation of it (wrong type, negative,
reversed window, window past its clip, non-finite/1e308, a 400-digit and a 5000-digit integer, a non-UTF-8 byte,
a key given twice, an unknown id). ``CASES`` lists (reader, fault); ``COMMANDS`` says which commands read which
reader. The counts are printed by ``test_matrix_counts`` (``pytest -s``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fault_cases import BY_NAME, CASES, READERS, Fault  # tests/fault_cases.py: the generated cases

from egoflow.cli import main
from egoflow.datasets.errors import AnnotationError


def _one_line(msg: str, path: Path, fault: Fault):
    assert str(path) in msg, msg
    assert fault.where in msg and fault.message in msg, msg
    assert "\n" not in msg.strip() and len(msg) < 400, msg


def test_valid_files_read(tmp_path):
    """The base of every reader is valid: each fault below is the only thing wrong with its file."""
    for r in READERS:
        r.load(r.write(tmp_path / r.name, None))


@pytest.mark.parametrize("reader,fault", CASES)
def test_reader_names_file_and_key(tmp_path, reader, fault):
    r = BY_NAME[reader]
    f = r.faults[fault]
    path = r.write(tmp_path, f)
    with pytest.raises(AnnotationError) as e:
        r.load(path)
    _one_line(str(e.value), path, f)


# ---- commands ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A store with one video ``v`` (and ``P01_01``) and a text set: train gets as far as reading annotations."""
    from egoflow.features_store import FeatureStore

    url = str(tmp_path_factory.mktemp("store") / "s.zarr")
    s = FeatureStore(url)
    s.create_feature_set("f", {"encoder": "test"}, dim=8)
    for uid in ("v", "v_fpv1", "P01_01"):
        s.write_video("f", uid, np.zeros((30, 8), np.float32), np.arange(30) + 0.5, attrs={"duration_s": 30.0})
    s.write_texts("t", ["where is the kettle"], np.zeros((1, 8), np.float32))
    return url


ENCODE = ["--model", "egoflow-tiny-ViT", "--precision", "fp32", "--device", "cpu"]


def _evaluate(bench):
    def argv(path, store, tmp):
        pred = tmp / "pred.json"
        pred.write_text("{}")
        return ["evaluate", bench, "--gt", str(path), "--pred", str(pred), "--out", str(tmp / "report")]
    return argv


def _train(head, *extra):
    def argv(path, store, tmp):
        return ["train", head, "--store", store, "--feature-set", "f", "--text-set", "t", "--annotations", str(path),
                "--out", str(tmp / "run"), "--epochs", "1", *extra]
    return argv


def _predict(head):
    def argv(path, store, tmp):
        return ["predict", head, "--store", store, "--feature-set", "f", "--text-set", "t", "--annotations",
                str(path), "--out", str(tmp / "pred.out")]
    return argv


def _encode(path, store, tmp):
    return ["encode-text", str(path), "--store", store, *ENCODE]


COMMANDS = {  # reader -> commands that read its files
    "nlq": {"evaluate nlq": _evaluate("nlq"), "train vslnet": _train("vslnet"), "encode-text": _encode},
    "mq": {"evaluate mq": _evaluate("mq"), "train vsgn": _train("vsgn"), "encode-text": _encode},
    "narrations": {"evaluate captions": _evaluate("captions"), "encode-text": _encode, "train laviti": _train("laviti"),
                   "train translate": _train("translate")},
    "fho": {"evaluate oscc": _evaluate("oscc"), "evaluate pnr": _evaluate("pnr"),
            "train linear-oscc": _train("linear-oscc"), "train linear-pnr": _train("linear-pnr")},
    "egomcq": {"evaluate egomcq": _evaluate("egomcq"), "encode-text": _encode},
    "egotaskqa": {"evaluate egotaskqa": _evaluate("egotaskqa"), "train linear-egotaskqa": _train("linear-egotaskqa"),
                  "encode-text": _encode},
    "charades": {"evaluate charades": _evaluate("charades"), "train translate-charades": _train("translate-charades"),
                 "predict charades": _predict("charades")},
    "ek100": {"evaluate ek100-ar": _evaluate("ek100-ar"), "train linear-ek100": _train("linear-ek100"),
              "encode-text": _encode},
}
# faults a command cannot see: evaluate charades reads the CSV without the class list (its classes come from
# the submission's width); OSCC has no PNR frame to check
SKIP = {("charades", "unknown id", "evaluate charades"), ("fho", "beyond clip", "evaluate oscc"),
        ("fho", "beyond clip", "train linear-oscc")}
CLI_CASES = [(r, f, c) for r, f in CASES for c in COMMANDS[r] if (r, f, c) not in SKIP]


@pytest.mark.parametrize("reader,fault,command", CLI_CASES)
def test_command_exits_2_naming_file_and_key(tmp_path, store, capsys, reader, fault, command):
    r = BY_NAME[reader]
    f = r.faults[fault]
    path = r.write(tmp_path / "ann", f)
    rc = main(COMMANDS[reader][command](path, store, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    _one_line(err.strip().splitlines()[-1], path, f)


def test_matrix_counts():
    """The size of the matrix (for the issue's closing note); it must cover every reader and command."""
    print(f"\nfault matrix: {len(CASES)} reader cases over {len(READERS)} readers, {len(CLI_CASES)} command cases "
          f"over {sum(len(c) for c in COMMANDS.values())} (reader, command) pairs")
    assert len(READERS) == len(COMMANDS) and len(CASES) >= 60 and len(CLI_CASES) >= 150
