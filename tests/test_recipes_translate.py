"""The VideoTranslate paper recipes (egoflow.recipes.translate) end to end through the CLI on a tiny store: the
paper's schedule, size, discriminative token and gen+disc fusion reach the run; a --set that shrinks the network
departs in one line; the fused classification run predicts and evaluates through `egoflow predict / evaluate`.
Networks are tiny and random (``--set size=`` and the shape fields): no t5-large is built."""
import json

import numpy as np
import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.synthetic.charades import write_narrated_charades
from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
from egoflow.features_store import FeatureStore
from egoflow.heads import runner
from egoflow.heads.translate.head import EGOFLOW_HEAD, PAPER_CLASSIFY_HEAD, PAPER_TRAIN, write_narrations
from egoflow.heads.translate.rank import fuse
from egoflow.recipes import NOT_FOUND, get_recipe

SHRINK = ["--set", "size=", "--set", "d_model=32", "--set", "d_kv=8", "--set", "d_ff=64", "--set", "num_layers=1",
          "--set", "num_decoder_layers=1", "--set", "num_heads=4", "--set", "dropout=0.0", "--set", "num_frames=8"]
FAST = ["--epochs", "3", "--lr", "0.003", "--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("vtr")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    d = make_narrated(NarratedSpec(num_videos=8, num_concepts=6, dim=16, seed=0))
    uids = sorted(d.videos)
    ch = write_narrated_charades(d, {"train": uids[:6], "test": uids[6:]}, root / "ch")
    store = FeatureStore(str(root / "s.zarr"))
    fs, _ = write_to_store(d, store)
    ntr = write_narrations([n for n in d.narrations if n.video_uid in uids[:6]], root / "ntr.json")
    yield dict(root=root, store=store, fs=fs, ch=ch, ntr=ntr)
    torch.set_num_threads(threads)


def test_recipe_rows_name_what_the_paper_gives_and_what_was_not_found():
    r = get_recipe("videotranslate-charades-paper")
    rows = {s.name: s for s in r.settings}
    assert rows["size"].paper == "'t5-large'" and rows["disc_pool"].paper == "'token'"
    assert rows["fusion"].paper == "'gen+disc'" and rows["train.schedule"].paper == "'inverse-sqrt'"
    for k in ("mask_ratio", "shuffle", "fusion_weight", "train.lr", "train.batch_size", "train.warmup_steps"):
        assert rows[k].paper == NOT_FOUND, k
    assert r.head_overrides == {**PAPER_CLASSIFY_HEAD, **EGOFLOW_HEAD, "fusion_weight": 0.5}
    assert get_recipe("videotranslate-paper").head_overrides["size"] == "t5-large"


def test_paper_recipes_train_predict_and_evaluate_through_the_cli(world, capsys):
    w, root = world, world["root"]
    base = ["--store", w["store"].url, "--feature-set", w["fs"]]
    pre = root / "pre"
    assert main(["train", "translate", "--recipe", "videotranslate-paper", *base, "--annotations", str(w["ntr"]),
                 "--out", str(pre), *FAST, *SHRINK]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("recipe ")]
    assert err == ['recipe videotranslate-paper@1: --set size= (recipe: "t5-large") differ from the recipe']
    conf = json.loads((pre / "config.json").read_text())
    assert conf["train_config"]["schedule"] == PAPER_TRAIN["schedule"] == "inverse-sqrt"
    assert conf["head_config"]["size"] == "" and conf["head_config"]["d_model"] == 32
    assert conf["head_config"]["mask_ratio"] == [0.0, 1.0] and conf["head_config"]["shuffle"] is True

    ft, gt, classes = root / "ft", w["ch"]["test"], str(w["ch"]["classes"])
    assert main(["train", "translate-charades", "--recipe", "videotranslate-charades-paper", "--init", str(pre),
                 *base, "--annotations", str(w["ch"]["train"]), "--val-annotations", str(gt), "--out", str(ft),
                 *FAST, "--set", "size="]) == 0
    capsys.readouterr()
    hc = json.loads((ft / "config.json").read_text())["head_config"]
    assert (hc["mode"], hc["disc_pool"], hc["fusion"], hc["d_model"]) == ("discriminative", "token", "gen+disc", 32)
    state = torch.load(ft / "best.pt", weights_only=False)["model"]
    assert "disc_token" in state and "classifiers.0.weight" in state
    trained = json.loads((ft / "metrics.json").read_text())["mAP"]

    pred = root / "fused.txt"
    assert main(["predict", "translate-charades", "--run", str(ft), *base[:2], "--annotations", str(gt),
                 "--out", str(pred), "--classes", classes]) == 0
    assert main(["evaluate", "charades", "--pred", str(pred), "--gt", str(gt), "--out", str(root / "rep")]) == 0
    rep = json.loads(next((root / "rep").rglob("*.json")).read_text())
    assert json.dumps(rep).count("mAP") and _find(rep, "mAP") == pytest.approx(trained, abs=1e-6)

    # the same run scored by its ranking alone and its layers alone: the fused file is their standardized mix
    assert main(["predict", "translate-charades", "--run", str(ft), *base[:2], "--annotations", str(gt),
                 "--out", str(root / "gen.txt"), "--classes", classes, "--fusion", "gen"]) == 0
    parts = {"gen": _scores(root / "gen.txt"), "disc": _scores(runner.predict(
        "translate-charades", ft, w["store"], gt, root / "disc.txt", classes=classes, fusion="disc"))}
    fused = _scores(pred)
    assert not np.allclose(parts["gen"], parts["disc"])
    want = fuse(torch.tensor(parts["gen"]), torch.tensor(parts["disc"]), 0.5).numpy()
    assert np.allclose(fused, want, atol=1e-4)


def _scores(path) -> np.ndarray:
    return np.array([[float(x) for x in ln.split()[1:]] for ln in open(path).read().splitlines() if ln])


def _find(obj, key):
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], (int, float)):
            return obj[key]
        for v in obj.values():
            r = _find(v, key)
            if r is not None:
                return r
    return None
