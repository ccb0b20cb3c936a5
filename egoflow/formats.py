"""Official submission formats (what heads write, what ``egoflow evaluate`` reads) and the one temporal IoU.

Heads return *records*; this module turns them into the official files:

=========  ==========================================================  ============================================
benchmark  records                                                     file
=========  ==========================================================  ============================================
nlq        ``[{clip_uid, annotation_uid, query_idx, predicted_times}]``  ``{"version", "challenge", "results": [...]}``
mq         ``{clip_uid: [{"label", "score", "segment"}]}``               ``{"version", "challenge", "results": {...}}``
qfvs       ``{video: {query: [shot indices]}}``                         ``{"results": {...}}``
charades   ``{video_id: [C class scores]}`` (file order kept)           ``id s_0 … s_{C-1}`` lines, or JSON by suffix
captions   ``[{id, caption, video_uid?, start_sec?, end_sec?}]``        ``{"version", "challenge", "results": [...]}``
ek100-act  ``{narration_id: {"verb": [V], "noun": [N] scores}}``        EK-100 action recognition submission JSON
egomcq     ``{item_id: [scores of the choices]}``                       ``{"results": {...}}``
=========  ==========================================================  ============================================

Files are written atomically (a temporary name, then a rename): a crash never leaves half a submission.
Reading and validating against a ground truth is ``egoflow.evaluate``'s job (its loaders name file and key).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

NLQ_VERSION, NLQ_CHALLENGE = "1.0", "ego4d_nlq_challenge"
MQ_VERSION, MQ_CHALLENGE = "1.0", "ego4d_moment_queries"
CHARADES_CHALLENGE = "charades_ego_classification"
NLQ_KEYS = ("clip_uid", "annotation_uid", "query_idx", "predicted_times")


def temporal_iou(a, b, union: str = "hull", empty: float = 0.0) -> np.ndarray:
    """IoU of windows ``a [P, 2]`` with windows ``b [G, 2]`` -> ``[P, G]`` (a single window may be ``[2]``).

    ``union="hull"``: the span from the earliest start to the latest end (the official NLQ script and the
    official MQ recall); ``"sum"``: both lengths minus the intersection (ActivityNet / the official MQ AP).
    ``empty``: the value where the union is not positive (two zero-length windows at one point): 0 for the NLQ
    metric, NaN where the official MQ AP's division gives NaN, 1 for NMS (the same point is the same moment).
    """
    a = np.asarray(a, dtype=float).reshape(-1, 2)
    b = np.asarray(b, dtype=float).reshape(-1, 2)
    inter = np.maximum(0.0, np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    if union == "hull":
        u = np.maximum(0.0, np.maximum(a[:, None, 1], b[None, :, 1]) - np.minimum(a[:, None, 0], b[None, :, 0]))
    elif union == "sum":
        u = (b[None, :, 1] - b[None, :, 0]) + (a[:, None, 1] - a[:, None, 0]) - inter
    else:
        raise ValueError(f"union must be 'hull' or 'sum', got {union!r}")
    return np.where(u > 0, inter / np.where(u > 0, u, 1.0), empty)


# ------------------------------------------------------------------------------------------ submissions
def nlq_submission(records: list[dict]) -> dict:
    """Ego4D NLQ challenge JSON; extra record keys (e.g. ``scores``) are not part of the format and dropped."""
    return {"version": NLQ_VERSION, "challenge": NLQ_CHALLENGE,
            "results": [{k: r[k] for k in NLQ_KEYS} for r in records]}


def mq_submission(records: dict[str, list[dict]]) -> dict:
    """Ego4D MQ challenge JSON from ``{clip_uid: [{"label", "score", "segment"}]}``."""
    return {"version": MQ_VERSION, "challenge": MQ_CHALLENGE, "results": records}


def qfvs_submission(records: dict) -> dict:
    return {"results": records}


def charades_text(records: dict[str, np.ndarray]) -> str:
    """The official CharadesEgo classification file: ``id s_0 … s_{C-1}`` per line."""
    return "".join(f"{i} " + " ".join(f"{x:.6f}" for x in s) + "\n" for i, s in records.items())


def charades_submission(records: dict[str, np.ndarray]) -> dict:
    return {"version": "1.0", "challenge": CHARADES_CHALLENGE,
            "results": {i: [round(float(x), 6) for x in s] for i, s in records.items()}}


CAPTIONS_VERSION, CAPTIONS_CHALLENGE = "1.0", "captions"


class CaptionFormatError(ValueError):
    """A captions file that is not ``{"results": [{"id", "caption"}]}`` (``where`` names the entry)."""

    def __init__(self, path, where, message: str):
        self.path, self.where, self.message = str(path), where, message
        super().__init__(f"{path}: {where + ': ' if where else ''}{message}")


def captions_submission(records: list[dict]) -> dict:
    """Captions of clips: ``results`` entries keep ``id`` and ``caption`` first, then any clip fields given."""
    return {"version": CAPTIONS_VERSION, "challenge": CAPTIONS_CHALLENGE,
            "results": [{"id": str(r["id"]), "caption": str(r["caption"]),
                         **{k: v for k, v in r.items() if k not in ("id", "caption")}} for r in records]}


def read_captions(path) -> dict[str, str]:
    """``{id: caption}`` of a captions file (a duplicate id, a missing key or a non-string is an error)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaptionFormatError(path, None, "file not found") from None
    except json.JSONDecodeError as e:
        raise CaptionFormatError(path, f"line {e.lineno}", f"invalid JSON ({e.msg})") from None
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CaptionFormatError(path, "results", "expected a list of {id, caption}")
    out: dict[str, str] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not isinstance(r.get("caption"), str):
            raise CaptionFormatError(path, f"results[{i}]", "expected {\"id\": str, \"caption\": str}")
        if r["id"] in out:
            raise CaptionFormatError(path, f"results[{i}]", f"id {r['id']!r} appears twice")
        out[r["id"]] = r["caption"]
    return out


def ek100_actions_submission(records: dict) -> dict:
    """EPIC-KITCHENS-100 action recognition submission: per segment, verb and noun scores keyed by class id."""
    return {"version": "0.2", "challenge": "action_recognition", "sls_pt": 0, "sls_tl": 0, "sls_td": 0,
            "results": {nid: {k: {str(c): round(float(x), 6) for c, x in enumerate(r[k])} for k in ("verb", "noun")}
                        for nid, r in records.items()}}


def egomcq_submission(records: dict) -> dict:
    return {"results": {str(k): [float(x) for x in v] for k, v in records.items()}}


_BUILDERS = {"nlq": nlq_submission, "mq": mq_submission, "qfvs": qfvs_submission, "charades": charades_submission,
             "captions": captions_submission, "ek100-actions": ek100_actions_submission,
             "egomcq": egomcq_submission}


def submission_text(benchmark: str, records, suffix: str = ".json") -> str:
    """The file content of ``records`` in ``benchmark``'s official format (CharadesEgo: text unless .json)."""
    if benchmark == "charades" and suffix != ".json":
        return charades_text(records)
    if benchmark not in _BUILDERS:
        raise ValueError(f"no submission format for benchmark {benchmark!r}; known: {sorted(_BUILDERS)}")
    return json.dumps(_BUILDERS[benchmark](records))


def write_submission(benchmark: str, records, path: str | os.PathLike) -> str:
    """Write ``records`` to ``path`` in the official format of ``benchmark``, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(submission_text(benchmark, records, path.suffix))
    os.replace(tmp, path)
    return str(path)
