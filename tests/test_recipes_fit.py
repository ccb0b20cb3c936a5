"""egoflow.recipes.fit through the CLI: a recipe asked of a feature / text set it does not fit, or with a key its
head lacks, is one line and exit 2 before anything trains; a set that fits trains."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.nlq import make_synthetic_nlq
from egoflow.features_store import FeatureStore
from egoflow.recipes import Recipe, get_recipe, list_recipes
from egoflow.recipes import spec as recipe_spec
from egoflow.recipes.fit import NEEDS_KEYS, misfit


def _nlq_json(queries, path):
    """Ego4D NLQ file of ``queries`` (NLQQuery records)."""
    clips = defaultdict(lambda: defaultdict(list))
    meta = {}
    for q in sorted(queries, key=lambda q: (q.video_uid, q.clip_uid, q.annotation_uid, q.query_idx)):
        clips[q.video_uid][(q.clip_uid, q.annotation_uid)].append(q)
        meta[q.clip_uid] = (q.clip_video_start_sec, q.clip_video_end_sec)
    videos = []
    for vid, anns in clips.items():
        out = []
        for (cid, aid), qs in anns.items():
            s, e = meta[cid]
            out.append({"clip_uid": cid, "video_start_sec": s, "video_end_sec": e, "clip_start_sec": 0.0,
                        "clip_end_sec": e - s, "annotations": [{"annotation_uid": aid, "language_queries": [
                            {"clip_start_sec": q.start_sec, "clip_end_sec": q.end_sec, "query": q.query,
                             "video_start_sec": q.start_sec + s, "video_end_sec": q.end_sec + s} for q in qs]}]})
        videos.append({"video_uid": vid, "split": "train", "clips": out})
    path.write_text(json.dumps({"version": "v1", "videos": videos}))
    return str(path)


@pytest.fixture(scope="module")
def nlq(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    store = FeatureStore(str(tmp / "s.zarr"))
    d = make_synthetic_nlq(store, num_videos=4, clips_per_video=1, clip_sec=64.0, seed=0)
    strings = sorted({q.query for q in d.train + d.val})
    tf = store.load_texts(d.text_set, strings)
    store.write_texts("pooled-only", strings, tf.pooled)  # the same vectors without token sequences
    return dict(store=str(tmp / "s.zarr"), fs=d.feature_set, ts=d.text_set, train=_nlq_json(d.train, tmp / "t.json"),
                val=_nlq_json(d.val, tmp / "v.json"))


def _train(nlq, tmp_path, *extra):
    return main(["train", "vslnet", "--store", nlq["store"], "--feature-set", nlq["fs"], "--annotations",
                 nlq["train"], "--val-annotations", nlq["val"], "--out", str(tmp_path / "run"), *extra])


def test_token_text_recipe_refuses_a_pooled_text_set_in_one_line(nlq, tmp_path, capsys):
    assert _train(nlq, tmp_path, "--recipe", "ego4d-vslnet", "--text-set", "pooled-only") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert (f"recipe ego4d-vslnet@1 does not fit feature set {nlq['fs']} / text set pooled-only: it needs a text "
            "set with token sequences") in err
    assert "text set without token sequences, width 48" in err
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def test_fused_recipe_names_every_missing_property(nlq, tmp_path, capsys):
    assert _train(nlq, tmp_path, "--recipe", "egovlpv2-nlq", "--text-set", nlq["ts"]) == 2
    err = capsys.readouterr().err
    assert "recipe egovlpv2-nlq@2 does not fit" in err
    for need in ("fused features", "the egovlpv2 model family", "width 768", "a query-conditioned set",
                 "text width 768"):
        assert need in err
    assert "token sequences" not in err.split("; ")[0]  # this text set has them
    assert f"{nlq['fs']} has synthetic-nlq features, width 64, not query-conditioned" in err


def test_a_set_that_fits_trains_and_predict_checks_the_fit_too(nlq, tmp_path, capsys):
    assert _train(nlq, tmp_path, "--recipe", "ego4d-vslnet", "--text-set", nlq["ts"], "--epochs", "1",
                  "--set", "dim=16", "--set", "num_heads=2", "--set", "conv_layers=1") == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["head_config"]["mask_conv_padding"] is False and cfg["head_config"]["dim"] == 16
    capsys.readouterr()
    out = tmp_path / "pred.json"
    predict = ["predict", "vslnet", "--run", str(tmp_path / "run"), "--store", nlq["store"], "--feature-set",
               nlq["fs"], "--text-set", nlq["ts"], "--annotations", nlq["val"], "--out", str(out)]
    assert main([*predict, "--recipe", "egovlpv2-nlq"]) == 2
    assert "recipe egovlpv2-nlq@2 does not fit feature set synthetic-nlq" in capsys.readouterr().err
    assert not out.exists()
    assert main(predict) == 0 and json.loads(out.read_text())["results"]


def test_unknown_set_key_with_a_recipe_lists_the_keys(nlq, tmp_path, capsys):
    assert _train(nlq, tmp_path, "--recipe", "ego4d-vslnet", "--set", "badkey=1") == 2
    err = capsys.readouterr().err
    assert "--set badkey: not a config key of head vslnet (with recipe ego4d-vslnet@1); its keys: " in err
    assert "mask_conv_padding" in err and "pos_init_std" in err


def test_a_recipes_own_unknown_key_lists_the_keys(nlq, tmp_path, capsys, monkeypatch):
    bad = Recipe(name="bad-vslnet", version=3, paper="", target="", verbs=("train",), settings=(), head="vslnet",
                 head_overrides={"dims": 8})
    monkeypatch.setitem(recipe_spec._REGISTRY, "bad-vslnet", bad)
    assert _train(nlq, tmp_path, "--recipe", "bad-vslnet") == 2
    err = capsys.readouterr().err
    assert "recipe bad-vslnet@3 sets dims, which head vslnet's config does not have; its keys: " in err
    assert ", dim, " in err


def test_needs_of_the_registry_use_known_keys_and_empty_needs_fit_anything():
    for name in list_recipes():
        assert set(get_recipe(name).needs) <= set(NEEDS_KEYS), name
    info = {"dim": 7, "extractor": {"name": "x"}}
    assert misfit({}, info, None, None) == ([], ["x features", "width 7", "not query-conditioned"])
    fused = {"dim": 4096, "extractor": {"encoder": "fused", "model": "egovlpv2-base", "recipe": "egovlpv2-mq@2"}}
    assert misfit(get_recipe("egovlpv2-mq").needs, fused, None, None)[0] == []
    assert misfit(get_recipe("egovlpv2-mq").needs, {**fused, "dim": 768}, None, None)[0] == ["width 4096"]
    egovlp = {"dim": 4096, "extractor": {"encoder": "fused", "model": "egovlp-base"}}
    assert misfit(get_recipe("egovlpv2-mq").needs, egovlp, None, None)[0] == ["the egovlpv2 model family"]
    with pytest.raises(ValueError, match="unknown recipe needs"):
        misfit({"widht": 3}, info, None, None)
