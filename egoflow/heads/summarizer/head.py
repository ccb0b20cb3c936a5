"""The summarizer's hooks for the shared runner: QFVS folder + store -> datasets; predict/score a video; demo.

``annotations`` is a QFVS ``origin_data`` folder (or a parent of it). Records are ``{video_id:
{CONCEPT1_CONCEPT2: [0-based shots]}}``, written by ``egoflow.formats`` as what ``egoflow.evaluate.qfvs`` scores.
The recipe itself (seeded build, fit, run directory) is ``egoflow.heads.runner``; the QFVS protocol (one run per
held-out video) is ``protocol.py``.
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader

from egoflow.heads.spec import Task, config_from_dict
from egoflow.heads.summarizer.data import QFVSDataset, SummarizerDataError, collate_qfvs, load_split
from egoflow.heads.summarizer.model import Config
from egoflow.heads.train import move_to

TRAIN_DEFAULTS = dict(epochs=20, batch_size=4, lr=5e-4, weight_decay=0.01, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine", warmup_steps=10)
# EgoVLPv2's QFVS recipe (QFVS/QFVS.yml, main.py, runner_train.py, extract_features.py) in this head's terms:
# its own model (arch egovlpv2: 2 layers, 2 heads, feed-forward 2048, padded slots +1) on shots fused with each
# prompt (a conditioned set), 5 s shots; KTS with a linear kernel (X X^T), <= 19 change points, <= 199 shots a
# segment (rows of 200 slots), vmax 1; BCE on the query + both concept conditions, summed over a batch's videos;
# score bias -1.91; decode the query condition only, plain top 2 %.
PAPER_HEAD = dict(arch="egovlpv2", conditioned=True, padding="add-one", ffn_dim=2048, num_layers=2, num_heads=2,
                  dropout=0.1, top_percent=0.02, max_per_segment=0, decode_conditions="query", concept_weight=1.0,
                  loss_reduction="sum", prior=round(1.0 / (1.0 + math.exp(1.91)), 6), shot_seconds=5.0,
                  kts_lmax=199, kts_max_change_points=19, kts_vmax=1.0, kts_kernel="linear")
# AdamW, decay 0.1 on weights and biases alike; base lr 1e-5 x learning_rate_weights 0.2, biases x 0.0048; lr 0
# at step 0, linear warm-up over 2 epochs, cosine to 1/1000; no clipping; 20 epochs of batch 4. (The reference
# trains under CUDA AMP; fit() trains in float32.)
PAPER_TRAIN = dict(epochs=20, batch_size=4, optimizer="adamw", lr=1e-5 * 0.2, bias_lr_scale=0.0048 / 0.2,
                   weight_decay=0.1, schedule="cosine-floor", warmup_epochs=2, warmup_steps=0, grad_clip=0.0)
METRIC = "F1"
PREDICT_BATCH = 4  # queries per forward pass of `egoflow predict` (training predicts at its batch size)


@torch.no_grad()
def predict_dataset(model, decode, data: QFVSDataset, batch_size: int = PREDICT_BATCH) -> dict:
    """``{video: {query: [shots]}}`` for every sample of ``data``."""
    model.eval()
    device = next(model.parameters()).device
    out: dict = {}
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate_qfvs):
        for p in decode(model(move_to(batch, device)), batch):
            out.setdefault(p["video"], {})[p["query"]] = p["shots"]
    return out


def score(videos, records: dict) -> dict[str, float]:
    """F1 / precision / recall over ``videos`` and the F1 of each ("F1 P04"), with the official QFVS metric."""
    from egoflow.evaluate.qfvs import evaluate_qfvs
    r = evaluate_qfvs(videos, records)
    out = {k: r[k] for k in ("F1", "precision", "recall")}
    out.update({f"F1 {v}": s["F1"] for v, s in r["per_video"].items()})
    return out


class QFVSEvaluation:
    """Summaries of the held-out video's queries, scored against its QFVS annotations ``videos``."""

    metric, mode = METRIC, "max"

    def __init__(self, videos: dict, data: QFVSDataset, batch_size: int = PREDICT_BATCH):
        self.videos, self.data, self.batch_size = videos, data, batch_size

    def predict(self, model, decode) -> dict:
        return predict_dataset(model, decode, self.data, self.batch_size)

    def score(self, records: dict) -> dict[str, float]:
        return score(self.videos, records)


def _text_set(inputs) -> str:
    return inputs.text_set_or(SummarizerDataError, "prompt embeddings")


def task(inputs, overrides: dict) -> Task:
    """Train on ``cfg.train_videos`` of the QFVS folder; validate (pick the best epoch by F1) on
    ``cfg.test_video``, read from the val annotations if given, else from the same folder."""
    store, feature_set = inputs.store, inputs.feature_set
    text_set = _text_set(inputs)
    over = dict(overrides)
    over.setdefault("video_dim", int(store.feature_set_info(feature_set)["dim"]))
    over.setdefault("text_dim", int(store.text_set_info(text_set)["dim"]))
    cfg = config_from_dict(Config, over, "summarizer")
    if cfg.test_video in cfg.train_videos:
        raise SummarizerDataError(f"test video {cfg.test_video} is also a training video {cfg.train_videos}")
    _, train = load_split(store, feature_set, text_set, inputs.annotations, cfg.train_videos, cfg)
    val_root = inputs.val_annotations or inputs.annotations
    val_videos, val = load_split(store, feature_set, text_set, val_root, [cfg.test_video], cfg)
    info = {"text_set": text_set, "val_annotations": str(val_root), "num_train": len(train), "num_val": len(val)}
    return Task(cfg, train, collate_qfvs, QFVSEvaluation(val_videos, val), info)


def predictor(inputs, cfg: Config) -> QFVSEvaluation:
    """The run's held-out video (``cfg.test_video``) of the QFVS folder ``inputs.annotations``."""
    videos, data = load_split(inputs.store, inputs.feature_set, _text_set(inputs), inputs.annotations,
                              [cfg.test_video], cfg)
    return QFVSEvaluation(videos, data)
