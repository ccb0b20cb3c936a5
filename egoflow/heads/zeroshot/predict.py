"""Zero-shot predictions from store features + a text set, no training, no run directory:

    egoflow predict egomcq    --store S --feature-set F --annotations egomcq.json --out egomcq_pred.json
    egoflow predict ek100-mir --store S --feature-set F --annotations retrieval_annotations/ --out mir.pkl
    egoflow predict charades  --store S --feature-set F --annotations CharadesEgo_v1_test_only1st.csv \\
                              --classes Charades_v1_classes.txt --prompt "a video of {}" --out charades.txt

Each writes the benchmark's official submission (``egoflow.formats``) that ``egoflow evaluate`` scores. Texts
(EgoMCQ queries, MIR captions, prompted class names) must be in the text set (``egoflow encode-text``).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.errors import AnnotationError, read_csv_rows
from egoflow.formats import write_submission
from egoflow.heads.zeroshot.scoring import get_scorer


class ClipWindows:
    """Store features of video windows, loading each video once; a missing video names file and record."""

    def __init__(self, store, feature_set: str, path):
        self.store, self.feature_set, self.path = store, feature_set, path
        self.have, self.cache = set(store.videos(feature_set)), {}

    def __call__(self, uid: str, start: float | None, end: float | None, where: str) -> np.ndarray:
        if uid not in self.have:
            raise AnnotationError(self.path, where, f"video {uid!r} is not in feature set {self.feature_set!r} of "
                                  f"{self.store.url}")
        if uid not in self.cache:
            self.cache[uid] = self.store.read_video(self.feature_set, uid)
        vf = self.cache[uid]
        if start is None:
            return vf.feats
        keep = (vf.times >= start) & (vf.times <= end)
        if not keep.any():  # shorter than a step: the step nearest the window's centre
            return vf.feats[[int(np.argmin(np.abs(vf.times - (start + end) / 2)))]]
        return vf.feats[keep]


def _texts(store, text_set: str, strings: list[str]):
    return store.load_texts(text_set, strings)  # KeyError names the strings never encoded


def egomcq(store, feature_set, text_set, annotations, scorer: Callable, **_) -> dict:
    """``{item_id: [5 scores]}``: each query text against its 5 candidate clips."""
    from egoflow.datasets.egomcq import load_egomcq
    items = load_egomcq(annotations)
    clips = ClipWindows(store, feature_set, annotations)
    texts = _texts(store, text_set, [it.query for it in items])
    out = {}
    for i, it in enumerate(items):
        cand = [clips(c.video_uid, c.start_sec, c.end_sec, f"{it.item_id}.choices.{j}")
                for j, c in enumerate(it.choices)]
        one = type(texts)(texts.pooled[i:i + 1], None if texts.tokens is None else texts.tokens[i:i + 1],
                          None if texts.lengths is None else texts.lengths[i:i + 1])
        out[it.item_id] = scorer(cand, one)[:, 0].tolist()
    return out


def _mir_csvs(annotations, split: str) -> tuple[str, str]:
    """(segments csv, sentences csv) from the retrieval_annotations folder or the segments csv itself."""
    if os.path.isdir(annotations):
        return (os.path.join(annotations, f"EPIC_100_retrieval_{split}.csv"),
                os.path.join(annotations, f"EPIC_100_retrieval_{split}_sentence.csv"))
    return str(annotations), str(annotations)[: -len(".csv")] + "_sentence.csv"


def ek100_mir(store, feature_set, text_set, annotations, scorer: Callable, split: str = "test", **_) -> dict:
    """``{"sim_mat" [videos, captions], "vis_ids", "txt_ids"}`` in the CSVs' orders (the relevancy's)."""
    from egoflow.datasets.ek100_actions import parse_timestamp
    seg_csv, sen_csv = _mir_csvs(annotations, split)
    segs = read_csv_rows(seg_csv, ("narration_id", "video_id", "start_timestamp", "stop_timestamp"))
    sens = read_csv_rows(sen_csv, ("narration_id", "narration"))
    clips = ClipWindows(store, feature_set, seg_csv)
    feats = []
    for i, r in enumerate(segs):
        where = f"row {i + 2} ({r['narration_id']})"
        s = parse_timestamp(r["start_timestamp"], f"{where}.start_timestamp", seg_csv)
        e = parse_timestamp(r["stop_timestamp"], f"{where}.stop_timestamp", seg_csv)
        feats.append(clips(r["video_id"], s, e, where))
    sim = scorer(feats, _texts(store, text_set, [r["narration"] for r in sens]))
    return {"sim_mat": sim, "vis_ids": [r["narration_id"] for r in segs], "txt_ids": [r["narration_id"] for r in sens]}


def charades(store, feature_set, text_set, annotations, scorer: Callable, classes=None, prompt=None, **_) -> dict:
    """``{video_id: [C scores]}``: each whole video against every prompted class name."""
    from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
    classes = classes or os.path.join(os.path.dirname(os.path.abspath(annotations)), "Charades_v1_classes.txt")
    names = load_charades_classes(classes)
    videos = load_charades_ego(annotations, len(names))
    clips = ClipWindows(store, feature_set, annotations)
    feats = [clips(v.video_id, None, None, f"video {v.video_id}") for v in videos]
    sim = scorer(feats, _texts(store, text_set, [(prompt or "{}").format(n) for n in names]))
    return {v.video_id: sim[i] for i, v in enumerate(videos)}


@dataclass(frozen=True)
class ZeroShot:
    name: str  # `egoflow predict NAME` without --run
    benchmark: str  # format of the file written, and the `egoflow evaluate` benchmark scoring it
    predict: Callable  # (store, feature_set, text_set, annotations, scorer, **options) -> records
    description: str


ZEROSHOT = {z.name: z for z in (
    ZeroShot("egomcq", "egomcq", egomcq, "EgoMCQ: a query text against its 5 candidate clips"),
    ZeroShot("ek100-mir", "ek100-mir", ek100_mir, "EK-100 multi-instance retrieval similarity matrix"),
    ZeroShot("charades", "charades", charades, "CharadesEgo classification from prompted class names"),
)}


def list_zeroshot() -> list[str]:
    return sorted(ZEROSHOT)


def predict(name: str, store, annotations, out_path, *, feature_set: str, text_set: str | None = None,
            scorer: str = "clip", **options) -> str:
    """Write the zero-shot submission of ``name`` for ``annotations``; returns the path."""
    if name not in ZEROSHOT:
        raise KeyError(f"no zero-shot predictor {name!r}; available: {', '.join(list_zeroshot())}")
    if not feature_set:
        raise ValueError(f"zero-shot {name}: pass --feature-set (the video features to score)")
    store = _open(store)
    text_set = _text_set(store, text_set, name)
    z = ZEROSHOT[name]
    records = z.predict(store, feature_set, text_set, annotations, get_scorer(scorer),
                        **{k: v for k, v in options.items() if v is not None})
    return write_submission(z.benchmark, records, out_path)


def _open(store):
    from egoflow.features_store import FeatureStore
    return store if hasattr(store, "load_feature_set") else FeatureStore(str(store), mode="r")


def _text_set(store, text_set: str | None, name: str) -> str:
    """The given text set checked against the store, or its only one."""
    sets = store.text_sets()
    if text_set is None and len(sets) == 1:
        return sets[0]
    if text_set is None or text_set not in sets:
        raise ValueError(f"zero-shot {name}: text set {text_set or '(none given)'} not in store {store.url}; it has "
                         f"{sets or 'none'} (pass --text-set; `egoflow encode-text` makes one)")
    return text_set


def demo(ctx) -> dict:
    """The demo's zero-shot row: CharadesEgo classification of the demo videos from their class names (the
    demo's text set holds the raw names), written and scored like `egoflow predict charades`."""
    out = os.path.join(ctx.out_dir, "charades_zeroshot.txt")
    predict("charades", ctx.store, str(ctx.charades_val), out, feature_set=ctx.feature_set, text_set=ctx.text_set,
            classes=str(ctx.charades_classes))
    from egoflow.evaluate.benchmarks import get_benchmark
    metrics = get_benchmark("charades").evaluate(str(ctx.charades_val), out)
    return {"benchmark": "charades", "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "predictions": out, "gt": str(ctx.charades_val)}
