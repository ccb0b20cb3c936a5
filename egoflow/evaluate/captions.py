"""Caption metrics with the standard COCO caption implementation (``pycocoevalcap``): BLEU-1..4, METEOR, CIDEr.

Captions and references are tokenized by the Stanford PTB tokenizer that ships with pycocoevalcap (Java), as the
COCO server does; METEOR runs the official ``meteor-1.5.jar`` (Java) too. Ground truth for Ego4D narrations is
the ``narration.json`` file itself: a clip's id is ``<video_uid>_<time:.3f>`` and its references are every
narration at that instant (both passes when they coincide).

    caption_metrics({"v_1.000": ["#C C opens the door"]}, {"v_1.000": "c opens the door"})
"""
from __future__ import annotations

import atexit
import contextlib
import io
import shutil

from egoflow.datasets.errors import AnnotationError, PredictionError


def caption_metrics(refs: dict[str, list[str]], preds: dict[str, str], meteor: bool = True) -> dict:
    """``{"BLEU-1".."BLEU-4", "METEOR", "CIDEr", "num_captions", "num_missing"}`` of ``preds`` against ``refs``
    (an id without a prediction is scored as the empty caption and counted in ``num_missing``)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if not refs:
        raise ValueError("no reference captions to score against")
    if shutil.which("java") is None:
        raise RuntimeError("caption metrics need Java (the PTB tokenizer and METEOR are Java programs)")
    missing = [k for k in refs if k not in preds]
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": preds.get(k, "") or ""}] for k in refs})
    res = {k: v if v and v[0] else ["<empty>"] for k, v in res.items()}  # METEOR/BLEU need a token
    out: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints its progress
        bleu, _ = Bleu(4).compute_score(gts, res)
        out.update({f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)})
        if meteor:
            out["METEOR"] = float(_meteor().compute_score(gts, res)[0])
        out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    out.update(num_captions=len(refs), num_missing=len(missing))
    return out


_METEOR = []  # one METEOR Java process per Python process: it takes ~10 s to load its paraphrase table


def _meteor():
    if not _METEOR or _METEOR[0].meteor_p.poll() is not None:
        from pycocoevalcap.meteor.meteor import Meteor

        _METEOR[:] = [Meteor()]
        atexit.register(_close_meteor)
    return _METEOR[0]


def _close_meteor() -> None:
    for m in _METEOR:
        with contextlib.suppress(Exception):
            m.meteor_p.kill()
            m.meteor_p.wait(5)
    _METEOR.clear()


def narration_key(video_uid: str, time_sec: float) -> str:
    return f"{video_uid}_{float(time_sec):.3f}"


def narration_references(narrations) -> dict[str, list[str]]:
    """``{clip id: [narration texts]}`` of Ego4D ``Narration`` records."""
    refs: dict[str, list[str]] = {}
    for n in narrations:
        refs.setdefault(narration_key(n.video_uid, n.time_sec), []).append(n.text)
    return refs


def evaluate_captions_files(gt_path, pred_path) -> dict:
    """Score a captions prediction file (``egoflow.formats``) against an Ego4D ``narration.json``."""
    from egoflow.datasets.ego4d import load_narrations
    from egoflow.formats import CaptionFormatError, read_captions

    refs = narration_references(load_narrations(gt_path))
    if not refs:
        raise AnnotationError(gt_path, None, "no narrations")
    try:
        preds = read_captions(pred_path)
    except CaptionFormatError as e:
        raise PredictionError(pred_path, e.where, e.message) from None
    unknown = sorted(set(preds) - set(refs))
    if unknown:
        raise PredictionError(pred_path, unknown[0], f"clip id not in the ground truth ({len(unknown)} unknown)")
    return caption_metrics(refs, preds)
