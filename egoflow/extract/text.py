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
    out: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("videos"), list):
        kind = None
        for v in data["videos"]:
            for c in v.get("clips", []):
                for a in c.get("annotations", []):
                    if "language_queries" in a:
                        kind = "nlq"
                        out += [q["query"] for q in a["language_queries"] if isinstance(q.get("query"), str)]
                    if "labels" in a:
                        kind = "mq"
                        out += [prompt.format(lb["label"]) if prompt else lb["label"] for lb in a["labels"]]
        if kind is None:
            raise TextSourceError(f"{p}: an Ego4D 'videos' file but with neither language_queries nor labels")
        return kind, _unique(out)
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        for uid, passes in data.items():
            for pname, body in passes.items():
                if pname.startswith("narration_pass") and isinstance(body, dict):
                    out += [n["narration_text"] for n in body.get("narrations", []) if "narration_text" in n]
        if out:
            return "narrations", _unique(out)
    raise TextSourceError(f"{p}: not an Ego4D NLQ, MQ or narration file, nor a .txt list of strings")


def _unique(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def text_set_name(encoder) -> str:
    d = encoder.describe()
    kind = "fused" if d.get("encoder") == "fused" else "clip"
    return f"{kind}-{d['model']}-{d['pretrained'] if d['pretrained'] != 'file' else 'ckpt'}-text".replace("/", "_")


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
