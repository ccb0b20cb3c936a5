"""LAVITI from a feature store: pretrain on narrations (shared loop), zero-shot NLQ prediction, demo step.

CharadesEgo (zero-shot scores and fine-tuning) is in ``laviti_charades_run.py``.

Re-exported by ``egoflow.heads.laviti``; see docs/heads_laviti.md.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from egoflow.heads import runs
from egoflow.heads.laviti import Config, build, config_from_dict
from egoflow.heads.laviti_data import LavitiDataError, NarratedChunks, collate, training_chunks
from egoflow.heads.laviti_zeroshot import nlq_zero_shot, unit

log = logging.getLogger(__name__)

TRAIN_DEFAULTS = dict(epochs=20, batch_size=8, lr=1e-4, weight_decay=0.05, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")  # DETR-like optimisation; warm-up: 5% of all steps unless overridden
WARMUP_FRACTION = 0.05
METRIC_NLQ, METRIC_PRETRAIN = "R@1 IoU=0.3", "pretrain_loss"


open_store = runs.open_store


def resolve_text_set(store, text_set: str | None) -> str:
    return runs.resolve_text_set(store, text_set, "narration embeddings", LavitiDataError)


def text_embeddings(store, text_set: str, strings, what: str) -> dict[str, np.ndarray]:
    """string -> L2-normalised pooled embedding (the text encoder's end-of-text token)."""
    strings = sorted(set(strings))
    try:
        pooled = store.load_texts(text_set, strings).pooled
    except KeyError as err:
        raise LavitiDataError(f"{what}: {err.args[0]}") from None
    return dict(zip(strings, unit(pooled)))


def train_config(n_chunks: int, overrides: dict | None):
    return runs.train_config(TRAIN_DEFAULTS, overrides, n_chunks, WARMUP_FRACTION, "laviti")


def head_config(store, feature_set: str, text_set: str, overrides: dict | None) -> Config:
    from egoflow.datasets.nlq_data import check_feature_set
    kw = {"input_dim": int(check_feature_set(store, feature_set)["dim"]),
          "text_dim": int(store.text_set_info(text_set)["dim"]), **(overrides or {})}
    bad = sorted(set(kw) - {f.name for f in dataclasses.fields(Config)})
    if bad:
        raise ValueError(f"laviti: unknown head config keys {bad}")
    return Config(**kw)


class NLQZeroShot:
    """``evaluate(model)`` for fit: zero-shot NLQ on a query file -> official metrics (and the submission)."""

    def __init__(self, store, feature_set: str, text_set: str, queries: list, decode, cfg: Config):
        from egoflow.heads.laviti_data import video_duration
        have = set(store.videos(feature_set))
        missing = sorted({q.video_uid for q in queries} - have)
        if missing:
            raise LavitiDataError(f"NLQ: {len(missing)} video(s) without features in {feature_set!r}: {missing[:5]}")
        self.videos = store.load_feature_set(feature_set, sorted({q.video_uid for q in queries}))
        dur = {u: video_duration(v) for u, v in self.videos.items()}
        bad = sorted({f"{q.clip_uid} [{q.clip_video_start_sec}, {q.clip_video_end_sec}] s of video {q.video_uid} "
                      f"({dur[q.video_uid]:.1f} s)" for q in queries if q.clip_duration <= 0
                      or q.clip_video_start_sec < -1.0 or q.clip_video_end_sec > dur[q.video_uid] + 1.0})
        if bad:
            raise LavitiDataError(f"NLQ: {len(bad)} clip(s) empty or outside their video: {bad[:3]}")
        self.queries = [q for q in queries if q.query]  # a query without text cannot be asked
        self.query_emb = text_embeddings(store, text_set, [q.query for q in self.queries], "NLQ queries")
        self.decode, self.cfg, self.results = decode, cfg, []

    def __call__(self, model) -> dict:
        from egoflow.evaluate.nlq import evaluate_nlq
        self.results = nlq_zero_shot(model, self.decode, self.videos, self.queries, self.query_emb, self.cfg)
        return {k: float(v) for k, v in evaluate_nlq(self.queries, self.results).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}


def submission(results: list[dict]) -> dict:
    return {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": results}


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """Pretrain LAVITI on narrations (Ego4D ``narration.json`` path or a list of Narration) from ``store``.

    With ``val_annotations`` (an NLQ file) the best epoch is chosen by zero-shot R@1 IoU=0.3 and its submission
    is written to out_dir/predictions.json; without, by the deterministic pretraining loss. Writes
    out_dir/config.json and metrics.json (with the chunk/narration counts of the bad-input handling).
    """
    from egoflow.datasets.ego4d import load_narrations, load_nlq
    from egoflow.heads.train import fit
    store, out = open_store(store), Path(out_dir)
    text_set = resolve_text_set(store, text_set)
    cfg = head_config(store, feature_set, text_set, head_overrides)
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
    tcfg = train_config(len(chunks), train_overrides)
    model, criterion, decode = runs.build_seeded(build, cfg, tcfg.seed)
    if val_annotations is not None:
        queries = load_nlq(val_annotations) if not isinstance(val_annotations, (list, tuple)) else val_annotations
        evaluate = NLQZeroShot(store, feature_set, text_set, list(queries), decode, cfg)
        metric, mode = METRIC_NLQ, "max"
    else:
        evaluate, metric, mode = PretrainLoss(chunks, criterion, cfg, tcfg.batch_size), METRIC_PRETRAIN, "min"
    out.mkdir(parents=True, exist_ok=True)
    config = {"head": "laviti", "benchmark": "nlq", "head_config": dataclasses.asdict(cfg),
              "train_config": dataclasses.asdict(tcfg), "store": store.url, "feature_set": feature_set,
              "text_set": text_set, "annotations": where, "val_annotations": str(val_annotations)
              if val_annotations is not None and not isinstance(val_annotations, (list, tuple)) else None,
              "data": stats}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    result = fit(model, criterion, NarratedChunks(chunks, cfg.num_queries, seed=tcfg.seed), collate, tcfg,
                 evaluate=evaluate, metric=metric, mode=mode, out_dir=out,
                 checkpoint_extra={"head": "laviti", "head_config": dataclasses.asdict(cfg)})
    metrics = {k: v for k, v in (result.history[-1] if result.history else {}).items() if k.startswith("train_")}
    model.eval()
    with torch.no_grad():
        metrics.update(evaluate(model))  # the model holds the best weights now
    if isinstance(evaluate, NLQZeroShot):
        (out / "predictions.json").write_text(json.dumps(submission(evaluate.results)))
    metrics.update(best_epoch=result.best_epoch, **{f"data_{k}": v for k, v in stats.items()})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


class PretrainLoss:
    """``evaluate(model)`` without NLQ data: the loss on training chunks with deterministic (midpoint) intervals."""

    def __init__(self, chunks, criterion, cfg: Config, batch_size: int, max_chunks: int = 64):
        self.data = NarratedChunks(chunks[:max_chunks], cfg.num_queries, seed=None)
        self.criterion, self.batch_size = criterion, batch_size

    def __call__(self, model) -> dict:
        from egoflow.heads.train import move_to
        device = next(model.parameters()).device
        total, n = 0.0, 0
        for i in range(0, len(self.data), self.batch_size):
            items = [self.data[j] for j in range(i, min(i + self.batch_size, len(self.data)))]
            batch = move_to(collate(items), device)
            total += float(self.criterion(model(batch), batch)["loss"]) * len(items)
            n += len(items)
        return {METRIC_PRETRAIN: total / max(n, 1)}


def load_run(run_dir, device="cpu"):
    """``(model with best weights, decode, config dict)`` of a LAVITI run directory."""
    return runs.load_run(run_dir, "laviti", build, config_from_dict, device)


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None) -> str:
    """Zero-shot NLQ submission JSON for ``annotations`` (Ego4D NLQ file) with the best weights of ``run_dir``."""
    from egoflow.datasets.ego4d import load_nlq
    store = open_store(store)
    model, decode, config = load_run(run_dir, "auto")
    feature_set = feature_set or config["feature_set"]
    text_set = resolve_text_set(store, text_set or config.get("text_set"))
    queries = load_nlq(annotations) if not isinstance(annotations, (list, tuple)) else list(annotations)
    zs = NLQZeroShot(store, feature_set, text_set, queries, decode, model.cfg)
    results = nlq_zero_shot(model, decode, zs.videos, zs.queries, zs.query_emb, model.cfg)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(submission(results)))
    return str(out)


def demo_step(ctx) -> dict:
    """Pretrain briefly on the demo narrations, report zero-shot NLQ on ctx.nlq_val (seconds when ctx.quick)."""
    head = dict(heads=2, head_dim=16, enc_layers=1, dec_layers=1, num_queries=16, num_time_embeddings=64,
                dropout=0.0) if ctx.quick else dict(enc_layers=2, dec_layers=2, num_queries=64)
    train = dict(epochs=3 if ctx.quick else 40, batch_size=4, lr=1e-3 if ctx.quick else 3e-4, seed=ctx.seed,
                 device=ctx.device, progress=not ctx.quick)
    metrics = train_from_store(ctx.store, ctx.feature_set, ctx.narrations, ctx.out_dir, val_annotations=ctx.nlq_val,
                               text_set=ctx.text_set, head_overrides=head, train_overrides=train)
    return {"benchmark": "nlq", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.nlq_val)}
