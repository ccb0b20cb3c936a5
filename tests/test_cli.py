"""The CLI as a user runs it: extract -> encode-text -> train -> predict -> evaluate, on generated videos."""
import json

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_dataset

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
