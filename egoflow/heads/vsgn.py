"""VSGN head for Ego4D Moment Queries, trained from cached features.

Zhao, Thabet & Ghanem, "Video Self-Stitching Graph Network for Temporal Action Localization" (ICCV 2021), as
used by the Ego4D MQ baseline: conv stem -> xGPN (temporal conv || kNN graph conv per level, pooled between
levels, decoder fusing back up) -> anchors of several scales per level -> classification / regression towers
-> boundary adjustment -> Soft-NMS per class. Layers: ``vsgn_layers``; losses: ``vsgn_loss``; post-processing
and the submission JSON: ``vsgn_post``; clips -> tensors: ``egoflow.datasets.mq_data``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from egoflow.datasets.mq_data import (MQDataError, MQDataset, check_feature_dim, collate, label_vocabulary,
                                      load_clip_features)
from egoflow.heads import runs
from egoflow.heads.vsgn_layers import VSGNInputError, VSGNModel
from egoflow.heads.vsgn_loss import VSGNCriterion
from egoflow.heads.vsgn_post import make_decode, write_submission

log = logging.getLogger(__name__)
HEAD, BENCHMARK, METRIC = "vsgn", "mq", "mAP"


class VSGNConfigError(ValueError):
    """A VSGN config that cannot work (no labels, temporal scale not divisible by the pyramid, ...)."""


@dataclass
class Config:
    input_dim: int = 512  # feature dim D; train_from_store takes it from the feature set
    labels: tuple = ()  # class vocabulary, class id = index + 1 (0 = background); from the train annotations
    temporal_scale: int = 928  # steps every clip is resampled to (Ego4D MQ baseline: 928)
    hidden_dim: int = 256  # channels of the pyramid and towers
    num_levels: int = 5  # pyramid levels; level l has stride 2^l
    num_head_layers: int = 4  # conv + GroupNorm + ReLU layers in each tower
    use_graph: bool = True  # xGPN graph branch at every level; False = plain temporal-conv pyramid
    num_neighbours: int = 12  # k of the kNN graph in feature space
    graph_mode: str = "feat_ctr"  # edge features: "feat_ctr" [x_j, x_i] | "dif_ctr" [x_j - x_i, x_i] | "feat"
    graph_agg: str = "max"  # aggregation over neighbours: "max" | "mean"
    anchor_scales: tuple = (1.0, 10.0)  # anchor widths per level, in units of the level's stride
    boundary_beta: float = 8.0  # boundary adjustment samples at +-width/beta around each boundary
    iou_thr_anchor: float = 0.5  # anchor-vs-instance IoU making an anchor a regression positive
    iou_thr_stage1: float = 0.5  # coarse-segment IoU making an anchor a classification positive
    iou_thr_stage2: float = 0.7  # coarse-segment IoU making it a positive of the boundary adjustment
    cls_loss: str = "balanced"  # "balanced" softmax CE (mean over pos + mean over neg) | "focal" (sigmoid)
    focal_alpha: float = 0.25  # focal loss: weight of positives
    focal_gamma: float = 2.0  # focal loss: focusing exponent
    w_cls: float = 1.0  # loss weight: classification
    w_reg: float = 1.0  # loss weight: stage-1 GIoU regression
    w_adjust: float = 1.0  # loss weight: stage-2 (boundary adjustment) GIoU regression
    w_aux: float = 1.0  # loss weight: each of the actionness/start/end BCE terms
    stitching: bool = False  # video self-stitching of short clips (off, as in the Ego4D baseline)
    stitch_gap: int = 30  # zero steps between the original and the magnified copy
    short_ratio: float = 0.4  # clips with at most short_ratio * temporal_scale stored steps get stitched
    use_boundary_scores: bool = True  # multiply class scores by start/end confidence at the refined boundaries
    nms_sigma: float = 0.46  # Gaussian Soft-NMS: score *= exp(-IoU^2 / sigma) (Ego4D baseline's alpha)
    pre_nms_topk: int = 2000  # (anchor, class) candidates kept per clip before Soft-NMS
    max_per_clip: int = 200  # predictions per clip after Soft-NMS (top-N)
    min_score: float = 1e-6  # candidates below this score are dropped
    primary_only: bool = True  # train on primary instances only (what the official evaluation scores)
    on_missing: str = "error"  # clips whose video/features are missing: "error" | "skip"

    def __post_init__(self):
        self.labels = tuple(self.labels)
        self.anchor_scales = tuple(float(s) for s in self.anchor_scales)
        pyr = 2 ** (self.num_levels - 1)
        if self.num_levels < 1 or self.temporal_scale < pyr or self.temporal_scale % pyr:
            raise VSGNConfigError(f"temporal_scale={self.temporal_scale} must be a positive multiple of "
                                  f"2^(num_levels-1)={pyr} so that every pyramid level has whole steps")
        if self.cls_loss not in ("balanced", "focal"):
            raise VSGNConfigError(f"cls_loss must be 'balanced' or 'focal', not {self.cls_loss!r}")
        if not self.anchor_scales or min(self.anchor_scales) <= 0:
            raise VSGNConfigError(f"anchor_scales must be positive, got {self.anchor_scales}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Ego4D MQ baseline recipe: Adam, lr 5e-5, L2 1e-4, batch 32, 30 epochs, lr x0.1 after epoch 15
TRAIN_DEFAULTS = dict(epochs=30, batch_size=32, lr=5e-5, weight_decay=1e-4, optimizer="adam", schedule="step",
                      step_milestones=(15,), step_gamma=0.1)


def build(cfg: Config | None = None):
    """``(model, criterion, decode)`` for ``cfg``; needs ``cfg.labels``."""
    cfg = cfg or Config()
    if not cfg.labels:
        raise VSGNConfigError("VSGN needs the label vocabulary: Config(labels=...) (train_from_store fills it "
                              "from the training annotations)")
    return VSGNModel(cfg), VSGNCriterion(cfg), make_decode(cfg)


# ---------------------------------------------------------------------------------------------- store glue
def _store(store):
    return runs.open_store(store)


def _clips(annotations):
    """MQ clips from a path (Ego4D moments JSON) or a list of ``MQClip``."""
    if isinstance(annotations, (list, tuple)):
        return list(annotations)
    from egoflow.datasets.ego4d import load_mq
    return load_mq(annotations)


def _dataset(cfg: Config, store, feature_set: str, clips, unknown_labels: str) -> MQDataset:
    slices = load_clip_features(store, feature_set, clips, cfg.on_missing)
    return MQDataset(clips, slices, list(cfg.labels), cfg.temporal_scale, stitching=cfg.stitching,
                     stitch_gap=cfg.stitch_gap, short_ratio=cfg.short_ratio, unknown_labels=unknown_labels,
                     primary_only=cfg.primary_only)


@torch.no_grad()
def predict(model, decode, dataset: MQDataset, batch_size: int = 16) -> dict[str, list[dict]]:
    """``{clip_uid: [{"label", "score", "segment"}]}`` for every clip of ``dataset``."""
    from egoflow.heads.train import move_to
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


def evaluate_results(clips, results: dict) -> dict:
    """MQ metrics of ``results`` against ``clips`` with the official-equivalent evaluator."""
    from egoflow.evaluate.mq import evaluate_mq
    from egoflow.heads.vsgn_post import submission
    return evaluate_mq(clips, submission(results))


def _unknown_val_labels(cfg: Config, clips) -> None:
    bad = sorted({i.label for c in clips for i in c.instances if i.label not in set(cfg.labels)})
    if bad:
        log.warning("validation labels never seen in training (cannot be predicted, they count as misses): %s",
                    bad[:20])


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """Train VSGN on ``annotations`` (path or MQClip list) with features of ``feature_set``.

    Keeps the best epoch by val "mAP"; writes ``out_dir/{config.json, best.pt, predictions.json,
    metrics.json}``. Returns the final val metrics ({} without val annotations). ``text_set`` is unused (MQ
    is video-only) and accepted for the common head interface.
    """
    from egoflow.heads.train import fit
    store, out = _store(store), Path(out_dir)
    clips = _clips(annotations)
    ho = dict(head_overrides or {})
    bad = sorted(set(ho) - {f.name for f in dataclasses.fields(Config)})
    if bad:
        raise VSGNConfigError(f"unknown VSGN config field(s) {bad}; fields: "
                              f"{sorted(f.name for f in dataclasses.fields(Config))}")
    dim = check_feature_dim(store, feature_set, ho.get("input_dim"))
    ho.setdefault("input_dim", dim)
    ho.setdefault("labels", label_vocabulary(clips, ho.get("primary_only", True)))
    if not ho["labels"]:
        raise MQDataError(f"{_path_or_none(annotations) or 'training clips'}: no labelled (primary) instances "
                          f"in {len(clips)} clips, nothing to learn")
    cfg = Config(**ho)
    tcfg = runs.train_config(TRAIN_DEFAULTS, train_overrides, head="vsgn")
    model, criterion, decode = runs.build_seeded(build, cfg, tcfg.seed)
    train_set = _dataset(cfg, store, feature_set, clips, "error")
    val_clips = _clips(val_annotations) if val_annotations is not None else None
    evaluate = None
    if val_clips is not None:
        _unknown_val_labels(cfg, val_clips)
        val_set = _dataset(cfg, store, feature_set, val_clips, "ignore")
        evaluate = lambda m: evaluate_results(val_clips, predict(m, decode, val_set, tcfg.batch_size))  # noqa
    out.mkdir(parents=True, exist_ok=True)
    conf = {"head": HEAD, "benchmark": BENCHMARK, "head_config": cfg.to_dict(),
            "train_config": dataclasses.asdict(tcfg), "store": str(getattr(store, "url", store)),
            "feature_set": feature_set, "text_set": text_set,
            "annotations": _path_or_none(annotations), "val_annotations": _path_or_none(val_annotations)}
    (out / "config.json").write_text(json.dumps(conf, indent=1, default=str))
    result = fit(model, criterion, train_set, collate, tcfg, evaluate=evaluate,
                 metric=METRIC if evaluate else None, mode="max", out_dir=out,
                 checkpoint_extra={"head": HEAD, "head_config": cfg.to_dict()})
    metrics = {}
    if val_clips is not None:
        results = predict(model, decode, val_set, tcfg.batch_size)
        for c in val_clips:
            results.setdefault(c.clip_uid, [])  # skipped clips (on_missing="skip") predict nothing
        write_submission(results, out / "predictions.json")
        metrics = evaluate_results(val_clips, results)
    (out / "metrics.json").write_text(json.dumps({"benchmark": BENCHMARK, "best_epoch": result.best_epoch,
                                                  "metrics": metrics}, indent=1, default=float))
    return metrics


def _path_or_none(a):
    return None if a is None or isinstance(a, (list, tuple)) else str(a)


def load_run(run_dir, device: str = "cpu"):
    """``(cfg, model, decode, config_json)`` of a finished run (best weights)."""
    model, decode, conf = runs.load_run(run_dir, HEAD, build, Config.from_dict, device)
    return Config.from_dict(conf["head_config"]), model, decode, conf


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None) -> str:
    """Predict every clip of ``annotations`` with the run's best weights; write the MQ submission JSON."""
    cfg, model, decode, conf = load_run(run_dir, "auto")
    store, feature_set = _store(store), feature_set or conf["feature_set"]
    check_feature_dim(store, feature_set, cfg.input_dim)
    clips = _clips(annotations)
    _unknown_val_labels(cfg, clips)
    results = predict(model, decode, _dataset(cfg, store, feature_set, clips, "ignore"))
    for c in clips:
        results.setdefault(c.clip_uid, [])
    return write_submission(results, out_path)


# ---------------------------------------------------------------------------------------------- demo
DEMO_QUICK = dict(temporal_scale=64, hidden_dim=32, num_levels=3, num_head_layers=1, num_neighbours=4)
DEMO_FULL = dict(temporal_scale=128, hidden_dim=64, num_levels=4, num_head_layers=2, num_neighbours=8)


def demo_step(ctx) -> dict:
    """Train briefly on the demo MQ train split, evaluate on val (seconds with ``ctx.quick``)."""
    head = DEMO_QUICK if ctx.quick else DEMO_FULL
    train = dict(epochs=4 if ctx.quick else 30, batch_size=8, lr=1e-3, step_milestones=(3,) if ctx.quick else (20,),
                 device=ctx.device, seed=ctx.seed, progress=False)
    metrics = train_from_store(ctx.store, ctx.feature_set, ctx.mq_train, ctx.out_dir, val_annotations=ctx.mq_val,
                               head_overrides=head, train_overrides=train)
    return {"benchmark": BENCHMARK, "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.mq_val)}


__all__ = ["Config", "build", "train_from_store", "predict_from_store", "demo_step", "predict",
           "evaluate_results", "load_run", "VSGNConfigError", "VSGNInputError", "MQDataError", "TRAIN_DEFAULTS"]
