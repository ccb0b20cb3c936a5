"""linear-egotaskqa on a query-conditioned (fused per video and question) feature set: the head reads the fused
feature of each (video, question) pair instead of pooled video + question text, so the answer can change with
the question on one clip; a set without a question, a plain set under conditioned=true, and a conditioned set
under another linear head are one-line errors (exit 2).

The sets are written here (planted features): the answer of a (video, question) pair is in its fused feature
only, so a head that ignored the pairing could not pass."""
import json

import numpy as np
import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.errors import AnnotationError
from egoflow.features_store import FeatureStore
from egoflow.features_store.conditioned import read_conditioned, write_conditioned
from egoflow.heads import runner
from egoflow.heads.linear.data import conditioned_samples
from egoflow.heads.linear.model import Config, build
from egoflow.heads.spec import HeadConfigError

ANSWERS = ["open", "closed", "red"]
QUESTIONS = ["is the door open", "what colour is the mug", "is the lid on", "what is the state of the tap"]
FAST = {"epochs": 30, "batch_size": 8, "lr": 0.05, "progress": False, "device": "cpu"}
D, T = 8, 20  # feature width, steps per video (0.5 s apart)


def _qas(videos, answers):
    return [{"question": q, "answer": answers[(v, q)], "interval": f"{v}|fpv1|0|300", "type": ["t"],
             "category": ["c"], "semantic": "s", "structural": "x", "reference": "direct"}
            for v in videos for q in QUESTIONS]


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    root = tmp_path_factory.mktemp("taskqa_fused")
    rng = np.random.default_rng(0)
    store = FeatureStore(str(root / "s.zarr"))
    store.create_feature_set("fused-q", {"encoder": "fused", "conditioned": "query"}, dim=D, dtype="float32")
    store.create_feature_set("plain", {"encoder": "clip"}, dim=D, dtype="float32")
    videos = [f"kitchen{i}" for i in range(8)]
    times = np.arange(T) * 0.5 + 0.25
    answers = {}
    for v in videos:
        feats = []
        for q in QUESTIONS:
            a = int(rng.integers(len(ANSWERS)))
            answers[(v, q)] = ANSWERS[a]
            f = rng.normal(0, 0.3, (T, D))
            f[:, a] += 2.0  # the answer lives in the fused (video, question) feature only
            feats.append(f)
        write_conditioned(store, "fused-q", f"{v}_fpv1", QUESTIONS, np.stack(feats).astype(np.float32), times)
        store.write_video("plain", f"{v}_fpv1", rng.normal(0, 1, (T, D)).astype(np.float32), times)
    paths = {}
    for split, vids in (("train", videos[:6]), ("val", videos[6:])):
        paths[split] = root / f"{split}_qas.json"
        paths[split].write_text(json.dumps(_qas(vids, answers)))
    return {"root": root, "url": str(root / "s.zarr"), "answers": answers, **{k: str(v) for k, v in paths.items()}}


def _train(fx, out, feature_set="fused-q", **head):
    return runner.train("linear-egotaskqa", fx["url"], feature_set, fx["train"], out, val_annotations=fx["val"],
                        head_overrides=head, train_overrides=FAST)


def test_fused_feature_of_each_question_is_the_input(fused, tmp_path, one_thread):
    m = _train(fused, tmp_path / "run", hidden=-1, hidden_dropout=0.2, normalize=False)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["head_config"]["conditioned"] is True and cfg["head_config"]["text_dim"] == 0
    assert cfg["text_set"] is None  # no question text set needed: the question is inside the fused feature
    assert m["accuracy"] == 1.0, m  # unseen videos: only the (video, question) feature carries the answer
    pred = json.loads((tmp_path / "run" / "predictions.json").read_text())["results"]
    by_video = {}
    for r in pred:  # several questions on one clip: the answer changes with the question
        by_video.setdefault(r["index"] // len(QUESTIONS), set()).add(r["answer"])
    truth = {i // len(QUESTIONS): set() for i in range(len(pred))}
    for i, q in enumerate(json.loads(open(fused["val"]).read())):
        truth[i // len(QUESTIONS)].add(q["answer"])
    assert by_video == truth and any(len(s) > 1 for s in by_video.values())
    out = runner.predict("linear-egotaskqa", tmp_path / "run", fused["url"], fused["val"], tmp_path / "p.json")
    assert json.loads(open(out).read())["results"] == pred  # predict reads the same pairs


def test_samples_are_the_stored_pairs(fused):
    store = FeatureStore(fused["url"], mode="r")
    windows = [("kitchen0_fpv1", 1.0, 4.0), ("kitchen0_fpv1", 1.0, 4.0)]
    data = conditioned_samples(store, "fused-q", windows, QUESTIONS[:2], [[0], [1]], "f.json", ["[0]", "[1]"])
    for s, q in zip(data.samples, QUESTIONS[:2]):
        vf = read_conditioned(store, "fused-q", "kitchen0_fpv1", q).slice(1.0, 4.0)
        np.testing.assert_array_equal(s["feats"].numpy(), vf.feats)
    assert not np.array_equal(data.samples[0]["feats"], data.samples[1]["feats"])


def test_missing_question_names_set_and_question(fused, tmp_path, capsys):
    qas = json.loads(open(fused["val"]).read())
    qas[3]["question"] = "where is the kettle"
    bad = tmp_path / "val_qas.json"
    bad.write_text(json.dumps(qas))
    with pytest.raises(AnnotationError, match=r"\[3\].*'where is the kettle'.*'kitchen6_fpv1'.*'fused-q'"):
        runner.train("linear-egotaskqa", fused["url"], "fused-q", fused["train"], tmp_path / "r",
                     val_annotations=str(bad), train_overrides=FAST)
    rc = main(["train", "linear-egotaskqa", "--store", fused["url"], "--feature-set", "fused-q", "--annotations",
               fused["train"], "--val-annotations", str(bad), "--out", str(tmp_path / "r2"), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no fused feature" in err[0] and "--queries" in err[0]
    assert not (tmp_path / "r2" / "best.pt").exists()  # refused before training


def test_set_and_flag_must_agree(fused, tmp_path):
    with pytest.raises(HeadConfigError, match="conditioned=True.*'plain'.*is plain"):
        _train(fused, tmp_path / "a", feature_set="plain", conditioned=True)
    fho = tmp_path / "fho.json"
    fho.write_text(json.dumps({"clips": []}))
    with pytest.raises(HeadConfigError, match="linear-oscc: feature set 'fused-q'.*query-conditioned"):
        runner.train("linear-oscc", fused["url"], "fused-q", str(fho), tmp_path / "b", train_overrides=FAST)


def test_reference_head_shape():
    """hidden=-1: EgoVLPv2's projector_2(dropout(relu(projector_1(cls)))) with projector_1 = Linear(D, A); on one
    step (one fused [CLS] per question) with normalize off, the logits are exactly that expression."""
    model, _, _ = build(Config(video_dim=6, num_classes=(5,), hidden=-1, hidden_dropout=0.2, normalize=False,
                               conditioned=True))
    p1, drop, p2 = model.body[0], model.body[2], model.outputs[0]
    assert (p1.in_features, p1.out_features, p2.in_features, p2.out_features, drop.p) == (6, 5, 5, 5, 0.2)
    model.eval()
    cls = torch.randn(3, 6)
    out = model({"feats": cls[:, None], "mask": torch.ones(3, 1, dtype=torch.bool)})["logits"][0]
    torch.testing.assert_close(out, p2(torch.relu(p1(cls))))
    with pytest.raises(ValueError, match="hidden must be"):
        build(Config(video_dim=6, num_classes=(5, 3), hidden=-1))  # as wide as which output?
