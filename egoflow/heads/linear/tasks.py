"""What differs between the linear heads: the annotation file, the targets, the records written, the metric.

Each adapter turns an annotation file into windows of store videos with targets, and decoded outputs into the
benchmark's submission records; scoring goes through ``egoflow.evaluate.recognition`` (what ``egoflow evaluate``
runs on the written file).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from egoflow.formats import ek100_actions_submission


@dataclass
class Split:
    """One annotation file as the head sees it."""

    path: str  # the annotation file
    windows: list  # [(video_uid, start_sec, end_sec)] per record (video time)
    targets: list  # [[int] * K] per record (zeros where unlabelled)
    where: list  # key path of each record, for errors
    keys: list  # the record each sample predicts for
    gt: object = None  # what the metric needs (records / items)
    text_strings: list = field(default_factory=list)  # question per record (EgoTaskQA)


class EK100:
    benchmark, metric, mode = "ek100-ar", "action top1", "max"

    @staticmethod
    def fill(cfg: dict, train: Split) -> dict:
        """num_classes from the class lists next to the csv (``EPIC_100_{verb,noun}_classes.csv``), else from
        the largest training labels."""
        if "num_classes" in cfg:
            return cfg
        from egoflow.datasets.ek100_actions import ek100_class_files, load_ek100_classes
        vpath, npath = ek100_class_files(train.path)
        if os.path.isfile(vpath) and os.path.isfile(npath):
            return {**cfg, "num_classes": (len(load_ek100_classes(vpath)), len(load_ek100_classes(npath)))}
        t = np.asarray(train.targets)
        return {**cfg, "num_classes": (int(t[:, 0].max()) + 1, int(t[:, 1].max()) + 1)}

    @staticmethod
    def load(path, cfg, split: str) -> Split:
        from egoflow.datasets.ek100_actions import load_ek100_actions
        acts = load_ek100_actions(path)
        if split == "train" and any(a.verb_class < 0 or a.noun_class < 0 for a in acts):
            from egoflow.datasets.errors import AnnotationError
            raise AnnotationError(path, None, "has no verb_class/noun_class columns: cannot train on it")
        if cfg is not None and split != "train":
            nv, nn_ = cfg.num_classes
            bad = next((a for a in acts if a.verb_class >= nv or a.noun_class >= nn_), None)
            if bad is not None:
                from egoflow.datasets.errors import AnnotationError
                raise AnnotationError(path, bad.narration_id, f"class ({bad.verb_class}, {bad.noun_class}) beyond "
                                      f"the run's {nv} verbs / {nn_} nouns")
        return Split(str(path), [(a.video_id, a.start_sec, a.stop_sec) for a in acts],
                     [[max(a.verb_class, 0), max(a.noun_class, 0)] for a in acts], [a.narration_id for a in acts],
                     acts, acts)

    @staticmethod
    def records(decoded: list[dict], keys: list, cfg) -> dict:
        return {a.narration_id: {"verb": d["scores"][0].tolist(), "noun": d["scores"][1].tolist()}
                for a, d in zip(keys, decoded)}

    @staticmethod
    def score(records, gt) -> dict:
        from egoflow.evaluate.recognition import ek100_actions_metrics
        return ek100_actions_metrics(gt, ek100_actions_submission(records))


class OSCC:
    benchmark, metric, mode = "oscc", "accuracy", "max"

    @staticmethod
    def fill(cfg: dict, train: Split) -> dict:
        return {**cfg, "num_classes": (2,)}

    @staticmethod
    def load(path, cfg, split: str) -> Split:
        from egoflow.datasets.fho import load_fho_oscc_pnr
        clips = load_fho_oscc_pnr(path, task="oscc" if split != "predict" else None)
        return Split(str(path), [(c.video_uid, c.start_sec, c.end_sec) for c in clips],
                     [[int(bool(c.state_change))] for c in clips], [c.unique_id for c in clips], clips, clips)

    @staticmethod
    def records(decoded, keys, cfg) -> list[dict]:
        return [{"unique_id": c.unique_id, "state_change": bool(d["scores"][0].argmax() == 1)}
                for c, d in zip(keys, decoded)]

    @staticmethod
    def score(records, gt) -> dict:
        from egoflow.evaluate.recognition import oscc_metrics
        preds = {r["unique_id"]: r["state_change"] for r in records}
        return oscc_metrics(gt, preds, [c.unique_id for c in gt if c.unique_id not in preds])


class PNR:
    """Trained on the state-change clips; predicts every clip of the file (the challenge asks for all)."""

    benchmark, metric, mode = "pnr", "abs_error_s", "min"

    @staticmethod
    def fill(cfg: dict, train: Split) -> dict:
        return {**cfg, "per_step": True, "num_classes": (1,)}

    @staticmethod
    def load(path, cfg, split: str) -> Split:
        from egoflow.datasets.fho import load_fho_oscc_pnr
        clips = load_fho_oscc_pnr(path, task="pnr" if split != "predict" else None)
        if split == "train":
            clips = [c for c in clips if c.state_change]
        # target: filled per sample from the step times (the step nearest the PNR), see keyframe_targets
        return Split(str(path), [(c.video_uid, c.start_sec, c.end_sec) for c in clips], [[0] for _ in clips],
                     [c.unique_id for c in clips], clips, [c for c in clips if c.state_change])

    @staticmethod
    def keyframe_targets(data) -> None:
        """Target of each sample = the step whose time is nearest the PNR (clip seconds); 0 without one."""
        for s, c in zip(data.samples, data.keys):
            off = c.pnr_offset_sec
            s["targets"][0] = 0 if off is None else int(np.argmin(np.abs(np.asarray(s["times"]) - off)))

    @staticmethod
    def records(decoded, keys, cfg) -> list[dict]:
        # d["time"]: clip seconds of the predicted step (the head adds it from the sample's step times)
        return [{"unique_id": c.unique_id, "pnr_frame": round(float(d["time"]) * c.fps, 3)}
                for c, d in zip(keys, decoded)]

    @staticmethod
    def score(records, gt) -> dict:
        from egoflow.evaluate.recognition import pnr_metrics
        preds = {r["unique_id"]: r["pnr_frame"] for r in records}
        return pnr_metrics(gt, preds, [c.unique_id for c in gt if c.unique_id not in preds])


class EgoTaskQA:
    benchmark, metric, mode = "egotaskqa", "accuracy", "max"

    @staticmethod
    def fill(cfg: dict, train: Split) -> dict:
        if "answers" not in cfg:
            from egoflow.datasets.egotaskqa import answer_vocabulary
            cfg = {**cfg, "answers": tuple(answer_vocabulary(train.gt, os.path.join(
                os.path.dirname(os.path.abspath(train.path)), "answer_set.txt")))}
        return {**cfg, "num_classes": (len(cfg["answers"]),)}

    @staticmethod
    def load(path, cfg, split: str) -> Split:
        from egoflow.datasets.egotaskqa import answer_indices, load_egotaskqa
        fps = cfg.interval_fps if cfg is not None else 30.0
        items = load_egotaskqa(path, fps, need_answers=split != "predict")
        targets = [[0] for _ in items]
        if cfg is not None and split != "predict":
            targets = [[i] for i in answer_indices(items, list(cfg.answers), path)]
        return Split(str(path), [(q.video_uid, q.start_sec, q.end_sec) for q in items], targets,
                     [f"[{q.index}]" for q in items], items, items, [q.question for q in items])

    @staticmethod
    def records(decoded, keys, cfg) -> list[dict]:
        return [{"index": q.index, "question": q.question, "answer": cfg.answers[int(d["scores"][0].argmax())]}
                for q, d in zip(keys, decoded)]

    @staticmethod
    def score(records, gt) -> dict:
        from egoflow.evaluate.recognition import egotaskqa_accuracy
        out = egotaskqa_accuracy({r["index"]: r["answer"] for r in records}, gt)
        out.pop("per_type_counts")
        return out


TASKS = {"linear-ek100": EK100, "linear-oscc": OSCC, "linear-pnr": PNR, "linear-egotaskqa": EgoTaskQA}
