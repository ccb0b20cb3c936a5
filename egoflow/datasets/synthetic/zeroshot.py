"""Zero-shot benchmark files over the planted videos of ``synthetic/linear.py``: EgoMCQ, EK-100 MIR, CharadesEgo.

Captions are ``"verb{v} noun{n}"`` and class names ``"noun{n}"`` (prompted ``"a video of {}"``), whose embeddings
``write_files`` returns in the planted feature space, so a working zero-shot scorer beats chance clearly.
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np

from egoflow.datasets.synthetic.linear import Planted, _csv, _hms, noun_name, verb_name

PROMPT = "a video of {}"


def _caption(v: int, n: int) -> str:
    return f"{verb_name(v)} {noun_name(n)}"


def write_zeroshot_files(data: Planted, out_dir, num_mcq: int = 40) -> dict[str, Path]:
    """egomcq.json, retrieval_annotations/ (test split) and CharadesEgo csv + class list, from the val videos."""
    out, rng = Path(out_dir), np.random.default_rng(data.spec.seed + 2)
    segs = [s for s in data.segments if data.split(s[0]) == "val"]
    paths: dict[str, Path] = {}

    def clip(s) -> dict:
        return {"video_uid": s[0], "clip_start": s[1], "clip_end": s[2], "clip_text": _caption(s[3], s[4])}

    mcq = {}
    for i in range(num_mcq):
        k = int(rng.integers(len(segs)))
        kind = 1 + i % 2  # 1 inter-video, 2 intra-video
        pool = [j for j, s in enumerate(segs) if j != k and (s[0] == segs[k][0]) == (kind == 2)
                and s[3:5] != segs[k][3:5]]
        others = [segs[j] for j in rng.choice(pool, 4, replace=False)]
        answer = int(rng.integers(5))
        choices = others[:answer] + [segs[k]] + others[answer:]
        mcq[str(i)] = {"query": clip(segs[k]), "choices": {str(j): clip(c) for j, c in enumerate(choices)},
                       "answer": answer, "types": kind}
    paths["egomcq"] = out / "egomcq" / "egomcq.json"
    paths["egomcq"].parent.mkdir(parents=True, exist_ok=True)
    paths["egomcq"].write_text(json.dumps(mcq))

    root = out / "ek100" / "retrieval_annotations"
    rows = [[f"{s[0]}_{i}", "P00", s[0], _hms(s[1]), _hms(s[1]), _hms(s[2]), _caption(s[3], s[4])]
            for i, s in enumerate(segs)]
    _csv(root / "EPIC_100_retrieval_test.csv", ["narration_id", "participant_id", "video_id", "narration_timestamp",
                                                 "start_timestamp", "stop_timestamp", "narration"], rows)
    caps = sorted({(s[3], s[4]) for s in segs})
    _csv(root / "EPIC_100_retrieval_test_sentence.csv", ["narration_id", "narration"],
         [[f"S{j}", _caption(v, n)] for j, (v, n) in enumerate(caps)])
    rel = np.array([[len({("v", s[3]), ("n", s[4])} & {("v", v), ("n", n)}) / len({("v", s[3]), ("n", s[4]),
                                                                                    ("v", v), ("n", n)})
                     for v, n in caps] for s in segs])  # IoU of the verb/noun class sets, as EK-100
    (root / "relevancy").mkdir(parents=True, exist_ok=True)
    (root / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl").write_bytes(pickle.dumps(rel))
    paths["mir"] = root

    cdir = out / "charades"
    cdir.mkdir(parents=True, exist_ok=True)
    with open(cdir / "Charades_v1_classes.txt", "w", encoding="utf-8") as f:
        f.writelines(f"c{n:03d} {noun_name(n)}\n" for n in range(data.spec.nouns))
    with open(cdir / "CharadesEgo_v1_test_only1st.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "actions", "length"])
        for uid in sorted({s[0] for s in segs}):
            acts = ";".join(f"c{s[4]:03d} {s[1]:.2f} {s[2]:.2f}" for s in segs if s[0] == uid)
            w.writerow([uid, acts, f"{max(s[2] for s in segs if s[0] == uid):.2f}"])
    paths["charades"] = cdir / "CharadesEgo_v1_test_only1st.csv"
    paths["charades_classes"] = cdir / "Charades_v1_classes.txt"
    return paths
