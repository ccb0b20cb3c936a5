"""EPIC-KITCHENS-100 action recognition, as the challenge's ``evaluate.py`` (epic-kitchens/C1-Action-Recognition).

Reads the file the official ``create_submission.py`` writes (a ``.zip`` holding ``test.json``, or that JSON
itself): ``{"results": {narration_id: {"verb": {"0": s, ...}, "noun": {...}}}}``; an ``"action": {"v,n": s}``
entry is used when present, otherwise action scores are computed as the official script does (softmax of the 100
best verb and noun scores over the whole score array, their outer product, the 100 best pairs kept).

Ranking is the official ``np.argsort(scores)[::-1]`` (for action dicts: over the dict's values in file order), so
tied scores are ordered as NumPy's default sort leaves them, reversed: with all scores equal the highest index
ranks first. ``ties="stable"`` ranks ties towards the lower class index (earlier dict entry) instead.

The official script scores only the segments it is given predictions for (``missing="official"``);
``missing="wrong"`` scores every ground-truth segment, a missing one counting as wrong. Tail classes and unseen
participants come from ``EPIC_100_tail_verbs.csv``, ``EPIC_100_tail_nouns.csv`` and
``EPIC_100_unseen_participant_ids_{validation,test}.csv`` next to the ground truth: tail verb top-1 over segments
of a tail verb, tail noun over tail nouns, tail action over segments with a tail verb *or* a tail noun; unseen
top-1 over segments of unseen participants. A ``ParityWarning`` says when an input hits either choice.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np

from egoflow.checks import parse_json, read_json
from egoflow.datasets.ek100_actions import load_ek100_actions
from egoflow.datasets.errors import AnnotationError, PredictionError, read_csv_rows
from egoflow.evaluate.parity import ParityWarning

ACTION_MULT = 1000  # the official action id: verb * 1000 + noun
TOP_N = 100  # the official number of verbs, nouns and actions kept when computing action scores
TASKS = ("verb", "noun", "action")


@dataclass(frozen=True)
class EK100Splits:
    tail_verbs: frozenset  # verb class ids of EPIC_100_tail_verbs.csv (column "verb")
    tail_nouns: frozenset  # noun class ids of EPIC_100_tail_nouns.csv (column "noun")
    unseen: frozenset | None  # participant ids of EPIC_100_unseen_participant_ids_*.csv; None if not found


def read_submission(path) -> dict:
    """The JSON of a submission ``.json`` or of the ``.zip`` the official ``create_submission.py`` writes; a key
    that appears twice in one object is an error naming it (plain ``json`` would keep the last value)."""
    if not zipfile.is_zipfile(path):  # also a missing file: read_json names it
        return read_json(path, PredictionError)
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.endswith(".json")]
            if len(members) != 1:
                raise PredictionError(path, None, f"expected one .json inside the zip, found {members}")
            raw = z.read(members[0])
    except zipfile.BadZipFile as e:
        raise PredictionError(path, None, f"unreadable zip ({e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PredictionError(path, members[0], f"not UTF-8 text ({e.reason})") from None
    return parse_json(text, path, PredictionError, member=members[0])


def _ids(path, column: str, cast) -> frozenset:
    out = set()
    for i, r in enumerate(read_csv_rows(path, (column,))):
        try:
            out.add(cast(r[column]))
        except (TypeError, ValueError):
            raise AnnotationError(path, f"row {i + 2}.{column}", f"expected a class index, got {r[column]!r}") \
                from None
    return frozenset(out)


def find_splits(gt_path) -> EK100Splits | None:
    """The official tail/unseen split files next to ``gt_path``; None when the tail files are absent."""
    d = os.path.dirname(os.path.abspath(gt_path))
    tv, tn = os.path.join(d, "EPIC_100_tail_verbs.csv"), os.path.join(d, "EPIC_100_tail_nouns.csv")
    if not (os.path.isfile(tv) and os.path.isfile(tn)):
        return None
    split = "test" if "test" in os.path.basename(str(gt_path)).lower() else "validation"
    unseen = None
    for name in (f"EPIC_100_unseen_participant_ids_{split}.csv", "EPIC_100_unseen_participant_ids.csv"):
        if os.path.isfile(os.path.join(d, name)):
            unseen = _ids(os.path.join(d, name), "participant_id", str)
            break
    return EK100Splits(_ids(tv, "verb", int), _ids(tn, "noun", int), unseen)


def _class_array(path, nid: str, part: str, value) -> np.ndarray:
    """{"0": s, ..., "C-1": s} -> scores [C] by class index."""
    if not isinstance(value, dict) or not value:
        raise PredictionError(path, f"results.{nid}.{part}", "expected a non-empty {class index: score}")
    out = np.full(len(value), np.nan)
    for k, v in value.items():
        if not str(k).isdigit() or int(k) >= len(value):
            raise PredictionError(path, f"results.{nid}.{part}.{k}", f"class keys must be 0..{len(value) - 1}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise PredictionError(path, f"results.{nid}.{part}.{k}", f"score {v!r} is not a finite number")
        out[int(k)] = float(v)
    return out


def _action_dict(path, nid: str, value) -> dict[int, float]:
    """{"v,n": s} -> {v * 1000 + n: s} in file order (the official action ids)."""
    if not isinstance(value, dict) or not value:
        raise PredictionError(path, f"results.{nid}.action", "expected a non-empty {\"verb,noun\": score}")
    out = {}
    for k, v in value.items():
        parts = str(k).split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or int(parts[1]) >= ACTION_MULT:
            raise PredictionError(path, f"results.{nid}.action.{k}", "expected a \"verb,noun\" key")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise PredictionError(path, f"results.{nid}.action.{k}", f"score {v!r} is not a finite number")
        out[int(parts[0]) * ACTION_MULT + int(parts[1])] = float(v)
    return out


def _order(scores: np.ndarray, ties: str) -> np.ndarray:
    """Indices by descending score along the last axis: the official argsort reversed, or stable."""
    if ties == "numpy":
        return np.argsort(scores, axis=-1)[..., ::-1]
    return np.argsort(-scores, axis=-1, kind="stable")


def official_action_scores(verb: np.ndarray, noun: np.ndarray, top_n: int = TOP_N) -> list[dict[int, float]]:
    """Action scores of verb [N, V] and noun [N, C] scores as the official ``compute_action_scores``: the top_n of
    each, a softmax over the whole [N, top_n] array (as scipy's ``softmax`` with no axis), the outer product,
    its top_n pairs -> per segment {verb * 1000 + noun: score} in rank order."""
    from scipy.special import softmax

    def top(x):
        idx = np.argsort(x)[:, ::-1][:, :top_n]
        return idx, x[np.arange(len(x))[:, None], idx]

    tv, sv = top(verb)
    tn, sn = top(noun)
    probs = softmax(sv)[:, :, None] * softmax(sn)[:, None, :]
    flat = probs.reshape(len(probs), -1)
    ranks = flat.argsort(axis=-1)[:, ::-1][:, :top_n]
    vi, ni = np.unravel_index(ranks, probs.shape[1:])
    rows = np.arange(len(flat))[:, None]
    ids = tv[rows, vi] * ACTION_MULT + tn[rows, ni]
    vals = flat[rows, ranks]
    return [dict(zip(i.tolist(), s.tolist())) for i, s in zip(ids, vals)]


def _dict_rank(d: dict[int, float], target: int, ties: str) -> int:
    """0-based rank of ``target`` in an {id: score} dict (len(d) when absent), as the official dict ranking."""
    ids = np.fromiter(d.keys(), np.int64, len(d))
    order = _order(np.fromiter(d.values(), float, len(d)), ties)
    hit = np.nonzero(ids[order] == target)[0]
    return int(hit[0]) if len(hit) else len(d)


def _ranks(rows, targets, ties):
    """0-based rank of each target; ``rows``: scores [N, C] or a list of N {id: score} dicts."""
    if isinstance(rows, np.ndarray):
        eq = _order(rows, ties) == np.asarray(targets)[:, None]
        return np.where(eq.any(axis=1), eq.argmax(axis=1), rows.shape[1])  # a label beyond the classes: no hit
    return np.array([_dict_rank(d, t, ties) for d, t in zip(rows, targets)])


def ek100_actions_metrics(gt, data, pred_path="predictions", gt_path="ground truth", missing: str = "official",
                          ties: str = "numpy", splits: EK100Splits | None = None) -> dict:
    """Metrics of a challenge submission dict against action segments ``gt`` (``EK100Action`` records)."""
    if missing not in ("official", "wrong") or ties not in ("numpy", "stable"):
        raise ValueError(f"missing must be 'official'/'wrong' and ties 'numpy'/'stable'; got {missing}, {ties}")
    res = data.get("results") if isinstance(data, dict) else None
    if not isinstance(res, dict):
        raise PredictionError(pred_path, "results", "expected {narration_id: {verb, noun}}")
    by_id = {a.narration_id: a for a in gt}
    unknown = [k for k in res if k not in by_id]
    if unknown:
        raise PredictionError(pred_path, f"results.{unknown[0]}", f"not a segment of {gt_path} "
                              f"({len(unknown)} unknown)")
    if not res:
        raise PredictionError(pred_path, "results", "no predictions")
    nids = list(res)  # the official order: the submission's
    arrays = {}
    for part in ("verb", "noun"):
        rows = []
        for nid in nids:
            if not isinstance(res[nid], dict) or part not in res[nid]:
                raise PredictionError(pred_path, f"results.{nid}.{part}", "missing key")
            rows.append(_class_array(pred_path, nid, part, res[nid][part]))
        if len({len(r) for r in rows}) > 1:
            first = next(n for n, r in zip(nids, rows) if len(r) != len(rows[0]))
            raise PredictionError(pred_path, f"results.{first}.{part}", f"{len(rows[0])} classes in the first "
                                  "segment, another number here")
        arrays[part] = np.stack(rows)
    given = [("action" in res[n]) for n in nids]
    computed = official_action_scores(arrays["verb"], arrays["noun"]) if not all(given) else None
    actions = [_action_dict(pred_path, n, res[n]["action"]) if g else computed[i]
               for i, (n, g) in enumerate(zip(nids, given))]
    segs = [by_id[n] for n in nids]
    targets = {"verb": [a.verb_class for a in segs], "noun": [a.noun_class for a in segs],
               "action": [a.verb_class * ACTION_MULT + a.noun_class for a in segs]}
    rows = {"verb": arrays["verb"], "noun": arrays["noun"], "action": actions}
    ranks = {t: _ranks(rows[t], targets[t], ties) for t in TASKS}
    other = "stable" if ties == "numpy" else "numpy"
    changed = [t for t in TASKS if not np.array_equal(np.minimum(ranks[t], 5),
                                                      np.minimum(_ranks(rows[t], targets[t], other), 5))]
    if changed:
        warnings.warn(f"{pred_path}: tied scores change the {'/'.join(changed)} top-1/top-5 hits: ties={ties!r} "
                      f"({'official: np.argsort reversed' if ties == 'numpy' else 'lower index first'}); "
                      f"ties={other!r} gives other numbers", ParityWarning, stacklevel=2)
    absent = [a for a in gt if a.narration_id not in res]
    if absent:
        how = "official: only predicted segments are scored" if missing == "official" else "counted as wrong"
        alt = "wrong" if missing == "official" else "official"
        warnings.warn(f"{pred_path}: {len(absent)} of {len(gt)} segments have no prediction: missing={missing!r} "
                      f"({how}); missing={alt!r} gives other numbers", ParityWarning, stacklevel=2)
    if missing == "wrong":  # missing segments: rank beyond any k
        segs = segs + absent
        for t in TASKS:
            ranks[t] = np.concatenate([ranks[t], np.full(len(absent), np.iinfo(np.int64).max)])
    out: dict = {}
    for t in TASKS:
        for k in (1, 5):
            out[f"{t} top{k}"] = float(np.mean(ranks[t] < k))
    if splits is not None:
        out.update(_breakdowns(segs, ranks, splits))
    out.update(num_segments=len(gt), num_evaluated=len(segs), num_missing=len(absent))
    return out


def _breakdowns(segs, ranks, splits: EK100Splits) -> dict:
    """Official tail and unseen top-1 (NaN where no segment falls in a group; the official script then fails)."""
    tv = np.array([a.verb_class in splits.tail_verbs for a in segs])
    tn = np.array([a.noun_class in splits.tail_nouns for a in segs])
    groups = {"tail": {"verb": tv, "noun": tn, "action": tv | tn}}
    if splits.unseen is not None:
        un = np.array([a.participant_id in splits.unseen for a in segs])
        if un.any():  # official: no unseen segment -> a warning and no unseen numbers
            groups["unseen"] = {t: un for t in TASKS}
    out: dict = {}
    for g, masks in groups.items():
        for t in TASKS:
            m = masks[t]
            out[f"{g} {t} top1"] = float(np.mean(ranks[t][m] < 1)) if m.any() else float("nan")
        out[f"num_{g}"] = int((masks["verb"] | masks["noun"]).sum()) if g == "tail" else int(masks["verb"].sum())
    return out


def evaluate_ek100_actions_files(gt_path, pred_path, missing: str = "official", ties: str = "numpy") -> dict:
    """EK-100 action recognition of a challenge submission (.json or the official .zip) against
    ``EPIC_100_validation.csv``, with the tail/unseen breakdowns when the official split files sit next to it."""
    gt = load_ek100_actions(gt_path)
    if any(a.verb_class < 0 or a.noun_class < 0 for a in gt):
        raise AnnotationError(gt_path, None, "has no verb/noun labels (the test split cannot be scored here)")
    out = ek100_actions_metrics(gt, read_submission(pred_path), pred_path, gt_path, missing=missing, ties=ties,
                                splits=find_splits(gt_path))
    return {**out, "missing_policy": missing, "ties": ties}  # strings for report.json (heads want numbers only)
