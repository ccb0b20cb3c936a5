"""Zero-shot benchmark files over the generated videos of ``videos.make_dataset``: EgoMCQ (``egomcq.json``) and
EK-100 MIR (``retrieval_annotations/``), for the fused scorer (``egoflow predict egomcq|ek100-mir --encoder fused
--videos DIR``). Each concept segment of the given videos is a clip; its text is the narration form
``"#C C <verb> the <concept>"``."""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np


def _text(concepts: dict, name: str) -> str:
    return f"#C C {concepts[name].verb} the {name}"


def _segments(ds, uids) -> list:
    return [(u, s) for u in uids for s in ds.segments[u]]


def write_video_egomcq(ds, uids: list[str], path, concepts, seed: int = 0) -> Path:
    """``egomcq.json``: one inter-video item (the query's segment among 4 segments of other videos, any of the
    dataset's, and other concepts) and one intra-video item (every other segment of its own video) per segment of
    ``uids``; answer index random, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    by_name = {c.name: c for c in concepts}
    segs, pool = _segments(ds, uids), _segments(ds, sorted(ds.segments))

    def clip(u, s):
        return {"video_uid": u, "clip_start": round(s.start, 3), "clip_end": round(s.end, 3), "clip_text": ""}

    items = {}
    for u, s in segs:
        others = [x for x in pool if x[1].concept != s.concept and x[0] != u]
        inter = [others[j] for j in rng.choice(len(others), 4, replace=False)] if len(others) >= 4 else []
        intra = [x for x in segs if x[0] == u and x[1] is not s]
        for kind, cands in ((1, inter), (2, intra)):
            if not cands:
                continue
            pos = int(rng.integers(len(cands) + 1))
            choices = cands[:pos] + [(u, s)] + cands[pos:]
            items[str(len(items))] = {"query": {**clip(u, s), "clip_text": _text(by_name, s.concept)},
                                      "choices": {str(j): clip(*c) for j, c in enumerate(choices)},
                                      "answer": pos, "types": kind}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    return path


def _ts(sec: float) -> str:
    m, s = divmod(sec, 60.0)
    return f"00:{int(m):02d}:{s:05.2f}"


def write_video_mir(ds, uids: list[str], root, concepts, split: str = "test") -> Path:
    """``retrieval_annotations/`` of EK-100 MIR (``EPIC_100_retrieval_<split>.csv``, its ``_sentence.csv`` and the
    relevancy matrix): each segment a clip, each concept's narration a sentence, relevancy 1 for the clip's own
    concept (0 otherwise)."""
    root = Path(root)
    (root / "relevancy").mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in concepts}
    segs = _segments(ds, uids)
    names = sorted({s.concept for _, s in segs})
    with open(root / f"EPIC_100_retrieval_{split}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                    "stop_timestamp", "narration"])
        for i, (u, s) in enumerate(segs):
            w.writerow([f"{u}_{i}", "P00", u, _ts(s.start), _ts(s.start), _ts(s.end), _text(by_name, s.concept)])
    with open(root / f"EPIC_100_retrieval_{split}_sentence.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["narration_id", "narration"])
        first = {}
        for i, (u, s) in enumerate(segs):
            first.setdefault(s.concept, f"{u}_{i}")
        for n in names:
            w.writerow([first[n], _text(by_name, n)])
    rel = np.array([[float(s.concept == n) for n in names] for _, s in segs])
    (root / "relevancy" / f"caption_relevancy_EPIC_100_retrieval_{split}.pkl").write_bytes(pickle.dumps(rel))
    return root
