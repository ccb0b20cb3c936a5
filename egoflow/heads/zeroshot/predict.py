"""Zero-shot predictions, no training, no run directory (registry entries ``egomcq``, ``ek100-mir``, ``charades``):

    egoflow predict egomcq    --store S --feature-set F --annotations egomcq.json --out egomcq_pred.json
    egoflow predict ek100-mir --store S --feature-set F --annotations retrieval_annotations/ --out mir.pkl
    egoflow predict charades  --store S --feature-set F --annotations CharadesEgo_v1_test_only1st.csv \\
                              --classes Charades_v1_classes.txt --prompt "a video of {}" --out charades.txt
    egoflow predict egomcq --encoder fused --videos DIR --annotations egomcq.json --out pred.json (fused scorer)

``egoflow.heads.runner.predict`` writes each benchmark's official submission (``egoflow.formats``) that
``egoflow evaluate`` scores. With store features, texts (EgoMCQ queries, MIR captions, prompted class names) must
be in the text set (``egoflow encode-text``); a scorer passed in (the fused backbone's) reads what it needs itself.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
from egoflow.datasets.egomcq import load_egomcq
from egoflow.datasets.ek100_actions import parse_timestamp
from egoflow.datasets.errors import read_csv_rows
from egoflow.heads.spec import HeadConfigError
from egoflow.heads.zeroshot.scoring import Scorer, Span, StoreScorer, get_scorer


class ZeroShotError(ValueError):
    """A zero-shot prediction that lacks an input (store, feature set, text set)."""


@dataclass
class Config:
    """Zero-shot predictors have no settings of their own: their inputs are the predict options."""


def build(cfg: Config):
    """No network: the frozen encoder's features (or the scorer passed in) are the model."""
    return None, None, None


def task(inputs, overrides):
    raise HeadConfigError("zero-shot predictors are not trained: `egoflow predict NAME` without --run")


class ZeroShotPrediction:
    """The :class:`~egoflow.heads.spec.Evaluation` of a zero-shot predictor: ``predict`` ignores the (absent)
    model; the records are scored by ``egoflow evaluate`` against the annotations."""

    metric, mode, batch_size = "", "max", 1

    def __init__(self, records: Callable[[], object]):
        self.records = records

    def predict(self, model=None, decode=None):
        return self.records()

    def score(self, records) -> dict[str, float]:
        raise HeadConfigError("zero-shot predictions have no validation split: score them with `egoflow evaluate`")


def scorer_of(inputs, name: str, source) -> Scorer:
    """The ``scorer`` option when it is a Scorer (passed in, e.g. the fused backbone's by the CLI), else a
    :class:`StoreScorer` with the score function of that name (default ``clip``) over the store's features."""
    given = inputs.options.get("scorer")
    if given is not None and not isinstance(given, str):
        return given
    fn = get_scorer(given or "clip")
    if inputs.store is None or not inputs.feature_set:
        raise ZeroShotError(f"zero-shot {name}: pass --store and --feature-set (the video features to score)")
    text_set = inputs.text_set_or(ZeroShotError, f"zero-shot {name}: the text embeddings to score against")
    return StoreScorer(inputs.store, inputs.feature_set, text_set, source, fn)


def egomcq_records(annotations, scorer: Scorer) -> dict:
    """``{item_id: [5 scores]}``: each query text against its candidate clips. An item with a candidate the
    scorer cannot score (NaN: its video is absent) is left out; the evaluator counts it as missing."""
    items = load_egomcq(annotations)
    clips = [Span(c.video_uid, c.start_sec, c.end_sec, f"{it.item_id}.choices.{j}")
             for it in items for j, c in enumerate(it.choices)]
    s = scorer.pairs(clips, [it.query for it in items for _ in it.choices])
    out, at, left = {}, 0, []
    for it in items:
        row = np.asarray(s[at:at + len(it.choices)], np.float64)
        at += len(it.choices)
        if np.isfinite(row).all():
            out[it.item_id] = row.tolist()
        else:
            left.append(it.item_id)
    if left:
        print(f"egomcq: {len(left)} item(s) left out (a candidate could not be scored), e.g. item {left[0]}",
              file=sys.stderr)
    return out


def mir_csvs(annotations, split: str) -> tuple[str, str]:
    """(segments csv, sentences csv) from the retrieval_annotations folder or the segments csv itself."""
    if os.path.isdir(annotations):
        return (os.path.join(annotations, f"EPIC_100_retrieval_{split}.csv"),
                os.path.join(annotations, f"EPIC_100_retrieval_{split}_sentence.csv"))
    return str(annotations), str(annotations)[: -len(".csv")] + "_sentence.csv"


def ek100_mir_records(seg_csv: str, sen_csv: str, scorer: Scorer) -> dict:
    """``{"sim_mat" [videos, captions], "vis_ids", "txt_ids"}`` in the CSVs' orders (the relevancy's)."""
    segs = read_csv_rows(seg_csv, ("narration_id", "video_id", "start_timestamp", "stop_timestamp"))
    sens = read_csv_rows(sen_csv, ("narration_id", "narration"))
    clips = []
    for i, r in enumerate(segs):
        where = f"row {i + 2} ({r['narration_id']})"
        clips.append(Span(r["video_id"], parse_timestamp(r["start_timestamp"], f"{where}.start_timestamp", seg_csv),
                          parse_timestamp(r["stop_timestamp"], f"{where}.stop_timestamp", seg_csv), where))
    sim = scorer.matrix(clips, [r["narration"] for r in sens])
    return {"sim_mat": sim, "vis_ids": [r["narration_id"] for r in segs], "txt_ids": [r["narration_id"] for r in sens]}


def charades_classes_path(annotations, classes=None) -> str:
    return classes or os.path.join(os.path.dirname(os.path.abspath(annotations)), "Charades_v1_classes.txt")


def charades_records(annotations, scorer: Scorer, classes=None, prompt=None) -> dict:
    """``{video_id: [C scores]}``: each whole video against every prompted class name."""
    names = load_charades_classes(charades_classes_path(annotations, classes))
    videos = load_charades_ego(annotations, len(names))
    sim = scorer.matrix([Span(v.video_id, None, None, f"video {v.video_id}") for v in videos],
                        [(prompt or "{}").format(n) for n in names])
    return {v.video_id: sim[i] for i, v in enumerate(videos)}


def egomcq_predictor(inputs, cfg) -> ZeroShotPrediction:
    scorer = scorer_of(inputs, "egomcq", inputs.annotations)
    return ZeroShotPrediction(lambda: egomcq_records(inputs.annotations, scorer))


def ek100_mir_predictor(inputs, cfg) -> ZeroShotPrediction:
    seg_csv, sen_csv = mir_csvs(inputs.annotations, inputs.options.get("split") or "test")
    scorer = scorer_of(inputs, "ek100-mir", seg_csv)
    return ZeroShotPrediction(lambda: ek100_mir_records(seg_csv, sen_csv, scorer))


def charades_predictor(inputs, cfg) -> ZeroShotPrediction:
    scorer = scorer_of(inputs, "charades", inputs.annotations)
    o = inputs.options
    return ZeroShotPrediction(lambda: charades_records(inputs.annotations, scorer, o.get("classes"), o.get("prompt")))
