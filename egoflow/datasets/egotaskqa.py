"""Reader for EgoTaskQA question files (``{direct,indirect}/{train,val,test}_qas.json`` of the baselines) and the
answer vocabulary (``answer_set.txt``, one answer per line).

Each question: ``question``, ``answer`` (a string), ``interval`` = ``"<video>|<fpvN>|<start>|<end>"`` (frame
indices of that first-person view, end exclusive), ``type`` and ``category`` (lists), ``semantic``,
``structural``, ``reference`` ("direct"/"indirect"), and ``reasoning_type`` = those tags joined by ``$`` (the
baselines' split script writes it; rebuilt here when absent). The official accuracy is overall and per reasoning
type, a question counting once in every one of its tags.

The feature store video of an interval is ``<video>_<fpvN>`` (one store video per recorded view; an empty view
field, ``<video>||<start>|<end>``, names the store video itself); its times are frame / ``fps`` seconds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from egoflow.datasets.errors import AnnotationError, Checker, PredictionError, read_json, read_lines, short


@dataclass(frozen=True)
class TaskQAItem:
    index: int  # position in the file (predictions are keyed by it)
    question: str
    answer: str  # "" when the file has no answers
    video_uid: str  # "<video>_<fpvN>"
    start_sec: float  # video time
    end_sec: float
    tags: tuple[str, ...]  # reasoning types, in file order (type + category + semantic, structural, reference)


def _tags(ck: Checker, q: dict, where: str) -> tuple[str, ...]:
    if isinstance(q.get("reasoning_type"), str):
        return tuple(t for t in q["reasoning_type"].split("$") if t)
    parts = []
    for key in ("type", "category"):
        v = q.get(key, [])
        parts += list(v) if isinstance(v, list) else [v]
    parts += [q[k] for k in ("semantic", "structural", "reference") if isinstance(q.get(k), str)]
    if not parts:
        ck.fail(where, "no reasoning_type (nor type/category/semantic/structural/reference) to score it by")
    return tuple(str(p) for p in parts)


def parse_interval(value: str, fps: float, path, where: str) -> tuple[str, float, float]:
    """``"<video>|<fpvN>|<start>|<end>"`` -> (store uid, start sec, end sec)."""
    parts = str(value).split("|")
    if len(parts) != 4 or not parts[0]:
        raise AnnotationError(path, f"{where}.interval", f"{short(value)} is not '<video>|<fpvN>|<start>|<end>'")
    video, view, start, end = parts
    ck = Checker(path)
    start, end = (ck.int_text(x, f"{where}.interval {k}", what="a frame index") for k, x in (("start", start),
                                                                                              ("end", end)))
    if end <= start:
        raise AnnotationError(path, f"{where}.interval", f"empty frame range {start}..{end}")
    return (f"{video}_{view}" if view else video), start / fps, end / fps  # empty view: the store uid itself


def load_egotaskqa(path, fps: float = 30.0, need_answers: bool = True) -> list[TaskQAItem]:
    """Questions of one split file, in file order; a question without a clip (``interval``) is an error naming it."""
    data = read_json(path)
    if not isinstance(data, list):
        raise AnnotationError(path, "(top level)", "expected a list of questions")
    ck, out = Checker(path), []
    for i, q in enumerate(data):
        where = f"[{i}]"
        question = ck.get(q, "question", where, str)
        if not isinstance(q.get("interval"), str):
            ck.fail(f"{where}.interval", f"question {question!r} has no clip interval")
        uid, s, e = parse_interval(q["interval"], fps, path, where)
        answer = ck.get(q, "answer", where, str, optional=not need_answers, default="")  # the answers are words
        out.append(TaskQAItem(i, question, str(answer), uid, s, e, _tags(ck, q, where)))
    if not out:
        raise AnnotationError(path, None, "no questions")
    return out


def is_question_file(path) -> bool:
    """Whether ``path`` is an EgoTaskQA question file (a JSON list whose first entry has question and interval)."""
    if not str(path).lower().endswith(".json"):
        return False
    data = read_json(path)
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and \
        {"question", "interval"} <= set(data[0])


def questions_by_video(path, fps: float = 30.0) -> dict[str, list[str]]:
    """``{store video uid: [questions]}`` of a question file (the ``--queries`` of a query-conditioned extraction:
    one fused feature per (video, question) for the linear-egotaskqa head); file order, duplicates once."""
    out: dict[str, dict[str, None]] = {}
    for q in load_egotaskqa(path, fps, need_answers=False):
        out.setdefault(q.video_uid, {})[q.question] = None
    return {uid: list(qs) for uid, qs in out.items()}


def load_answer_set(path) -> list[str]:
    """``answer_set.txt``: answers by class index (blank lines skipped; duplicates are an error)."""
    answers = [ln.strip() for ln in read_lines(path) if ln.strip()]
    ck, seen = Checker(path), set()
    for n, a in enumerate(answers, start=1):
        ck.unique(seen, a, f"answer {n}", "answer")
    if not answers:
        raise AnnotationError(path, None, "no answers")
    return answers


def answer_vocabulary(train: list[TaskQAItem], answer_set=None) -> list[str]:
    """The classes: ``answer_set.txt`` when given (or next to the file), else the training answers, sorted."""
    if answer_set is not None and os.path.isfile(answer_set):
        return load_answer_set(answer_set)
    return sorted({q.answer for q in train})


def answer_indices(items: list[TaskQAItem], vocab: list[str], path) -> list[int]:
    """Class index of every answer; an answer outside the vocabulary is an error naming the question."""
    index = {a: i for i, a in enumerate(vocab)}
    out = []
    for q in items:
        if q.answer not in index:
            raise AnnotationError(path, f"[{q.index}].answer", f"{short(q.answer)} is not in the answer vocabulary "
                                  f"({len(vocab)} answers; see answer_set.txt)")
        out.append(index[q.answer])
    return out


def load_egotaskqa_predictions(path, items: list[TaskQAItem]) -> tuple[dict[int, str], list[int]]:
    """``{"results": [{"index", "answer"}]}`` (or the bare list) -> ({index: answer}, indices without one)."""
    data = read_json(path, PredictionError)
    data = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(data, list):
        raise PredictionError(path, "results", "expected a list of {index, answer}")
    ck, n, preds = Checker(path, PredictionError), len(items), {}
    for i, r in enumerate(data):
        idx = ck.get(r, "index", f"results[{i}]", int)
        if not 0 <= idx < n:
            raise PredictionError(path, f"results[{i}].index", f"{idx} is not a question index (0..{n - 1})")
        if idx in preds:
            raise PredictionError(path, f"results[{i}].index", f"question {idx} answered twice")
        preds[idx] = str(ck.get(r, "answer", f"results[{i}]", (str, int, float, bool)))
    return preds, [q.index for q in items if q.index not in preds]
