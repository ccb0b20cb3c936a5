"""Reader for EgoMCQ (``egomcq.json`` of EgoVLP): a text query and 5 candidate clips, one of them the answer.

File format: ``{"0": {"query": {clip_text, video_uid, clip_start, clip_end, ...}, "choices": {"0": {...}, ...,
"4": {...}}, "answer": 2, "types": 1}, ...}``; ``types`` 1 = inter-video (candidates from different videos),
2 = intra-video (candidates from the same video). Predictions: ``{item_id: [5 scores]}`` or
``{item_id: answer_index}``, optionally under ``"results"``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoflow.datasets.errors import AnnotationError, Checker, PredictionError, read_json, short


@dataclass(frozen=True)
class MCQClip:
    video_uid: str
    start_sec: float  # video time
    end_sec: float
    text: str  # the clip's narration ("" when absent)


@dataclass(frozen=True)
class MCQItem:
    item_id: str  # key in egomcq.json
    query: str  # narration text of the query
    choices: tuple[MCQClip, ...]  # the candidates, in choice-index order
    answer: int  # index into choices
    type: int  # 1 inter-video, 2 intra-video

    @property
    def is_intra(self) -> bool:
        return self.type == 2


def _clip(ck: Checker, d, where: str) -> MCQClip:
    s, e = _num(ck, d, "clip_start", where), _num(ck, d, "clip_end", where)
    ck.window(s, e, where)
    return MCQClip(ck.get(d, "video_uid", where, str), s, e,
                   ck.get(d, "clip_text", where, str, optional=True, default=""))


def _num(ck: Checker, d, key, where) -> float:
    """A time in seconds; the release stores some as strings ("12.5"). Negative, 1e308 or NaN: an error."""
    v = ck.get(d, key, where, (int, float, str))
    return ck.time_text(v, f"{where}.{key}") if isinstance(v, str) else ck.time(v, f"{where}.{key}")


def load_egomcq(path) -> list[MCQItem]:
    """Read ``egomcq.json`` into ``MCQItem`` records sorted by numeric item id."""
    ck = Checker(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, "(top level)", "expected an object keyed by item id")
    out = []
    for key in sorted(data, key=lambda k: (len(k), k)):  # (duplicated ids are refused by read_json)
        item = data[key]
        q = ck.get(item, "query", key, dict)
        choices_raw = ck.get(item, "choices", key, (dict, list))
        if isinstance(choices_raw, dict):
            order = sorted(choices_raw, key=lambda k: int(k) if str(k).isdigit() else k)
            choices = tuple(_clip(ck, choices_raw[c], f"{key}.choices.{c}") for c in order)
        else:
            choices = tuple(_clip(ck, c, f"{key}.choices[{i}]") for i, c in enumerate(choices_raw))
        answer = ck.get(item, "answer", key, int)
        if not 0 <= answer < len(choices):
            ck.fail(f"{key}.answer", f"{answer} is not a choice index (0..{len(choices) - 1})")
        kind = ck.get(item, "types", key, int)
        if kind not in (1, 2):
            ck.fail(f"{key}.types", f"expected 1 (inter-video) or 2 (intra-video), got {kind}")
        out.append(MCQItem(str(key), ck.get(q, "clip_text", f"{key}.query", str), choices, answer, kind))
    return out


def load_egomcq_predictions(path, items: list[MCQItem]) -> tuple[np.ndarray, list[str]]:
    """Scores [N, num_choices] aligned with ``items`` (a predicted index becomes a one-hot row) and the ids of
    items without a prediction (their rows are -inf; pass them as ``missing`` to ``egomcq_accuracy``)."""
    data = read_json(path, PredictionError)
    data = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise PredictionError(path, None, "expected {item_id: [scores] or answer_index}")
    ids = {it.item_id for it in items}
    unknown = sorted(set(map(str, data)) - ids)
    if unknown:
        raise PredictionError(path, short(unknown[0]), f"item id not in egomcq.json ({len(unknown)} unknown)")
    width = max(len(it.choices) for it in items)
    scores = np.full((len(items), width), -np.inf)
    missing = []
    for i, it in enumerate(items):
        v = data.get(it.item_id)
        if v is None:
            missing.append(it.item_id)
        elif isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v < len(it.choices):
                raise PredictionError(path, it.item_id, f"choice {v} outside 0..{len(it.choices) - 1}")
            scores[i, v] = 1.0
        elif isinstance(v, list) and len(v) == len(it.choices):
            ck = Checker(path, PredictionError)
            scores[i, : len(v)] = [ck.score(x, f"{it.item_id}[{j}]") for j, x in enumerate(v)]
        else:
            raise PredictionError(path, it.item_id,
                                  f"expected {len(it.choices)} scores or a choice index, got {short(v)}")
    return scores, missing
