"""egoflow predict egomcq with the fused backbone (the FusedScorer of egoflow.fused_cli, passed to the zero-shot
registry entries; extract.fused.scoring) -> egoflow evaluate.

A generated video and a hand-written egomcq.json in the real format; random-initialised egovlpv2-tiny, toy BPE."""
import json

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.fused.encoder import create_fused_encoder
from egoflow.extract.fused.scoring import clip_frames, pair_scores, similarity_matrix
from egoflow.extract.fused.tokenizer import write_tiny_vocab


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("mcq")
    vids = d / "videos"
    vids.mkdir()
    make_video(vids / "v1.mp4", [(0, 2, "red kettle"), (2, 4, "blue mug")], fps=10, size=(48, 40), seed=3)
    tok = write_tiny_vocab(d / "tok", ["red", "kettle", "blue", "mug", "person"])

    def clip(s, e, uid="v1"):
        return {"video_uid": uid, "clip_start": s, "clip_end": e, "clip_text": ""}
    mcq = {"0": {"query": {**clip(0, 1), "clip_text": "red kettle"}, "answer": 1, "types": 2,
                 "choices": {str(i): clip(i * 0.7, i * 0.7 + 0.6) for i in range(5)}},
           "1": {"query": {**clip(2, 3), "clip_text": "blue mug"}, "answer": 0, "types": 1,
                 "choices": {str(i): clip(0.5 * i, 0.5 * i + 0.5, "v1" if i < 4 else "absent") for i in range(5)}}}
    (d / "egomcq.json").write_text(json.dumps(mcq))
    return d, vids, tok


def test_clip_frames_uniform_and_out_of_range(setup):
    _, vids, _ = setup
    f = clip_frames(vids / "v1.mp4", [(0.0, 1.0), (3.0, 4.0)], 4, 10.0, 32)
    assert len(f) == 2 and f[0].shape == (4, 32, 38, 3) and not np.array_equal(f[0], f[1])
    with pytest.raises(ValueError, match="outside the decoded video"):
        clip_frames(vids / "v1.mp4", [(9.0, 10.0)], 4, 10.0, 32)


def test_scores_and_similarity(setup):
    _, vids, tok = setup
    enc = create_fused_encoder("egovlpv2-tiny", "none", str(tok), num_frames=4, precision="fp32", device="cpu")
    clips = np.stack(clip_frames(vids / "v1.mp4", [(0.0, 1.0), (2.5, 3.5)], 4, 10.0, enc.image_size))
    s = pair_scores(enc, clips, ["red kettle", "blue mug"])
    np.testing.assert_allclose(s["ensemble"], s["dual"] + s["vtm"], rtol=1e-6)
    assert ((s["vtm"] > 0) & (s["vtm"] < 1)).all() and (np.abs(s["dual"]) <= 1 + 1e-6).all()
    sim = similarity_matrix(enc, clips, ["red kettle", "blue mug", "person"], "ensemble")
    assert sim.shape == (3, 2)
    np.testing.assert_allclose(np.diag(sim[:2]), s["ensemble"], atol=1e-5)


def test_predict_then_evaluate(setup, tmp_path, capsys):
    d, vids, tok = setup
    pred = tmp_path / "pred.json"
    rc = main(["predict", "egomcq", "--annotations", str(d / "egomcq.json"), "--videos", str(vids), "--out",
               str(pred), "--encoder", "fused", "--model", "egovlpv2-tiny", "--num-frames", "4", "--tokenizer",
               str(tok), "--precision", "fp32", "--device", "cpu"])
    assert rc == 0
    p = json.loads(pred.read_text())["results"]  # the official submission, as every predictor writes it
    assert list(p) == ["0"] and len(p["0"]) == 5  # item 1 has a candidate in a missing video: left out
    assert "not in" in capsys.readouterr().err
    rc = main(["evaluate", "egomcq", "--pred", str(pred), "--gt", str(d / "egomcq.json"), "--out",
               str(tmp_path / "rep")])
    assert rc == 0
    m = json.loads(next((tmp_path / "rep").glob("*.json")).read_text())
    s = json.dumps(m)
    assert "Intra-video" in s and "num_missing" in s
    assert main(["predict", "egomcq", "--annotations", str(d / "egomcq.json"), "--out", str(pred),
                 "--encoder", "fused"]) == 2  # no --videos: one-line error


def test_info_cost_report(capsys):
    from egoflow.extract.fused.cost import cost_report

    assert main(["info", "--encoder", "fused", "--model", "egovlpv2-tiny", "--num-frames", "4"]) == 0
    assert "per extra query with reuse" in capsys.readouterr().out
    r = cost_report("egovlpv2-base", num_frames=16)
    p, g = r["params_M"], r["gmacs"]
    # TimeSformer-B/16 + RoBERTa-B: ~86 M + ~125 M before the divided-attention and fusion extras
    assert 120 < p["video"] < 135 and 120 < p["text"] < 140 and p["fusion (cross-attention + alphas)"] > 10
    # 16 x 196 patch tokens, 12 blocks of ~16 d^2 MACs per token: ~350-380 GMACs for the dual video tower
    assert 330 < g["unfused: video window (dual)"] < 400
    assert g["fused: per extra query with reuse"] < 0.6 * g["fused: window + query, full model"]
    assert abs(g["fused: lower layers per window (reused)"] + g["fused: per extra query with reuse"]
               - g["fused: window + query, full model"]) < 1e-6


def test_predict_ek100_mir_then_evaluate(setup, tmp_path):
    import pickle

    _, vids, tok = setup
    root = tmp_path / "mir"
    (root / "relevancy").mkdir(parents=True)
    (root / "EPIC_100_retrieval_test.csv").write_text(
        "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,narration\n"
        "v1_0,P01,v1,00:00:00.50,00:00:00.10,00:00:01.60,pick up red kettle\n"
        "v1_1,P01,v1,00:00:02.50,00:00:02.20,00:00:03.80,wash blue mug\n")
    (root / "EPIC_100_retrieval_test_sentence.csv").write_text(
        "narration_id,narration\nv1_0,pick up red kettle\nv1_1,wash blue mug\n")
    (root / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl").write_bytes(pickle.dumps(np.eye(2)))
    out = tmp_path / "sub.npz"
    rc = main(["predict", "ek100-mir", "--annotations", str(root), "--videos", str(vids), "--out", str(out),
               "--encoder", "fused", "--model", "egovlpv2-tiny", "--num-frames", "4", "--tokenizer", str(tok),
               "--precision", "fp32", "--device", "cpu"])
    assert rc == 0
    z = np.load(out)
    assert z["sim_mat"].shape == (2, 2) and list(z["vis_ids"]) == ["v1_0", "v1_1"]
    assert np.abs(z["sim_mat"]).max() <= 1 + 1e-6 and z["sim_mat"][0, 0] != z["sim_mat"][1, 0]
    assert main(["evaluate", "ek100-mir", "--pred", str(out), "--gt", str(root), "--out", str(tmp_path / "r")]) == 0


def test_encode_text_with_fused_encoder(setup, tmp_path):
    from egoflow.features_store import FeatureStore

    _, _, tok = setup
    lines = tmp_path / "q.txt"
    lines.write_text("red kettle\nblue mug\n")
    store = str(tmp_path / "t.zarr")
    assert main(["encode-text", str(lines), "--store", store, "--encoder", "fused", "--model", "egovlpv2-tiny",
                 "--tokenizer", str(tok), "--precision", "fp32", "--device", "cpu"]) == 0
    s = FeatureStore(store, mode="r")
    assert s.text_sets() == ["fused-egovlpv2-tiny-none-text"]
    t = s.load_texts("fused-egovlpv2-tiny-none-text", ["red kettle", "blue mug"])
    assert np.allclose(np.linalg.norm(np.asarray(t.pooled, np.float32), axis=1), 1, atol=1e-2)
    # no tokenizer folder: a one-line error, not a traceback
    assert main(["encode-text", str(lines), "--store", str(tmp_path / "u.zarr"), "--encoder", "fused",
                 "--model", "egovlpv2-tiny", "--device", "cpu"]) == 2


def test_fused_demo_quick(tmp_path, one_thread):
    """egoflow demo --fused --quick: only the demo's fused part (generated videos -> tuning -> conditioned
    extraction -> zero-shot NLQ; the fused scorer's zero-shot EgoMCQ), into the demo's one report format."""
    assert main(["demo", "--fused", "--quick", "--out", str(tmp_path / "d")]) == 0
    r = json.loads((tmp_path / "d" / "demo_summary.json").read_text())["results"]
    assert r and all(k.startswith("fused ") for k in r)  # no head or recipe rows
    nlq = {k.split(", ")[1].split(" ")[0]: v["nlq"] for k, v in r.items() if "nlq" in v}
    assert nlq["untuned"]["num_evaluated"] == nlq["tuned"]["num_evaluated"] > 0
    assert nlq["tuned"]["vtm_loss_last"] < nlq["tuned"]["vtm_loss_first"]
    assert [v["egomcq"]["num_missing"] for v in r.values() if "egomcq" in v] == [0]
    md = (tmp_path / "d" / "report" / "report.md").read_text()
    assert "## nlq" in md and "## egomcq" in md
    assert (tmp_path / "d" / "fused" / "fusion.pt").is_file()


def test_predict_charades_whole_videos_with_the_fused_scorer(setup, tmp_path):
    """The same zero-shot charades entry, the fused scorer passed in: whole videos (probed duration) vs prompts."""
    _, vids, tok = setup
    (tmp_path / "Charades_v1_classes.txt").write_text("c000 red kettle\nc001 blue mug\n")
    ann = tmp_path / "CharadesEgo_v1_test_only1st.csv"
    ann.write_text("id,actions,length\nv1,c000 0.0 2.0;c001 2.0 4.0,4.0\n")
    out = tmp_path / "ch.txt"
    assert main(["predict", "charades", "--annotations", str(ann), "--videos", str(vids), "--out", str(out),
                 "--encoder", "fused", "--model", "egovlpv2-tiny", "--num-frames", "4", "--tokenizer", str(tok),
                 "--precision", "fp32", "--device", "cpu", "--score", "vtm"]) == 0
    rows = [ln.split() for ln in out.read_text().splitlines()]
    assert [r[0] for r in rows] == ["v1"] and len(rows[0]) == 3
    assert all(0 < float(x) < 1 for x in rows[0][1:])  # vtm: P(match) of the whole video with each class name
