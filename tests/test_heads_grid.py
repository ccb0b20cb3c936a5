"""Grid search (egoflow.heads.grid): every combination is a run, the best is chosen by the head's own metric."""
import json

import pytest

from egoflow.datasets.synthetic.nlq import make_synthetic_nlq
from egoflow.features_store import FeatureStore
from egoflow.heads.grid import _split, combinations, grid_search, run_name
from egoflow.heads.spec import HeadConfigError
from egoflow.heads.vsgn.head import EGOVLPV2_GRID, EGOVLPV2_TRAIN


def test_combinations_and_step_size():
    assert combinations({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                                           {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert len(combinations(EGOVLPV2_GRID)) == 144  # the reference script's 3 x 4 x 3 x 4 runs
    head, tr = _split("vsgn", {"lr": 1e-4, "step_size": 15, "num_levels": 4}, EGOVLPV2_TRAIN)
    assert head == {"num_levels": 4}
    assert tr == {"epochs": 50, "lr": 1e-4, "schedule": "step", "step_milestones": (15, 30, 45)}  # torch StepLR
    with pytest.raises(HeadConfigError, match=r"unknown key\(s\) \['bogus'\]"):
        _split("vsgn", {"bogus": 1}, {})
    assert run_name({"lr": 0.001, "batch_size": 8}) == "lr=0.001,batch_size=8"


def test_grid_search_trains_each_combination_and_keeps_the_best(tmp_path):
    store = FeatureStore(str(tmp_path / "s.zarr"))
    data = make_synthetic_nlq(store, num_videos=8, seed=0)
    head = dict(dim=16, num_heads=2, conv_layers=1, dropout=0.0, max_pos_len=64)
    tr = dict(epochs=2, batch_size=16, schedule="constant", progress=False, device="cpu", seed=0)
    res = grid_search("vslnet", store, data.feature_set, data.train, tmp_path / "grid", {"lr": [1e-6, 5e-3]},
                      val_annotations=data.val, text_set=data.text_set, head_overrides=head, train_overrides=tr)
    assert res["metric"] == "R@1 IoU=0.3" and len(res["runs"]) == 2
    scores = [r["metrics"]["R@1 IoU=0.3"] for r in res["runs"]]
    assert res["best"]["metrics"]["R@1 IoU=0.3"] == max(scores)
    for r in res["runs"]:  # each an ordinary run directory with its own settings
        cfg = json.loads((tmp_path / "grid" / run_name(r["params"]) / "config.json").read_text())
        assert cfg["train_config"]["lr"] == r["params"]["lr"] and cfg["head_config"]["dim"] == 16
    assert json.loads((tmp_path / "grid" / "grid.json").read_text())["best"]["params"] == res["best"]["params"]
    with pytest.raises(HeadConfigError, match="needs validation annotations"):
        grid_search("vslnet", store, data.feature_set, data.train, tmp_path / "g2", {"lr": [1e-3]},
                    val_annotations=None)
