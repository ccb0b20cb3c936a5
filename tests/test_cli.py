"""The CLI as a user runs it: extract -> encode-text -> train -> predict -> evaluate, on generated videos."""
import json

import numpy as np
import pytest
import torch

from egoflow.cli import build_parser, main
from egoflow.datasets.synthetic.videos import make_dataset
from egoflow.features_store import FeatureStore

TINY = ["--model", "egoflow-tiny-ViT", "--precision", "fp32"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), num_videos=3, duration_s=40, seed=3)


def test_user_pipeline_end_to_end(ds, tmp_path, capsys):
    store = str(tmp_path / "f.zarr")
    ann = ds.annotations
    assert main(["extract", *map(str, ds.videos.values()), "--store", store, "--fps", "1.875", "--quiet",
                 *TINY]) == 0
    assert main(["encode-text", str(ann["nlq_train"]), str(ann["nlq_val"]), "--store", store, *TINY]) == 0
    out = capsys.readouterr().out
    fset = "clip-egoflow-tiny-ViT-none-1.875fps"
    tset = "clip-egoflow-tiny-ViT-none-text"
    assert f"text set {tset}" in out and f"feature set {fset}" in out
    run = tmp_path / "run"
    assert main(["train", "vslnet", "--store", store, "--feature-set", fset, "--text-set", tset,
                 "--annotations", str(ann["nlq_train"]), "--val-annotations", str(ann["nlq_val"]),
                 "--out", str(run), "--epochs", "2", "--set", "dim=32"]) == 0
    assert (run / "best.pt").exists() and json.loads((run / "config.json").read_text())["benchmark"] == "nlq"
    preds = tmp_path / "preds.json"
    assert main(["predict", "vslnet", "--run", str(run), "--store", store, "--annotations", str(ann["nlq_val"]),
                 "--out", str(preds)]) == 0
    sub = json.loads(preds.read_text())
    assert sub["results"] and all(len(r["predicted_times"]) >= 5 for r in sub["results"])
    assert main(["evaluate", "nlq", "--pred", str(preds), "--gt", str(ann["nlq_val"]),
                 "--out", str(tmp_path / "report")]) == 0
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "R@1 IoU=0.3" in json.dumps(rep)
    assert (tmp_path / "report" / "report.md").read_text().count("|") > 4


def test_bad_inputs_are_one_line_errors(ds, tmp_path, capsys):
    store = str(tmp_path / "f.zarr")
    assert main(["train", "vslnet", "--store", store, "--feature-set", "nope", "--annotations",
                 str(ds.annotations["nlq_train"]), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert main(["train", "nohead", "--store", store, "--feature-set", "x", "--annotations", "a",
                 "--out", str(tmp_path / "r")]) == 2
    assert "unknown head" in capsys.readouterr().err
    assert main(["encode-text", str(tmp_path / "missing.json"), "--store", store, *TINY]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_heads_listing(capsys):
    assert main(["heads"]) == 0
    out = capsys.readouterr().out
    for h in ("vslnet", "vsgn", "summarizer", "laviti", "laviti-charades"):
        assert h in out


# ---------------------------------------------------------------- egoflow store export | import | pack
def _store_with_three_videos(path, n=3, seed=0):
    """Three videos of different lengths, v1 with irregular times (as test_features_store_interop.make_store)."""
    rng = np.random.default_rng(seed)
    s = FeatureStore(str(path))
    s.create_feature_set("src", {"encoder": "clip", "model": "ViT-B-32", "fps": 2.0}, dim=8)
    for i in range(n):
        T = 5 + 3 * i
        times = (np.arange(T) + 0.5) / 2.0
        if i == 1:
            times = np.cumsum(rng.uniform(0.1, 0.9, T))
        s.write_video("src", f"v{i}", rng.standard_normal((T, 8)).astype(np.float32), times,
                      {"fps": 2.0, "duration_s": float(times[-1] + 0.25), "source": {"path": f"/x/v{i}.mp4"}})
    return s


class _StoreVerb:
    """`egoflow store ...`: the user's parser with the verb already typed."""

    def parse_args(self, argv):
        return build_parser().parse_args(["store", *argv])


def _parser():
    return _StoreVerb()


def test_cli_export_import(tmp_path, capsys):
    _store_with_three_videos(tmp_path / "a.zarr")
    ap = _parser()
    for fmt, out in (("pt", tmp_path / "pt"), ("hdf5", tmp_path / "f.h5")):
        a = ap.parse_args(["export", "--store", str(tmp_path / "a.zarr"), "--feature-set", "src",
                           "--format", fmt, "--out", str(out)])
        assert a.func(a) == 0
        a = ap.parse_args(["import", "--store", str(tmp_path / f"{fmt}.zarr"), "--feature-set", "dst",
                           "--format", fmt, "--src", str(out)])
        assert a.func(a) == 0
        assert FeatureStore(str(tmp_path / f"{fmt}.zarr")).videos("dst") == ["v0", "v1", "v2"]
    torch.save(torch.randn(3), tmp_path / "pt" / "v9.pt")  # one bad file -> non-zero exit, the rest imported
    a = ap.parse_args(["import", "--store", str(tmp_path / "c.zarr"), "--feature-set", "dst", "--src",
                       str(tmp_path / "pt"), "--fps", "2"])
    assert a.func(a) == 1
    assert "v9.pt" in capsys.readouterr().out
    assert FeatureStore(str(tmp_path / "c.zarr")).videos("dst") == ["v0", "v1", "v2"]


def test_cli_is_wired_into_egoflow_store():
    a = build_parser().parse_args(["store", "export", "--store", "s", "--feature-set", "f", "--out", "o"])
    assert a.format == "pt" and callable(a.func)


def test_cli_store_pack(tmp_path):
    s = _store_with_three_videos(tmp_path / "a.zarr")
    ref = {u: v.feats for u, v in s.load_feature_set("src").items()}
    a = _parser().parse_args(["pack", "--store", str(tmp_path / "a.zarr")])
    assert a.func(a) == 0
    got = FeatureStore(str(tmp_path / "a.zarr")).load_feature_set("src")
    assert all(np.array_equal(got[u].feats, ref[u]) for u in ref)
