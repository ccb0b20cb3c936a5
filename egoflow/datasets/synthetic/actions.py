"""Synthetic EPIC-KITCHENS-100 action csvs and an EgoMCQ file over the planted narrated videos (``narrated.py``).

EK-100: every planted segment is an action whose noun is its concept (``object007``) and whose verb is a fixed
function of the concept (``verb k % num_verbs``), written in the released csv layout with the verb / noun class
lists next to it, so ``egoflow.datasets.ek100_actions`` reads them. EgoMCQ: each query is a segment's narration;
inter-video items offer 5 segments of different videos and concepts, intra-video items every segment of the
query's own video (``types`` 2), in the ``egomcq.json`` layout of EgoVLP.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

VERBS = ("take", "open", "wash", "cut", "put", "mix")


def _ts(sec: float) -> str:
    h, rem = divmod(sec, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{int(h):02d}:{int(m):02d}:{s:05.2f}"


def write_narrated_ek100(data, splits: dict[str, list[str]], out_dir, num_verbs: int = 4) -> dict:
    """``EPIC_100_<split>.csv`` per split + ``EPIC_100_{verb,noun}_classes.csv`` -> ``{"verbs", "nouns", split}``."""
    from egoflow.datasets.synthetic.narrated import concept_name

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, names in (("verb", VERBS[:num_verbs]), ("noun", [concept_name(k) for k in range(len(data.anchors))])):
        p = out / f"EPIC_100_{kind}_classes.csv"
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "key", "instances", "category"])
            for i, n in enumerate(names):
                w.writerow([i, n, "[]", "synthetic"])
        paths[kind + "s"] = p
    cols = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
            "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class",
            "all_nouns", "all_noun_classes"]
    for split, uids in splits.items():
        p = out / f"EPIC_100_{split}.csv"
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for u in uids:
                for i, s in enumerate(x for x in data.segments if x.video_uid == u):
                    v, n = s.concept % num_verbs, concept_name(s.concept)
                    w.writerow([f"{u}_{i}", "P00", u, _ts(s.start_sec), _ts(s.start_sec), _ts(s.end_sec),
                                int(s.start_sec * 50), int(s.end_sec * 50), f"{VERBS[v]} {n}", VERBS[v], v, n,
                                s.concept, f"['{n}']", f"[{s.concept}]"])
        paths[split] = p
    return paths


def write_narrated_egomcq(data, uids: list[str], path, seed: int = 0) -> Path:
    """An ``egomcq.json`` over the segments of ``uids`` (answer index random, deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    segs = [s for s in data.segments if s.video_uid in set(uids)]
    narration = {id(s): n.text for s, n in zip(data.segments, data.narrations)}  # one narration per segment

    def clip(s):
        return {"video_uid": s.video_uid, "clip_start": round(s.start_sec, 3), "clip_end": round(s.end_sec, 3),
                "clip_text": ""}

    items = {}
    for s in segs:
        query = narration[id(s)]
        others = [x for x in segs if x.video_uid != s.video_uid and x.concept != s.concept]
        picks = [others[j] for j in rng.choice(len(others), 4, replace=False)] if len(others) >= 4 else []
        for kind, cands in ((1, picks), (2, [x for x in segs if x.video_uid == s.video_uid and x is not s])):
            if not cands:
                continue
            pos = int(rng.integers(len(cands) + 1))
            choices = cands[:pos] + [s] + cands[pos:]
            items[str(len(items))] = {"query": {"clip_text": query, **{k2: v for k2, v in clip(s).items()
                                                                       if k2 != "clip_text"}},
                                      "choices": {str(j): clip(c) for j, c in enumerate(choices)},
                                      "answer": pos, "types": kind}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    return path
