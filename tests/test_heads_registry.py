"""The head registry: names, strict configs, and that a new head is one folder plus one registry entry."""
import json
import sys
import textwrap

import pytest

from egoflow.heads import registry
from egoflow.heads.registry import create_head, describe_heads, get_spec, head_config, list_heads

# A whole head in one folder: Config + build (model.py) and the runner's hooks (head.py), exposed as SPEC.
TOY_MODEL = '''
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Config:
    video_dim: int = 8  # width of the store's features (filled from the feature set)
    hidden: int = 16  # hidden width


class Toy(nn.Module):
    """Mean-pooled clip features [B, T, D] + mask [B, T] -> normalised (start, end) of the answer [B, 2]."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.mlp = nn.Sequential(nn.Linear(cfg.video_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2))

    def forward(self, batch):
        m = batch["mask"].unsqueeze(-1).float()
        return {"span": torch.sigmoid(self.mlp((batch["feats"] * m).sum(1) / m.sum(1)))}


def build(cfg):
    crit = lambda out, batch: {"loss": ((out["span"] - batch["target"]) ** 2).mean()}  # noqa: E731
    decode = lambda out, batch: out["span"].sort(-1).values.tolist()  # noqa: E731
    return Toy(cfg), crit, decode
'''
TOY_HEAD = '''
import torch

from egoflow.datasets.ego4d import load_nlq
from egoflow.evaluate.nlq import evaluate_nlq
from egoflow.heads.spec import HeadSpec, Task, config_from_dict
from toyhead.model import Config, build


def _samples(inputs, queries):
    feats = inputs.store.load_feature_set(inputs.feature_set, sorted({q.video_uid for q in queries}))
    out = []
    for q in queries:
        clip = feats[q.video_uid].slice(q.clip_video_start_sec, q.clip_video_end_sec)
        d = q.clip_duration
        out.append({"feats": torch.from_numpy(clip.feats), "target": torch.tensor([q.start_sec / d, q.end_sec / d])})
    return out


def collate(items):
    t = max(len(x["feats"]) for x in items)
    feats = torch.zeros(len(items), t, items[0]["feats"].shape[1])
    mask = torch.zeros(len(items), t, dtype=torch.bool)
    for i, x in enumerate(items):
        feats[i, :len(x["feats"])], mask[i, :len(x["feats"])] = x["feats"], True
    return {"feats": feats, "mask": mask, "target": torch.stack([x["target"] for x in items])}


class Evaluation:
    metric, mode, batch_size = "R@1 IoU=0.3", "max", 8

    def __init__(self, inputs, path):
        self.queries = load_nlq(path)
        self.samples = _samples(inputs, self.queries)

    def predict(self, model, decode):
        spans = decode(model(collate(self.samples)), None)
        return [{"clip_uid": q.clip_uid, "annotation_uid": q.annotation_uid, "query_idx": q.query_idx,
                 "predicted_times": [[s * q.clip_duration, e * q.clip_duration]]}
                for q, (s, e) in zip(self.queries, spans)]

    def score(self, records):
        return {k: v for k, v in evaluate_nlq(self.queries, records).items() if isinstance(v, float)}


def task(inputs, overrides):
    dim = inputs.store.feature_set_info(inputs.feature_set)["dim"]
    cfg = config_from_dict(Config, {"video_dim": dim, **overrides}, "toy")
    val = Evaluation(inputs, inputs.val_annotations) if inputs.val_annotations else None
    train = load_nlq(inputs.annotations)
    return Task(cfg, _samples(inputs, train), collate, val, {"num_train": len(train)})


SPEC = HeadSpec(name="toy", benchmark="nlq", description="toy span regressor (test)", Config=Config, build=build,
                task=task, predictor=lambda inputs, cfg: Evaluation(inputs, inputs.annotations),
                train_defaults=dict(epochs=2, batch_size=8, lr=1e-2))
'''


def test_builtin_heads_and_strict_configs():
    assert list_heads() == ["charades", "egomcq", "ek100-mir", "laviti", "laviti-charades", "linear-egotaskqa",
                            "linear-ek100", "linear-oscc", "linear-pnr", "summarizer", "translate",
                            "translate-charades", "translate-egomcq", "translate-ek100", "vsgn", "vslnet"]
    assert describe_heads()["vsgn"]["benchmark"] == "mq"
    model, criterion, decode = create_head("vslnet", dim=32, num_heads=4)
    assert model.cfg.dim == 32
    with pytest.raises(ValueError, match="head 'vslnet' has no config key\\(s\\) \\['nope'\\]; its keys: .*video_dim"):
        head_config("vslnet", nope=1)
    with pytest.raises(KeyError, match="unknown head 'nope'; available: charades, egomcq, ek100-mir, laviti"):
        get_spec("nope")


def test_a_new_head_is_one_folder_plus_one_registry_entry(tmp_path, monkeypatch):
    from egoflow.cli import main
    from egoflow.datasets.synthetic.nlq import make_synthetic_nlq, write_nlq_json
    from egoflow.features_store import FeatureStore

    pkg = tmp_path / "plugins" / "toyhead"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from toyhead.head import SPEC\n")
    (pkg / "model.py").write_text(textwrap.dedent(TOY_MODEL))
    (pkg / "head.py").write_text(textwrap.dedent(TOY_HEAD))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    import toyhead

    registry.register(toyhead.SPEC)  # the one registry entry
    try:
        assert "toy" in list_heads()
        store = FeatureStore(str(tmp_path / "s.zarr"))
        data = make_synthetic_nlq(store, num_videos=6, seed=0)
        train = write_nlq_json(data.train, tmp_path / "train.json")
        val = write_nlq_json(data.val, tmp_path / "val.json")
        run = tmp_path / "run"
        assert main(["train", "toy", "--store", store.url, "--feature-set", data.feature_set, "--annotations",
                     str(train), "--val-annotations", str(val), "--out", str(run), "--device", "cpu"]) == 0
        config = json.loads((run / "config.json").read_text())
        assert config["head"] == "toy" and config["benchmark"] == "nlq" and config["num_train"] == len(data.train)
        metrics = json.loads((run / "metrics.json").read_text())
        assert 0.0 <= metrics["R@1 IoU=0.3"] <= 1.0 and metrics["best_epoch"] in (1, 2)
        assert all(isinstance(v, (int, float)) for v in metrics.values())  # flat
        assert main(["predict", "toy", "--run", str(run), "--store", store.url, "--annotations", str(val),
                     "--out", str(tmp_path / "pred.json")]) == 0
        assert json.loads((tmp_path / "pred.json").read_text()) == json.loads((run / "predictions.json").read_text())
        assert main(["evaluate", "nlq", "--pred", str(tmp_path / "pred.json"), "--gt", str(val), "--out",
                     str(tmp_path / "report")]) == 0
        assert main(["train", "toy", "--store", store.url, "--feature-set", data.feature_set, "--annotations",
                     str(train), "--out", str(tmp_path / "bad"), "--set", "hiden=3"]) == 2  # strict config
    finally:
        registry.unregister("toy")
        sys.modules.pop("toyhead", None)
    assert "toy" not in list_heads()
