"""Reader for the Ego4D hands-and-objects OSCC / PNR annotations (``fho_oscc-pnr_{train,val,test_unannotated}.json``)
and their challenge submissions.

Annotation file: ``{"version", "date", "description", "manifest", "split", "clips": [...]}`` (a bare list of the
same entries is read too, as the baseline's per-split files). One entry per 8-second clip::

    unique_id, video_uid, parent_start_sec, parent_end_sec, parent_start_frame, parent_end_frame,
    state_change (bool; absent in test), parent_pnr_frame (video frame; null without a state change), clip_uid, ...

``parent_*`` are times/frames of the whole video (the feature store's ``video_uid``), which is what this reader
uses. The clip's frame rate is the official loader's ``(end_frame - start_frame + 1) / (end_sec - start_sec)``.

Submissions (the baseline's challenge files): OSCC ``[{"unique_id", "state_change": bool}]``; PNR
``[{"unique_id", "pnr_frame": float}]`` with the frame counted from the clip's first frame.
"""
from __future__ import annotations

from dataclasses import dataclass

from egoflow.datasets.errors import AnnotationError, Checker, PredictionError, read_json, short


@dataclass(frozen=True)
class FHOClip:
    unique_id: str  # the annotation's id (submissions are keyed by it)
    video_uid: str  # feature store uid of the whole video
    start_sec: float  # video time of the clip
    end_sec: float
    start_frame: int  # video frames of the clip
    end_frame: int
    state_change: bool | None  # None when unlabelled (test)
    pnr_frame: float | None  # video frame of the point of no return, as written (may be fractional); None if none

    @property
    def fps(self) -> float:
        """Frames per second as the official keyframe-localisation loader computes it."""
        return (self.end_frame - self.start_frame + 1) / (self.end_sec - self.start_sec)

    @property
    def pnr_offset_sec(self) -> float | None:
        """PNR in clip seconds (the official error's unit), None without one."""
        return None if self.pnr_frame is None else (self.pnr_frame - self.start_frame) / self.fps


def _entries(path) -> list:
    data = read_json(path)
    if isinstance(data, dict):
        if not isinstance(data.get("clips"), list):
            raise AnnotationError(path, "clips", "missing list of clips (expected the fho_oscc-pnr format)")
        return data["clips"]
    if not isinstance(data, list):
        raise AnnotationError(path, "(top level)", "expected {'clips': [...]} or a list of clips")
    return data


def load_fho_oscc_pnr(path, task: str | None = None) -> list[FHOClip]:
    """Clips of an OSCC/PNR file in file order. ``task="oscc"`` needs ``state_change`` on every clip, ``"pnr"``
    also a ``parent_pnr_frame`` inside the clip on every state-change clip; a PNR frame outside its clip is an
    error in any case (naming the clip)."""
    ck = Checker(path)
    out, seen = [], set()
    for i, e in enumerate(_entries(path)):
        where = f"clips[{i}]"
        uid = ck.get(e, "unique_id", where, str)
        where = f"clips[{i}] ({uid})"
        if uid in seen:
            ck.fail(where, "unique_id appears twice")
        seen.add(uid)
        s, t = (ck.time(ck.get(e, k, where, float), f"{where}.{k}") for k in ("parent_start_sec", "parent_end_sec"))
        fs, fe = ck.get(e, "parent_start_frame", where, int), ck.get(e, "parent_end_frame", where, int)
        if fs < 0:
            ck.fail(f"{where}.parent_start_frame", f"negative frame {fs}")
        if not (t > s and fe > fs):
            ck.fail(where, f"empty clip: seconds {s}..{t}, frames {fs}..{fe}")
        sc = ck.get(e, "state_change", where, bool, optional=task is None)
        key = "parent_pnr_frame" if "parent_pnr_frame" in e else "pnr_frame"  # older files say pnr_frame
        pnr = ck.get(e, key, where, (int, float), optional=True)
        if pnr is not None:  # kept as written: the official error uses the fractional frame, unrounded
            pnr = ck.number(pnr, f"{where}.{key}")
            if not fs <= pnr <= fe:
                ck.fail(f"{where}.{key}", f"PNR frame {pnr} is outside the clip's frames {fs}..{fe}")
        if task == "pnr" and sc and pnr is None:
            ck.fail(f"{where}.{key}", "a state-change clip without a PNR frame")
        out.append(FHOClip(uid, ck.get(e, "video_uid", where, str), s, t, fs, fe, sc, pnr))
    if not out:
        raise AnnotationError(path, "clips", "no clips")
    return out


def _submission(path, clips: list[FHOClip], key: str, kind) -> tuple[dict, list[str]]:
    data = read_json(path, PredictionError)
    data = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(data, list):
        raise PredictionError(path, None, f"expected a list of {{unique_id, {key}}}")
    ck, known, preds = Checker(path, PredictionError), {c.unique_id for c in clips}, {}
    for i, r in enumerate(data):
        uid = ck.get(r, "unique_id", f"[{i}]", str)
        if uid not in known:
            raise PredictionError(path, f"[{i}].unique_id", f"{short(uid)} is not a clip of the ground truth")
        if uid in preds:
            raise PredictionError(path, f"[{i}].unique_id", f"{short(uid)} predicted twice")
        preds[uid] = ck.get(r, key, f"[{i}]", kind)
        if kind is float and preds[uid] < 0:
            ck.fail(f"[{i}].{key}", f"negative frame {preds[uid]}")
    return preds, [c.unique_id for c in clips if c.unique_id not in preds]


def load_oscc_submission(path, clips: list[FHOClip]) -> tuple[dict[str, bool], list[str]]:
    """({unique_id: state_change}, ids without a prediction)."""
    return _submission(path, clips, "state_change", bool)


def load_pnr_submission(path, clips: list[FHOClip]) -> tuple[dict[str, float], list[str]]:
    """({unique_id: PNR frame from the clip start}, ids without a prediction)."""
    return _submission(path, clips, "pnr_frame", float)
