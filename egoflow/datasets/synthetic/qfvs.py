"""Synthetic QFVS: long shot-feature sequences with planted concepts, concept-pair queries and summaries.

Written in the layout of the released QFVS ``origin_data`` (read by :func:`egoflow.datasets.qfvs.load_qfvs`):

    origin_data/Dense_per_shot_tags/Dictionary.txt, P01/P01.txt ...           per-shot concepts (5-second shots)
    origin_data/Query-Focused_Summaries/Oracle_Summaries/P01/A_B_oracle.txt   1-based shot indices
    origin_data/Query-Focused_Summaries/User_Summaries/P01/A_B/user{1,2,3}.txt

plus, when a store is given, frame-level features of the four videos (``steps_per_shot`` steps per 5-second
shot) in a feature set and token-level embeddings of every summarizer prompt in a text set.

How the signal is planted: a video is a run of scenes (random length); each scene has its own look (a mean
vector) and none to three concepts; a shot shows each of its scene's concepts with high probability. A shot's
feature is the scene look plus the visual vectors of the concepts it shows plus noise. A concept's text
embedding is its visual direction plus noise (text and video share one space, as with CLIP), so a head that
learns to compare shots with the query tokens generalises to concepts and videos it was not trained on. The
oracle summary of a query (A, B) takes shots showing A or B (both first), at most three per scene, spread over
the video, about 2% of it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.qfvs import VIDEOS

CONCEPTS = ("Book", "Car", "Chair", "Computer", "Cup", "Food", "Hands", "Kids", "Lady", "Men", "Phone", "Room",
            "Sky", "Street", "Tree", "Window")
SHOT_SECONDS = 5.0


@dataclass
class SyntheticQFVS:
    root: str  # folder holding origin_data/
    store: str | None  # feature store path/URL (None when not written)
    feature_set: str | None
    text_set: str | None
    num_shots: dict  # video_id -> N


def _word_vec(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(word.encode("utf-8")[:8].ljust(8, b"\0"), "little") % 2**32
    return np.random.default_rng(seed).normal(size=dim) / np.sqrt(dim)


def _text_tokens(s: str, concept_text: dict, dim: int) -> np.ndarray:
    """Token embeddings [L, dim] of a prompt: concept words get the concept's text vector, others a fixed one."""
    return np.stack([concept_text[w] if w in concept_text else _word_vec(w.lower(), dim) for w in s.split()])


def _write_lines(path: str, lines) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{x}\n" for x in lines))


def _video(rng, n: int, concepts: list[str], visual: np.ndarray, dim: int, noise: float):
    looks, tags, scene = [], [], []
    s = 0
    while len(tags) < n:
        length = int(rng.integers(5, 26))
        # a third of the scenes show no query concept at all (corridors, walking), as in real egocentric video
        k = 0 if rng.random() < 0.3 else int(rng.integers(1, 4))
        active = rng.choice(len(concepts), size=k, replace=False)
        look = rng.normal(size=dim) * 0.6
        for _ in range(min(length, n - len(tags))):
            shown = {int(c) for c in active if rng.random() < 0.85}
            if k and rng.random() < 0.05:
                shown.add(int(rng.integers(len(concepts))))
            tags.append(shown)
            looks.append(look)
            scene.append(s)
        s += 1
    feats = np.stack(looks) + noise * rng.normal(size=(n, dim))
    for i, shown in enumerate(tags):
        for c in shown:
            feats[i] += visual[c]
    return feats.astype(np.float32), tags, np.array(scene)


def _oracle(rng, tags, scene, a: int, b: int, frac: float) -> list[int]:
    n = len(tags)
    both = [i for i in range(n) if a in tags[i] and b in tags[i]]
    one = [i for i in range(n) if (a in tags[i]) != (b in tags[i])]
    budget = max(2, int(round(frac * n)))
    chosen, per_scene = [], {}
    for pool in (both, one):
        for i in rng.permutation(pool):
            if len(chosen) >= budget:
                break
            if per_scene.get(scene[i], 0) < 3 and all(abs(int(i) - j) > 1 for j in chosen):
                chosen.append(int(i))
                per_scene[scene[i]] = per_scene.get(scene[i], 0) + 1
    return sorted(chosen)


def make_qfvs(out_dir, store_url: str | None = None, *, num_shots=(420, 480, 360, 400), dim: int = 64,
              num_concepts: int = 16, queries_per_video: int = 8, steps_per_shot: int = 2, noise: float = 0.8,
              summary_fraction: float = 0.02, feature_set: str = "qfvs-synthetic", text_set: str = "qfvs-synthetic",
              seed: int = 0) -> SyntheticQFVS:
    """Write the four synthetic QFVS videos under ``out_dir`` (+ features and prompts into ``store_url``)."""
    if len(num_shots) != len(VIDEOS):
        raise ValueError(f"num_shots needs one length per video {VIDEOS}, got {num_shots}")
    if not 2 <= num_concepts <= len(CONCEPTS):
        raise ValueError(f"num_concepts must be in 2..{len(CONCEPTS)}")
    rng = np.random.default_rng(seed)
    concepts = list(CONCEPTS[:num_concepts])
    visual = rng.normal(size=(num_concepts, dim)) * 1.0
    # text and video share one space (as CLIP's): a concept's text vector is its visual direction plus noise
    unit = visual / np.linalg.norm(visual, axis=1, keepdims=True)
    concept_text = {c: unit[i] + 0.3 * rng.normal(size=dim) / np.sqrt(dim) for i, c in enumerate(concepts)}
    base = os.path.join(str(out_dir), "origin_data")
    tags_dir = os.path.join(base, "Dense_per_shot_tags")
    qfs = os.path.join(base, "Query-Focused_Summaries")
    _write_lines(os.path.join(tags_dir, "Dictionary.txt"), [f"'{c}'" for c in concepts])
    videos = {}
    for vid, n in zip(VIDEOS, num_shots):
        feats, tags, scene = _video(rng, int(n), concepts, visual, dim, noise)
        _write_lines(os.path.join(tags_dir, vid, f"{vid}.txt"),
                     [",".join(concepts[c] for c in sorted(t)) for t in tags])
        present = sorted({c for t in tags for c in t})
        if len(present) < 2:
            raise ValueError(f"{vid}: {n} shots show fewer than two concepts; make the video longer")
        pairs = set()
        while len(pairs) < min(queries_per_video, len(present) * (len(present) - 1) // 2):
            a, b = sorted(rng.choice(present, size=2, replace=False).tolist())
            pairs.add((a, b))
        for a, b in sorted(pairs):
            name = f"{concepts[a]}_{concepts[b]}"
            shots = _oracle(rng, tags, scene, a, b, summary_fraction)
            _write_lines(os.path.join(qfs, "Oracle_Summaries", vid, f"{name}_oracle.txt"), [i + 1 for i in shots])
            for u in range(1, 4):  # users pick nearby shots of the same moments
                jit = np.clip(np.array(shots) + rng.integers(-2, 3, size=len(shots)), 0, int(n) - 1)
                _write_lines(os.path.join(qfs, "User_Summaries", vid, name, f"user{u}.txt"),
                             sorted({int(i) + 1 for i in jit}))
        videos[vid] = feats
    if store_url is None:
        return SyntheticQFVS(str(out_dir), None, None, None, {v: int(n) for v, n in zip(VIDEOS, num_shots)})
    _write_store(store_url, videos, concepts, concept_text, dim, steps_per_shot, feature_set, text_set, rng, seed)
    return SyntheticQFVS(str(out_dir), str(store_url), feature_set, text_set,
                         {v: int(n) for v, n in zip(VIDEOS, num_shots)})


def _write_store(store_url, videos, concepts, concept_text, dim, steps, feature_set, text_set, rng, seed) -> None:
    from egoflow.datasets.qfvs import concept_prompt, query_prompt
    from egoflow.features_store import FeatureStore

    store = FeatureStore(str(store_url))
    store.create_feature_set(feature_set, {"kind": "synthetic-qfvs", "dim": dim, "steps_per_shot": steps,
                                           "seed": seed}, dim=dim)
    for vid, shots in videos.items():
        n = shots.shape[0]
        offs = (np.arange(steps) + 0.5) * SHOT_SECONDS / steps
        times = (np.arange(n)[:, None] * SHOT_SECONDS + offs[None, :]).reshape(-1)
        feats = np.repeat(shots, steps, axis=0) + 0.1 * rng.normal(size=(n * steps, dim)).astype(np.float32)
        store.write_video(feature_set, vid, feats, times, attrs={"fps": steps / SHOT_SECONDS,
                                                                 "duration_s": n * SHOT_SECONDS})
    # prompts use the (renamed) concept words; give the renamed word the concept's text vector too
    words = {concept_prompt(c).split()[-1]: concept_text[c] for c in concepts}
    strings = sorted({concept_prompt(c) for c in concepts} |
                     {query_prompt(a, b) for a in concepts for b in concepts if a != b})
    toks = [_text_tokens(s, words, dim) for s in strings]
    lmax = max(len(t) for t in toks)
    tokens = np.zeros((len(strings), lmax, dim), np.float32)
    for i, t in enumerate(toks):
        tokens[i, :len(t)] = t
    lengths = np.array([len(t) for t in toks])
    pooled = np.stack([t.mean(0) for t in toks]).astype(np.float32)
    store.write_texts(text_set, strings, pooled, tokens, lengths, config={"kind": "synthetic-qfvs", "seed": seed})
