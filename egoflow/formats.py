"""Official submission formats (what heads write, what ``egoflow evaluate`` reads) and the one temporal IoU.

Heads return *records*; this module turns them into the official files:

=========  ==========================================================  ============================================
benchmark  records                                                     file
=========  ==========================================================  ============================================
nlq        ``[{clip_uid, annotation_uid, query_idx, predicted_times}]``  ``{"version", "challenge", "results": [...]}``
mq         ``{clip_uid: [{"label", "score", "segment"}]}``               ``{"version", "challenge", "results": {...}}``
qfvs       ``{video: {query: [shot indices]}}``                         ``{"results": {...}}``
charades   ``{video_id: [C class scores]}`` (file order kept)           ``id s_0 … s_{C-1}`` lines, or JSON by suffix
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


_BUILDERS = {"nlq": nlq_submission, "mq": mq_submission, "qfvs": qfvs_submission, "charades": charades_submission}


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
