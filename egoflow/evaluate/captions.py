"""Caption metrics with the standard COCO caption implementation (``pycocoevalcap``): BLEU-1..4, METEOR, ROUGE-L,
CIDEr (SPICE is left out: it downloads Stanford models at first use).

Captions and references are tokenized by the Stanford PTB tokenizer that ships with pycocoevalcap (Java), as the
COCO server does; METEOR runs the official ``meteor-1.5.jar`` (Java) too. Ground truth for Ego4D narrations is
the ``narration.json`` file itself: a clip's id is ``<video_uid>_<time:.3f>`` and its references are every
narration at that instant (both passes when they coincide).

Edges, as ``COCOEvalCap.evaluate``: an empty caption (or one the tokenizer empties, "...") is scored as it is
(``empty="official"``; ``"placeholder"`` substitutes ``<empty>``, egoflow's former reading). A ground-truth id
without a caption makes COCO's evaluator fail an assertion: ``missing="error"`` names the ids; ``"skip"`` scores
the predicted ids only (COCO's example: ``params['image_id'] = cocoRes.getImgIds()``); ``"empty"`` scores them
as empty captions. A ``ParityWarning`` says when a non-default choice changes what is scored.

    caption_metrics({"v_1.000": ["#C C opens the door"]}, {"v_1.000": "c opens the door"})
"""
from __future__ import annotations

import atexit
import contextlib
import io
import shutil
import warnings

from egoflow.datasets.errors import AnnotationError, PredictionError
from egoflow.evaluate.parity import ParityWarning

EMPTY_PLACEHOLDER = "<empty>"


class MissingCaptionsError(ValueError):
    """Ground-truth ids without a caption (COCO's evaluator asserts on these)."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"{len(missing)} ground-truth id(s) have no caption, e.g. {missing[:3]} (COCO's evaluator "
                         "fails on this; missing='skip' scores the predicted ids only, 'empty' scores them as empty)")


def caption_metrics(refs: dict[str, list[str]], preds: dict[str, str], meteor: bool = True, missing: str = "error",
                    empty: str = "official") -> dict:
    """``{"BLEU-1".."BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "num_captions", "num_missing"}`` of ``preds`` against
    ``refs``; ``missing`` and ``empty`` as in the module docstring."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if missing not in ("error", "skip", "empty") or empty not in ("official", "placeholder"):
        raise ValueError(f"missing must be error/skip/empty and empty official/placeholder; got {missing}, {empty}")
    if not refs:
        raise ValueError("no reference captions to score against")
    if shutil.which("java") is None:
        raise RuntimeError("caption metrics need Java (the PTB tokenizer and METEOR are Java programs)")
    absent = [k for k in refs if k not in preds]
    if absent and missing == "error":
        raise MissingCaptionsError(absent)
    if absent:
        warnings.warn(f"{len(absent)} ground-truth id(s) have no caption: missing={missing!r} "
                      f"({'scored as empty captions' if missing == 'empty' else 'left out, as COCO with image_id set'}"
                      "); COCO's evaluator fails on them by default", ParityWarning, stacklevel=2)
    ids = [k for k in refs if k in preds or missing == "empty"]
    if not ids:
        raise ValueError("no ground-truth id has a caption")
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in refs[k]] for k in ids})
    res = tok.tokenize({k: [{"caption": preds.get(k, "") or ""}] for k in ids})
    blank = [k for k, v in res.items() if not v[0]]
    if blank and empty == "placeholder":
        res = {k: [EMPTY_PLACEHOLDER] if k in blank else v for k, v in res.items()}
    if blank:
        warnings.warn(f"{len(blank)} caption(s) are empty after tokenization (e.g. {blank[0]!r}): empty={empty!r} "
                      f"({'scored as empty, as pycocoevalcap' if empty == 'official' else 'scored as <empty>'}); "
                      f"empty={'placeholder' if empty == 'official' else 'official'!r} gives other numbers",
                      ParityWarning, stacklevel=2)
    out: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints its progress
        bleu, _ = Bleu(4).compute_score(gts, res)
        out.update({f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)})
        if meteor:
            out["METEOR"] = float(_meteor().compute_score(gts, res)[0])
        out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
        out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    out.update(num_captions=len(refs), num_scored=len(ids), num_missing=len(absent), num_empty=len(blank))
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


def evaluate_captions_files(gt_path, pred_path, missing: str = "error", empty: str = "official") -> dict:
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
    try:
        out = caption_metrics(refs, preds, missing=missing, empty=empty)
        return {**out, "missing_policy": missing}  # a string for report.json (heads want numbers only)
    except MissingCaptionsError as e:
        raise PredictionError(pred_path, None, str(e)) from None
