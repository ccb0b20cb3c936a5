"""CharadesEgo as LAVITI training data: each annotated action (class, start, end) is a "narration" whose interval
is known and whose text is the class-name embedding; a chunk also carries the labels of the classes in it.

Bad input, one handling each (counted in ``stats``): see :func:`action_chunks`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from egoflow.heads.laviti.data import Chunk, SeededDraws, collate, keep_at_most, training_windows


@dataclass
class ActionChunk:
    chunk: Chunk  # frames of one window (chunk time)
    start: np.ndarray  # [M] action starts in chunk seconds, clipped to the chunk
    end: np.ndarray  # [M] action ends
    classes: np.ndarray  # [M] class index of each action
    labels: np.ndarray  # [C] bool: classes present in the chunk


def action_chunks(videos: dict, records: list, num_classes: int, cfg) -> tuple[list[ActionChunk], dict]:
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
        duration = vf.duration
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
    """LAVITI's batch (``data.collate``) plus ``labels [B, C]`` (float 0/1)."""
    batch = collate(items)
    batch["labels"] = torch.from_numpy(np.stack([it["labels"] for it in items])).float()
    return batch
