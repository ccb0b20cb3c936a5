"""`egoflow demo --fused`: the fused path end to end on generated videos, ending with a report.

generated videos + Ego4D-format annotations -> clip-fused model (frozen CLIP, random init unless weights are
given) -> light fusion tuning on the train videos' narrated windows -> query-conditioned extraction of the val
videos with their NLQ queries (lower layers once per window) -> zero-shot NLQ from the stored per-window VTM
P(match) -> official-format predictions -> `egoflow evaluate`'s NLQ metrics, untuned vs tuned fusion.
`egoflow demo` puts its rows (and the fused scorer's zero-shot EgoMCQ) into the one demo report (egoflow.demo.fused).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _query_map(nlq_path) -> tuple[dict, dict]:
    """({video_uid: [queries]}, {video_uid: (clip_uid, annotation_uid, [queries])}) of an NLQ file whose clips
    span their whole videos (as the generated ones shorter than 2 minutes do)."""
    data = json.loads(Path(nlq_path).read_text())
    queries, clips = {}, {}
    for v in data["videos"]:
        for c in v["clips"]:
            for a in c["annotations"]:
                qs = [q["query"] for q in a["language_queries"]]
                queries.setdefault(v["video_uid"], []).extend(q for q in qs if q not in queries.get(v["video_uid"], []))
                clips[v["video_uid"]] = (c["clip_uid"], a["annotation_uid"], qs)
    return queries, clips


def _ground(times: np.ndarray, scores: np.ndarray, half: float, k: int = 5) -> list[list[float]]:
    """Top-k segments from per-window scores: each a run of windows around a peak with score >= half the peak."""
    order, used, out = np.argsort(-scores), np.zeros(len(scores), bool), []
    for i in order:
        if used[i]:
            continue
        lo = hi = i
        while lo > 0 and scores[lo - 1] >= 0.5 * scores[i] and not used[lo - 1]:
            lo -= 1
        while hi < len(scores) - 1 and scores[hi + 1] >= 0.5 * scores[i] and not used[hi + 1]:
            hi += 1
        used[lo:hi + 1] = True
        out.append([float(max(times[lo] - half, 0.0)), float(times[hi] + half)])
        if len(out) == k:
            break
    return out


def _training_pairs(enc, data, uids, fps):
    """Windows of the train videos labelled by the concept segment holding their centre ("#C C <verb> the
    <object>", the narration format; background: "#C C looks around")."""
    import torch

    from egoflow.datasets.synthetic.videos import CONCEPTS
    from egoflow.extract.fused.extract import iter_windows
    from egoflow.extract.pipeline import ExtractConfig

    verbs = {c.name: c.verb for c in CONCEPTS}
    names = sorted(verbs) + ["background"]
    clips, texts, labels = [], [], []
    for uid in uids:
        for w, ts in iter_windows(data.videos[uid], enc, ExtractConfig(fps=fps)):
            for clip, t in zip(w, ts):
                seg = next((s.concept for s in data.segments[uid] if s.start <= t < s.end), "background")
                clips.append(clip)
                texts.append("#C C looks around" if seg == "background" else f"#C C {verbs[seg]} the {seg}")
                labels.append(names.index(seg))
    video = torch.cat([enc._clips(np.stack(clips[i:i + 16])) for i in range(0, len(clips), 16)])
    ids, mask = enc.tokenize(texts)
    return video, ids, mask, torch.tensor(labels)


def fused_nlq(data, out, model: str = "egoflow-tiny-ViT", pretrained: str = "none", quick: bool = False,
              device: str = "cpu", seed: int = 0, steps: int = 0) -> dict:
    """The fused path on ``data`` (``videos.make_dataset``): untuned and tuned fusion, each a query-conditioned
    extraction of the val videos and zero-shot NLQ predictions from its VTM scores.

    Returns ``{"untuned"|"tuned": {"predictions": path, "gt": path}, "tuning": {...}, "encoder": the tuned
    FusedEncoder}``; scoring is the caller's (`egoflow evaluate`'s code)."""
    from egoflow.extract.fused.encoder import FusedEncoder, FusedEncoderConfig
    from egoflow.extract.fused.tune import TuneConfig, save_fusion, tune_fusion
    from egoflow.extract.pipeline import ExtractConfig
    from egoflow.extract.query import extract_conditioned
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.conditioned import read_conditioned, read_conditioned_scores

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    F, fps = 4, 2.0
    queries, clip_of = _query_map(data.annotations["nlq_val"])
    enc = FusedEncoder(FusedEncoderConfig(f"clip-fused-{model}", pretrained, num_frames=F, precision="fp32",
                                          device=device))
    store = FeatureStore(str(out / "store.zarr"))
    results: dict = {"encoder": enc}
    for stage in ("untuned", "tuned"):
        if stage == "tuned":
            pairs = _training_pairs(enc, data, data.splits["train"], fps)
            hist = tune_fusion(enc.model, *pairs, cfg=TuneConfig(steps=steps or (20 if quick else 300), batch=16,
                                                                 lr=2e-3, seed=seed))
            save_fusion(enc.model, out / "fusion.pt")
            results["tuning"] = {"pairs": len(pairs[0]), "vtm_loss_first": hist[0]["vtm"],
                                 "vtm_loss_last": hist[-1]["vtm"]}
        uids = data.splits["val"]
        _, name = extract_conditioned([str(data.videos[u]) for u in uids], store, enc, queries,
                                      ExtractConfig(fps=fps), feature_set=f"conditioned-{stage}", progress=False)
        preds = []
        for u in uids:
            clip_uid, ann_uid, qs = clip_of[u]
            for qi, q in enumerate(qs):
                vf = read_conditioned(store, name, u, q)
                s = read_conditioned_scores(store, name, u, q)
                preds.append({"clip_uid": clip_uid, "annotation_uid": ann_uid, "query_idx": qi,
                              "predicted_times": _ground(vf.times, s, F / fps / 2)})
        pred_path = out / f"nlq_{stage}.json"
        pred_path.write_text(json.dumps({"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": preds}))
        results[stage] = {"predictions": str(pred_path), "gt": str(data.annotations["nlq_val"])}
    return results
