"""VideoTranslate head: noise, batched ranking = per-candidate loop, training/predicting through the shared
runner in every mode on the planted narrated videos, checkpoint round-trip, --init from a T5 folder, bad input.

Every network here is a *tiny randomly initialised* T5 (d_model 32, one layer) with a word-level tokenizer built
from the synthetic texts: no weights can be downloaded, and none are needed to test the plumbing.
"""
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from egoflow.datasets.records import Narration
from egoflow.datasets.synthetic.actions import (
    write_narrated_egomcq,
    write_narrated_ek100,
)
from egoflow.datasets.synthetic.charades import write_narrated_charades
from egoflow.datasets.synthetic.narrated import (
    NarratedSpec,
    make_narrated,
    write_annotations,
    write_to_store,
)
from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.features_store import FeatureStore
from egoflow.heads import runner, translate
from egoflow.heads.translate.head import write_narrations
from egoflow.heads.translate.model import Config, build, noise_tokens
from egoflow.heads.translate.rank import candidate_scores, naive_scores, pad_ids
from egoflow.heads.translate.text import (
    TranslateInputError,
    build_word_tokenizer,
    check_candidates,
    encode,
)

TINY = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4, dropout=0.0,
            num_frames=8)
TRAIN = dict(epochs=12, batch_size=16, lr=3e-3, schedule="constant", progress=False, device="cpu", seed=0,
             eval_every=6)


# ------------------------------------------------------------------------------------------------ noise
def test_noise_ratio_zero_is_identity_and_one_is_a_single_mask():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = ids != 0
    out, m = noise_tokens(ids, mask, 0.0, mask_id=3, pad_id=0, shuffle=False)
    assert out.tolist() == ids.tolist() and m.tolist() == mask.tolist()
    out, m = noise_tokens(ids, mask, 1.0, mask_id=3, pad_id=0, shuffle=False)
    assert out.tolist() == [[3], [3]] and m.all()  # the target length does not leak


def test_noise_masks_round_ratio_n_tokens_merges_runs_and_shuffles():
    g = torch.Generator().manual_seed(0)
    ids = torch.arange(10, 30).unsqueeze(0)  # 20 distinct tokens
    mask = torch.ones_like(ids, dtype=torch.bool)
    out, m = noise_tokens(ids, mask, 0.5, mask_id=3, pad_id=0, shuffle=False, generator=g)
    kept = [t for t in out[0][m[0]].tolist() if t != 3]
    assert len(kept) == 10 and kept == sorted(kept)  # 10 masked; unshuffled order kept
    row = out[0][m[0]].tolist()
    assert all(not (a == 3 and b == 3) for a, b in itertools.pairwise(row))  # no two <mask> in a row
    out, m = noise_tokens(ids, mask, 0.0, mask_id=3, pad_id=0, shuffle=True, generator=g)
    assert sorted(out[0].tolist()) == ids[0].tolist() and out[0].tolist() != ids[0].tolist()
    a = noise_tokens(ids, mask, 0.3, 3, 0, True, torch.Generator().manual_seed(7))[0]
    b = noise_tokens(ids, mask, 0.3, 3, 0, True, torch.Generator().manual_seed(7))[0]
    assert torch.equal(a, b)


def test_training_draws_one_ratio_per_batch_and_eval_feeds_one_mask():
    model, _, _ = build(Config(video_dim=4, vocab_size=40, **TINY))
    batch = {"feats": torch.randn(3, 5, 4), "mask": torch.ones(3, 5, dtype=torch.bool),
             "target_ids": torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0], [10, 1, 0, 0]])}
    batch["target_mask"] = batch["target_ids"] != 0
    model.eval()
    src, m = model.source(batch)
    assert m.all()
    assert src.tolist() == [[3]] * 3
    model.train()
    torch.manual_seed(1)
    seen = {tuple(sorted(t for t in model.source(batch)[0][0].tolist() if t not in (0, 3))) for _ in range(20)}
    assert len(seen) > 1 and all(set(s) <= {5, 6, 7} for s in seen)  # </s> never enters the source


# ------------------------------------------------------------------------------------------------ ranking
def test_batched_ranking_equals_the_per_candidate_loop():
    torch.manual_seed(0)
    model, _, _ = build(Config(video_dim=6, vocab_size=50, rank_chunk=3, **TINY))
    model.eval()
    batch = {"prefix_ids": torch.tensor([[4, 5], [4, 5]]), "prefix_mask": torch.tensor([[True, True], [True, False]]),
             "feats": torch.randn(2, 7, 6), "mask": torch.tensor([[True] * 7, [True] * 4 + [False] * 3])}
    cands = [[7, 8, 1], [9, 1], [10, 11, 12, 1], [13, 1], [7, 1], [20, 21, 1], [22, 1]]  # 3 chunks, ragged lengths
    ids, m = pad_ids(cands, 0)
    fast = candidate_scores(model, batch, ids, m)
    slow = naive_scores(model, batch, ids, m)
    assert fast.shape == (2, 7)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fast[0], fast[1])  # the clips differ, so do their scores


def test_encode_truncates_and_counts():
    tok = build_word_tokenizer(["a b c d e f g h"], Path(pytest.importorskip("tempfile").mkdtemp()))
    ids, cut = encode(tok, ["a b c d e f g h", "a b"], max_len=5)
    assert cut == 1 and len(ids[0]) == 5 and ids[0][-1] == tok.eos_token_id and len(ids[1]) == 3


@pytest.mark.parametrize("names, match", [([], "empty candidate list"), (["cut", "Cut"], "duplicates candidate 0"),
                                          (["cut", " "], "candidate 1 is empty")])
def test_candidate_lists_empty_or_duplicate(names, match):
    with pytest.raises(TranslateInputError, match=match):
        check_candidates(names, "classes.csv")


# ------------------------------------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("vt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared CPU
    d = make_narrated(NarratedSpec(num_videos=16, num_concepts=8, dim=16, seed=0))
    uids = sorted(d.videos)
    tr, va = uids[:12], uids[12:]
    ch = write_narrated_charades(d, {"train": tr, "test": va}, root / "ch")
    ek = write_narrated_ek100(d, {"train": tr, "validation": va}, root / "ek")
    mcq = write_narrated_egomcq(d, va, root / "egomcq.json")
    store = FeatureStore(str(root / "s.zarr"))
    fs, _ = write_to_store(d, store)
    ntr = write_narrations([n for n in d.narrations if n.video_uid in tr], root / "ntr.json")
    nva = write_narrations([n for n in d.narrations if n.video_uid in va], root / "nva.json")
    metrics = runner.train("translate", store, fs, ntr, root / "pre", val_annotations=nva, head_overrides=TINY,
                           train_overrides=TRAIN)
    yield SimpleNamespace(root=root, data=d, store=store, fs=fs, ch=ch, ek=ek, mcq=mcq, ntr=ntr, nva=nva,
                          metrics=metrics, pre=root / "pre")
    torch.set_num_threads(threads)


def test_pretraining_writes_scored_captions(world):
    m = world.metrics
    assert m["train_loss"] < 1.5 and m["truncated_targets_train"] == 0
    for k in ("BLEU-4", "METEOR", "CIDEr"):
        assert 0.0 <= m[k] <= 10.0
    preds = json.loads((world.pre / "predictions.json").read_text())["results"]
    assert len(preds) == m["num_captions"] and all("handles" in p["caption"] for p in preds)
    again = get_benchmark("captions").evaluate(world.nva, world.pre / "predictions.json")
    assert again["CIDEr"] == pytest.approx(m["CIDEr"]) and again["BLEU-4"] == pytest.approx(m["BLEU-4"])
    assert (world.pre / "tokenizer" / "tokenizer.json").exists()


def test_checkpoint_round_trip_predicts_the_same_captions(world):
    out = runner.predict("translate", world.pre, world.store, world.nva, world.root / "again.json")
    assert json.loads(Path(out).read_text()) == json.loads((world.pre / "predictions.json").read_text())
    model, decode, cfg, config = runner.load_run(world.pre, "translate")
    state = torch.load(world.pre / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert config["head"] == "translate" and cfg.d_model == 32 and cfg.vocab_size == len(decode.tokenizer)


def test_beam_search_captions(world):
    from egoflow.heads.translate.head import caption_split
    model, decode, cfg, _ = runner.load_run(world.pre, "translate")
    narrs = [n for n in world.data.narrations if n.video_uid == "narrated012"]
    greedy = caption_split(world.store, world.fs, narrs, "x", decode.tokenizer, cfg, num_beams=1)
    beam = caption_split(world.store, world.fs, narrs, "x", decode.tokenizer, cfg, num_beams=3)
    g, b = greedy.predict(model, decode), beam.predict(model, decode)
    assert [r["id"] for r in g] == [r["id"] for r in b] and all(r["caption"] for r in b)
    assert all(len(r["caption"].split()) <= cfg.max_narration_len for r in g + b)


def _chance_map(gt_csv, classes):
    from egoflow.datasets.charades_ego import (
        label_matrix,
        load_charades_classes,
        load_charades_ego,
    )
    from egoflow.evaluate.classification import charades_map
    y = label_matrix(load_charades_ego(gt_csv), len(load_charades_classes(classes)))
    rng = np.random.default_rng(0)
    return float(np.mean([charades_map(rng.random(y.shape), y) for _ in range(20)]))


def test_zero_shot_and_fine_tuned_charades_beat_chance(world):
    gt, classes = world.ch["test"], world.ch["classes"]
    chance = _chance_map(gt, classes)
    zs = runner.predict("translate-charades", world.pre, world.store, gt, world.root / "zs.txt", classes=str(classes))
    zs_map = get_benchmark("charades").evaluate(gt, zs)["mAP"]
    tr = {**TRAIN, "epochs": 6, "eval_every": 6}
    gen = runner.train("translate-charades", world.store, world.fs, world.ch["train"], world.root / "chg",
                       val_annotations=gt, init=str(world.pre), train_overrides=tr)
    disc = runner.train("translate-charades", world.store, world.fs, world.ch["train"], world.root / "chd",
                        val_annotations=gt, init=str(world.pre), head_overrides={"mode": "discriminative"},
                        train_overrides=tr)
    assert zs_map > chance + 0.1 and gen["mAP"] > chance + 0.1 and disc["mAP"] > chance
    assert json.loads((world.root / "chd" / "config.json").read_text())["head_config"]["num_classes"] == [8]
    again = runner.predict("translate-charades", world.root / "chd", world.store, gt, world.root / "chd.json")
    assert get_benchmark("charades").evaluate(gt, again)["mAP"] == pytest.approx(disc["mAP"])  # round trip


def test_ek100_ranking_and_linear_layers(world):
    tr = {**TRAIN, "epochs": 6, "eval_every": 6}
    gen = runner.train("translate-ek100", world.store, world.fs, world.ek["train"], world.root / "ekg",
                       val_annotations=world.ek["validation"], init=str(world.pre), train_overrides=tr)
    disc = runner.train("translate-ek100", world.store, world.fs, world.ek["train"], world.root / "ekd",
                        val_annotations=world.ek["validation"], init=str(world.pre),
                        head_overrides={"mode": "discriminative"}, train_overrides=tr)
    for m in (gen, disc):
        assert {"verb top1", "noun top5", "action top1"} <= set(m)
        assert m["verb top5"] == 1.0  # 4 verbs: top-5 always holds the right one
    assert disc["noun top1"] > 1 / 8  # 8 nouns: better than chance
    sub = json.loads((world.root / "ekd" / "predictions.json").read_text())
    assert sub["challenge"] == "action_recognition" and len(next(iter(sub["results"].values()))["noun"]) == 8
    again = get_benchmark("ek100-ar").evaluate(world.ek["validation"], world.root / "ekd" / "predictions.json")
    assert again["noun top1"] == pytest.approx(disc["noun top1"])


def test_multitask_trains_narrations_and_labels_back_to_back(world):
    from egoflow.heads.translate.data import Collate
    spec = translate.CHARADES
    inputs = runner.RunInputs(world.store, world.fs, None, world.ch["train"], options={"init": str(world.pre)},
                              out_dir=world.root / "mt")
    task = spec.task(inputs, {"narrations": str(world.ntr)})
    batch = Collate(task.train_set, task.cfg.pad_id)([task.train_set[0], task.train_set[1]])
    kinds = [task.train_set.clips[i].kind for i in batch["index"].tolist()]
    assert kinds == ["label", "narration", "label", "narration"]
    assert batch["target_ids"].shape[1] <= task.cfg.max_narration_len


def test_egomcq_predicts_through_the_runner(world):
    out = runner.predict("translate-egomcq", world.pre, world.store, world.mcq, world.root / "mcq.json")
    m = get_benchmark("egomcq").evaluate(world.mcq, out)
    assert m["num_inter"] > 0 and m["num_intra"] > 0 and 0.0 <= m["Inter-video"] <= 1.0
    with pytest.raises(TranslateInputError, match="only predicts"):
        runner.train("translate-egomcq", world.store, world.fs, world.mcq, world.root / "nope")


def test_demo_step(world):
    ann = world.root / "demo_ann"
    narr, _ = write_annotations(world.data, ann)
    ctx = SimpleNamespace(store=world.store, feature_set=world.fs, text_set=None, narrations=narr,
                          out_dir=world.root / "demo", device="cpu", seed=0, quick=True,
                          charades_val=world.ch["test"], charades_classes=world.ch["classes"])
    r = translate.SPEC.demo(ctx, runner)
    assert r["benchmark"] == "captions" and Path(r["predictions"]).exists() and "random-init" in r["note"]
    assert {"CIDEr", "baseline most-frequent BLEU-4", "zero-shot charades mAP"} <= set(r["metrics"])


# ------------------------------------------------------------------------------------------------ bad input
def test_narrations_outside_the_video(world, tmp_path):
    bad = [Narration("narrated000", 1e4, "#C C handles object001 way 0")]
    with pytest.raises(TranslateInputError, match="narrated000.*outside the video"):
        runner.train("translate", world.store, world.fs, bad, tmp_path / "r", head_overrides=TINY,
                     train_overrides=TRAIN)
    ok = [*bad, Narration("narrated000", 5.0, "#C C handles object001 way 0")]
    task = translate.SPEC.task(runner.RunInputs(world.store, world.fs, None, ok, out_dir=tmp_path / "r2"),
                               {**TINY, "drop_outside": True})
    assert len(task.train_set) == 1 and task.metrics["narrations_outside_train"] == 1


def test_long_narrations_are_cut_and_counted(world, tmp_path):
    long = [Narration("narrated000", 5.0, " ".join(["word"] * 40)), Narration("narrated001", 5.0, "short")]
    task = translate.SPEC.task(runner.RunInputs(world.store, world.fs, None, long, out_dir=tmp_path / "r"), TINY)
    assert task.metrics["truncated_targets_train"] == 1 and len(task.train_set.target_ids[0]) == 20


def test_empty_and_duplicate_class_lists_name_the_file(world, tmp_path):
    import shutil

    from egoflow.datasets.errors import AnnotationError
    for lines, match, error in (("", "no classes", AnnotationError),  # the shared reader refuses it first
                                ("c000 Handling the x\nc001 handling the X\n", "duplicates", TranslateInputError)):
        d = tmp_path / match.split()[0]
        d.mkdir()
        shutil.copy(world.ch["train"], d / "train.csv")
        (d / "Charades_v1_classes.txt").write_text(lines)
        with pytest.raises(error, match=f"Charades_v1_classes.txt: .*{match}"):
            runner.train("translate-charades", world.store, world.fs, d / "train.csv", d / "run")


def test_duplicate_egomcq_choices_name_the_item(world, tmp_path):
    data = json.loads(Path(world.mcq).read_text())
    data["0"]["choices"]["1"] = data["0"]["choices"]["0"]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(TranslateInputError, match="item 0: choice 1 repeats choice 0"):
        runner.predict("translate-egomcq", world.pre, world.store, tmp_path / "m.json", tmp_path / "o.json")


def _t5_folder(path, d_model=32, vocab=None, texts=("#C C handles object001 way 0",), **kw):
    from transformers import T5Config, T5ForConditionalGeneration
    tok = build_word_tokenizer(list(texts) + ["narrate video:"], path)
    cfg = T5Config(vocab_size=vocab or len(tok), d_model=d_model, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                   decoder_start_token_id=0, **kw)
    torch.manual_seed(3)
    T5ForConditionalGeneration(cfg).save_pretrained(str(path))
    return path


def test_init_from_a_t5_folder_loads_its_weights(world, tmp_path):
    from transformers import T5ForConditionalGeneration
    # a T5 v1.1-like folder (gated-GELU, tie_word_embeddings=False): its flags must reach the network
    folder = _t5_folder(tmp_path / "t5", texts=[n.text for n in world.data.narrations],
                        feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    inputs = runner.RunInputs(world.store, world.fs, None, world.ntr, options={"init": str(folder)},
                              out_dir=tmp_path / "run")
    task = translate.SPEC.task(inputs, {"num_frames": 8})
    assert (task.cfg.d_model, task.cfg.num_layers, task.cfg.d_ff) == (32, 1, 64)
    assert task.cfg.feed_forward_proj == "gated-gelu" and task.cfg.tie_word_embeddings is False
    model, crit, dec = runner.build_seeded(translate.build, task.cfg, 0)
    task.setup(model, crit, dec)
    ref = T5ForConditionalGeneration.from_pretrained(str(folder)).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.t5.state_dict().items())
    assert model.t5.config.scale_decoder_outputs is False  # v1.1 semantics carried into the network


def test_t5_folder_of_the_wrong_shape(world, tmp_path):
    folder = _t5_folder(tmp_path / "t5")
    conf = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**conf, "d_model": 48}))  # weights are 32 wide
    with pytest.raises(TranslateInputError, match="do not fit its config"):
        runner.train("translate", world.store, world.fs, world.ntr, tmp_path / "r", init=str(folder),
                     train_overrides=TRAIN)
    (folder / "config.json").write_text(json.dumps(conf))
    with pytest.raises(TranslateInputError, match="d_model is 32, but the config sets d_model=64"):
        runner.train("translate", world.store, world.fs, world.ntr, tmp_path / "r", init=str(folder),
                     head_overrides={"d_model": 64})
    (folder / "config.json").write_text(json.dumps({**conf, "vocab_size": 3}))
    with pytest.raises(TranslateInputError, match="tokens but the model's vocab_size is 3"):
        runner.train("translate", world.store, world.fs, world.ntr, tmp_path / "r", init=str(folder))
    (folder / "config.json").write_text(json.dumps({**conf, "model_type": "bert"}))
    with pytest.raises(TranslateInputError, match="model_type is 'bert', not 't5'"):
        runner.train("translate", world.store, world.fs, world.ntr, tmp_path / "r", init=str(folder))


def test_fine_tuning_on_unseen_class_words_grows_the_vocabulary_keeping_old_rows(world, tmp_path):
    inputs = runner.RunInputs(world.store, world.fs, None, world.ek["train"], options={"init": str(world.pre)},
                              out_dir=tmp_path / "ek")
    task = translate.EK100.task(inputs, {})
    old = torch.load(world.pre / "best.pt", weights_only=False)["model"]["t5.shared.weight"]
    assert task.cfg.vocab_size > old.shape[0]  # the verbs ("take", "open", ...) never occur in the narrations
    model, crit, dec = runner.build_seeded(translate.build, task.cfg, 0)
    task.setup(model, crit, dec)
    assert torch.equal(model.t5.shared.weight[: old.shape[0]], old)
    tok = dec.tokenizer
    assert tok.unk_token_id not in tok("take open wash cut", add_special_tokens=False)["input_ids"]
    pre_tok = runner.load_run(world.pre, "translate")[1].tokenizer
    assert tok("#C C handles object001")["input_ids"] == pre_tok("#C C handles object001")["input_ids"]


def test_multitask_needs_the_generative_mode(world, tmp_path):
    inputs = runner.RunInputs(world.store, world.fs, None, world.ch["train"], out_dir=tmp_path / "r")
    with pytest.raises(TranslateInputError, match="needs mode=generative"):
        translate.CHARADES.task(inputs, {**TINY, "mode": "discriminative", "narrations": str(world.ntr)})


def test_zero_shot_prompt_option(world, tmp_path):
    gt = world.ek["validation"]
    plain = json.loads(Path(runner.predict("translate-ek100", world.pre, world.store, gt,
                                           tmp_path / "a.json")).read_text())
    prompted = json.loads(Path(runner.predict("translate-ek100", world.pre, world.store, gt, tmp_path / "b.json",
                                              prompt="#C C handles {}")).read_text())
    assert plain["results"].keys() == prompted["results"].keys() and plain != prompted
    with pytest.raises(TranslateInputError, match="has no '{}'"):
        runner.predict("translate-ek100", world.pre, world.store, gt, tmp_path / "c.json", prompt="#C C handles")
    # the same through the CLI (`egoflow predict translate-ek100 --prompt ...`)
    from egoflow.cli import main
    store = world.store if isinstance(world.store, str) else world.store.url
    assert main(["predict", "translate-ek100", "--run", str(world.pre), "--store", store, "--annotations", str(gt),
                 "--out", str(tmp_path / "d.json"), "--prompt", "#C C handles {}"]) == 0
    assert json.loads((tmp_path / "d.json").read_text()) == prompted
