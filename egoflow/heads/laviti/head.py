"""LAVITI's hooks for the shared runner: pretraining on narrations, zero-shot NLQ (the validation that picks the
best epoch, and what `egoflow predict laviti` writes), the demo step. CharadesEgo is in charades.py.

See docs/heads_laviti.md. The recipe itself (seeded build, fit, run directory) is ``egoflow.heads.runner``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from egoflow.heads.laviti.criterion import Criterion
from egoflow.heads.laviti.data import LavitiDataError, NarratedChunks, collate, training_chunks
from egoflow.heads.laviti.model import Config
from egoflow.heads.laviti.zeroshot import nlq_zero_shot, unit
from egoflow.heads.spec import Task, config_from_dict, feature_set_info
from egoflow.heads.train import move_to

log = logging.getLogger(__name__)

# DETR-like optimisation; the warm-up is 5% of all steps unless train_overrides sets warmup_steps
TRAIN_DEFAULTS = dict(epochs=20, batch_size=8, lr=1e-4, weight_decay=0.05, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")
WARMUP_FRACTION = 0.05
# What the LAVITI paper fixes beyond the default sizes: its Hungarian cost (plain sigmoids of the three cosines),
# its plain ranking of moments (egoflow's NMS off) and its schedule (Adam, batch 256 chunks, 20 epochs); lr and
# decay stay egoflow's (not given in what we read).
PAPER_HEAD = dict(matcher="paper", nms_iou=0.0)
PAPER_TRAIN = dict(optimizer="adam", batch_size=256, epochs=20)
METRIC_NLQ, METRIC_PRETRAIN = "R@1 IoU=0.3", "pretrain_loss"


def text_embeddings(store, text_set: str, strings, what: str) -> dict[str, np.ndarray]:
    """string -> L2-normalised pooled embedding (the text encoder's end-of-text token)."""
    strings = sorted(set(strings))
    try:
        pooled = store.load_texts(text_set, strings).pooled
    except KeyError as err:
        raise LavitiDataError(f"{what}: {err.args[0]}") from None
    return dict(zip(strings, unit(pooled), strict=True))


def store_config(Config: type, name: str, store, feature_set: str, text_set: str, overrides: dict):
    """Head ``name``'s ``Config`` with video_dim / text_dim from the store unless given (unknown keys: an error)."""
    return config_from_dict(Config, {"video_dim": int(feature_set_info(store, feature_set, LavitiDataError)["dim"]),
                                     "text_dim": int(store.text_set_info(text_set)["dim"]), **overrides}, name)


def _nlq_queries(annotations) -> list:
    from egoflow.datasets.ego4d import load_nlq
    return list(annotations) if isinstance(annotations, (list, tuple)) else load_nlq(annotations)


class NLQZeroShot:
    """Zero-shot NLQ on a query file: every query's top-k moments (official result entries); scored with the
    official NLQ metric against the queries themselves (those with a query text: one without cannot be asked).

    Chunks go through the model 8 at a time whatever the training batch: the numbers of a run do not depend
    on it (padding a chunk to a longer batch moves its outputs in the last float digits).
    """

    metric, mode = METRIC_NLQ, "max"
    batch_size = 8  # set by the runner to the training batch; the chunk batch stays zeroshot's 8 (see above)

    def __init__(self, store, feature_set: str, text_set: str, queries: list, cfg: Config):
        have = set(store.videos(feature_set))
        missing = sorted({q.video_uid for q in queries} - have)
        if missing:
            raise LavitiDataError(f"NLQ: {len(missing)} video(s) without features in {feature_set!r}: {missing[:5]}")
        self.videos = store.load_feature_set(feature_set, sorted({q.video_uid for q in queries}))
        dur = {u: v.duration for u, v in self.videos.items()}
        bad = sorted({f"{q.clip_uid} [{q.clip_video_start_sec}, {q.clip_video_end_sec}] s of video {q.video_uid} "
                      f"({dur[q.video_uid]:.1f} s)" for q in queries if q.clip_duration <= 0
                      or q.clip_video_start_sec < -1.0 or q.clip_video_end_sec > dur[q.video_uid] + 1.0})
        if bad:
            raise LavitiDataError(f"NLQ: {len(bad)} clip(s) empty or outside their video: {bad[:3]}")
        self.queries = [q for q in queries if q.query]  # a query without text cannot be asked
        self.query_emb = text_embeddings(store, text_set, [q.query for q in self.queries], "NLQ queries")
        self.cfg = cfg

    def predict(self, model, decode) -> list[dict]:
        return nlq_zero_shot(model, decode, self.videos, self.queries, self.query_emb, self.cfg)

    def score(self, records: list[dict]) -> dict[str, float]:
        from egoflow.evaluate.nlq import evaluate_nlq
        from egoflow.formats import nlq_submission
        return {k: float(v) for k, v in evaluate_nlq(self.queries, nlq_submission(records)["results"]).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}


class PretrainLoss:
    """Without an NLQ file: the loss on up to 64 training chunks with deterministic (midpoint) intervals.

    A loss is no submission: ``predict`` computes it and returns None (nothing to write), ``score`` reports it.
    """

    metric, mode = METRIC_PRETRAIN, "min"

    def __init__(self, chunks, cfg: Config, batch_size: int = 8, max_chunks: int = 64):
        self.data = NarratedChunks(chunks[:max_chunks], cfg.num_queries, seed=None)
        self.criterion, self.batch_size, self.loss = Criterion(cfg), batch_size, None

    @torch.no_grad()
    def predict(self, model, decode) -> None:
        device = next(model.parameters()).device
        total, n = 0.0, 0
        for i in range(0, len(self.data), self.batch_size):
            items = [self.data[j] for j in range(i, min(i + self.batch_size, len(self.data)))]
            batch = move_to(collate(items), device)
            total += float(self.criterion(model(batch), batch)["loss"]) * len(items)
            n += len(items)
        self.loss = total / max(n, 1)

    def score(self, records=None) -> dict[str, float]:
        return {METRIC_PRETRAIN: self.loss}


def task(inputs, overrides: dict) -> Task:
    """Chunks of the narrated videos (Ego4D ``narration.json`` path or a list of Narration); validation: zero-shot
    NLQ on ``val_annotations`` (an NLQ file or records), else the deterministic pretraining loss."""
    from egoflow.datasets.ego4d import load_narrations
    store, feature_set, annotations = inputs.store, inputs.feature_set, inputs.annotations
    text_set = inputs.text_set_or(LavitiDataError, "narration embeddings")
    cfg = store_config(Config, "laviti", store, feature_set, text_set, overrides)
    from_file = not isinstance(annotations, (list, tuple))
    narrations = load_narrations(annotations) if from_file else list(annotations)
    where = str(annotations) if from_file else "narrations"
    uids = sorted({n.video_uid for n in narrations} & set(store.videos(feature_set)))
    videos = store.load_feature_set(feature_set, uids)
    texts = text_embeddings(store, text_set, [n.text for n in narrations if n.video_uid in videos], where)
    chunks, stats = training_chunks(videos, narrations, texts, cfg)
    if not chunks:
        raise LavitiDataError(f"{where}: no training chunk with narrations and at least {cfg.kernel} frames "
                              f"in feature set {feature_set!r} ({stats})")
    log.info("laviti: %s", stats)
    if inputs.val_annotations is not None:
        val = NLQZeroShot(store, feature_set, text_set, _nlq_queries(inputs.val_annotations), cfg)
    else:
        val = PretrainLoss(chunks, cfg)
    return Task(cfg, NarratedChunks(chunks, cfg.num_queries, seed=inputs.seed), collate, val,
                info={"text_set": text_set, "data": stats}, metrics={f"data_{k}": v for k, v in stats.items()})


def predictor(inputs, cfg: Config) -> NLQZeroShot:
    """Zero-shot NLQ for every query of ``inputs.annotations`` (a pretraining or a CharadesEgo fine-tuning run)."""
    text_set = inputs.text_set_or(LavitiDataError, "NLQ query embeddings")
    return NLQZeroShot(inputs.store, inputs.feature_set, text_set, _nlq_queries(inputs.annotations), cfg)


def demo(ctx, runner) -> dict:
    """Pretrain briefly on the demo narrations, report zero-shot NLQ on ctx.nlq_val (seconds when ctx.quick)."""
    head = dict(heads=2, head_dim=16, enc_layers=1, dec_layers=1, num_queries=16, num_time_embeddings=64,
                dropout=0.0) if ctx.quick else dict(enc_layers=2, dec_layers=2, num_queries=64)
    tr = dict(epochs=3 if ctx.quick else 40, batch_size=4, lr=1e-3 if ctx.quick else 3e-4, seed=ctx.seed,
              device=ctx.device, progress=not ctx.quick)
    metrics = runner.train("laviti", ctx.store, ctx.feature_set, ctx.narrations, ctx.out_dir,
                           val_annotations=ctx.nlq_val, text_set=ctx.text_set, head_overrides=head,
                           train_overrides=tr)
    return {"benchmark": "nlq", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.nlq_val)}
