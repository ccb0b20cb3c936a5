"""Recipes (egoflow.recipes): the registry, `egoflow recipes [show]`, `--recipe` on the verbs (settings filled,
one line per departure, contradictions refused with exit 2) and the recipe paths end to end on a tiny random
EgoVLPv2 (reference windows, NLQ token features, unnormalised MQ features, fused CharadesEgo)."""
import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import egoflow.extract.fused.scoring as scoring
import egoflow.fused_cli as fused_cli
from egoflow.cli import main
from egoflow.extract.fused.tokenizer import write_tiny_vocab
from egoflow.features_store import FeatureStore
from egoflow.features_store.conditioned import read_conditioned
from egoflow.recipes import NOT_FOUND, RecipeError, apply, get_recipe, list_recipes

FIX = Path(__file__).parent / "fixtures" / "recipes"
TEN = {"egovlpv2-egomcq", "egovlpv2-ek100-mir", "egovlpv2-charades", "egovlpv2-nlq", "egovlpv2-mq", "egovlpv2-qfvs",
       "egovlp-nlq", "egovlp-mq", "ego4d-clip-1.875fps", "laviti"}
sys.path.insert(0, str(FIX))
from gen_video import read_index  # noqa: E402
from test_extract_fused_checkpoint import smallproj_file  # noqa: E402

WORDS = ["person", "opens", "the", "door", "red", "kettle", "blue", "mug"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return str(write_tiny_vocab(tmp_path_factory.mktemp("tok"), WORDS))


@pytest.fixture(scope="module")
def clipdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    shutil.copy(FIX / "index30.mp4", d / "clip-a.mp4")  # 5 s at 30 fps
    return d


def test_registry_lists_the_ten_recipes_with_three_cited_columns():
    assert set(list_recipes()) >= TEN
    for n in list_recipes():
        r = get_recipe(n)
        assert r.target and r.settings and r.commands
        for s in r.settings:
            assert s.paper and s.reference and s.egoflow, (n, s.name)
            assert s.source == NOT_FOUND or ("@" in s.source and ":" in s.source), (n, s.name, s.source)
    assert get_recipe("egovlpv2-nlq@2") is get_recipe("egovlpv2-nlq")
    with pytest.raises(RecipeError, match="known: ego4d-clip"):
        get_recipe("egovlpv3")
    spec = get_recipe("egovlpv2-mq").encoder_spec(pretrained="x.pth")
    assert (spec.frames, spec.precision, spec.feature, spec.recipe) == (16, "fp32", "dual-proj", "egovlpv2-mq@2")


def test_recipes_verb_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in TEN)
    assert main(["recipes", "show", "egovlpv2-nlq"]) == 0
    out = capsys.readouterr().out
    assert "paper" in out and "reference (repo@commit:file)" in out and "egoflow" in out
    assert "facebookresearch/EgoVLPv2@550c059" in out and "12.95" in out
    assert main(["recipes", "show", "nope"]) == 2
    assert "known: ego4d-clip-1.875fps" in capsys.readouterr().err


def _ns(**kw):
    base = dict(command="extract", encoder="clip", model=None, frames=-1, precision="auto", fps=None, stride=0,
                recipe="egovlpv2-nlq")
    return argparse.Namespace(**{**base, **kw})


def test_apply_fills_settings_and_says_what_departs(capsys):
    a = _ns()
    apply(a, ["extract", "v.mp4", "--recipe", "egovlpv2-nlq"])
    assert (a.encoder, a.model, a.frames, a.precision, a.fps, a.stride) == ("fused", "egovlpv2-base", 4, "fp32",
                                                                            7.48, 4)
    assert a.encoder_extras["frame_rule"] == "start-end-decord" and a.encoder_extras["text_tokens"] == "hidden"
    assert a.encoder_extras["recipe"] == "egovlpv2-nlq@2" and capsys.readouterr().err == ""
    from egoflow.extract.encoders import EncoderSpec

    spec = EncoderSpec(kind=a.encoder, model=a.model, frames=a.frames, precision=a.precision, **a.encoder_extras)
    assert spec == get_recipe("egovlpv2-nlq").encoder_spec()  # the flags + extras are the recipe's EncoderSpec
    a = _ns(frames=8, precision="bf16")  # --num-frames: the old spelling of --frames counts as it
    apply(a, ["extract", "v.mp4", "--recipe=egovlpv2-nlq", "--num-frames", "8", "--precision=bf16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--frames 8 (recipe: 4)" in err[0] and "--precision bf16 (recipe: fp32)" in err[0]
    assert a.frames == 8 and a.encoder_extras["recipe"] == "egovlpv2-nlq@2 with --frames 8, --precision bf16"
    with pytest.raises(RecipeError, match="--model clip-fused-ViT-B-32 contradicts"):
        apply(_ns(model="clip-fused-ViT-B-32"), ["extract", "--model", "clip-fused-ViT-B-32"])
    with pytest.raises(RecipeError, match="is for `egoflow predict`"):
        apply(_ns(recipe="egovlpv2-egomcq"), [])


def test_apply_train_head_overrides_and_head_check():
    a = argparse.Namespace(command="train", head="vslnet", recipe="egovlpv2-nlq", epochs=None, lr=None,
                           batch_size=None, set=["max_pos_len=128"])
    apply(a, ["train", "vslnet", "--set", "max_pos_len=128"])
    assert (a.epochs, a.lr, a.batch_size) == (50, 0.001, 32)
    assert "video_dim=768" in a.set and "conditioned=true" in a.set and "max_pos_len=256" not in a.set
    with pytest.raises(RecipeError, match="not `egoflow train vsgn`"):
        apply(argparse.Namespace(command="train", head="vsgn", recipe="egovlpv2-nlq"), [])


def test_cli_bad_recipe_inputs_exit_2(capsys, clipdir, tmp_path):
    s = str(tmp_path / "s.zarr")
    assert main(["extract", str(clipdir), "--store", s, "--recipe", "nope"]) == 2
    assert "unknown recipe 'nope'; known:" in capsys.readouterr().err
    assert main(["extract", str(clipdir), "--store", s, "--recipe", "egovlpv2-mq", "--encoder", "clip"]) == 2
    assert "--encoder clip contradicts recipe egovlpv2-mq@2" in capsys.readouterr().err


def test_nlq_recipe_end_to_end_reference_windows_and_token_text(clipdir, tok, tmp_path, capsys):
    s = str(tmp_path / "s.zarr")
    q = tmp_path / "q.txt"
    q.write_text("person opens the door\nred kettle\n")
    base = ["--store", s, "--recipe", "egovlpv2-nlq", "--model", "egovlpv2-tiny", "--tokenizer", tok, "--quiet"]
    assert main(["extract", str(clipdir), "--queries", str(q), "--strict", *base]) == 2  # gates at 0: refused
    assert "every fusion gate is 0" in capsys.readouterr().err
    assert main(["extract", str(clipdir), "--queries", str(q), *base]) == 0
    err = capsys.readouterr().err
    assert "every fusion gate is 0" in err and "--model egovlpv2-tiny (recipe: egovlpv2-base)" in err
    st = FeatureStore(s)
    name = [n for n in st.feature_sets() if n.endswith("-query")][0]
    ext = st.feature_set_info(name)["extractor"]
    assert ext["recipe"].startswith("egovlpv2-nlq@2") and ext["sampling"] == "start-end-decord"
    v = read_conditioned(st, name, "clip-a", "red kettle")
    feats, times = v.feats, v.times
    # 5 s at 1.87 windows/s x 4 frames: int(5 * 7.48 + 1) = 38 frames -> 9 windows of 4 (2 dropped)
    assert feats.shape[0] == len(times) == 9 and np.all(np.diff(times) > 0)
    assert main(["encode-text", str(q), "--store", s, "--recipe", "egovlpv2-nlq", "--model", "egovlpv2-tiny",
                 "--tokenizer", tok, "--text-set", "qt"]) == 0
    t = st.load_texts("qt", ["person opens the door", "red kettle"])
    assert t.tokens is not None and t.tokens.shape[2] == 24  # the tiny text tower's width: hidden states
    assert list(t.lengths) == [6, 4]  # <s> + words + </s>, no padding counted
    assert np.allclose(np.linalg.norm(t.pooled, axis=1), 1, atol=1e-3)


def test_mq_recipe_stores_the_unnormalised_projection(clipdir, tmp_path):
    s = str(tmp_path / "s.zarr")
    assert main(["extract", str(clipdir), "--store", s, "--recipe", "egovlpv2-mq", "--model", "egovlpv2-tiny",
                 "--quiet"]) == 0
    st = FeatureStore(s)
    (name,) = st.feature_sets()
    v = st.read_video(name, "clip-a")
    assert v.feats.shape == (9, 16)  # 150 frames -> 144 in windows of 16; proj_dim 16
    assert not np.allclose(np.linalg.norm(v.feats.astype(np.float32), axis=1), 1, atol=1e-2)


def test_fused_charades_with_the_reference_32_frames(tok, tmp_path, capsys):
    vids = tmp_path / "v"
    vids.mkdir()
    shutil.copy(FIX / "index30.mp4", vids / "AB12C.mp4")
    (tmp_path / "Charades_v1_classes.txt").write_text("c000 person opens the door\nc001 red kettle\n")
    csv = tmp_path / "CharadesEgo_v1_test_only1st.csv"
    csv.write_text("id,actions\nAB12C,c001 0.0 3.0\n")
    out = tmp_path / "charades.txt"
    argv = ["predict", "charades", "--encoder", "fused", "--recipe", "egovlpv2-charades", "--model", "egovlpv2-tiny",
            "--tokenizer", tok, "--videos", str(vids), "--annotations", str(csv), "--out", str(out)]
    assert main(argv) == 0
    line = out.read_text().split()
    assert line[0] == "AB12C" and len(line) == 3
    short = tmp_path / "short"
    short.mkdir()
    from egoflow.datasets.synthetic.videos import make_video

    make_video(short / "AB12C.mp4", [(0, 0.5, "red kettle")], fps=30, size=(48, 40), seed=1)  # 15 frames < 32
    assert main(argv[:argv.index("--videos") + 1] + [str(short)] + argv[argv.index("--videos") + 2:]) == 2
    assert "fewer than the recipe's 32" in capsys.readouterr().err


def test_docs_recipes_page_is_in_sync_with_the_registry():
    from egoflow.recipes.show import format_markdown

    page = (Path(__file__).parents[1] / "docs" / "recipes.md").read_text()
    for n in list_recipes():
        assert format_markdown(n) in page, f"docs/recipes.md is stale for {n}: regenerate with `egoflow recipes " \
                                           f"show {n} --markdown`"


def test_egomcq_recipe_scores_the_frames_the_reference_reads(tok, tmp_path, monkeypatch):
    cases = [c for c in json.loads((FIX / "reference_loaders.json").read_text())["cases"]
             if c["rule"] == "egoclip-cv2"][:5]
    vids = tmp_path / "v"
    vids.mkdir()
    shutil.copy(FIX / "index30.mp4", vids / "vid.mp4")  # the original: egoflow pre-resizes in the decoder

    def clip(c):
        return {"video_uid": "vid", "clip_start": c["args"]["start"], "clip_end": c["args"]["end"], "clip_text": ""}
    mcq = {"0": {"query": {**clip(cases[0]), "clip_text": "red kettle"}, "answer": 1, "types": 2,
                 "choices": {str(i): clip(c) for i, c in enumerate(cases)}}}
    (tmp_path / "egomcq.json").write_text(json.dumps(mcq))
    seen = []
    real = scoring.pair_scores

    def spy(encoder, clips, texts, score=None):
        seen.extend(clips)
        return real(encoder, clips, texts, score)
    monkeypatch.setattr(fused_cli, "pair_scores", spy)  # the name the fused scorer calls
    assert main(["predict", "egomcq", "--recipe", "egovlpv2-egomcq", "--encoder", "fused", "--model", "egovlpv2-tiny",
                 "--tokenizer", tok, "--annotations", str(tmp_path / "egomcq.json"), "--videos", str(vids),
                 "--out", str(tmp_path / "pred.json")]) == 0
    assert [[read_index(f) for f in c] for c in seen] == [c["shown"] for c in cases]
    assert seen[0].shape[1:] == (256, 454, 3)  # pre-resized to height 256 in the decoder


def test_clip_recipe_sets_the_rate_and_is_stored(tmp_path, clipdir, capsys):
    s = str(tmp_path / "s.zarr")
    assert main(["extract", str(clipdir), "--store", s, "--recipe", "ego4d-clip-1.875fps", "--model",
                 "egoflow-tiny-ViT", "--quiet"]) == 0
    assert "--model egoflow-tiny-ViT (recipe: ViT-B-32)" in capsys.readouterr().err
    st = FeatureStore(s)
    (name,) = st.feature_sets()
    ext = st.feature_set_info(name)["extractor"]
    assert ext["fps"] == 1.875 and ext["recipe"] == "ego4d-clip-1.875fps@1 with --model egoflow-tiny-ViT"
    assert ext["precision"] == "float32"


def test_ek100_recipe_scores_the_frames_the_reference_reads(tok, tmp_path, monkeypatch, capsys):
    import pickle

    cases = [c for c in json.loads((FIX / "reference_loaders.json").read_text())["cases"]
             if c["rule"] == "epic-decord"][:2]
    vids = tmp_path / "v"
    vids.mkdir()
    shutil.copy(FIX / "index30.mp4", vids / "vid.mp4")
    root = tmp_path / "mir"
    (root / "relevancy").mkdir(parents=True)

    def ts(t):
        return f"00:00:{t:05.2f}"
    rows = "".join(f"vid_{i},P01,vid,{ts(c['args']['start'])},{ts(c['args']['start'])},{ts(c['args']['end'])},"
                   f"red door\n" for i, c in enumerate(cases))
    (root / "EPIC_100_retrieval_test.csv").write_text(
        "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,narration\n" + rows)
    (root / "EPIC_100_retrieval_test_sentence.csv").write_text("narration_id,narration\nvid_0,red door\n")
    (root / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl").write_bytes(pickle.dumps(np.eye(2)[:, :1]))
    seen = []
    real = scoring.similarity_matrix

    def spy(encoder, clips, texts, score="dual"):
        seen.extend(clips)
        return real(encoder, clips, texts, score)
    monkeypatch.setattr(fused_cli, "similarity_matrix", spy)
    ck = tmp_path / "EgoVLPv2_smallproj.pth"
    smallproj_file(ck)  # the smallproj format (256-d heads of model_epic_charades.py) at tiny size
    argv = ["predict", "ek100-mir", "--recipe", "egovlpv2-ek100-mir", "--encoder", "fused", "--model",
            "egovlpv2-tiny-smallproj", "--pretrained", str(ck), "--tokenizer", tok, "--annotations", str(root),
            "--videos", str(vids), "--out", str(tmp_path / "sub.npz")]
    assert main(argv) == 0
    assert [[read_index(f) for f in c] for c in seen] == [c["shown"] for c in cases]
    assert main([x if x != "egovlpv2-tiny-smallproj" else "egovlpv2-tiny" for x in argv]) == 2  # 16-d "minimal"
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "has the small 8-d projection" in err[0] and "egovlpv2-base-smallproj" in err[0]


def test_head_recipe_trains_with_the_reference_settings(tmp_path, capsys):
    """`egoflow train vslnet --recipe ego4d-vslnet`: the baseline's head options and its optimiser, schedule and
    decay rule reach the run (config.json), an explicit flag departs in one line, other heads are refused."""
    from egoflow.datasets.synthetic.nlq import make_synthetic_nlq, write_nlq_json
    from egoflow.heads.vslnet.head import BASELINE_HEAD, BASELINE_TRAIN

    store = FeatureStore(str(tmp_path / "s.zarr"))
    data = make_synthetic_nlq(store, num_videos=6, seed=0)
    write_nlq_json(data.train, tmp_path / "train.json")
    out = tmp_path / "run"
    assert main(["train", "vslnet", "--recipe", "ego4d-vslnet", "--store", store.url, "--feature-set",
                 data.feature_set, "--text-set", data.text_set, "--annotations", str(tmp_path / "train.json"),
                 "--out", str(out), "--epochs", "1", "--set", "dim=16", "--set", "num_heads=2"]) == 0
    err = capsys.readouterr().err
    assert "--epochs 1 (recipe: 200)" in err
    cfg = json.loads((out / "config.json").read_text())
    for k, v in BASELINE_HEAD.items():
        if k not in ("dim", "num_heads"):  # given with --set: the user's
            assert cfg["head_config"][k] == v, k
    assert cfg["head_config"]["dim"] == 16
    for k in ("optimizer", "no_decay_norm_bias", "schedule", "lr", "grad_clip"):
        assert cfg["train_config"][k] == BASELINE_TRAIN[k], k
    assert cfg["train_config"]["epochs"] == 1
    assert main(["train", "vsgn", "--recipe", "ego4d-vslnet", "--store", store.url, "--feature-set",
                 data.feature_set, "--annotations", str(tmp_path / "train.json"), "--out", str(tmp_path / "x")]) == 2
    assert "not `egoflow train vsgn`" in capsys.readouterr().err


def test_extract_refuses_videos_shorter_than_the_recipe_window_or_skips_them(clipdir, tok, tmp_path, capsys):
    """A 0.3 s clip cannot make one 16-frame window at 1.87 windows/s (0.50 s): refused up front in one line
    naming it (exit 2, no store written); --skip-short records it as failed and extracts the rest (exit 1)."""
    from egoflow.datasets.synthetic.videos import make_video

    vids = tmp_path / "v"
    vids.mkdir()
    shutil.copy(clipdir / "clip-a.mp4", vids / "clip-a.mp4")
    make_video(vids / "tiny.mp4", [(0, 0.3, "red kettle")], fps=30, size=(48, 40), seed=1)
    s = tmp_path / "s.zarr"
    argv = ["extract", str(vids), "--store", str(s), "--recipe", "egovlpv2-mq", "--model", "egovlpv2-tiny", "--quiet"]
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "1 video(s) shorter than recipe egovlpv2-mq@2" in err[0]
    assert f"{vids / 'tiny.mp4'} (0.30 s)" in err[0] and "0.50 s: 16 frames at 1.87 windows/s" in err[0]
    assert "--skip-short" in err[0] and not s.exists()  # checked before the model loads: nothing written
    assert main(argv + ["--skip-short"]) == 1
    out = capsys.readouterr().out
    assert "done 1, skipped 0, failed 1" in out and "failed tiny [check] video lasts 0.30 s" in out
    st = FeatureStore(str(s))
    (name,) = st.feature_sets()
    (f,) = st.failures(name)
    assert f["video_uid"] == "tiny" and f["stage"] == "check" and "--skip-short" in f["reason"]
    assert st.read_video(name, "clip-a").feats.shape == (9, 16)
    q = tmp_path / "q.txt"  # query-conditioned extraction (NLQ, F = 4: a 0.40 s window) records it the same way
    q.write_text("red kettle\n")
    nlq = ["extract", str(vids), "--store", str(tmp_path / "q.zarr"), "--recipe", "egovlpv2-nlq", "--model",
           "egovlpv2-tiny", "--tokenizer", tok, "--queries", str(q), "--quiet"]
    assert main(nlq) == 2 and "(0.40 s: 4 frames at 1.87 windows/s)" in capsys.readouterr().err
    assert main(nlq + ["--skip-short"]) == 1
    qs = FeatureStore(str(tmp_path / "q.zarr"))
    assert [f["video_uid"] for f in qs.failures(qs.feature_sets()[0])] == ["tiny"]
