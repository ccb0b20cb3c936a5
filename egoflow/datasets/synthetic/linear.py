"""Planted features + official-format files for the clip-level benchmarks (EK-100 actions, Ego4D OSCC/PNR,
EgoTaskQA) and the zero-shot ones (EgoMCQ, EK-100 MIR, CharadesEgo), for tests and benchmarks.

Each video is a run of action segments; a segment's steps are ``unit(verb_vec[v] + noun_vec[n]) + noise``. Some
segment starts are state changes: the step there also carries ``pnr_vec``. Text embeddings of class names and
captions live in the same space (the noun / verb vectors), as a CLIP text tower's would.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egoflow.datasets.synthetic.planted import unit

FPS_FRAMES = 30.0  # frame rate of the annotation frame numbers


@dataclass
class PlantedSpec:
    num_videos: int = 8  # videos; the first 3/4 are train, the rest val
    segments: int = 14  # action segments per video
    verbs: int = 4  # verb classes
    nouns: int = 6  # noun classes
    dim: int = 32  # feature width
    fps: float = 2.0  # feature steps per second
    noise: float = 0.6  # step noise (relative to the unit signal)
    seed: int = 0


@dataclass
class Planted:
    spec: PlantedSpec
    videos: dict = field(default_factory=dict)  # uid -> (feats [T, D], times [T])
    segments: list = field(default_factory=list)  # (uid, start, end, verb, noun, pnr_sec | None)
    verb_vec: np.ndarray = None  # [V, D]
    noun_vec: np.ndarray = None  # [N, D]

    def split(self, uid: str) -> str:
        return "train" if int(uid[1:].split("_")[0]) < max(1, int(self.spec.num_videos * 0.75)) else "val"


def make_planted(spec: PlantedSpec | None = None) -> Planted:
    spec = spec or PlantedSpec()
    rng = np.random.default_rng(spec.seed)
    verb_vec = unit(rng.standard_normal((spec.verbs, spec.dim)))
    noun_vec = unit(rng.standard_normal((spec.nouns, spec.dim)))
    pnr_vec = unit(rng.standard_normal(spec.dim))
    out = Planted(spec, verb_vec=verb_vec, noun_vec=noun_vec)
    for i in range(spec.num_videos):
        uid, t0, feats, times = f"v{i}_fpv1", 0.0, [], []
        for _ in range(spec.segments):
            dur = float(rng.uniform(5.0, 9.0))
            v, n = int(rng.integers(spec.verbs)), int(rng.integers(spec.nouns))
            steps = (np.arange(round(t0 * spec.fps), round((t0 + dur) * spec.fps)) + 0.5) / spec.fps
            x = unit(verb_vec[v] + noun_vec[n])[None] + spec.noise * rng.standard_normal((len(steps), spec.dim))
            pnr = None
            if rng.random() < 0.5:  # a state change at 2/5 of the segment: its step carries pnr_vec
                pnr = t0 + 0.4 * dur
                j = int(np.argmin(np.abs(steps - pnr)))
                x[j] += 6.0 * pnr_vec
                x[max(j - 1, 0)] += 3.0 * pnr_vec  # the neighbours a little: a change is not one frame wide
                x[min(j + 1, len(x) - 1)] += 3.0 * pnr_vec
            feats.append(x)
            times.append(steps)
            out.segments.append((uid, t0, t0 + dur, v, n, pnr))
            t0 += dur
        out.videos[uid] = (np.concatenate(feats).astype(np.float32), np.concatenate(times))
    return out


def write_store(data: Planted, store, feature_set: str = "planted-linear", text_set: str = "planted-linear-text",
                strings: dict[str, np.ndarray] | None = None) -> tuple[str, str]:
    """Write the features (and ``strings``' embeddings, e.g. from :func:`write_files`) into ``store``."""
    s = data.spec
    store.create_feature_set(feature_set, {"name": "planted-linear", "seed": s.seed, "dim": s.dim}, s.dim, "float32")
    for uid, (feats, times) in data.videos.items():
        store.write_video(feature_set, uid, feats, times, {"fps": s.fps, "duration_s": float(times[-1] + 0.5 / s.fps),
                                                            "source": {"path": "synthetic"}})
    if strings:
        keys = sorted(strings)
        store.write_texts(text_set, keys, np.stack([strings[k] for k in keys]), config={"name": "planted-linear"})
    return feature_set, text_set


def _hms(sec: float) -> str:
    return f"{int(sec // 3600):02d}:{int(sec % 3600 // 60):02d}:{sec % 60:05.2f}"


def _csv(path: Path, header: list[str], rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def verb_name(v: int) -> str:
    return f"verb{v}"


def noun_name(n: int) -> str:
    return f"noun{n}"


QUESTIONS = ("what am I holding?", "which object do I use?")  # EgoTaskQA questions (answer: the noun)


def write_files(data: Planted, out_dir) -> tuple[dict[str, Path], dict[str, np.ndarray]]:
    """Write every benchmark's files under ``out_dir``; returns (paths, {string: text embedding})."""
    out, s = Path(out_dir), data.spec
    paths: dict[str, Path] = {}
    rows = {"train": [], "val": []}
    for k, (uid, a, b, v, n, _) in enumerate(data.segments):
        rows[data.split(uid)].append([f"{uid}_{k}", "P00", uid, _hms(a), _hms(a), _hms(b), int(a * FPS_FRAMES),
                                      int(b * FPS_FRAMES), f"{verb_name(v)} {noun_name(n)}", verb_name(v), v,
                                      noun_name(n), n, f"['{noun_name(n)}']", f"[{n}]"])
    head = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
            "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
            "all_noun_classes"]
    for split, name in (("train", "EPIC_100_train.csv"), ("val", "EPIC_100_validation.csv")):
        paths[f"ek100_{split}"] = _csv(out / "ek100" / name, head, rows[split])
    _csv(out / "ek100" / "EPIC_100_verb_classes.csv", ["id", "key"], [[i, verb_name(i)] for i in range(s.verbs)])
    _csv(out / "ek100" / "EPIC_100_noun_classes.csv", ["id", "key"], [[i, noun_name(i)] for i in range(s.nouns)])

    rng = np.random.default_rng(s.seed + 1)
    clips = {"train": [], "val": []}
    qas = {"train": [], "val": []}
    for k, (uid, a, b, _, n, pnr) in enumerate(data.segments):
        split = data.split(uid)
        end_of_video = data.videos[uid][1][-1]
        if pnr is not None:  # an 8 s window around the state change, placed at random
            start = float(np.clip(pnr - rng.uniform(1.0, 7.0), 0.0, end_of_video - 8.0))
        else:  # an 8 s window that holds no state change
            start = float(np.clip((a + b) / 2 - 4.0, 0.0, end_of_video - 8.0))
            if any(p is not None and u == uid and start <= p <= start + 8.0 for u, _, _, _, _, p in data.segments):
                continue
        fs, fe = round(start * FPS_FRAMES), round((start + 8.0) * FPS_FRAMES)
        clips[split].append({"unique_id": f"oscc-{k}", "video_uid": uid, "parent_start_sec": start,
                             "parent_end_sec": start + 8.0, "parent_start_frame": fs, "parent_end_frame": fe,
                             "state_change": pnr is not None,
                             "parent_pnr_frame": None if pnr is None else round(pnr * FPS_FRAMES)})
        q = QUESTIONS[k % 2]
        qas[split].append({"question": q, "answer": noun_name(n),
                           "interval": f"{uid.rsplit('_', 1)[0]}|fpv1|{int(a * FPS_FRAMES)}|{int(b * FPS_FRAMES)}",
                           "type": ["descriptive" if k % 2 == 0 else "predictive"], "category": ["world"],
                           "semantic": "object", "structural": "query", "reference": "direct"})
    for split in ("train", "val"):
        p = out / "fho" / f"fho_oscc-pnr_{split}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"version": "1.0", "split": split, "clips": clips[split]}))
        paths[f"fho_{split}"] = p
        p = out / "egotaskqa" / "direct" / f"{split}_qas.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(qas[split]))
        paths[f"egotaskqa_{split}"] = p
    strings = {q: unit(rng.standard_normal(s.dim)).astype(np.float32) for q in QUESTIONS}
    for v in range(s.verbs):
        for n in range(s.nouns):
            strings[f"{verb_name(v)} {noun_name(n)}"] = unit(data.verb_vec[v] + data.noun_vec[n]).astype(np.float32)
    for n in range(s.nouns):
        strings[f"a video of {noun_name(n)}"] = data.noun_vec[n].astype(np.float32)
    return paths, strings


def files_from_mq(mq_train, mq_val, questions: list[str], out_dir, window_s: float = 8.0) -> dict[str, Path]:
    """EK-100 / FHO / EgoTaskQA files over the videos of an Ego4D MQ pair (the demo's): every labelled moment is
    an action (verb = noun = its label), its start a state change (a scene cut is a visible change), and a
    question (from ``questions``, strings the store has embeddings of) whose answer is its label."""
    from egoflow.datasets.ego4d import load_mq

    out, paths = Path(out_dir), {}
    clips = {s: load_mq(p) for s, p in (("train", mq_train), ("val", mq_val))}
    labels = sorted({i.label for cs in clips.values() for c in cs for i in c.instances})
    head = ["narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp", "narration",
            "verb", "verb_class", "noun", "noun_class"]
    for split, cs in clips.items():
        rows, fho, qas = [], [], []
        for c in cs:
            for k, ins in enumerate(c.instances):
                a, b = c.clip_video_start_sec + ins.start_sec, c.clip_video_start_sec + ins.end_sec
                y = labels.index(ins.label)
                rows.append([f"{c.clip_uid}_{k}", "P00", c.video_uid, _hms(a), _hms(b), ins.label, ins.label, y,
                             ins.label, y])
                qas.append({"question": questions[k % len(questions)], "answer": ins.label,
                            "interval": f"{c.video_uid}||{round(a * FPS_FRAMES)}|{round(b * FPS_FRAMES)}",
                            "type": ["descriptive"], "category": ["world"], "semantic": "object",
                            "structural": "query", "reference": "direct"})
                w = min(window_s, c.clip_duration)
                cuts = [c.clip_video_start_sec + j.start_sec for j in c.instances]
                for uid, (s0, pnr) in ((f"{c.clip_uid}_{k}_sc", (a - w / 2, a)), (f"{c.clip_uid}_{k}_no",
                                                                                   ((a + b - w) / 2, None))):
                    s0 = float(np.clip(s0, c.clip_video_start_sec, c.clip_video_end_sec - w))
                    if pnr is None and any(s0 < t < s0 + w for t in cuts):
                        continue  # no window inside this moment without a cut
                    if pnr is not None and not s0 <= pnr <= s0 + w:
                        continue
                    fho.append({"unique_id": uid, "video_uid": c.video_uid, "parent_start_sec": s0,
                                "parent_end_sec": s0 + w, "parent_start_frame": round(s0 * FPS_FRAMES),
                                "parent_end_frame": round((s0 + w) * FPS_FRAMES), "state_change": pnr is not None,
                                "parent_pnr_frame": None if pnr is None else round(pnr * FPS_FRAMES)})
        split_name = "train" if split == "train" else "validation"
        paths[f"ek100_{split}"] = _csv(out / "ek100" / f"EPIC_100_{split_name}.csv", head, rows)
        for key, sub, obj in (("fho", f"fho/fho_oscc-pnr_{split}.json", {"clips": fho}),
                              ("egotaskqa", f"egotaskqa/direct/{split}_qas.json", qas)):
            p = out / sub
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(obj))
            paths[f"{key}_{split}"] = p
    for kind in ("verb", "noun"):
        _csv(out / "ek100" / f"EPIC_100_{kind}_classes.csv", ["id", "key"], [[i, n] for i, n in enumerate(labels)])
    # EgoTaskQA ships its answer vocabulary over every split (answer_set.txt beside the QA files): a val answer
    # that no training question has stays a class instead of an error
    (out / "egotaskqa" / "direct" / "answer_set.txt").write_text("\n".join(labels) + "\n")
    return paths
