"""Which strings of an annotation file get a text embedding (what ``egoflow encode-text`` encodes).

Strings are returned exactly as they appear in the files, because a head looks up ``query`` /
``narration_text`` / ``label`` verbatim (the store keys a text by a hash of the raw string). ``prompt`` (e.g.
``"a photo of {}"``) is applied to label/class names only.

Every file goes through the same checked reader as ``train`` and ``evaluate`` (Ego4D NLQ/MQ/narrations, EgoMCQ,
EgoTaskQA, EK-100 csvs, Charades class lists, QFVS folders): a malformed file is one ``AnnotationError`` naming
the file and key path or row, never a traceback nor a silently encoded bad file. ``annotation_texts`` also
returns the videos a file names, so that ``encode-text`` can refuse a file about videos its store does not hold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from egoflow.datasets.errors import AnnotationError, read_csv_rows, read_json, read_lines

CLASS_LINE = re.compile(r"^c\d+ +\S")  # a line of a Charades class list; its name is what gets encoded


class TextSourceError(AnnotationError):
    """A file that is not one of the annotation kinds ``encode-text`` reads."""


@dataclass
class Texts:
    kind: str  # nlq | mq | narrations | classes | lines | questions | egomcq | qfvs
    strings: list[str]  # deduplicated, in order of first appearance
    videos: dict[str, str] = field(default_factory=dict)  # video uid -> where the file names it first
    clips: dict[str, set[str]] = field(default_factory=dict)  # Ego4D: video uid -> its clip uids (clip-level stores)


def annotation_strings(path: str | Path, prompt: str | None = None) -> tuple[str, list[str]]:
    """(kind, strings) of an annotation file: nlq | mq | narrations (Ego4D, or an EK-100 csv's narration column)
    | classes (a Charades class list, names only) | lines | questions (EgoTaskQA) | egomcq (its queries), or a QFVS
    folder: qfvs. Strings are deduplicated in order of first appearance."""
    t = annotation_texts(path, prompt)
    return t.kind, t.strings


def annotation_texts(path: str | Path, prompt: str | None = None) -> Texts:
    """``annotation_strings`` plus the video uids the file refers to (see ``Texts``); a file without a single
    string to encode is an error (an empty or wrong file, not a silent no-op)."""
    texts = _texts(path, prompt)
    if not texts.strings:
        raise TextSourceError(path, None, f"no strings to encode in this {texts.kind} file")
    return texts


def _texts(path: str | Path, prompt: str | None) -> Texts:
    from egoflow.datasets.qfvs import load_qfvs, qfvs_prompts

    p = Path(path)
    if not p.exists():
        raise TextSourceError(p, None, "annotation file does not exist")
    if p.is_dir():  # a QFVS origin_data folder: the summarizer's query and concept prompts
        return Texts("qfvs", qfvs_prompts(load_qfvs(p)))
    if p.suffix.lower() in (".txt", ".lst"):
        lines = [ln.strip() for ln in read_lines(p) if ln.strip()]
        if lines and all(CLASS_LINE.match(ln) for ln in lines):  # Charades_v1_classes.txt: "c000 Holding ..."
            from egoflow.datasets.charades_ego import load_charades_classes

            names = load_charades_classes(p)
            return Texts("classes", unique([prompt.format(n) if prompt else n for n in names]))
        return Texts("lines", [prompt.format(s) if prompt else s for s in lines])
    if p.suffix.lower() == ".csv":  # EK-100 csvs (actions, MIR segments / captions): the narration column
        rows = read_csv_rows(p, ("narration",))
        videos = {}
        if rows and {"start_timestamp", "stop_timestamp"} <= set(rows[0]):  # segments: the full reader's checks
            from egoflow.datasets.ek100_actions import load_ek100_actions

            videos = _first({a.video_id: f"row {i + 2} ({a.narration_id})"
                             for i, a in reversed(list(enumerate(load_ek100_actions(p))))})
        return Texts("narrations", unique([r["narration"] for r in rows if r["narration"]]), videos)
    data = read_json(p)
    if isinstance(data, list) and data and all(isinstance(q, dict) and "question" in q for q in data):
        from egoflow.datasets.egotaskqa import load_egotaskqa  # EgoTaskQA *_qas.json

        items = load_egotaskqa(p, need_answers=False)
        return Texts("questions", unique([q.question for q in items]),
                     _first({q.video_uid: f"[{q.index}].interval" for q in reversed(items)}))
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "choices" in v and "query" in v
                                               for v in data.values()):  # EgoMCQ: the query texts
        from egoflow.datasets.egomcq import load_egomcq

        items = load_egomcq(p)
        videos = {c.video_uid: f"{it.item_id}.choices" for it in reversed(items) for c in it.choices}
        return Texts("egomcq", unique([it.query for it in items]), _first(videos))
    return _ego4d_texts(p, data, prompt)


def _first(videos: dict[str, str]) -> dict[str, str]:
    """Built from reversed records so that each uid keeps its first place; back in file order."""
    return dict(reversed(list(videos.items())))


def _ego4d_texts(p: Path, data, prompt: str | None) -> Texts:
    """NLQ / MQ / narration strings, read by the same checked readers as ``train`` and ``evaluate``."""
    from egoflow.datasets.ego4d import load_mq, load_narrations, load_nlq_report

    if isinstance(data, dict) and "videos" in data:
        anns = [a for v in data["videos"] if isinstance(v, dict) for c in v.get("clips") or []
                if isinstance(c, dict) for a in c.get("annotations") or [] if isinstance(a, dict)] \
            if isinstance(data["videos"], list) else []
        kinds = [k for k, key in (("nlq", "language_queries"), ("mq", "labels")) if any(key in a for a in anns)]
        if not kinds and anns:
            raise TextSourceError(p, "videos", "an Ego4D file but with neither language_queries nor labels")
        out: list[str] = []
        videos = {v["video_uid"]: f"videos[{i}].video_uid" for i, v in reversed(list(enumerate(data["videos"])))
                  if isinstance(v, dict) and isinstance(v.get("video_uid"), str)}
        if "nlq" in kinds or not kinds:  # no annotations at all: the reader checks the structure and says why
            queries, _ = load_nlq_report(p, keep_missing_query=False, keep_zero_length=True)
            out += [q.query for q in queries]
        if "mq" in kinds:
            out += [prompt.format(i.label) if prompt else i.label for c in load_mq(p) for i in c.instances]
        clips: dict[str, set[str]] = {}
        for v in data["videos"]:
            if isinstance(v, dict):
                clips.setdefault(str(v.get("video_uid")), set()).update(
                    str(c.get("clip_uid")) for c in v.get("clips") or [] if isinstance(c, dict))
        return Texts(kinds[0] if kinds else "nlq", unique(out), _first(videos), clips)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        narrations = load_narrations(p)
        if narrations:
            return Texts("narrations", unique([n.text for n in narrations]),
                         {uid: f"{uid}" for uid in dict.fromkeys(n.video_uid for n in narrations)})
    raise TextSourceError(p, None, "not an Ego4D NLQ, MQ or narration file, EgoMCQ, EgoTaskQA, nor a .txt list of "
                                   "strings")


def unique(xs: list[str]) -> list[str]:
    """``xs`` without repeats, in order of first appearance."""
    return list(dict.fromkeys(xs))
