"""benchmarks/vsgn_vs_reference.py and ref_vsgn.py without the reference tree (never in this repository): the
refusal line, the planted clips, egoflow's timed side, and the inputs written in the baseline's layout."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _load("vsgn_vs_reference")


@pytest.fixture(scope="module")
def ref():
    return _load("ref_vsgn")


def test_refuses_in_one_line_without_the_reference_tree(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--reference-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MQ/Models/VSGN.py" in err and str(tmp_path) in err


def test_planted_clips_fill_whole_batches_and_egoflow_side_times_each_epoch(bench, tmp_path):
    store, d, train, val = bench.planted(tmp_path, videos=4, dim=16, batch=2)
    assert len(train) % 2 == 0 and len(val) % 2 == 0 and train and val
    calls = []
    rows = bench.egoflow_side(store, d, train, val, tmp_path / "run", epochs=1, batch=2, lr=1e-3,
                              between=calls.append)
    assert calls == [1] and [r["epoch"] for r in rows] == [1]
    assert rows[0]["train_s"] > 0 and rows[0]["eval_s"] > 0 and 0.0 <= rows[0]["mAP"] <= 1.0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train_config"]["lr"] == 1e-3 and cfg["train_config"]["grad_clip"] == 0.0  # the baseline's


def test_inputs_in_the_baselines_layout(bench, ref, tmp_path):
    store, d, train, val = bench.planted(tmp_path, videos=4, dim=8, batch=2)
    feats = {u: v.feats for u, v in store.load_feature_set(d.feature_set, [train[0].video_uid]).items()}
    fdir, anno = ref.write_inputs(tmp_path / "ref", {"train": train[:1]}, feats, bench.FPS)
    a = json.loads(anno.read_text())[train[0].clip_uid]
    assert a["subset"] == "train" and a["video_id"] == train[0].video_uid and a["fps"] == bench.FPS
    assert a["parent_end_sec"] - a["parent_start_sec"] == pytest.approx(480.0)
    assert [x["label"] for x in a["annotations"]] == [i.label for i in train[0].instances]
    t = torch.load(fdir / f"{train[0].video_uid}.pt")
    assert t.shape == feats[train[0].video_uid].shape  # [T, D]: VideoDataSet transposes it


def test_clamp_keeps_an_integer_tensor_integer(ref):
    x = torch.tensor([-3, 5, 2000])
    y = ref._clamp_keeps_int(x, min=0, max=927.0)
    assert y.dtype == torch.long and y.tolist() == [0, 5, 927]
    f = torch.tensor([0.5, 1000.0])
    assert ref._clamp_keeps_int(f, min=0.0, max=927.0).tolist() == [0.5, 927.0]
