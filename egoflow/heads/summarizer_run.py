"""Summarizer from a feature store: train (shared loop), predict (QFVS predictions JSON), leave-one-out, demo.

``annotations`` is a QFVS ``origin_data`` folder (or a parent of it). Predictions are
``{"results": {video_id: {CONCEPT1_CONCEPT2: [0-based shots]}}}``, what ``egoflow.evaluate.qfvs`` scores.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from egoflow.datasets.qfvs import VIDEOS, load_qfvs
from egoflow.heads import runs
from egoflow.heads.summarizer import Config, build
from egoflow.heads.summarizer_data import (QFVSDataset, SummarizerDataError, collate_qfvs, load_videos,
                                           make_samples)

TRAIN_DEFAULTS = dict(epochs=20, batch_size=4, lr=5e-4, weight_decay=0.01, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine", warmup_steps=10)
METRIC = "F1"


def _text_set(store, text_set):
    return runs.resolve_text_set(store, text_set or None, "prompt embeddings", SummarizerDataError)


def _dataset(store, feature_set, text_set, root, vids, cfg: Config):
    videos = load_qfvs(root, videos=tuple(vids))
    data = load_videos(store, feature_set, videos, cfg.shot_seconds, cfg.kts_lmax, cfg.kts_max_change_points,
                       cfg.kts_vmax)
    return videos, QFVSDataset(make_samples(store, text_set, videos, data))


@torch.no_grad()
def predict(model, decode, data: QFVSDataset, batch_size: int = 4) -> dict:
    """{video: {query: [shots]}} for every sample of ``data``."""
    model.eval()
    device = next(model.parameters()).device
    out: dict = {}
    from egoflow.heads.train import move_to
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate_qfvs):
        for p in decode(model(move_to(batch, device)), batch):
            out.setdefault(p["video"], {})[p["query"]] = p["shots"]
    return out


def score(videos, preds: dict) -> dict:
    from egoflow.evaluate.qfvs import evaluate_qfvs
    r = evaluate_qfvs(videos, preds)
    out = {k: r[k] for k in ("F1", "precision", "recall")}
    out.update({f"F1 {v}": s["F1"] for v, s in r["per_video"].items()})
    return out


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """Train on ``cfg.train_videos`` of the QFVS folder ``annotations``; keep the best epoch by F1 on
    ``cfg.test_video`` (read from ``val_annotations`` if given, else from ``annotations``)."""
    from egoflow.heads.train import fit
    store = runs.open_store(store)
    text_set = _text_set(store, text_set)
    over = dict(head_overrides or {})
    over.setdefault("video_dim", int(store.feature_set_info(feature_set)["dim"]))
    over.setdefault("text_dim", int(store.text_set_info(text_set)["dim"]))
    cfg = Config.from_dict(over)
    if cfg.test_video in cfg.train_videos:
        raise SummarizerDataError(f"test video {cfg.test_video} is also a training video {cfg.train_videos}")
    _, train = _dataset(store, feature_set, text_set, annotations, cfg.train_videos, cfg)
    val_videos, val = _dataset(store, feature_set, text_set, val_annotations or annotations, [cfg.test_video], cfg)
    tcfg = runs.train_config(TRAIN_DEFAULTS, train_overrides, head="summarizer")
    model, criterion, decode = runs.build_seeded(build, cfg, tcfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"head": "summarizer", "benchmark": "qfvs", "head_config": cfg.to_dict(),
              "train_config": dataclasses.asdict(tcfg), "store": store.url, "feature_set": feature_set,
              "text_set": text_set, "annotations": str(annotations),
              "val_annotations": str(val_annotations or annotations), "num_train": len(train), "num_val": len(val)}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    evaluate = lambda m: score(val_videos, predict(m, decode, val, tcfg.batch_size))  # noqa: E731
    result = fit(model, criterion, train, collate_qfvs, tcfg, evaluate=evaluate, metric=METRIC, mode="max",
                 out_dir=out, checkpoint_extra={"head": "summarizer", "head_config": cfg.to_dict()})
    preds = predict(model, decode, val, tcfg.batch_size)  # model holds the best weights
    (out / "predictions.json").write_text(json.dumps({"results": preds}))
    metrics = score(val_videos, preds)
    metrics["best_epoch"] = result.best_epoch
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def load_run(run_dir, device: str = "cpu"):
    """(model with best weights, decode, config dict) of a summarizer run directory."""
    return runs.load_run(run_dir, "summarizer", build, Config.from_dict, device)


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None) -> str:
    """Write QFVS predictions for the run's held-out video (``test_video``) of the QFVS folder ``annotations``."""
    store = runs.open_store(store)
    model, decode, config = load_run(run_dir, "auto")
    cfg = model.cfg
    _, data = _dataset(store, feature_set or config["feature_set"], text_set or config["text_set"], annotations,
                       [cfg.test_video], cfg)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": predict(model, decode, data)}))
    return str(out)


def leave_one_out(store, feature_set: str, annotations, out_dir, *, videos=VIDEOS, text_set=None,
                  head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """QFVS protocol: train on all videos but one, test on it, for each video; F1 per video and the average."""
    per, rows = {}, {}
    for v in videos:
        over = {**(head_overrides or {}), "train_videos": tuple(x for x in videos if x != v), "test_video": v}
        m = train_from_store(store, feature_set, annotations, Path(out_dir) / v, text_set=text_set,
                             head_overrides=over, train_overrides=train_overrides)
        per[v], rows[v] = m[f"F1 {v}"], m
    out = {"F1": float(np.mean(list(per.values()))),
           "precision": float(np.mean([r["precision"] for r in rows.values()])),
           "recall": float(np.mean([r["recall"] for r in rows.values()]))}
    out.update({f"F1 {v}": f for v, f in per.items()})
    (Path(out_dir) / "metrics.json").write_text(json.dumps(out, indent=1))
    return out


def random_baseline(store, feature_set: str, annotations, *, videos=VIDEOS, text_set=None,
                    head_overrides: dict | None = None, seed: int = 0) -> dict:
    """F1 of uniformly random shot scores through the same decode (length, KTS segment cap) as the head."""
    store = runs.open_store(store)
    text_set = _text_set(store, text_set)
    cfg = Config.from_dict({"video_dim": 1, "text_dim": 1, **(head_overrides or {})})
    gvideos, data = _dataset(store, feature_set, text_set, annotations, videos, cfg)
    decode = build(cfg)[2]
    gen = torch.Generator().manual_seed(seed)
    preds: dict = {}
    for batch in DataLoader(data, batch_size=8, collate_fn=collate_qfvs):
        logits = torch.rand(batch["labels"].shape, generator=gen)
        for p in decode({"logits": logits}, batch):
            preds.setdefault(p["video"], {})[p["query"]] = p["shots"]
    return score(gvideos, preds)


def demo_step(ctx) -> dict:
    """Synthetic QFVS (own data + store under ctx.out_dir), KTS + summarizer, leave-one-out over P01-P04."""
    from egoflow.datasets.synthetic.qfvs import make_qfvs
    t0 = time.perf_counter()
    out = Path(ctx.out_dir)
    # quick: ~20 s CPU; full: ~40 s CPU (both well under a minute on one core)
    shots = (200, 220, 180, 200) if ctx.quick else (320, 360, 300, 340)
    frac = 0.05 if ctx.quick else 0.03
    syn = make_qfvs(out / "qfvs_data", str(out / "qfvs_store.zarr"), num_shots=shots, seed=ctx.seed, dim=32,
                    queries_per_video=20, summary_fraction=frac)
    head = dict(dim=32, top_percent=frac, kts_lmax=40)
    train = dict(epochs=6 if ctx.quick else 8, batch_size=4, lr=3e-3, warmup_steps=5, seed=ctx.seed,
                 device=ctx.device, progress=False)
    metrics = leave_one_out(syn.store, syn.feature_set, syn.root, out / "runs", text_set=syn.text_set,
                            head_overrides=head, train_overrides=train)
    metrics["F1 random"] = random_baseline(syn.store, syn.feature_set, syn.root, text_set=syn.text_set,
                                           head_overrides=head, seed=ctx.seed)["F1"]
    metrics["seconds"] = time.perf_counter() - t0
    return {"benchmark": "qfvs", "metrics": metrics, "predictions": str(out / "runs"), "gt": syn.root}
