"""Synthetic CharadesEgo files: ``CharadesEgo_v1_<split>_only1st.csv`` and ``Charades_v1_classes.txt``.

Two sources use the same writers: the planted narrated features of ``narrated.py`` (tests, benchmark; every
planted concept is a class) and the generated videos of ``videos.py`` (the demo). Class names are another
*wording* of a concept than its narrations, as in the real data (CharadesEgo says "Holding some clothes", Ego4D
narrations "#C C picks a cloth"): a class-name embedding is ``normalize(c_k + class_noise * z_k / sqrt(D))``
with its own random ``z_k``, so zero-shot transfer from narration pretraining works but is imperfect and
fine-tuning on the train split has something to learn.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# the columns of the released CharadesEgo_v1_*.csv files (readers need only id and actions)
COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
           "actions", "length")


def write_classes(names: list[str], path) -> Path:
    """``Charades_v1_classes.txt``: ``c000 <name>`` per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"c{i:03d} {n}\n" for i, n in enumerate(names)), encoding="utf-8")
    return path


def write_csv(rows: list[tuple[str, list[tuple[int, float, float]], float]], path) -> Path:
    """A CharadesEgo csv from ``(video id, [(class index, start s, end s)], length s)`` rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for vid, actions, length in rows:
            acts = ";".join(f"c{c:03d} {s:.2f} {e:.2f}" for c, s, e in actions)
            w.writerow([vid, "synthetic", "Kitchen", 7, 7, "Yes", "", "", "", acts, f"{length:.2f}"])
    return path


def class_name(concept: str) -> str:
    return f"Handling the {concept}"


def add_class_names(data, class_noise: float = 1.0) -> list[str]:
    """Add one class-name embedding per concept of ``data`` (NarratedData) to ``data.texts``; returns the names
    in class-index order. Deterministic in the spec's seed and independent of the other draws."""
    from egoflow.datasets.synthetic.narrated import concept_name

    rng = np.random.default_rng([data.spec.seed, 157])
    dim = data.anchors.shape[1]
    names = [class_name(concept_name(k)) for k in range(len(data.anchors))]
    for k, name in enumerate(names):
        v = data.anchors[k] + class_noise * rng.normal(size=dim) / np.sqrt(dim)
        data.texts[name] = (v / np.linalg.norm(v)).astype(np.float32)
    return names


def write_narrated_charades(data, splits: dict[str, list[str]], out_dir, class_noise: float = 1.0) -> dict:
    """CharadesEgo files for the planted videos of ``data``: each planted segment is an action of its concept's
    class. ``splits``: split name -> video uids. Returns ``{"classes": path, <split>: csv path}``; the class
    names are added to ``data.texts`` (write the store afterwards)."""
    out = Path(out_dir)
    paths = {"classes": write_classes(add_class_names(data, class_noise), out / "Charades_v1_classes.txt")}
    for split, uids in splits.items():
        rows = [(u, [(s.concept, s.start_sec, s.end_sec) for s in data.segments if s.video_uid == u],
                 data.videos[u][2]) for u in uids]
        paths[split] = write_csv(rows, out / f"CharadesEgo_v1_{split}_only1st.csv")
    return paths


def write_video_charades(root, splits: dict, segments: dict, concepts, duration_s: float) -> dict:
    """CharadesEgo files for the generated videos of ``videos.make_dataset`` (each concept a class, each of its
    segments an action) -> ``{"charades_classes": path, "charades_<split>": csv path}``."""
    root = Path(root)
    idx = {c.name: i for i, c in enumerate(concepts)}
    paths = {"charades_classes": write_classes([class_name(c.name) for c in concepts],
                                               root / "Charades_v1_classes.txt")}
    for split, uids in splits.items():
        rows = [(u, [(idx[s.concept], s.start, s.end) for s in segments[u]], duration_s) for u in uids]
        paths[f"charades_{split}"] = write_csv(rows, root / f"CharadesEgo_v1_{split}_only1st.csv")
    return paths
