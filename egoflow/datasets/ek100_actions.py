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

from egoflow.datasets.errors import AnnotationError, Checker, read_csv_rows, short


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
        if not 1 <= len(parts) <= 3 or "-" in str(value) or any(p < 0 or not math.isfinite(p) for p in parts):
            raise ValueError
    except ValueError:
        raise AnnotationError(path, where, f"timestamp {short(value)} is not HH:MM:SS.ff") from None
    sec = 0.0
    for p in parts:
        sec = sec * 60.0 + p
    return Checker(path).time(sec, where)


def _int(row: dict, key: str, where: str, path) -> int:
    """A class index cell: ``-1`` when empty (test split), else a non-negative integer of at most 19 digits."""
    v = row.get(key)
    if v is None or v == "":
        return -1
    return Checker(path).int_text(v, f"{where}.{key}", what="an integer class index")


def load_ek100_actions(path, num_classes: tuple[int, int] | None = None) -> list[EK100Action]:
    """Action segments of one split csv, in file order. A reversed segment (stop before start) is an error naming
    the row; a zero-length one is kept (EK-100 has a few). With ``num_classes`` (verbs, nouns: the class lists'
    lengths; by default those of the class lists beside the csv, when present) a class index beyond them is an error
    naming the row."""
    rows = read_csv_rows(path, ("narration_id", "video_id", "start_timestamp", "stop_timestamp"))
    if num_classes is None and all(os.path.isfile(f) for f in ek100_class_files(path)):
        num_classes = tuple(len(load_ek100_classes(f)) for f in ek100_class_files(path))  # the lists beside it
    out, seen = [], set()
    for i, r in enumerate(rows):
        where = f"row {i + 2} ({short(r['narration_id'])})"
        if r["narration_id"] in seen:
            raise AnnotationError(path, where, "narration_id appears twice")
        seen.add(r["narration_id"])
        s = parse_timestamp(r["start_timestamp"], f"{where}.start_timestamp", path)
        e = parse_timestamp(r["stop_timestamp"], f"{where}.stop_timestamp", path)
        if e < s:
            raise AnnotationError(path, where, f"stop {r['stop_timestamp']} is before start {r['start_timestamp']}")
        v, n = _int(r, "verb_class", where, path), _int(r, "noun_class", where, path)
        for key, idx, size in zip(("verb_class", "noun_class"), (v, n), num_classes or (None, None)):
            if size is not None and idx >= size:
                raise AnnotationError(path, f"{where}.{key}", f"class {idx} is not in the class list ({size} classes)")
        out.append(EK100Action(r["narration_id"], r["video_id"], s, e, r.get("narration", "") or "", v, n,
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
    if not names:
        raise AnnotationError(path, None, "no classes")
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(path, None, f"class ids are not 0..{len(names) - 1}")
    return [names[i] for i in range(len(names))]


def ek100_class_files(actions_csv) -> tuple[str, str]:
    """The verb and noun class lists next to an actions csv (where the annotations repo puts them)."""
    d = os.path.dirname(os.path.abspath(actions_csv))
    return os.path.join(d, "EPIC_100_verb_classes.csv"), os.path.join(d, "EPIC_100_noun_classes.csv")
