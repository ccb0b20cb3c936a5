"""Reader for EPIC-KITCHENS-100 action segments (``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``) and the
verb / noun class lists (``EPIC_100_verb_classes.csv``, ``EPIC_100_noun_classes.csv``) of the annotations repo.

    narration_id, participant_id, video_id, narration_timestamp, start_timestamp, stop_timestamp, start_frame,
    stop_frame, narration, verb, verb_class, noun, noun_class, all_nouns, all_noun_classes

Timestamps are ``HH:MM:SS.ff`` (video time). The test split's csv has no verb/noun columns: such rows read with
``verb_class = noun_class = -1``. An action is the (verb_class, noun_class) pair, as in the official evaluation.
One reader for every head that uses EK-100 actions (linear probe, VideoTranslate's ranking).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from egoflow.datasets.errors import AnnotationError, read_csv_rows


@dataclass(frozen=True)
class EK100Action:
    narration_id: str  # e.g. P01_01_0
    video_id: str  # e.g. P01_01 (the feature store uid of the video)
    start_sec: float  # video time
    stop_sec: float
    narration: str  # free-form, e.g. "open door"
    verb_class: int  # index into the verb class list; -1 when the split has no labels (test)
    noun_class: int  # index into the noun class list; -1 when unlabelled
    participant_id: str = ""  # e.g. P01 (the official unseen-participant breakdown)

    @property
    def action(self) -> tuple[int, int]:
        return self.verb_class, self.noun_class


def parse_timestamp(value: str, where: str, path) -> float:
    """``HH:MM:SS.ff`` (or ``MM:SS.ff``, or plain seconds) -> seconds; anything else names file and row."""
    try:
        parts = [float(p) for p in str(value).strip().split(":")]
        if not 1 <= len(parts) <= 3 or any(p < 0 or not math.isfinite(p) for p in parts):
            raise ValueError
    except ValueError:
        raise AnnotationError(path, where, f"timestamp {value!r} is not HH:MM:SS.ff") from None
    sec = 0.0
    for p in parts:
        sec = sec * 60.0 + p
    return sec


def _int(row: dict, key: str, where: str, path) -> int:
    v = row.get(key)
    if v is None or v == "":
        return -1
    try:
        out = int(v)
    except ValueError:
        raise AnnotationError(path, f"{where}.{key}", f"expected an integer class index, got {v!r}") from None
    if out < 0:
        raise AnnotationError(path, f"{where}.{key}", f"negative class index {out}")
    return out


def load_ek100_actions(path) -> list[EK100Action]:
    """Action segments of one split csv, in file order. A reversed segment (stop before start) is an error naming
    the row; a zero-length one is kept (EK-100 has a few)."""
    rows = read_csv_rows(path, ("narration_id", "video_id", "start_timestamp", "stop_timestamp"))
    out, seen = [], set()
    for i, r in enumerate(rows):
        where = f"row {i + 2} ({r['narration_id']})"
        if r["narration_id"] in seen:
            raise AnnotationError(path, where, "narration_id appears twice")
        seen.add(r["narration_id"])
        s = parse_timestamp(r["start_timestamp"], f"{where}.start_timestamp", path)
        e = parse_timestamp(r["stop_timestamp"], f"{where}.stop_timestamp", path)
        if e < s:
            raise AnnotationError(path, where, f"stop {r['stop_timestamp']} is before start {r['start_timestamp']}")
        out.append(EK100Action(r["narration_id"], r["video_id"], s, e, r.get("narration", "") or "",
                               _int(r, "verb_class", where, path), _int(r, "noun_class", where, path),
                               r.get("participant_id") or r["video_id"].split("_")[0]))
    return out


def load_ek100_classes(path) -> list[str]:
    """Class names by index from ``EPIC_100_{verb,noun}_classes.csv`` (columns ``id, key``); ids must be 0..C-1."""
    rows = read_csv_rows(path, ("id", "key"))
    names: dict[int, str] = {}
    for i, r in enumerate(rows):
        idx = _int(r, "id", f"row {i + 2}", path)
        if idx in names:
            raise AnnotationError(path, f"row {i + 2}", f"class id {idx} appears twice")
        names[idx] = r["key"]
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(path, None, f"class ids are not 0..{len(names) - 1}")
    return [names[i] for i in range(len(names))]


def ek100_class_files(actions_csv) -> tuple[str, str]:
    """The verb and noun class lists next to an actions csv (where the annotations repo puts them)."""
    d = os.path.dirname(os.path.abspath(actions_csv))
    return os.path.join(d, "EPIC_100_verb_classes.csv"), os.path.join(d, "EPIC_100_noun_classes.csv")
