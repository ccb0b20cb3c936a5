"""Reader for CharadesEgo annotations (``CharadesEgo_v1_{train,test}[_only1st].csv`` + ``Charades_v1_classes.txt``).

Each row is a video; ``actions`` is ``""`` or ``c092 11.90 21.20;c147 0.00 12.60`` (class id, start, end in
seconds). The class list has lines ``c000 Holding some clothes``. Times are checked by the shared checker
(non-negative, finite, an action not ending before it starts). Also reads the official classification
submission format (``id score_0 ... score_156`` per line, space or tab separated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.errors import AnnotationError, Checker, PredictionError, read_csv_rows, read_lines, short

NUM_CLASSES = 157


@dataclass(frozen=True)
class CharadesAction:
    class_idx: int  # 92 for "c092"
    start_sec: float
    end_sec: float


@dataclass(frozen=True)
class CharadesVideo:
    video_id: str
    actions: tuple[CharadesAction, ...]
    length_sec: float | None = None  # the "length" column when present

    @property
    def classes(self) -> list[int]:
        return sorted({a.class_idx for a in self.actions})


def _class_idx(token: str, path, where: str) -> int:
    if len(token) < 2 or token[0] != "c" or not token[1:].isdigit() or len(token) > 8:
        raise AnnotationError(path, where, f"bad class id {short(token)} (expected like c092)")
    return int(token[1:])


def load_charades_ego(path, num_classes: int | None = None) -> list[CharadesVideo]:
    """Rows of a CharadesEgo CSV -> ``CharadesVideo`` records (file order); with ``num_classes`` (the length of
    the class list) a class index beyond it is an error naming the video."""
    out, ck, seen = [], Checker(path), set()
    for n, row in enumerate(read_csv_rows(path, ("id", "actions")), start=2):
        where = f"line {n} (id {short(row['id'])})"
        ck.unique(seen, row["id"], where, "video id")
        length = row.get("length")
        length_sec = ck.time_text(length, f"{where} length") if length not in (None, "") else None
        acts = []
        for part in (row["actions"] or "").split(";"):
            if not part.strip():
                continue
            tok = part.split()
            if len(tok) != 3:
                raise AnnotationError(path, where, f"bad action {part!r} (expected 'cNNN start end')")
            aw = f"{where}: action {short(part.strip())}"
            s, e = ck.time_text(tok[1], aw), ck.time_text(tok[2], aw)
            ck.window(s, e, aw)  # not against `length`: the release has actions a little past it
            idx = _class_idx(tok[0], path, where)
            if num_classes is not None and idx >= num_classes:
                raise AnnotationError(path, f"video {row['id']}", f"class c{idx:03d} is not in the class list "
                                                                  f"({num_classes} classes)")
            acts.append(CharadesAction(idx, s, e))
        out.append(CharadesVideo(row["id"], tuple(acts), length_sec))
    return out


def load_charades_classes(path) -> list[str]:
    """``Charades_v1_classes.txt`` -> class names indexed by class id; ids must run 0..C-1 in order."""
    names = []
    for n, ln in enumerate(read_lines(path), start=1):
        if not ln.strip():
            continue
        tok = ln.strip().split(" ", 1)
        idx = _class_idx(tok[0], path, f"line {n}")
        if idx != len(names):
            raise AnnotationError(path, f"line {n}", f"class c{idx:03d} out of order (expected c{len(names):03d})")
        names.append(tok[1] if len(tok) > 1 else tok[0])
    if not names:
        raise AnnotationError(path, None, "no classes (expected lines like 'c000 Holding some clothes')")
    return names


def label_matrix(videos: list[CharadesVideo], num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Binary video-level labels [num_videos, num_classes]."""
    out = np.zeros((len(videos), num_classes), dtype=bool)
    for i, v in enumerate(videos):
        for c in v.classes:
            if c >= num_classes:
                raise AnnotationError(None, f"video {v.video_id}", f"class c{c:03d} >= num_classes {num_classes}")
            out[i, c] = True
    return out


def load_charades_submission(path, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Official classification submission (``id s_0 ... s_{C-1}`` per line) -> {video_id: scores [C]}."""
    out: dict[str, np.ndarray] = {}
    for n, ln in enumerate(read_lines(path, PredictionError), start=1):
        tok = ln.split()
        if not tok:
            continue
        try:
            vals = np.array([float(x) for x in tok[1:]])
        except ValueError:
            raise PredictionError(path, f"line {n}", "scores must be numbers") from None
        num_classes = num_classes or len(vals)
        if len(vals) != num_classes or any(math.isnan(v) for v in vals):
            raise PredictionError(path, f"line {n}", f"expected {num_classes} numeric scores, got {len(vals)}")
        if tok[0] in out:
            raise PredictionError(path, f"line {n}", f"second line for video {short(tok[0])}")
        out[tok[0]] = vals
    if not out:
        raise PredictionError(path, None, "no predictions")
    return out
