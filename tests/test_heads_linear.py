"""Linear heads (linear-ek100/-oscc/-pnr/-egotaskqa) on planted features: train + predict through the shared
runner and the CLI into official files that `egoflow evaluate` scores; the L-BFGS probe equals scikit-learn's."""
import json

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.errors import AnnotationError
from egoflow.datasets.synthetic.linear import PlantedSpec, make_planted, write_files, write_store
from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.features_store import FeatureStore
from egoflow.heads import runner

FILES = {"linear-ek100": "ek100", "linear-oscc": "fho", "linear-pnr": "fho", "linear-egotaskqa": "egotaskqa"}
# chance: 1/24 actions; 0.68 always-"no change"; ~2.7 s for a uniform guess in 8 s; 1/6 answers
BAR = {"linear-ek100": ("action top1", 0.3), "linear-oscc": ("accuracy", 0.75), "linear-pnr": ("abs_error_s", 1.5),
       "linear-egotaskqa": ("accuracy", 0.5)}
FAST = {"epochs": 12, "batch_size": 16, "progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("linear")
    data = make_planted(PlantedSpec())
    paths, strings = write_files(data, root)
    url = str(root / "s.zarr")
    fs, ts = write_store(data, FeatureStore(url), strings=strings)
    return {"root": root, "url": url, "fs": fs, "ts": ts, **{k: str(v) for k, v in paths.items()}}


def _train(p, name, out, **head):
    f = FILES[name]
    return runner.train(name, p["url"], p["fs"], p[f"{f}_train"], out, val_annotations=p[f"{f}_val"],
                        text_set=p["ts"], head_overrides=head, train_overrides=FAST)


@pytest.mark.parametrize("name", list(FILES))
def test_trains_predicts_and_evaluate_agrees(planted, tmp_path, name, one_thread):
    m = _train(planted, name, tmp_path / "run")
    key, bar = BAR[name]
    assert (m[key] < bar) if key == "abs_error_s" else (m[key] > bar), m
    bench = get_benchmark(json.loads((tmp_path / "run" / "config.json").read_text())["benchmark"])
    gt = planted[f"{FILES[name]}_val"]
    scored = bench.evaluate(gt, str(tmp_path / "run" / "predictions.json"))
    assert scored[key] == pytest.approx(m[key])  # the head's validation is the official scoring of its file
    out = runner.predict(name, tmp_path / "run", planted["url"], gt, tmp_path / "pred.json")
    assert bench.evaluate(gt, out)[key] == pytest.approx(m[key])  # best weights reloaded: same predictions


def test_lbfgs_probe_is_sklearn(planted, tmp_path, one_thread):
    from sklearn.linear_model import LogisticRegression

    from egoflow.datasets.ek100_actions import load_ek100_actions

    m = _train(planted, "linear-ek100", tmp_path / "run", probe="lbfgs", c_grid=[0.1, 1.0, 10.0])
    sweep = {k: v for k, v in m.items() if k.startswith("probe_sweep")}
    assert len(sweep) == 3 and m["probe_val action top1"] == max(sweep.values())
    assert m[f"probe_sweep C={m['probe_C']:g}"] == max(sweep.values()) and m["action top1"] > 0.5

    store = FeatureStore(planted["url"], mode="r")

    def pooled(path):  # the probe's design matrix, computed independently: mean of unit steps, unit again
        acts = load_ek100_actions(path)
        vids = store.load_feature_set(planted["fs"])
        X = []
        for a in acts:
            f = vids[a.video_id].slice(a.start_sec, a.stop_sec).feats
            f = f / np.linalg.norm(f, axis=1, keepdims=True)
            X.append(f.mean(0) / np.linalg.norm(f.mean(0)))
        return np.stack(X), np.array([a.verb_class for a in acts]), acts

    Xtr, ytr, _ = pooled(planted["ek100_train"])
    Xva, _, acts = pooled(planted["ek100_val"])
    clf = LogisticRegression(C=m["probe_C"], max_iter=1000).fit(Xtr, ytr)
    pred = json.loads((tmp_path / "run" / "predictions.json").read_text())["results"]
    ours = [max(pred[a.narration_id]["verb"].items(), key=lambda kv: kv[1])[0] for a in acts]
    assert [int(v) for v in ours] == clf.predict(Xva).tolist()


def test_cli_train_predict_evaluate(planted, tmp_path, one_thread):
    run, pred = tmp_path / "run", tmp_path / "oscc_pred.json"
    assert main(["train", "linear-oscc", "--store", planted["url"], "--feature-set", planted["fs"], "--annotations",
                 planted["fho_train"], "--val-annotations", planted["fho_val"], "--out", str(run), "--epochs", "3",
                 "--set", "probe=lbfgs", "--set", "c_grid=[1, 10]", "--device", "cpu"]) == 0
    assert json.loads((run / "config.json").read_text())["head_config"]["c_grid"] == [1, 10]
    assert main(["predict", "linear-oscc", "--run", str(run), "--store", planted["url"], "--annotations",
                 planted["fho_val"], "--out", str(pred)]) == 0
    assert all(set(r) == {"unique_id", "state_change"} for r in json.loads(pred.read_text()))
    assert main(["evaluate", "oscc", "--pred", str(pred), "--gt", planted["fho_val"],
                 "--out", str(tmp_path / "r")]) == 0
    rep = json.loads((tmp_path / "r" / "report.json").read_text())["oscc_pred"]["oscc"]
    assert rep["accuracy"] == pytest.approx(json.loads((run / "metrics.json").read_text())["accuracy"])


def test_bad_inputs_named(planted, tmp_path, capsys):
    qs = json.loads(open(planted["egotaskqa_val"]).read())
    qs[3]["answer"] = "a toaster"
    bad = tmp_path / "val_qas.json"
    bad.write_text(json.dumps(qs))
    with pytest.raises(AnnotationError, match=r"val_qas.json: \[3\]\.answer: 'a toaster' is not in the answer"):
        runner.train("linear-egotaskqa", planted["url"], planted["fs"], planted["egotaskqa_train"], tmp_path / "r1",
                     val_annotations=bad, text_set=planted["ts"], train_overrides=FAST)
    assert not (tmp_path / "r1" / "config.json").exists()  # every check runs before anything is written

    rows = open(planted["ek100_train"]).read().splitlines()
    rows[2] = rows[2].replace("v0_fpv1", "v99_fpv1")
    ek = tmp_path / "EPIC_100_train.csv"
    ek.write_text("\n".join(rows) + "\n")
    nid = rows[2].split(",")[0]
    with pytest.raises(AnnotationError, match=f"EPIC_100_train.csv: {nid}: video 'v99_fpv1' is not in feature set"):
        runner.train("linear-ek100", planted["url"], planted["fs"], ek, tmp_path / "r2", train_overrides=FAST)
    m = runner.train("linear-ek100", planted["url"], planted["fs"], ek, tmp_path / "r3",
                     head_overrides={"skip_missing": True, "num_classes": [4, 6]},
                     train_overrides={**FAST, "epochs": 1})
    assert json.loads((tmp_path / "r3" / "config.json").read_text())["skipped_missing_train"] == 1 and m

    with pytest.raises(ValueError, match="sweeps C on the validation split"):
        runner.train("linear-oscc", planted["url"], planted["fs"], planted["fho_train"], tmp_path / "r4",
                     head_overrides={"probe": "lbfgs"}, train_overrides=FAST)
    assert main(["train", "linear-pnr", "--store", planted["url"], "--feature-set", planted["fs"], "--annotations",
                 planted["fho_train"], "--out", str(tmp_path / "r5"), "--set", "probe=ridge"]) == 2
    assert "probe must be 'torch' or 'lbfgs'" in capsys.readouterr().err
