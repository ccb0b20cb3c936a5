"""LAVITI on CharadesEgo: zero-shot class scores from a pretraining run, and fine-tuning on the train split.

A class's score for a video is the mean cosine between all of the video's output visual embeddings (every
moment query of every chunk) and the class-name text embedding (``laviti_zeroshot.charades_scores``). Zero-shot
and fine-tuned models are scored by that one rule, so their mAPs compare directly.

Fine-tuning (choices the paper leaves open; docs/heads_laviti.md):

- start from the best weights of a pretraining run (``init``), or from scratch;
- each annotated action (class, start, end) is a "narration" whose interval is known, its text the class-name
  embedding; the pretraining set loss (three-way Hungarian matching + sigmoid losses) runs on them unchanged;
- plus a video-level multi-label sigmoid loss on the score itself, ``t * score + b`` per class against the
  chunk's labels: the set loss only contrasts a chunk's moments with the classes *in* that chunk, this term is
  what pushes every absent class down.

Registry entry ``laviti-charades``: ``egoflow train laviti-charades --init RUN`` fine-tunes, ``egoflow predict
laviti-charades --run RUN`` writes the official classification submission for either kind of run.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.laviti import Config, Criterion, build  # noqa: F401 - registry interface: Config, build
from egoflow.heads.laviti_data import Chunk, SeededDraws, collate, keep_at_most, training_windows, video_duration


@dataclass
class FinetuneConfig:
    class_loss_weight: float = 1.0  # weight of the video-level sigmoid class loss (what the mAP ranks by)
    set_loss_weight: float = 1.0  # weight of the pretraining set loss on the action intervals (0: class loss only)
    init_temperature: float = 10.0  # start of the learnable scale t of the class logits t * score + b
    init_bias: float = -5.0  # start of the learnable bias b: sigmoid(-5) ~ 1/150, about one class of 157 present
    max_temperature: float = 100.0  # clamp of t, as in CLIP


@dataclass
class ActionChunk:
    chunk: Chunk  # frames of one window (chunk time)
    start: np.ndarray  # [M] action starts in chunk seconds, clipped to the chunk
    end: np.ndarray  # [M] action ends
    classes: np.ndarray  # [M] class index of each action
    labels: np.ndarray  # [C] bool: classes present in the chunk


def action_chunks(videos: dict, records: list, num_classes: int, cfg: Config) -> tuple[list[ActionChunk], dict]:
    """CharadesEgo videos (``CharadesVideo`` records; ``videos``: id -> VideoFeatures) -> training chunks, stats.

    Bad input, one handling each (counted in ``stats``): a video without features is skipped; an action repeated
    verbatim is kept once; an action with no usable interval (end <= start after clipping to the video, e.g.
    reversed or outside it) still labels every chunk of its video but gets no interval; a chunk shorter than one
    token is skipped; a chunk without actions is kept (every class is a negative there).
    """
    stats: dict = defaultdict(int)
    out = []
    for v in records:
        if v.video_id not in videos:
            stats["videos_without_features"] += 1
            continue
        vf = videos[v.video_id]
        duration = video_duration(vf)
        placed, unplaced = [], set()
        for a in dict.fromkeys(v.actions):  # ordered de-duplication
            s, e = max(a.start_sec, 0.0), min(a.end_sec, duration)
            if e > s:
                placed.append((a.class_idx, s, e))
            else:
                unplaced.add(a.class_idx)
                stats["actions_without_interval"] += 1
        stats["actions_duplicated"] += len(v.actions) - len(dict.fromkeys(v.actions))
        for cs, ce, feats, times in training_windows(v.video_id, vf, duration, cfg, stats):
            acts = [(c, max(s, cs) - cs, min(e, ce) - cs) for c, s, e in placed if s < ce and e > cs]
            labels = np.zeros(num_classes, bool)
            labels[[c for c, _, _ in acts] + sorted(unplaced)] = True
            stats["chunks_without_actions"] += int(not labels.any())
            out.append(ActionChunk(Chunk(v.video_id, cs, ce - cs, feats, times),
                                   np.array([a[1] for a in acts], np.float64),
                                   np.array([a[2] for a in acts], np.float64),
                                   np.array([a[0] for a in acts], np.int64), labels))
    stats["chunks"] = len(out)
    stats["actions_used"] = int(sum(len(c.classes) for c in out))
    return out, dict(stats)


class ActionChunks(SeededDraws):
    """Items for :func:`collate_actions`: a chunk, its actions as (interval, class-name embedding), its labels.

    A chunk with more actions than moment queries keeps a random ``max_actions`` of them per draw (the first
    ones when ``seed`` is None) so every ground truth has a prediction to match.
    """

    def __init__(self, chunks: list[ActionChunk], class_emb: np.ndarray, max_actions: int, seed: int | None = 0):
        super().__init__(seed)
        self.chunks, self.class_emb, self.max_actions = chunks, np.asarray(class_emb, np.float32), max_actions

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict:
        c = self.chunks[i]
        idx = keep_at_most(len(c.classes), self.max_actions, self.rng)
        return {"chunk": c.chunk, "start": c.start[idx], "end": c.end[idx], "text": self.class_emb[c.classes[idx]],
                "labels": c.labels}


def collate_actions(items: list[dict]) -> dict:
    """LAVITI's batch (``laviti_data.collate``) plus ``labels [B, C]`` (float 0/1)."""
    batch = collate(items)
    batch["labels"] = torch.from_numpy(np.stack([it["labels"] for it in items])).float()
    return batch


class FinetuneCriterion(nn.Module):
    """``set_loss_weight`` x LAVITI's set loss on the actions + ``class_loss_weight`` x the class loss.

    Class loss: score ``s [B, C]`` = mean over queries of cos(visual embedding, class-name embedding) (the
    evaluation score), logits ``t * s + b`` with a learnable t (clamped) and b, and
    ``-sum_c log sigmoid(z_c * logit_c)`` per chunk (z = +1 present, -1 absent), averaged over the batch.
    """

    def __init__(self, cfg: Config, ft: FinetuneConfig, class_emb: np.ndarray):
        super().__init__()
        self.ft = ft
        self.set_loss = Criterion(cfg)
        self.register_buffer("class_emb", F.normalize(torch.as_tensor(np.asarray(class_emb, np.float32)), dim=-1))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(ft.init_temperature)))
        self.logit_bias = nn.Parameter(torch.tensor(float(ft.init_bias)))

    def forward(self, outputs: dict, batch: dict) -> dict:
        out = self.set_loss(outputs, batch)
        total = self.ft.set_loss_weight * out["loss"]
        score = outputs["visual"].mean(1) @ self.class_emb.T  # [B, C]: mean of cosines = cosine with the mean
        logits = self.logit_scale.exp().clamp(max=self.ft.max_temperature) * score + self.logit_bias
        z = 2.0 * batch["labels"] - 1.0
        cls = -F.logsigmoid(z * logits).sum(1).mean()
        out.update(loss_set=out["loss"].detach(), loss_class=cls.detach(),
                   temperature_class=self.logit_scale.detach().exp())
        out["loss"] = total + self.ft.class_loss_weight * cls
        return out


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None, init=None,
                     classes=None) -> dict:
    """Fine-tune on a CharadesEgo csv (see ``laviti_charades_run.train_from_store``)."""
    from egoflow.heads import laviti_charades_run as run

    return run.train_from_store(store, feature_set, annotations, out_dir, val_annotations=val_annotations,
                                text_set=text_set, head_overrides=head_overrides, train_overrides=train_overrides,
                                init=init, classes=classes)


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None,
                       classes=None) -> str:
    """Official CharadesEgo submission with a pretraining or fine-tuning run (see ``laviti_charades_run``)."""
    from egoflow.heads import laviti_charades_run as run

    return run.predict_from_store(run_dir, store, annotations, out_path, feature_set=feature_set,
                                  text_set=text_set, classes=classes)


def demo_step(ctx) -> dict:
    from egoflow.heads import laviti_charades_run as run

    return run.demo_step(ctx)
