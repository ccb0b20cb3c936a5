"""Zero-shot predictions (EgoMCQ, EK-100 MIR, CharadesEgo): registry entries without a run, through the one runner,
scored by `egoflow evaluate`; the scorer is pluggable (by name, or an object passed in); missing texts/videos are
named."""
import json
import pickle

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.linear import PlantedSpec, make_planted, write_files, write_store
from egoflow.datasets.synthetic.zeroshot import PROMPT, write_zeroshot_files
from egoflow.features_store import FeatureStore
from egoflow.heads import runner
from egoflow.heads.registry import describe_heads, get_spec, zero_shot_heads
from egoflow.heads.runner import predict
from egoflow.heads.zeroshot import SCORERS, Span, clip_cosine, register_scorer


@pytest.fixture(scope="module")
def zs(tmp_path_factory):
    root = tmp_path_factory.mktemp("zs")
    data = make_planted(PlantedSpec(num_videos=6))
    _, strings = write_files(data, root)
    paths = write_zeroshot_files(data, root)
    url = str(root / "s.zarr")
    fs, ts = write_store(data, FeatureStore(url), strings=strings)
    return {"root": root, "url": url, "fs": fs, "ts": ts, **{k: str(v) for k, v in paths.items()}}


def _cli_predict_and_score(zs, tmp_path, name, ann, out, *extra):
    pred = tmp_path / out
    assert main(["predict", name, "--store", zs["url"], "--feature-set", zs["fs"], "--text-set", zs["ts"],
                 "--annotations", ann, "--out", str(pred), *extra]) == 0
    assert main(["evaluate", name, "--pred", str(pred), "--gt", ann, "--out", str(tmp_path / "rep")]) == 0
    return pred, json.loads((tmp_path / "rep" / "report.json").read_text())[pred.stem][name]


def test_egomcq(zs, tmp_path):
    pred, m = _cli_predict_and_score(zs, tmp_path, "egomcq", zs["egomcq"], "mcq.json")
    assert m["Inter-video"] > 0.8 and m["Intra-video"] > 0.8 and m["num_missing"] == 0  # chance 0.2
    scores = json.loads(pred.read_text())["results"]
    assert len(scores) == 40 and all(len(v) == 5 for v in scores.values())


def test_ek100_mir_official_layout(zs, tmp_path):
    pred, m = _cli_predict_and_score(zs, tmp_path, "ek100-mir", zs["mir"], "mir.pkl")
    sub = pickle.loads(pred.read_bytes())
    assert set(sub) >= {"sim_mat", "vis_ids", "txt_ids"} and sub["sim_mat"].shape == (len(sub["vis_ids"]),
                                                                                        len(sub["txt_ids"]))
    assert m["mAP"] > 0.8 and m["nDCG"] > 0.8 and m["num_missing_videos"] == 0


def test_charades_from_prompts(zs, tmp_path):
    pred, m = _cli_predict_and_score(zs, tmp_path, "charades", zs["charades"], "ch.txt", "--prompt", PROMPT)
    assert m["mAP"] > 0.9 and len(pred.read_text().splitlines()) == m["num_videos"]
    with pytest.raises(KeyError, match="have no embedding in text set .*'noun0'"):  # unprompted names never encoded
        predict("charades", None, zs["url"], zs["charades"], tmp_path / "x.txt", feature_set=zs["fs"],
                text_set=zs["ts"])


def test_scorer_is_pluggable(zs, tmp_path):
    register_scorer("anti", lambda clips, texts: -clip_cosine(clips, texts))
    try:
        kw = {"feature_set": zs["fs"], "text_set": zs["ts"]}
        out = predict("egomcq", None, zs["url"], zs["egomcq"], tmp_path / "anti.json", scorer="anti", **kw)
        ref = predict("egomcq", None, zs["url"], zs["egomcq"], tmp_path / "ref.json", **kw)
        a, r = (json.loads(open(p).read())["results"] for p in (out, ref))
        assert all(np.allclose(a[k], -np.asarray(r[k])) for k in r)
    finally:
        SCORERS.pop("anti")
    with pytest.raises(KeyError, match="unknown zero-shot scorer 'nope'; available: clip"):
        predict("egomcq", None, zs["url"], zs["egomcq"], tmp_path / "n.json", feature_set=zs["fs"],
                text_set=zs["ts"], scorer="nope")


def test_errors(zs, tmp_path, capsys):
    items = json.loads(open(zs["egomcq"]).read())
    items["3"]["choices"]["2"]["video_uid"] = "ghost"
    bad = tmp_path / "egomcq.json"
    bad.write_text(json.dumps(items))
    assert main(["predict", "egomcq", "--store", zs["url"], "--feature-set", zs["fs"], "--text-set", zs["ts"],
                 "--annotations", str(bad), "--out", str(tmp_path / "p.json")]) == 2
    assert "egomcq.json: 3.choices.2: video 'ghost' is not in feature set" in capsys.readouterr().err
    assert main(["predict", "linear-oscc", "--store", zs["url"], "--annotations", str(bad),
                 "--out", str(tmp_path / "p.json")]) == 2
    assert "--run is required (zero-shot predictors without a run: charades, egomcq, ek100-mir)" in \
        capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_demo_hook(zs, tmp_path):
    from types import SimpleNamespace

    from egoflow.heads.zeroshot import demo

    # the demo's text set holds raw class names: encode them here as the demo's encode-text does
    store = FeatureStore(zs["url"])
    names = [ln.split(" ", 1)[1].strip() for ln in open(zs["charades_classes"])]
    pooled = store.load_texts(zs["ts"], [PROMPT.format(n) for n in names]).pooled
    store.write_texts("raw-names", names, pooled)
    ctx = SimpleNamespace(store=zs["url"], feature_set=zs["fs"], text_set="raw-names", charades_val=zs["charades"],
                          charades_classes=zs["charades_classes"], out_dir=str(tmp_path))
    r = demo(ctx, runner)
    assert r["benchmark"] == "charades" and r["metrics"]["mAP"] > 0.9 and (tmp_path / "charades_zeroshot.txt").exists()


def test_encode_text_reads_the_zero_shot_files(zs, tmp_path):
    from egoflow.datasets.texts import annotation_strings

    kind, qs = annotation_strings(zs["egomcq"])
    assert kind == "egomcq" and len(qs) == len(set(qs)) and all(q.startswith("verb") for q in qs)
    kind, caps = annotation_strings(f"{zs['mir']}/EPIC_100_retrieval_test_sentence.csv")
    assert kind == "narrations" and len(caps) > 5
    kind, qs = annotation_strings(zs["root"] / "egotaskqa" / "direct" / "train_qas.json")
    assert kind == "questions" and sorted(qs) == ["what am I holding?", "which object do I use?"]


def test_registry_lists_the_zero_shot_predictors(capsys):
    assert zero_shot_heads() == ["charades", "egomcq", "ek100-mir"]
    assert {n: describe_heads()[n]["benchmark"] for n in zero_shot_heads()} == \
        {"charades": "charades", "egomcq": "egomcq", "ek100-mir": "ek100-mir"}
    assert main(["heads"]) == 0
    listed = {ln.split()[0] for ln in capsys.readouterr().out.splitlines()}
    assert {"charades", "egomcq", "ek100-mir", "vslnet", "translate-egomcq"} <= listed
    assert get_spec("egomcq").zero_shot and not get_spec("vslnet").zero_shot


class OracleScorer:
    """A scorer passed in (as the CLI passes the fused backbone's): no store at all; the right clip scores 1."""

    def __init__(self, answers):
        self.answers, self.seen = answers, []

    def pairs(self, clips, texts):
        self.seen += [c.where for c in clips]
        return np.array([float(self.answers.get(c.where.split(".")[0]) == int(c.where.rsplit(".", 1)[1]))
                         if c.video_uid != "ghost" else np.nan for c in clips])

    def matrix(self, clips, texts):
        raise AssertionError("egomcq scores pairs")


def test_a_scorer_object_needs_no_store(zs, tmp_path):
    items = json.loads(open(zs["egomcq"]).read())
    items["3"]["choices"]["2"]["video_uid"] = "ghost"  # the scorer cannot score it: item 3 is left out
    ann = tmp_path / "egomcq.json"
    ann.write_text(json.dumps(items))
    oracle = OracleScorer({k: int(v["answer"]) for k, v in items.items()})
    path = predict("egomcq", None, None, str(ann), tmp_path / "o.json", scorer=oracle)
    scores = json.loads(open(path).read())["results"]
    assert len(scores) == len(items) - 1 and "3" not in scores
    assert all(int(np.argmax(v)) == int(items[k]["answer"]) for k, v in scores.items())
    assert oracle.seen[:2] == [f"{next(iter(items))}.choices.0", f"{next(iter(items))}.choices.1"]
    assert Span("v", 1.0, 2.0).where == ""
    with pytest.raises(ValueError, match="zero-shot egomcq: pass --store and --feature-set"):
        predict("egomcq", None, None, str(ann), tmp_path / "n.json")
    with pytest.raises(ValueError, match="egomcq is a zero-shot predictor: it takes no --run"):
        predict("egomcq", tmp_path, zs["url"], str(ann), tmp_path / "n.json", feature_set=zs["fs"])


def test_fused_encoder_is_refused_for_trained_heads(zs, tmp_path, capsys):
    assert main(["predict", "vslnet", "--run", str(tmp_path), "--annotations", zs["egomcq"], "--out",
                 str(tmp_path / "p.json"), "--encoder", "fused", "--videos", str(tmp_path)]) == 2
    assert "--encoder fused scores clips for the zero-shot predictors (charades, egomcq, ek100-mir)" in \
        capsys.readouterr().err
