"""Official submission formats (what heads write, what ``egoflow evaluate`` reads) and the one temporal IoU.

Heads return *records*; this module turns them into the official files:

=========  ==========================================================  ============================================
benchmark  records                                                     file
=========  ==========================================================  ============================================
nlq        ``[{clip_uid, annotation_uid, query_idx, predicted_times}]``  ``{"version", "challenge", "results": [...]}``
mq         ``{clip_uid: [{"label", "score", "segment"}]}``               ``{"version", "challenge", "results": {...}}``
qfvs       ``{video: {query: [shot indices]}}``                         ``{"results": {...}}``
charades   ``{video_id: [C class scores]}`` (file order kept)           ``id s_0 … s_{C-1}`` lines, or JSON by suffix
ek100-ar   ``{narration_id: {"verb": [V], "noun": [N]}}`` logits         EPIC challenge JSON (top-100 actions)
oscc       ``[{"unique_id", "state_change"}]``                         the same list (Ego4D baseline's file)
pnr        ``[{"unique_id", "pnr_frame"}]`` (frames from clip start)   the same list
egotaskqa  ``[{"index", "answer"}]``                                   ``{"version", "challenge", "results"}``
egomcq     ``{item_id: [5 scores]}``                                   ``{"version", "results": {...}}``
ek100-mir  ``{"sim_mat" [V, T], "vis_ids", "txt_ids"}``                 pickle (the challenge's layout)
captions   ``[{id, caption, video_uid?, start_sec?, end_sec?}]``        ``{"version", "challenge", "results": [...]}``
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


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def ek100_actions_submission(records: dict, top_actions: int = 100) -> dict:
    """EPIC-KITCHENS-100 action recognition challenge JSON from verb/noun logits per segment; action scores are
    the product of the verb and noun softmax, the ``top_actions`` best pairs kept (the challenge's limit)."""
    results = {}
    for nid, r in records.items():
        v, n = np.asarray(r["verb"], float), np.asarray(r["noun"], float)
        pv, pn = _softmax(v), _softmax(n)
        joint = np.outer(pv, pn).ravel()
        keep = np.argsort(-joint, kind="stable")[:top_actions]
        results[nid] = {"verb": {str(i): round(float(x), 6) for i, x in enumerate(v)},
                        "noun": {str(i): round(float(x), 6) for i, x in enumerate(n)},
                        "action": {f"{k // len(pn)},{k % len(pn)}": float(joint[k]) for k in keep}}
    return {"version": "0.2", "challenge": "action_recognition", "sls_pt": -1, "sls_tl": -1, "sls_td": -1,
            "results": results}


def _as_list(records) -> list:
    return list(records)


def egotaskqa_submission(records: list[dict]) -> dict:
    return {"version": "1.0", "challenge": "egotaskqa", "results": list(records)}


def egomcq_submission(records: dict) -> dict:
    return {"version": "1.0", "results": {k: [float(x) for x in v] for k, v in records.items()}}




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




_BUILDERS = {"nlq": nlq_submission, "mq": mq_submission, "qfvs": qfvs_submission, "charades": charades_submission,
             "ek100-ar": ek100_actions_submission, "oscc": _as_list, "pnr": _as_list,
             "egotaskqa": egotaskqa_submission, "egomcq": egomcq_submission, "captions": captions_submission}
BINARY = ("ek100-mir",)  # written as pickles (the EK-100 MIR challenge layout), not text


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
    if benchmark in BINARY:
        tmp.write_bytes(mir_submission_bytes(records, npz=path.suffix == ".npz"))
    else:
        tmp.write_text(submission_text(benchmark, records, path.suffix))
    os.replace(tmp, path)
    return str(path)


def mir_submission_bytes(records: dict, npz: bool = False) -> bytes:
    """EK-100 MIR challenge pickle: ``{"version", "challenge", "sim_mat" [V, T] float32, "vis_ids", "txt_ids",
    "sls_pt", "sls_tl", "sls_td"}`` (videos are rows, as the official evaluation reads it); ``npz``: the same
    ``sim_mat`` / ``vis_ids`` / ``txt_ids`` as a NumPy ``.npz`` (what the evaluator also reads)."""
    import io
    import pickle

    sim = np.asarray(records["sim_mat"], np.float32)
    vis, txt = list(map(str, records["vis_ids"])), list(map(str, records["txt_ids"]))
    if sim.shape != (len(vis), len(txt)):
        raise ValueError(f"sim_mat {sim.shape} must be [len(vis_ids), len(txt_ids)] = [{len(vis)}, {len(txt)}]")
    if npz:
        buf = io.BytesIO()
        np.savez(buf, sim_mat=sim, vis_ids=np.array(vis), txt_ids=np.array(txt))
        return buf.getvalue()
    return pickle.dumps({"version": "0.1", "challenge": "multi_instance_retrieval", "sls_pt": -1, "sls_tl": -1,
                         "sls_td": -1, "sim_mat": sim, "vis_ids": np.array(vis), "txt_ids": np.array(txt)})
