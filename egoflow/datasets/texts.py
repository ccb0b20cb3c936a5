"""Which strings of an annotation file get a text embedding (what ``egoflow encode-text`` encodes).

Strings are returned exactly as they appear in the files, because a head looks up ``query`` /
``narration_text`` / ``label`` verbatim (the store keys a text by a hash of the raw string). ``prompt`` (e.g.
``"a photo of {}"``) is applied to label/class names only.

The Ego4D files are walked leniently here, not through the strict readers of ``ego4d.py``: only the strings are
needed, and the files that must be encoded include ones those readers reject on purpose, e.g. the unannotated
NLQ test split (queries without answer windows). A QFVS folder goes through ``qfvs.py``'s reader and prompts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from egoflow.datasets.qfvs import load_qfvs, qfvs_prompts

CLASS_LINE = re.compile(r"^c\d+ +\S")  # a line of a Charades class list; its name is what gets encoded


class TextSourceError(ValueError):
    pass


def annotation_strings(path: str | Path, prompt: str | None = None) -> tuple[str, list[str]]:
    """(kind, strings) of an annotation file: nlq | mq | narrations (Ego4D, or an EK-100 csv's narration column)
    | classes (a Charades class list, names only) | lines | questions (EgoTaskQA) | egomcq (its queries), or a QFVS
    folder: qfvs. Strings are deduplicated in order of first appearance."""
    p = Path(path)
    if not p.exists():
        raise TextSourceError(f"annotation file {p} does not exist")
    if p.is_dir():  # a QFVS origin_data folder: the summarizer's query and concept prompts
        return "qfvs", qfvs_prompts(load_qfvs(p))
    if p.suffix.lower() in (".txt", ".lst"):
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if lines and all(CLASS_LINE.match(ln) for ln in lines):  # Charades_v1_classes.txt: "c000 Holding ..."
            names = (ln.split(" ", 1)[1].strip() for ln in lines)
            return "classes", unique([prompt.format(n) if prompt else n for n in names])
        return "lines", [prompt.format(s) if prompt else s for s in lines]
    if p.suffix.lower() == ".csv":  # EK-100 csvs (actions, MIR segments / captions): the narration column
        import csv

        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or "narration" not in rows[0]:
            raise TextSourceError(f"{p}: a .csv needs a 'narration' column (EPIC-KITCHENS-100 files)")
        return "narrations", unique([r["narration"] for r in rows if r["narration"]])
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TextSourceError(f"{p}: not valid JSON ({e})") from None
    if isinstance(data, list) and data and all(isinstance(q, dict) and "question" in q for q in data):
        return "questions", unique([str(q["question"]) for q in data])  # EgoTaskQA *_qas.json
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "choices" in v and "query" in v
                                               for v in data.values()):  # EgoMCQ: the query texts
        return "egomcq", unique([v["query"]["clip_text"] for v in data.values()
                                 if isinstance(v["query"], dict) and "clip_text" in v["query"]])
    return _ego4d_strings(p, data, prompt)


def _ego4d_strings(p: Path, data, prompt: str | None) -> tuple[str, list[str]]:
    """NLQ / MQ / narration strings, read by the same checked readers as ``train`` and ``evaluate``: a malformed
    file is one AnnotationError naming the file and key path, never a traceback or a silently dropped string."""
    from egoflow.datasets.ego4d import load_mq, load_narrations, load_nlq_report

    if isinstance(data, dict) and "videos" in data:
        anns = [a for v in data["videos"] if isinstance(v, dict) for c in v.get("clips") or []
                if isinstance(c, dict) for a in c.get("annotations") or [] if isinstance(a, dict)] \
            if isinstance(data["videos"], list) else []
        kinds = [k for k, key in (("nlq", "language_queries"), ("mq", "labels")) if any(key in a for a in anns)]
        if not kinds and anns:
            raise TextSourceError(f"{p}: an Ego4D 'videos' file but with neither language_queries nor labels")
        out: list[str] = []
        if "nlq" in kinds or not kinds:  # no annotations at all: the reader checks the structure and says why
            queries, _ = load_nlq_report(p, keep_missing_query=False, keep_zero_length=True)
            out += [q.query for q in queries]
        if "mq" in kinds:
            out += [prompt.format(i.label) if prompt else i.label for c in load_mq(p) for i in c.instances]
        return (kinds[0] if kinds else "nlq"), unique(out)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        out = [n.text for n in load_narrations(p)]
        if out:
            return "narrations", unique(out)
    raise TextSourceError(f"{p}: not an Ego4D NLQ, MQ or narration file, nor a .txt list of strings")


def unique(xs: list[str]) -> list[str]:
    """``xs`` without repeats, in order of first appearance."""
    return list(dict.fromkeys(xs))
