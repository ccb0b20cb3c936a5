"""Linear-head recipes (egoflow.recipes.linear): each carries its reference dicts (heads/linear/reference.py) as
head overrides + schedule, and `egoflow train linear-* --recipe NAME` trains with exactly those values; the
EgoTaskQA recipe refuses a plain (not query-conditioned) set in one line."""
import json

import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.synthetic.linear import PlantedSpec, make_planted, write_files, write_store
from egoflow.features_store import FeatureStore
from egoflow.heads.linear import reference as ref
from egoflow.heads.train import TrainConfig
from egoflow.recipes import NOT_FOUND, get_recipe

RECIPES = {"egovlpv2-egotaskqa": ("linear-egotaskqa", ref.EGOVLPV2_TASKQA_HEAD, ref.EGOVLPV2_TASKQA_TRAIN),
           "egovlp-oscc": ("linear-oscc", ref.EGOVLP_OSCC_HEAD, ref.EGOVLP_OSCC_TRAIN),
           "egovlp-pnr": ("linear-pnr", ref.EGOVLP_PNR_HEAD, ref.EGOVLP_PNR_TRAIN),
           "epic-tsn-ek100": ("linear-ek100", ref.TSN_EK100_HEAD, ref.TSN_EK100_TRAIN)}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_is_the_reference_record(name):
    head, over, train = RECIPES[name]
    r = get_recipe(name)
    assert r.head == head and r.verbs == ("train",) and r.head_overrides == over
    assert {**r.train, **r.train_config} == train
    rows = {s.name: s for s in r.settings}
    assert set(rows) == set(over) | {f"train.{k}" for k in train}
    assert all(s.paper == NOT_FOUND and s.reference == repr(v) for s, v in
               [(rows[k], v) for k, v in over.items()] + [(rows[f"train.{k}"], v) for k, v in train.items()])
    assert any("fine-tunes the whole backbone" in d for d in r.differs)
    TrainConfig(**train)  # every schedule value is a TrainConfig field


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes_linear")
    data = make_planted(PlantedSpec())
    paths, strings = write_files(data, root)
    url = str(root / "s.zarr")
    fs, ts = write_store(data, FeatureStore(url), strings=strings)
    return {"url": url, "fs": fs, "ts": ts, **{k: str(v) for k, v in paths.items()}}


@pytest.mark.parametrize("name,files", [("epic-tsn-ek100", "ek100"), ("egovlp-oscc", "fho")])
def test_cli_trains_with_the_recipe(planted, tmp_path, name, files, one_thread):
    head, over, train = RECIPES[name]
    run = tmp_path / "run"
    assert main(["train", head, "--recipe", name, "--store", planted["url"], "--feature-set", planted["fs"],
                 "--annotations", planted[f"{files}_train"], "--val-annotations", planted[f"{files}_val"],
                 "--out", str(run), "--epochs", "2", "--device", "cpu"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert {k: cfg["head_config"][k] for k in over} == over
    want = {k: list(v) if isinstance(v, tuple) else v for k, v in {**train, "epochs": 2}.items()}
    assert {k: cfg["train_config"][k] for k in want} == want
    groups = torch.load(run / "last.pt", weights_only=False)["optimizer"]["param_groups"]
    if train["optimizer"] == "sgd":  # TSN: SGD momentum 0.9; biases at 2 x lr without decay
        assert {(g["momentum"], g["lr"] / 0.01 > 1.5, g["weight_decay"]) for g in groups if g["params"]} == \
            {(0.9, False, 5e-4), (0.9, True, 0.0)}
    else:
        assert all("momentum" not in g and g["weight_decay"] == train["weight_decay"] for g in groups)


def test_egotaskqa_recipe_refuses_a_plain_set(planted, tmp_path, capsys):
    rc = main(["train", "linear-egotaskqa", "--recipe", "egovlpv2-egotaskqa", "--store", planted["url"],
               "--feature-set", planted["fs"], "--text-set", planted["ts"], "--annotations",
               planted["egotaskqa_train"], "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    # the recipe's fit check (recipes/fit.py) refuses before the head's own conditioned=True check runs
    assert rc == 2 and len(err) == 1 and f"does not fit feature set {planted['fs']}" in err[0]
    assert "a query-conditioned set" in err[0] and "not query-conditioned" in err[0]
