"""VSLNet's hooks for the shared runner: NLQ queries + store features -> datasets; predict/score a split; demo.

See docs/heads_vslnet.md. The recipe itself (seeded build, fit, run directory) is ``egoflow.heads.runner``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from egoflow.datasets.records import NLQQuery
from egoflow.heads.spec import Task, config_from_dict
from egoflow.heads.train import move_to
from egoflow.heads.vslnet.data import NLQDataset, check_feature_set, collate_nlq, load_nlq_split
from egoflow.heads.vslnet.model import Config

log = logging.getLogger(__name__)

# Ego4D NLQ baseline-like optimisation; the warm-up is 5% of all steps unless train_overrides sets warmup_steps.
TRAIN_DEFAULTS = dict(epochs=10, batch_size=32, lr=1e-3, weight_decay=0.01, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")
WARMUP_FRACTION = 0.05
# The Ego4D NLQ baseline as its code runs it (EGO4D/episodic-memory@5275b95 NLQ/VSLNet: run_train.sh with
# --predictor bert, options.py defaults, model/VSLNet.py's optimiser): egoflow's options off. Weights trained by
# the baseline load with egoflow.heads.vslnet.reference.load_reference_state_dict.
BASELINE_HEAD = dict(predictor="transformer", dim=128, num_heads=8, kernel_size=7, conv_layers=4, max_pos_len=128,
                     dropout=0.2, highlight_weight=5.0, highlight_extension=0.1, mask_conv_padding=False,
                     pos_init_std=1.0)
BASELINE_TRAIN = dict(epochs=200, batch_size=32, lr=1e-4, optimizer="adamw-hf", weight_decay=0.01,
                      no_decay_norm_bias=True, schedule="linear", warmup_steps=0, grad_clip=1.0)
METRIC = "R@1 IoU=0.3"
# what every VSLNet recipe says of Config.fast_dropout (on: the same masks in distribution, drawn ~2x cheaper)
DROPOUT_DIFFERS = ("dropout masks on CPU come from torch.rand (fast_dropout: nn.Dropout's keep probability and "
                   "scale, ~2x cheaper draws); --set fast_dropout=false draws nn.Dropout's own masks")


def _queries(annotations, split: str) -> tuple[list[NLQQuery], str | None]:
    """NLQ records from an Ego4D NLQ file path (zero-length windows kept: the split decides) or a list."""
    if isinstance(annotations, (list, tuple)):
        return list(annotations), None
    from egoflow.datasets.ego4d import load_nlq_report
    queries, stats = load_nlq_report(annotations, keep_zero_length=True)
    log.info("%s (%s): %s", annotations, split, stats.summary())
    return queries, str(annotations)


@torch.no_grad()
def predict_dataset(model, decode, data: NLQDataset, batch_size: int = 64, device=None) -> list[dict]:
    """Top-k windows (clip seconds) for every query of ``data``, as official NLQ result entries (+ scores)."""
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


class NLQEvaluation:
    """Predict a split's queries; score them with the official NLQ metric against ``ground_truth``."""

    metric, mode = METRIC, "max"

    def __init__(self, data: NLQDataset, ground_truth: list[NLQQuery] | None, batch_size: int = 64):
        self.data, self.ground_truth, self.batch_size = data, ground_truth, batch_size

    def predict(self, model, decode) -> list[dict]:
        return predict_dataset(model, decode, self.data, self.batch_size)

    def score(self, records: list[dict]) -> dict[str, float]:
        from egoflow.evaluate.nlq import evaluate_nlq
        from egoflow.formats import nlq_submission
        return {k: float(v) for k, v in evaluate_nlq(self.ground_truth, nlq_submission(records)["results"]).items()
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
                          skip_missing=cfg.skip_missing, conditioned=cfg.conditioned)


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


def task(inputs, overrides: dict) -> Task:
    """Train split (zero-length answers dropped unless configured otherwise) and the val split, if any."""
    store, feature_set = inputs.store, inputs.feature_set
    text_set = inputs.text_set_or(what="the query embeddings to use")
    train_q, _ = _queries(inputs.annotations, "train")
    cfg = config_from_dict(Config, _fill_dims(store, feature_set, text_set, overrides, train_q), "vslnet")
    train = _load_split(store, feature_set, train_q, text_set, cfg, "train", cfg.drop_zero_length_train)
    val = None
    if inputs.val_annotations is not None:
        val_q, val_path = _queries(inputs.val_annotations, "val")
        data = _load_split(store, feature_set, val_q, text_set, cfg, "val", False)
        val = NLQEvaluation(data, _ground_truth(val_path, data))
    info = {"text_set": text_set, "num_train": len(train), "num_val": len(val.data) if val else 0,
            "dropped_zero_length_train": train.dropped_zero_length, "skipped_missing_train": train.skipped_missing,
            "skipped_missing_val": val.data.skipped_missing if val else 0}
    return Task(cfg, train, collate_nlq, val, info)


def predictor(inputs, cfg: Config) -> NLQEvaluation:
    text_set = inputs.text_set_or(what="the query embeddings to use")
    queries, _ = _queries(inputs.annotations, "predict")
    data = _load_split(inputs.store, inputs.feature_set, queries, text_set, cfg, "predict", False)
    return NLQEvaluation(data, None, inputs.run_config.get("train_config", {}).get("batch_size", 32))


def demo(ctx, runner) -> dict:
    """Train briefly on the demo store's NLQ train split, evaluate on val (seconds when ctx.quick)."""
    head = dict(dim=32, num_heads=4, conv_layers=1, dropout=0.1) if ctx.quick else {}
    tr = dict(epochs=3 if ctx.quick else 30, batch_size=16, lr=2e-3, seed=ctx.seed, device=ctx.device,
              progress=not ctx.quick)
    metrics = runner.train("vslnet", ctx.store, ctx.feature_set, ctx.nlq_train, ctx.out_dir,
                           val_annotations=ctx.nlq_val, text_set=ctx.text_set, head_overrides=head,
                           train_overrides=tr)
    return {"benchmark": "nlq", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.nlq_val)}
