"""benchmarks/vsgn_vs_reference.py and ref_vsgn.py without the reference tree (never in this repository): the
refusal line, the planted clips, egoflow's timed side, and the inputs written in the baseline's layout."""
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_heads_vsgn_reference import FIXTURE, _config  # the recorded baseline state dict and its sizes

from egoflow.heads.vsgn.model import build
from egoflow.heads.vsgn.reference import convert_reference_state_dict

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
                              between=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [1] and [r["epoch"] for r in rows] == [1]
    epoch, model, evaluate = calls[0]
    assert evaluate(model)["mAP"] == pytest.approx(rows[0]["mAP"])  # what the reference's weights are scored by
    assert rows[0]["train_s"] > 0 and rows[0]["eval_s"] > 0 and 0.0 <= rows[0]["mAP"] <= 1.0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train_config"]["lr"] == 1e-3 and cfg["train_config"]["grad_clip"] == 0.0  # the baseline's


def test_inputs_in_the_baselines_layout(bench, ref, tmp_path):
    store, d, train, val = bench.planted(tmp_path, videos=4, dim=8, batch=2)
    feats = {u: v.feats for u, v in store.load_feature_set(d.feature_set, [train[0].video_uid]).items()}
    fdir, anno = ref.write_inputs(tmp_path / "ref", {"train": train[:1]}, feats, bench.FPS)
    a = json.loads(anno.read_text())[train[0].clip_uid]
    assert a["subset"] == "train" and a["video_id"] == train[0].video_uid and a["fps"] == bench.FPS
    assert a["clip_id"] == train[0].clip_uid  # Infer.py names each clip's proposal CSV by it
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


def test_refuses_in_one_line_without_pandas_unless_training_only(bench, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pandas" else real(n, *a))
    with pytest.raises(SystemExit) as e:
        bench.check_pandas(True)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pandas" in err and "--no-reference-map" in err
    bench.check_pandas(False)  # training-only timing needs no pandas


def test_reach_counts_the_references_infer_eval_and_egoflows_own_map(bench):
    ref_rows = [{"train_s": 10.0, "eval_s": 3.0, "map_s": 1.0, "mAP": 0.10},
                {"train_s": 10.0, "eval_s": 3.0, "map_s": 2.0, "mAP": 0.20}]
    ego = [{"train_s": 1.0, "eval_s": 0.5, "mAP": 0.15}, {"train_s": 1.0, "eval_s": 0.5, "mAP": 0.25}]
    r = bench.reach(ref_rows, ego)
    assert r["reference_s_to_final_map"] == pytest.approx(23.0)  # steps + Infer/Eval, not its val-loss pass
    assert r["egoflow_s_to_reference_final_map"] == pytest.approx(3.0)
    assert r["reference_map_s_per_epoch"] == pytest.approx(1.5)
    assert bench.reach(ref_rows, ego[:1])["egoflow_s_to_reference_final_map"] is None  # never reached


def test_numpy_shim_gives_the_removed_float_alias_back(ref):
    shim = ref._numpy_with_float()
    assert shim.float is float and shim.cumsum is np.cumsum
    assert shim.cumsum(np.array([1, 2]), axis=0).astype(shim.float).dtype == np.float64


def test_reference_weights_scored_in_a_copy_and_only_when_class_ids_agree(bench, tmp_path):
    fixture = torch.load(FIXTURE)
    model, _, _ = build(_config(fixture))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    classes = tmp_path / "classes.json"
    ref = SimpleNamespace(opt={"moment_classes": str(classes)},
                          model=SimpleNamespace(state_dict=lambda: fixture["state_dict"]))
    key = "stem.0.weight"
    want = float(convert_reference_state_dict(fixture["state_dict"])[key].sum())
    evaluate = lambda m: {"mAP": float(m.state_dict()[key].sum())}  # noqa: E731  (which weights it was given)
    labels = list(model.cfg.labels)
    classes.write_text(json.dumps({"Background": 0, **{n: i + 1 for i, n in enumerate(labels)}}))
    assert bench.score_reference_weights(ref, model, evaluate) == pytest.approx(want)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # egoflow's own run untouched
    classes.write_text(json.dumps({"Background": 0, **{n: i + 1 for i, n in enumerate(labels[::-1])}}))
    assert bench.score_reference_weights(ref, model, evaluate) is None  # ids would not mean the same class
