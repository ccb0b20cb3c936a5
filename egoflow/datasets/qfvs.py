"""Reader for the QFVS benchmark (Sharghi et al., CVPR 2017) on the four UT Egocentric videos P01-P04.

Layout of the released ``origin_data`` folder (pass it, or a parent holding ``origin_data`` or ``data/origin_data``):

    Dense_per_shot_tags/Dictionary.txt            one concept per line, optionally quoted: 'Book'
    Dense_per_shot_tags/P01/P01.txt               line i = comma-separated concepts of 5-second shot i (may be empty)
    Query-Focused_Summaries/Oracle_Summaries/P01/Book_Chair_oracle.txt     1-based shot indices, one per line
    Query-Focused_Summaries/User_Summaries/P01/Book_Chair/*.txt            optional: one user summary per file
                                                   (or User_Summaries/P01/Book_Chair_*.txt)

A query is a concept pair (the oracle file name). Shot indices become 0-based here; every index is checked
against the number of shots, every concept against the dictionary when it exists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from glob import glob

import numpy as np

from egoflow.datasets.errors import AnnotationError, Checker, read_lines

VIDEOS = ("P01", "P02", "P03", "P04")


@dataclass(frozen=True)
class QFVSQuery:
    """One concept-pair query on one video with its reference summaries (0-based shot indices)."""

    video_id: str  # "P01".."P04"
    concepts: tuple[str, str]  # the query, e.g. ("Book", "Chair")
    oracle: tuple[int, ...]  # the oracle summary
    users: tuple[tuple[int, ...], ...] = ()  # user summaries, when the files are present

    @property
    def name(self) -> str:
        return "_".join(self.concepts)


@dataclass
class QFVSVideo:
    """Per-shot concept tags of one video and its queries."""

    video_id: str
    shot_concepts: list[frozenset[str]]  # [num_shots] concepts tagged in each 5-second shot
    queries: list[QFVSQuery] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)  # the dictionary (empty when the file is absent)

    @property
    def num_shots(self) -> int:
        return len(self.shot_concepts)

    def tag_matrix(self, concepts: list[str] | None = None) -> np.ndarray:
        """Binary tags [num_shots, num_concepts] over ``concepts`` (default: dictionary, else all seen)."""
        names = concepts or self.concepts or sorted(set().union(*self.shot_concepts))
        col = {c: i for i, c in enumerate(names)}
        out = np.zeros((self.num_shots, len(names)), dtype=bool)
        for i, tags in enumerate(self.shot_concepts):
            for t in tags:
                out[i, col[t]] = True
        return out


def _root(path) -> str:
    for cand in (path, os.path.join(path, "origin_data"), os.path.join(path, "data", "origin_data")):
        if os.path.isdir(os.path.join(cand, "Dense_per_shot_tags")):
            return cand
    raise AnnotationError(path, None, "no Dense_per_shot_tags/ folder here or under origin_data/ (QFVS layout)")


def _lines(path) -> list[str]:
    return read_lines(path)


def _read_dictionary(path) -> list[str]:
    return [ln.strip().strip("'\"") for ln in _lines(path) if ln.strip()]


def read_shot_tags(path, dictionary: list[str] | None = None) -> list[frozenset[str]]:
    """One frozenset of concepts per line (= per shot); unknown concepts are an error when a dictionary is given."""
    known = set(dictionary) if dictionary else None
    out = []
    for n, ln in enumerate(_lines(path), start=1):
        tags = frozenset(t.strip() for t in ln.split(",") if t.strip())
        if known is not None and not tags <= known:
            raise AnnotationError(path, f"line {n}", f"concept(s) {sorted(tags - known)} not in Dictionary.txt")
        out.append(tags)
    return out


def read_summary(path, num_shots: int) -> tuple[int, ...]:
    """1-based shot indices (one per line, blank lines ignored) -> 0-based, each checked against ``num_shots``."""
    out = []
    for n, ln in enumerate(_lines(path), start=1):
        if not ln.strip():
            continue
        idx = Checker(path).int_text(ln, f"line {n}", minimum=None, what="a shot index")
        if not 1 <= idx <= num_shots:
            raise AnnotationError(path, f"line {n}", f"shot {idx} outside 1..{num_shots}")
        out.append(idx - 1)
    return tuple(out)


def load_qfvs(root, videos=VIDEOS) -> dict[str, QFVSVideo]:
    """Read the QFVS annotations of ``videos`` -> {video_id: QFVSVideo}, queries sorted by name."""
    base = _root(root)
    tags_dir = os.path.join(base, "Dense_per_shot_tags")
    dict_path = os.path.join(tags_dir, "Dictionary.txt")
    dictionary = _read_dictionary(dict_path) if os.path.isfile(dict_path) else []
    out = {}
    for vid in videos:
        tag_path = os.path.join(tags_dir, vid, f"{vid}.txt")
        if not os.path.isfile(tag_path):
            raise AnnotationError(tag_path, None, "file not found (per-shot tags)")
        shots = read_shot_tags(tag_path, dictionary)
        video = QFVSVideo(vid, shots, concepts=dictionary)
        oracle_dir = os.path.join(base, "Query-Focused_Summaries", "Oracle_Summaries", vid)
        files = sorted(glob(os.path.join(oracle_dir, "*_oracle.txt")))
        if not files:
            raise AnnotationError(oracle_dir, None, "no *_oracle.txt summaries")
        for f in files:
            name = os.path.basename(f)[: -len("_oracle.txt")]
            parts = name.split("_")
            if len(parts) != 2 or not all(parts):
                raise AnnotationError(f, None, "file name is not CONCEPT1_CONCEPT2_oracle.txt")
            if dictionary and not set(parts) <= set(dictionary):
                raise AnnotationError(f, None, f"query concepts {parts} not in Dictionary.txt")
            user_dir = os.path.join(base, "Query-Focused_Summaries", "User_Summaries", vid)
            user_files = sorted(glob(os.path.join(user_dir, name, "*.txt"))
                                + glob(os.path.join(user_dir, f"{name}_*.txt")))
            users = tuple(read_summary(u, len(shots)) for u in user_files)
            video.queries.append(QFVSQuery(vid, (parts[0], parts[1]), read_summary(f, len(shots)), users))
        out[vid] = video
    return out


# Text conditions of a QFVS query (EgoVLPv2's prompts): what `egoflow encode-text` embeds for a QFVS folder and
# what the summarizer looks up. Concept names that read badly in a sentence are renamed.
PROMPT_NAMES = {"Cupglass": "Glass", "Musicalinstrument": "Instrument", "Petsanimal": "Animal"}


def concept_prompt(concept: str) -> str:
    return f"There is a {PROMPT_NAMES.get(concept, concept)}"


def query_prompt(c1: str, c2: str) -> str:
    return f"There is a {PROMPT_NAMES.get(c1, c1)} and a {PROMPT_NAMES.get(c2, c2)}"


def qfvs_prompts(videos: dict[str, QFVSVideo]) -> list[str]:
    """Every text the summarizer needs for these videos (what ``egoflow encode-text`` must embed), sorted."""
    out = set()
    for v in videos.values():
        for q in v.queries:
            if not all(q.concepts):
                raise AnnotationError(f"QFVS video {v.video_id}", f"query {q.concepts}", "empty concept")
            out.update([query_prompt(*q.concepts), *(concept_prompt(c) for c in q.concepts)])
    return sorted(out)
