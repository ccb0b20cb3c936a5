"""LAVITI on CharadesEgo: action chunks and their bad input, the fine-tune loss, zero-shot and fine-tuned runs
through the CLI as a user runs them (train laviti -> predict laviti-charades -> train laviti-charades --init ->
evaluate charades)."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.charades_ego import CharadesAction, CharadesVideo, label_matrix, load_charades_ego
from egoflow.datasets.errors import AnnotationError
from egoflow.datasets.synthetic.charades import write_narrated_charades
from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_annotations, write_to_store
from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.evaluate.classification import charades_map
from egoflow.features_store import FeatureStore, VideoFeatures
from egoflow.heads import laviti, runner
from egoflow.heads.laviti import CharadesConfig, Config
from egoflow.heads.laviti.charades_data import ActionChunks, action_chunks, collate_actions
from egoflow.heads.laviti.criterion import FinetuneCriterion
from egoflow.heads.laviti.data import LavitiDataError
from egoflow.heads.registry import create_head

TINY = dict(heads=2, head_dim=16, enc_layers=2, dec_layers=2, num_queries=16, num_time_embeddings=64, kernel=3,
            dropout=0.0)
TRAIN = dict(epochs=20, batch_size=4, lr=1e-3, device="cpu", progress=False)


def finetune(store, feature_set, annotations, out, **kw):
    """A laviti-charades run through the shared runner (what `egoflow train laviti-charades` does)."""
    return runner.train("laviti-charades", store, feature_set, annotations, out, **kw)


def video(n: int, fps: float = 2.0, dim: int = 8, seed: int = 0) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    return VideoFeatures(rng.normal(size=(n, dim)).astype(np.float32), (np.arange(n) + 0.5) / fps,
                         {"duration_s": n / fps})


def act(c, s, e):
    return CharadesAction(c, s, e)


# ---------------------------------------------------------------- data

def test_action_chunks_handle_bad_input_and_long_videos():
    cfg = Config(video_dim=8, text_dim=8, kernel=3, chunk_s=20.0)
    videos = {"A": video(20), "B": video(100), "C": video(2)}  # 10 s, 50 s (3 chunks), 1 s (< one token)
    records = [
        CharadesVideo("A", (act(1, 1.0, 4.0), act(1, 1.0, 4.0), act(2, 6.0, 3.0), act(3, 12.0, 15.0),
                            act(0, -2.0, 2.0))),
        CharadesVideo("B", (act(4, 5.0, 25.0),)),
        CharadesVideo("C", (act(0, 0.0, 1.0),)),
        CharadesVideo("missing", (act(0, 0.0, 1.0),)),
    ]
    chunks, stats = action_chunks(videos, records, 5, cfg)
    assert stats == {"actions_duplicated": 1, "actions_without_interval": 2, "videos_without_features": 1,
                     "chunks_too_short": 1, "chunks_without_actions": 1, "chunks": 4, "actions_used": 4}
    a = chunks[0]
    # duplicate kept once; reversed (6 -> 3) and outside (12-15 s of a 10 s video) labelled but without interval;
    # the action starting before 0 is clipped to the video
    assert a.classes.tolist() == [1, 0] and a.start.tolist() == [1.0, 0.0] and a.end.tolist() == [4.0, 2.0]
    assert np.flatnonzero(a.labels).tolist() == [0, 1, 2, 3]
    b = [c for c in chunks if c.chunk.video_uid == "B"]
    assert [c.chunk.start_s for c in b] == [0.0, 20.0, 30.0]  # last chunk aligned to the video's end
    # the 5-25 s action is cut to each chunk, in chunk time; the third chunk (30-50 s) has no action
    assert [(c.start.tolist(), c.end.tolist()) for c in b] == [([5.0], [20.0]), ([0.0], [5.0]), ([], [])]
    assert [c.labels[4] for c in b] == [True, True, False]

    emb = np.eye(5, 8, dtype=np.float32)
    ds = ActionChunks(chunks, emb, max_actions=1, seed=None)  # more actions than queries: the first kept
    batch = collate_actions([ds[0], ds[3]])
    assert batch["text"].shape == (2, 1, 8) and batch["text_mask"].tolist() == [[True], [False]]
    assert torch.equal(batch["text"][0, 0], torch.from_numpy(emb[1]))
    assert batch["labels"].shape == (2, 5) and batch["labels"][1].sum() == 0


def test_class_loss_is_the_sigmoid_loss_on_the_mean_score():
    cfg = CharadesConfig(video_dim=8, text_dim=4, num_queries=3, num_classes=2, set_loss_weight=0.0,
                         class_init_temperature=2.0, class_init_bias=-1.0)
    class_emb = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32)
    crit = FinetuneCriterion(cfg, class_emb)
    visual = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0]]])  # mean = (2/3, 1/3, 0, 0)
    outputs = {"visual": visual, "start_te": torch.zeros(1, 3, 4), "end_te": torch.zeros(1, 3, 4),
               "te_table": torch.randn(8, 4), "logit_scale": torch.zeros(3), "logit_bias": torch.zeros(3)}
    batch = {"text": torch.zeros(1, 0, 4), "text_mask": torch.zeros(1, 0, dtype=torch.bool),
             "start_pos": torch.zeros(1, 0), "end_pos": torch.zeros(1, 0), "labels": torch.tensor([[1.0, 0.0]])}
    out = crit(outputs, batch)

    def softplus(x):
        return np.log1p(np.exp(x))
    # class 0 present: -log sigmoid(2 * 2/3 - 1); class 1 absent: -log sigmoid(-(2 * 1/3 - 1))
    want = softplus(-(2 * 2 / 3 - 1)) + softplus(2 * 1 / 3 - 1)
    assert float(out["loss"].detach()) == pytest.approx(want, rel=1e-5) and float(out["loss_set"]) == 0.0


def test_create_head_returns_the_criterion_fine_tuning_uses():
    net = dict(video_dim=8, text_dim=4, num_queries=3, heads=2, head_dim=8, enc_layers=1, dec_layers=1)
    model, crit, _ = create_head("laviti-charades", num_classes=2, **net)
    assert isinstance(crit, FinetuneCriterion) and tuple(crit.class_emb.shape) == (2, 4)
    crit.set_class_embeddings(np.array([[3.0, 0, 0, 0], [0, 0, 2.0, 0]]))
    assert crit.class_emb.tolist() == [[1.0, 0, 0, 0], [0, 0, 1.0, 0]]  # L2-normalised, as the score uses them
    with pytest.raises(ValueError, match="num_classes"):
        crit.set_class_embeddings(np.ones((3, 4)))
    pretraining_model, _, _ = create_head("laviti", **net)  # one network: the checkpoints are interchangeable
    pretraining_model.load_state_dict(model.state_dict())


# ---------------------------------------------------------------- runs through the CLI

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """96 planted videos: 40 narrated for pretraining, 32 CharadesEgo train, 24 CharadesEgo test."""
    tmp = tmp_path_factory.mktemp("charades")
    data = make_narrated(NarratedSpec(num_videos=96, num_concepts=12, dim=32, seed=0))
    uids = sorted(data.videos)
    files = write_narrated_charades(data, {"train": uids[40:72], "test": uids[72:]}, tmp / "ann")
    store = FeatureStore(str(tmp / "s.zarr"))
    fs, ts = write_to_store(data, store)
    return {"tmp": tmp, "data": data, "uids": uids, "files": files, "store": str(tmp / "s.zarr"), "fs": fs,
            "ts": ts}


@pytest.fixture(scope="module")
def pretrained(world):
    run, prev = world["tmp"] / "pretrain", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train("laviti", world["store"], world["fs"], [n for n in world["data"].narrations
                                                             if n.video_uid in world["uids"][:40]], run,
                     text_set=world["ts"], head_overrides=TINY,
                     train_overrides=dict(epochs=30, batch_size=4, lr=2e-3, schedule="constant", device="cpu",
                                          progress=False))
    finally:
        torch.set_num_threads(prev)
    assert "pretrain_loss" in json.loads((run / "metrics.json").read_text())  # no NLQ file: selected by its loss
    return run


def test_zero_shot_then_fine_tune_through_the_cli(world, pretrained, tmp_path, one_thread, capsys):
    f = world["files"]
    base = ["--store", world["store"], "--feature-set", world["fs"], "--text-set", world["ts"]]
    zs = tmp_path / "zero_shot.txt"  # zero-shot: a pretraining run scores the test videos; classes found next
    assert main(["predict", "laviti-charades", "--run", str(pretrained), *base[:2], "--annotations",
                 str(f["test"]), "--out", str(zs)]) == 0
    lines = zs.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == world["uids"][72:] and all(len(ln.split()) == 13 for ln in lines)

    run = tmp_path / "ft"
    assert main(["train", "laviti-charades", *base, "--annotations", str(f["train"]), "--val-annotations",
                 str(f["test"]), "--init", str(pretrained), "--out", str(run), "--epochs", "20", "--batch-size",
                 "4", "--lr", "1e-3", "--device", "cpu"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["benchmark"] == "charades" and cfg["init"] == str(pretrained) and cfg["classes"] == str(f["classes"])
    assert cfg["head"] == "laviti-charades" and cfg["head_config"]["num_classes"] == 12
    _, _, ft_cfg, _ = runner.load_run(run, "laviti")  # a fine-tuned run is a LAVITI run for NLQ, too
    assert isinstance(ft_cfg, CharadesConfig) and ft_cfg.enc_layers == TINY["enc_layers"]

    gt = str(f["test"])
    zs_eval = get_benchmark("charades").evaluate(gt, str(zs))
    assert zs_eval["mAP"] == pytest.approx(m["zero_shot_mAP"], abs=1e-6)  # the CLI's file = the run's own measure
    rng = np.random.default_rng(0)
    labels = label_matrix(load_charades_ego(gt), 12)
    assert zs_eval["num_videos"] == 24 and zs_eval["num_classes_evaluated"] == int(labels.any(0).sum())
    chance = np.mean([charades_map(rng.random(labels.shape), labels) for _ in range(200)])
    # seed 0: chance 0.41, zero-shot 0.71, fine-tuned 0.80
    assert m["zero_shot_mAP"] >= chance + 0.15, (m, chance)
    assert m["mAP"] >= m["zero_shot_mAP"] + 0.03, m

    # `egoflow evaluate --runs` finds the run's predictions and ground truth and reproduces its mAP
    assert main(["evaluate", "--runs", str(run), "--out", str(tmp_path / "report")]) == 0
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "charades" in json.dumps(rep)
    assert get_benchmark("charades").evaluate(gt, str(run / "predictions.json"))["mAP"] == pytest.approx(m["mAP"])
    # a fine-tuned run predicts like a pretraining run; its class list comes from its config
    assert main(["predict", "laviti-charades", "--run", str(run), *base[:2], "--annotations", gt, "--out",
                 str(tmp_path / "ft.json")]) == 0
    assert get_benchmark("charades").evaluate(gt, str(tmp_path / "ft.json"))["mAP"] == pytest.approx(m["mAP"])
    capsys.readouterr()


def test_fine_tune_is_seeded_and_works_from_scratch(world, tmp_path, one_thread):
    f = world["files"]
    kw = dict(val_annotations=f["test"], text_set=world["ts"], head_overrides=TINY,
              train_overrides={**TRAIN, "epochs": 3})
    a = finetune(world["store"], world["fs"], f["train"], tmp_path / "a", **kw)
    b = finetune(world["store"], world["fs"], f["train"], tmp_path / "b", **kw)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["head"] == "laviti-charades"
    assert a == b and "initial_mAP" in a and a["data_chunks"] == 32


def test_bad_input_is_a_clear_error(world, pretrained, tmp_path, capsys):
    f, s, fs, ts = world["files"], world["store"], world["fs"], world["ts"]
    lonely = tmp_path / "elsewhere" / "train.csv"  # no Charades_v1_classes.txt next to it
    lonely.parent.mkdir()
    lonely.write_text(f["train"].read_text())
    with pytest.raises(LavitiDataError, match="no class list given.*Charades_v1_classes.txt"):
        finetune(s, fs, lonely, tmp_path / "r", text_set=ts)
    unknown = tmp_path / "classes.txt"
    unknown.write_text(f["classes"].read_text() + "c012 Juggling the chainsaws\n")
    with pytest.raises(LavitiDataError, match="Juggling the chainsaws"):  # a class name never encoded
        finetune(s, fs, f["train"], tmp_path / "r", text_set=ts, classes=unknown)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,actions\nnarrated050,c013 0.0 3.0\n")
    with pytest.raises(AnnotationError, match="narrated050.*c013 is not in the class list"):
        finetune(s, fs, bad, tmp_path / "r", text_set=ts, classes=f["classes"])
    missing = tmp_path / "missing.csv"
    missing.write_text("id,actions\nnot_extracted,c001 0.0 3.0\n")
    with pytest.raises(LavitiDataError, match="not_extracted"):
        runner.predict("laviti-charades", pretrained, s, missing, tmp_path / "p.txt", classes=f["classes"])
    with pytest.raises(LavitiDataError, match=r"cannot change the network's \['enc_layers'\]"):
        finetune(s, fs, f["train"], tmp_path / "r", text_set=ts, init=pretrained, head_overrides={"enc_layers": 3})
    assert not (tmp_path / "r").exists()  # nothing was written by a run that could not start
    before = (pretrained / "config.json").read_text()
    with pytest.raises(LavitiDataError, match="is the --init run itself"):
        finetune(s, fs, f["train"], pretrained, text_set=ts, init=pretrained)
    assert (pretrained / "config.json").read_text() == before
    assert main(["train", "vslnet", "--store", s, "--feature-set", fs, "--annotations", str(f["train"]),
                 "--init", str(pretrained), "--out", str(tmp_path / "v")]) == 2
    assert "head 'vslnet' does not take --init" in capsys.readouterr().err


def test_demo_steps_quick(world, tmp_path, one_thread):
    """The demo's two LAVITI steps: pretraining (zero-shot NLQ), then the fine-tune starting from that run."""
    few = set(world["uids"][:8] + world["uids"][72:80])  # the demo's few videos: seconds, not minutes
    d = world["data"]
    d = dataclasses.replace(d, narrations=[n for n in d.narrations if n.video_uid in few],
                            queries=[q for q in d.queries if q.video_uid in few])
    narrations, nlq = write_annotations(d, tmp_path / "ann")
    f = world["files"]
    ctx = SimpleNamespace(store=world["store"], feature_set=world["fs"], text_set=world["ts"], narrations=narrations,
                          nlq_val=nlq, charades_train=f["train"], charades_val=f["test"],
                          charades_classes=f["classes"], out_dir=tmp_path / "runs" / "laviti", device="cpu", seed=0,
                          quick=True)
    res = laviti.SPEC.demo(ctx, runner)
    assert res["benchmark"] == "nlq" and 0.0 <= res["metrics"]["R@1 IoU=0.3"] <= 1.0 and res["gt"] == str(nlq)
    assert len(json.loads(open(res["predictions"]).read())["results"]) == res["metrics"]["num_queries"] > 0
    ctx.out_dir = tmp_path / "runs" / "laviti-charades"
    res = laviti.CHARADES_SPEC.demo(ctx, runner)
    assert res["benchmark"] == "charades" and "zero_shot_mAP" in res["metrics"] and res["gt"] == str(f["test"])
    cfg = json.loads((ctx.out_dir / "config.json").read_text())
    assert cfg["head"] == "laviti-charades" and cfg["init"] == str(tmp_path / "runs" / "laviti")
