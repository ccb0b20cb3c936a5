"""VSGN's hooks for the shared runner: MQ clips + store features -> datasets; predict/score a split; demo.

See docs/heads_vsgn.md. The recipe itself (seeded build, fit, run directory) is ``egoflow.heads.runner``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from egoflow.datasets.records import MQClip
from egoflow.heads.spec import Task, config_from_dict
from egoflow.heads.train import move_to
from egoflow.heads.vsgn.data import (
    MQDataError,
    MQDataset,
    check_feature_dim,
    collate,
    label_vocabulary,
    load_clip_features,
)
from egoflow.heads.vsgn.model import Config

log = logging.getLogger(__name__)

# Ego4D MQ baseline recipe: Adam, lr 5e-5, L2 1e-4, batch 32, 30 epochs, lr x0.1 after epoch 15, no gradient
# clipping (MQ/Train.py)
TRAIN_DEFAULTS = dict(epochs=30, batch_size=32, lr=5e-5, weight_decay=1e-4, optimizer="adam", schedule="step",
                      step_milestones=(15,), step_gamma=0.1, grad_clip=1.0)
# The Ego4D MQ baseline as its code runs it (EGO4D/episodic-memory MQ/Models, MQ/Train.py, MQ/Infer.py): the
# head options where egoflow's defaults differ, and its training (no gradient clipping). Its weights load with
# egoflow.heads.vsgn.reference.load_reference_state_dict; tests/test_heads_vsgn_reference.py runs with these.
REFERENCE_HEAD = dict(box_offset=1.0, bd_mode="reference", bd_detach=False, aux_loss="reference",
                      match_unreached="reference", w_aux=0.2, boundary_score="reference")
REFERENCE_TRAIN = dict(grad_clip=0.0)
METRIC = "mAP"
# EgoVLPv2's MQ head-tuning grid (facebookresearch/EgoVLPv2@550c059 EgoMQ/scripts/train_infer_eval_ego_nce.sh:
# 50 epochs, --use_xGPN, input 4096; the best of the 144 runs by Average-mAP, find_best_parameters.py). The
# Ego4D baseline (EGO4D/episodic-memory MQ/Utils/opts.py) runs one setting: batch 32, lr 5e-5 (README: 1e-4),
# step 15, gamma 0.1. Run with egoflow.heads.grid.grid_search("vsgn", ..., EGOVLPV2_GRID, ...).
EGOVLPV2_GRID = dict(batch_size=[32, 16, 8], lr=[1e-4, 5e-4, 5e-5, 1e-5], step_size=[15, 30, 5],
                     step_gamma=[0.05, 0.1, 0.5, 0.25])
EGOVLPV2_TRAIN = dict(epochs=50)
PREDICT_BATCH = 16  # clips per forward pass of `egoflow predict` (training predicts at its batch size)


def _clips(annotations) -> list[MQClip]:
    """MQ clips from a path (Ego4D moments JSON) or a list of ``MQClip``."""
    if isinstance(annotations, (list, tuple)):
        return list(annotations)
    from egoflow.datasets.ego4d import load_mq
    return load_mq(annotations)


def load_split(cfg: Config, store, feature_set: str, clips: list[MQClip], unknown_labels: str) -> MQDataset:
    """The clips with their features, resampled as ``cfg`` says; ``unknown_labels``: "error" | "ignore"."""
    slices = load_clip_features(store, feature_set, clips, cfg.on_missing)
    return MQDataset(clips, slices, list(cfg.labels), cfg.temporal_scale, stitching=cfg.stitching,
                     stitch_gap=cfg.stitch_gap, short_ratio=cfg.short_ratio, unknown_labels=unknown_labels,
                     primary_only=cfg.primary_only)


@torch.no_grad()
def predict_dataset(model, decode, dataset: MQDataset, batch_size: int = PREDICT_BATCH) -> dict[str, list[dict]]:
    """``{clip_uid: [{"label", "score", "segment"}]}`` for every clip of ``dataset`` (MQ submission records)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    results = {}
    for i in range(0, len(dataset), batch_size):
        batch = move_to(collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]), device)
        for uid, preds in zip(batch["clip_uid"], decode(model(batch), batch)):
            results[uid] = preds
    model.train(was)
    return results


class MQEvaluation:
    """Predict a split's clips; score them with the official-equivalent MQ metric against ``clips``."""

    metric, mode = METRIC, "max"

    def __init__(self, clips: list[MQClip], data: MQDataset, batch_size: int = PREDICT_BATCH):
        self.clips, self.data, self.batch_size = clips, data, batch_size

    def predict(self, model, decode) -> dict[str, list[dict]]:
        results = predict_dataset(model, decode, self.data, self.batch_size)
        for c in self.clips:
            results.setdefault(c.clip_uid, [])  # skipped clips (on_missing="skip") predict nothing
        return results

    def score(self, records: dict[str, list[dict]]) -> dict[str, float]:
        from egoflow.evaluate.mq import evaluate_mq
        from egoflow.formats import mq_submission
        return {k: v for k, v in evaluate_mq(self.clips, mq_submission(records)).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}  # per-class AP: `egoflow evaluate`


def _warn_unknown_labels(cfg: Config, clips: list[MQClip]) -> None:
    bad = sorted({i.label for c in clips for i in c.instances if i.label not in set(cfg.labels)})
    if bad:
        log.warning("validation labels never seen in training (cannot be predicted, they count as misses): %s",
                    bad[:20])


def task(inputs, overrides: dict) -> Task:
    """Train clips (labels must be in the vocabulary they define) and the val clips, if any (unknown labels
    count as misses). ``video_dim`` and ``labels`` come from the store and the training annotations."""
    store, feature_set = inputs.store, inputs.feature_set
    clips = _clips(inputs.annotations)
    over = dict(overrides)
    over.setdefault("video_dim", check_feature_dim(store, feature_set, over.get("video_dim")))
    over.setdefault("labels", label_vocabulary(clips, over.get("primary_only", True)))
    if not over["labels"]:
        where = inputs.annotations if not isinstance(inputs.annotations, (list, tuple)) else "training clips"
        raise MQDataError(f"{where}: no labelled (primary) instances in {len(clips)} clips, nothing to learn")
    cfg = config_from_dict(Config, over, "vsgn")
    train = load_split(cfg, store, feature_set, clips, "error")
    val = None
    if inputs.val_annotations is not None:
        val_clips = _clips(inputs.val_annotations)
        _warn_unknown_labels(cfg, val_clips)
        val = MQEvaluation(val_clips, load_split(cfg, store, feature_set, val_clips, "ignore"))
    info = {"num_train": len(train), "num_val": len(val.data) if val else 0}
    return Task(cfg, train, collate, val, info)


def predictor(inputs, cfg: Config) -> MQEvaluation:
    """Every clip of ``inputs.annotations`` (a feature set of another dim is refused before any forward)."""
    check_feature_dim(inputs.store, inputs.feature_set, cfg.video_dim)
    clips = _clips(inputs.annotations)
    _warn_unknown_labels(cfg, clips)
    return MQEvaluation(clips, load_split(cfg, inputs.store, inputs.feature_set, clips, "ignore"))


DEMO_QUICK = dict(temporal_scale=64, hidden_dim=32, num_levels=3, num_head_layers=1, num_neighbours=4)
DEMO_FULL = dict(temporal_scale=128, hidden_dim=64, num_levels=4, num_head_layers=2, num_neighbours=8)


def demo(ctx, runner) -> dict:
    """Train briefly on the demo MQ train split, evaluate on val (seconds with ``ctx.quick``)."""
    head = DEMO_QUICK if ctx.quick else DEMO_FULL
    tr = dict(epochs=4 if ctx.quick else 30, batch_size=8, lr=1e-3, step_milestones=(3,) if ctx.quick else (20,),
              device=ctx.device, seed=ctx.seed, progress=False)
    metrics = runner.train("vsgn", ctx.store, ctx.feature_set, ctx.mq_train, ctx.out_dir, val_annotations=ctx.mq_val,
                           head_overrides=head, train_overrides=tr)
    return {"benchmark": "mq", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.mq_val)}
