"""Encode the strings of annotation files (NLQ queries, narrations, MQ labels, class lists) into ``texts/``.

Strings are stored exactly as they appear in the files (the key is a hash of the raw string), so a head looks
up ``query`` / ``narration_text`` / ``label`` verbatim. ``prompt`` (e.g. ``"a photo of {}"``) is applied to
label/class names only and the stored key is then the prompted string.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from egoflow.features_store import FeatureStore


CLASS_LINE = re.compile(r"^c\d+ +\S")  # a line of a Charades class list; its name is what gets encoded


class TextSourceError(ValueError):
    pass


def strings_from_file(path: str | Path, prompt: str | None = None) -> tuple[str, list[str]]:
    """(kind, strings) of an annotation file: nlq | mq | narrations | classes (a Charades class list, names only)
    | lines, or a QFVS folder: qfvs."""
    p = Path(path)
    if not p.exists():
        raise TextSourceError(f"annotation file {p} does not exist")
    if p.is_dir():  # a QFVS origin_data folder: the summarizer's query and concept prompts
        from egoflow.datasets.qfvs import load_qfvs
        from egoflow.heads.summarizer_data import qfvs_prompts

        return "qfvs", qfvs_prompts(load_qfvs(p))
    if p.suffix.lower() in (".txt", ".lst"):
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if lines and all(CLASS_LINE.match(ln) for ln in lines):  # Charades_v1_classes.txt: "c000 Holding ..."
            return "classes", _unique([prompt.format(n) if prompt else n for n in (ln.split(" ", 1)[1].strip()
                                                                                   for ln in lines)])
        return "lines", [prompt.format(s) if prompt else s for s in lines]
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TextSourceError(f"{p}: not valid JSON ({e})") from None
    return _strings_from_json(p, data, prompt)


def _strings_from_json(p: Path, data, prompt: str | None) -> tuple[str, list[str]]:
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
        return (kinds[0] if kinds else "nlq"), _unique(out)
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        out = [n.text for n in load_narrations(p)]
        if out:
            return "narrations", _unique(out)
    raise TextSourceError(f"{p}: not an Ego4D NLQ, MQ or narration file, nor a .txt list of strings")


def _unique(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def text_set_name(encoder) -> str:
    d = encoder.describe()
    return f"clip-{d['model']}-{d['pretrained'] if d['pretrained'] != 'file' else 'ckpt'}-text".replace("/", "_")


def encode_strings(store: FeatureStore | str, strings: list[str], encoder, text_set: str | None = None,
                   tokens: bool = True) -> tuple[str, int]:
    """Encode the strings not yet in ``text_set``; return (text set name, number added)."""
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    name = text_set or text_set_name(encoder)
    todo = [s for s, have in zip(strings, store.has_texts(name, strings) if name in store.text_sets()
                                 else [False] * len(strings)) if not have]
    if not todo:
        return name, 0
    pooled, toks, lens = encoder.encode_text(todo, tokens=tokens)
    added = store.write_texts(name, todo, pooled, toks, lens, config=encoder.describe())
    return name, added


def encode_files(store: FeatureStore | str, paths: list[str | Path], encoder, text_set: str | None = None,
                 prompt: str | None = None) -> tuple[str, dict[str, int]]:
    """Encode every string of every annotation file; return (text set, {file: #strings})."""
    counts, allstr = {}, []
    for p in paths:
        _, strings = strings_from_file(p, prompt)
        counts[str(p)] = len(strings)
        allstr += strings
    name, _ = encode_strings(store, _unique(allstr), encoder, text_set)
    return name, counts
