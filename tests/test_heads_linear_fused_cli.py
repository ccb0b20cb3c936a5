"""EgoTaskQA end to end through the CLI on fused features, as docs/heads_linear.md tells a user to run it:
extract --encoder fused --queries train_qas.json --queries val_qas.json (the question files themselves) ->
train linear-egotaskqa --recipe egovlpv2-egotaskqa -> predict -> evaluate.

Tiny generated videos and a RANDOMLY INITIALISED egovlpv2-tiny (its fusion gates set to 1 and saved under the
released checkpoint's key names, so the fused features depend on the question); the numbers mean nothing, the
plumbing and the recipe's values are what is checked."""
import json

import numpy as np
import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.fused import create_fused_model
from egoflow.extract.fused.checkpoint import to_reference_names
from egoflow.extract.fused.tokenizer import write_tiny_vocab
from egoflow.features_store import FeatureStore
from egoflow.features_store.conditioned import conditioned_queries, read_conditioned
from egoflow.heads.linear import reference as ref

WORDS = ["person", "opens", "the", "door", "red", "kettle", "blue", "mug", "is", "open", "what"]
QUESTIONS = {"is the door open": "yes", "what is the red kettle": "kettle", "is the blue mug open": "no"}


def _qas(video: str) -> list[dict]:
    return [{"question": q, "answer": a, "interval": f"{video}|fpv1|0|120", "type": ["t"], "category": ["c"],
             "semantic": "s", "structural": "x", "reference": "direct"} for q, a in QUESTIONS.items()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("taskqa_cli")
    vids = root / "qa_videos"
    vids.mkdir()
    for i, v in enumerate(("kitchen0", "kitchen1")):
        make_video(vids / f"{v}_fpv1.mp4", [(0, 2, "red kettle"), (2, 4.2, "blue mug")], fps=10, size=(48, 40),
                   seed=i + 1)
        (root / f"{('train', 'val')[i]}_qas.json").write_text(json.dumps(_qas(v)))
    torch.manual_seed(0)
    m = create_fused_model("egovlpv2-tiny")
    with torch.no_grad():
        for a in m.alphas():
            a.fill_(1.0)  # open fusion: a random model whose fused features see the question
    torch.save({"state_dict": to_reference_names(m)}, root / "tiny.pth")
    return {"root": root, "vids": vids, "ck": str(root / "tiny.pth"), "tok": str(write_tiny_vocab(root, WORDS)),
            "train": str(root / "train_qas.json"), "val": str(root / "val_qas.json"), "store": str(root / "s.zarr")}


def test_extract_questions_train_recipe_predict_evaluate(files, tmp_path, one_thread):
    f = files
    assert main(["extract", str(f["vids"]), "--store", f["store"], "--encoder", "fused", "--model", "egovlpv2-tiny",
                 "--pretrained", f["ck"], "--tokenizer", f["tok"], "--num-frames", "4", "--fps", "5",
                 "--precision", "fp32", "--quiet", "--queries", f["train"], "--queries", f["val"]]) == 0
    s = FeatureStore(f["store"], mode="r")
    (fs,) = [n for n in s.feature_sets() if n.endswith("-query")]
    assert conditioned_queries(s, fs, "kitchen0_fpv1") == list(QUESTIONS)  # the question file's questions
    a, b = (read_conditioned(s, fs, "kitchen0_fpv1", q).feats for q in list(QUESTIONS)[:2])
    assert np.abs(a - b).max() > 1e-4  # fused: one clip, two questions, two features

    run = tmp_path / "run"
    assert main(["train", "linear-egotaskqa", "--recipe", "egovlpv2-egotaskqa", "--store", f["store"],
                 "--feature-set", fs, "--annotations", f["train"], "--val-annotations", f["val"], "--out", str(run),
                 "--epochs", "2", "--device", "cpu"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert {k: cfg["head_config"][k] for k in ref.EGOVLPV2_TASKQA_HEAD} == ref.EGOVLPV2_TASKQA_HEAD
    want = {**ref.EGOVLPV2_TASKQA_TRAIN, "epochs": 2}  # --epochs given: the user's value wins
    assert {k: cfg["train_config"][k] for k in want} == want
    assert cfg["head_config"]["video_dim"] == s.feature_set_info(fs)["dim"] and cfg["text_set"] is None

    pred = tmp_path / "pred.json"
    assert main(["predict", "linear-egotaskqa", "--run", str(run), "--store", f["store"], "--annotations", f["val"],
                 "--out", str(pred)]) == 0
    assert len(json.loads(pred.read_text())["results"]) == len(QUESTIONS)
    assert main(["evaluate", "egotaskqa", "--pred", str(pred), "--gt", f["val"], "--out", str(tmp_path / "rep")]) == 0
