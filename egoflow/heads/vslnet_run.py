"""VSLNet from a feature store: train (shared loop), predict (official NLQ submission JSON), demo step.

Re-exported by ``egoflow.heads.vslnet``; see docs/heads_vslnet.md.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from egoflow.datasets.nlq_data import NLQDataset, check_feature_set, collate_nlq, load_nlq_split
from egoflow.datasets.records import NLQQuery
from egoflow.heads import runs
from egoflow.heads.vslnet import Config, build

log = logging.getLogger(__name__)

# Ego4D NLQ baseline-like optimisation; the warm-up is 5% of all steps unless train_overrides sets warmup_steps.
TRAIN_DEFAULTS = dict(epochs=10, batch_size=32, lr=1e-3, weight_decay=0.01, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")
WARMUP_FRACTION = 0.05
METRIC = "R@1 IoU=0.3"


def _queries(annotations, split: str) -> tuple[list[NLQQuery], str | None]:
    """NLQ records from an Ego4D NLQ file path (zero-length windows kept: the split decides) or a list."""
    if isinstance(annotations, (list, tuple)):
        return list(annotations), None
    from egoflow.datasets.ego4d import load_nlq_report
    queries, stats = load_nlq_report(annotations, keep_zero_length=True)
    log.info("%s (%s): %s", annotations, split, stats.summary())
    return queries, str(annotations)


def _resolve_text_set(store, text_set: str | None) -> str:
    return runs.resolve_text_set(store, text_set, "the query embeddings to use")


@torch.no_grad()
def predict_dataset(model, decode, data: NLQDataset, batch_size: int = 64, device=None) -> list[dict]:
    """Top-k windows (clip seconds) for every query of ``data``, as official NLQ result entries."""
    from egoflow.heads.train import move_to
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    results = []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_nlq):
        batch = move_to(batch, device)
        for i, pred in zip(batch["index"].tolist(), decode(model(batch), batch)):
            q = data.queries[i]
            results.append({"clip_uid": q.clip_uid, "annotation_uid": q.annotation_uid,
                            "query_idx": int(q.query_idx), "predicted_times": pred["windows"],
                            "scores": pred["scores"]})
    model.train(was_training)
    return results


def submission(results: list[dict]) -> dict:
    """The Ego4D NLQ challenge submission JSON (scores are not part of the format and are dropped)."""
    return {"version": "1.0", "challenge": "ego4d_nlq_challenge",
            "results": [{k: r[k] for k in ("clip_uid", "annotation_uid", "query_idx", "predicted_times")}
                        for r in results]}


def score(ground_truth: list[NLQQuery], results: list[dict]) -> dict[str, float]:
    """Official NLQ metrics (egoflow.evaluate.nlq) of result entries; numbers only (no curves)."""
    from egoflow.evaluate.nlq import evaluate_nlq
    entries = submission(results)["results"]
    return {k: float(v) for k, v in evaluate_nlq(ground_truth, entries).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _ground_truth(path: str | None, data: NLQDataset) -> list[NLQQuery]:
    """Every scorable query of the val file (as `egoflow evaluate` sees it), or the records given."""
    if path is None:
        return data.queries
    from egoflow.evaluate.nlq import load_nlq_ground_truth
    return load_nlq_ground_truth(path)


def _load_split(store, feature_set, queries, text_set, cfg: Config, split: str, drop_zero: bool) -> NLQDataset:
    return load_nlq_split(store, feature_set, queries, text_set=text_set, max_pos_len=cfg.max_pos_len,
                          video_dim=cfg.video_dim, text_dim=cfg.text_dim, drop_zero_length=drop_zero,
                          extension=cfg.highlight_extension, split=split,
                          skip_missing=cfg.skip_missing)


def _fill_dims(store, feature_set: str, text_set: str, overrides: dict, queries: list[NLQQuery]) -> dict:
    """Take video_dim/text_dim from the store unless given (given ones are checked by load_nlq_split)."""
    out = dict(overrides)
    if "video_dim" not in out:
        out["video_dim"] = int(check_feature_set(store, feature_set)["dim"])
    if "text_dim" not in out and queries and text_set in store.text_sets():
        try:  # token width can differ from the pooled dim in the text set's attrs: look at one query
            tf = store.load_texts(text_set, [queries[0].query])
            out["text_dim"] = int((tf.tokens if tf.tokens is not None else tf.pooled).shape[-1])
        except KeyError:
            pass  # reported with every other missing query by load_nlq_split
    return out


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None) -> dict:
    """Train VSLNet on ``annotations`` (Ego4D NLQ file or list of NLQQuery) with features from ``store``.

    Keeps the best epoch by R@1 IoU=0.3 on ``val_annotations`` (resumes from out_dir/last.pt), then writes
    out_dir/config.json, metrics.json and (with val) predictions.json. Returns the final val metrics plus
    "best_epoch" (only training stats without val). All input checks run before the first step.
    """
    from egoflow.heads.train import fit
    store = runs.open_store(store)
    out = Path(out_dir)
    text_set = _resolve_text_set(store, text_set)
    train_q, train_path = _queries(annotations, "train")
    cfg = Config.from_dict(_fill_dims(store, feature_set, text_set, head_overrides or {}, train_q))
    train = _load_split(store, feature_set, train_q, text_set, cfg, "train", cfg.drop_zero_length_train)
    val = val_path = None
    if val_annotations is not None:
        val_q, val_path = _queries(val_annotations, "val")
        val = _load_split(store, feature_set, val_q, text_set, cfg, "val", False)
    tcfg = runs.train_config(TRAIN_DEFAULTS, train_overrides, len(train), WARMUP_FRACTION, "vslnet")
    model, criterion, decode = runs.build_seeded(build, cfg, tcfg.seed)
    evaluate = None
    if val is not None:
        gt = _ground_truth(val_path, val)
        evaluate = lambda m: score(gt, predict_dataset(m, decode, val, tcfg.batch_size))  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    config = {"head": "vslnet", "benchmark": "nlq", "head_config": cfg.to_dict(),
              "train_config": dataclasses.asdict(tcfg), "store": store.url, "feature_set": feature_set,
              "text_set": text_set, "annotations": train_path, "val_annotations": val_path,
              "num_train": len(train), "num_val": len(val) if val is not None else 0,
              "dropped_zero_length_train": train.dropped_zero_length,
              "skipped_missing_train": train.skipped_missing,
              "skipped_missing_val": val.skipped_missing if val is not None else 0}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    result = fit(model, criterion, train, collate_nlq, tcfg, evaluate=evaluate,
                 metric=METRIC if evaluate else None, mode="max", out_dir=out,
                 checkpoint_extra={"head": "vslnet", "head_config": cfg.to_dict()})
    last = result.history[-1] if result.history else {}
    metrics = {k: v for k, v in last.items() if k.startswith("train_")}
    if val is not None:
        results = predict_dataset(model, decode, val, tcfg.batch_size)  # model holds the best weights
        (out / "predictions.json").write_text(json.dumps(submission(results)))
        metrics = score(_ground_truth(val_path, val), results)
    metrics["best_epoch"] = result.best_epoch
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def load_run(run_dir, device: str = "cpu"):
    """(model with best weights, decode, config dict) of a run directory written by train_from_store."""
    return runs.load_run(run_dir, "vslnet", build, Config.from_dict, device)


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None) -> str:
    """Write the official NLQ submission JSON for ``annotations`` with the best weights of ``run_dir``."""
    store = runs.open_store(store)
    model, decode, config = load_run(run_dir, "auto")  # the training device may not be here
    cfg = model.cfg
    feature_set = feature_set or config["feature_set"]
    text_set = text_set or config.get("text_set") or _resolve_text_set(store, None)
    queries, _ = _queries(annotations, "predict")
    data = _load_split(store, feature_set, queries, text_set, cfg, "predict", False)
    results = predict_dataset(model, decode, data, config.get("train_config", {}).get("batch_size", 32))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(submission(results)))
    return str(out)


def demo_step(ctx) -> dict:
    """Train briefly on the demo store's NLQ train split, evaluate on val (seconds when ctx.quick)."""
    head = dict(dim=32, num_heads=4, conv_layers=1, dropout=0.1) if ctx.quick else {}
    train = dict(epochs=3 if ctx.quick else 30, batch_size=16, lr=2e-3, seed=ctx.seed, device=ctx.device,
                 progress=not ctx.quick)
    metrics = train_from_store(ctx.store, ctx.feature_set, ctx.nlq_train, ctx.out_dir, val_annotations=ctx.nlq_val,
                               text_set=ctx.text_set, head_overrides=head, train_overrides=train)
    return {"benchmark": "nlq", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.nlq_val)}
