"""LAVITI on CharadesEgo (``laviti-charades``): hooks for the shared runner to fine-tune, predict and demo.

A class's score for a video is the mean cosine between all of the video's output visual embeddings (every
moment query of every chunk) and the class-name text embedding (``zeroshot.charades_scores``). Zero-shot
(a pretraining run) and fine-tuned models are scored by that one rule, so their mAPs compare directly.

Fine-tuning (choices the paper leaves open; docs/heads_laviti.md): start from the best weights of a pretraining
run (``init``) or from scratch; the pretraining set loss runs on the annotated actions (known intervals, the
class name as text) plus a video-level multi-label sigmoid loss on the score itself (``criterion.py``).

Videos are looked up by their CharadesEgo ``id`` in the feature set (extract ``<id>.mp4`` files and the uid is
the id); class names by their text in the text set (``egoflow encode-text Charades_v1_classes.txt``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from egoflow.datasets.charades_ego import label_matrix, load_charades_classes, load_charades_ego
from egoflow.heads.laviti.charades_data import ActionChunks, action_chunks, collate_actions
from egoflow.heads.laviti.data import LavitiDataError
from egoflow.heads.laviti.head import store_config, text_embeddings
from egoflow.heads.laviti.model import ARCHITECTURE, CharadesConfig, Config
from egoflow.heads.laviti.zeroshot import charades_scores
from egoflow.heads.spec import Task, config_from_dict
from egoflow.heads.train import load_checkpoint

log = logging.getLogger(__name__)

# fine-tuning: half the pretraining lr; the warm-up is 5% of all steps unless train_overrides sets warmup_steps
TRAIN_DEFAULTS = dict(epochs=20, batch_size=16, lr=5e-5, weight_decay=0.05, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")
WARMUP_FRACTION = 0.05
METRIC = "mAP"
CLASSES_FILE = "Charades_v1_classes.txt"
NAME = "laviti-charades"  # this head's registry name (config errors name it)
RUN_HEADS = ("laviti", "laviti-charades")  # runs whose best.pt is a LAVITI network (what --init accepts)


def class_list(classes, annotations) -> tuple[str, list[str]]:
    """``(path, names)`` of the class list: ``classes``, else ``Charades_v1_classes.txt`` next to the csv (where
    the CharadesEgo release puts it)."""
    path = Path(classes) if classes else Path(annotations).with_name(CLASSES_FILE)
    if not classes and not path.is_file():
        raise LavitiDataError(f"{annotations}: no class list given and no {CLASSES_FILE} next to it ({path}); "
                              "pass classes= / --classes")
    return str(path), load_charades_classes(path)


def class_embeddings(store, text_set: str, names: list[str], classes_path: str) -> np.ndarray:
    """Class-name embeddings ``[C, E]`` (L2-normalised) in class order."""
    emb = text_embeddings(store, text_set, names, f"{classes_path} class names (egoflow encode-text {classes_path})")
    return np.stack([emb[n] for n in names])


class CharadesMAP:
    """Class scores of every video of a CharadesEgo csv (records ``{id: [C]}`` in file order) -> mAP."""

    metric, mode = METRIC, "max"
    batch_size = 8  # set by the runner; a video's chunks go through zeroshot.predict_moments 8 at a time

    def __init__(self, store, feature_set: str, videos: list, class_emb: np.ndarray, cfg: Config, where: str):
        missing = sorted({v.video_id for v in videos} - set(store.videos(feature_set)))
        if missing:
            raise LavitiDataError(f"{where}: {len(missing)} video(s) without features in {feature_set!r}: "
                                  f"{missing[:5]}")
        feats = store.load_feature_set(feature_set, [v.video_id for v in videos])
        self.ids, self.feats = [v.video_id for v in videos], [feats[v.video_id] for v in videos]
        self.labels = label_matrix(videos, len(class_emb))
        self.class_emb, self.cfg = class_emb, cfg

    def predict(self, model, decode) -> dict[str, np.ndarray]:
        scores = charades_scores(model, decode, self.feats, self.class_emb, self.cfg)
        return dict(zip(self.ids, scores, strict=True))

    def score(self, records: dict) -> dict:
        from egoflow.evaluate.classification import charades_map_report
        report = charades_map_report(np.stack([records[i] for i in self.ids]), self.labels)
        return {k: v for k, v in report.items() if k != "per_class_AP"}


def _init_run(init, out_dir) -> dict | None:
    """config.json of the ``--init`` run (a finished LAVITI run), checked before anything is read or written."""
    if init is None:
        return None
    run = Path(init)
    if out_dir is not None and Path(out_dir).resolve() == run.resolve():
        raise LavitiDataError(f"--out {out_dir} is the --init run itself: fine-tuning would overwrite the "
                              "pretraining run; give a new run directory")
    if not (run / "config.json").is_file() or not (run / "best.pt").is_file():
        raise FileNotFoundError(f"init run {run} is not a finished laviti run (needs config.json and best.pt)")
    config = json.loads((run / "config.json").read_text())
    if config.get("head") not in RUN_HEADS:
        raise ValueError(f"init run {run}/config.json is a {config.get('head')!r} run, not one of {RUN_HEADS}")
    return config


def _config(inputs, text_set: str, overrides: dict, init_config: dict | None, num_classes: int):
    """The run's CharadesConfig: the ``--init`` run's network (architecture fixed, its dims checked against the
    store) or a new one sized from the store, with ``overrides`` and the class list's ``num_classes``."""
    if overrides.get("num_classes", num_classes) != num_classes:
        raise LavitiDataError(f"num_classes={overrides['num_classes']} but the class list has {num_classes}")
    if init_config is None:
        return store_config(CharadesConfig, NAME, inputs.store, inputs.feature_set, text_set,
                            {**overrides, "num_classes": num_classes})
    net = {k: v for k, v in init_config["head_config"].items() if k in {f.name for f in dataclasses.fields(Config)}}
    changed = sorted(k for k in set(overrides) & set(ARCHITECTURE) if overrides[k] != net.get(k))
    if changed:
        raise LavitiDataError(f"init run {inputs.options['init']}: cannot change the network's {changed} when "
                              "fine-tuning it")
    cfg = config_from_dict(CharadesConfig, {**net, **overrides, "num_classes": num_classes}, NAME)
    want = store_config(CharadesConfig, NAME, inputs.store, inputs.feature_set, text_set, {})
    if (cfg.video_dim, cfg.text_dim) != (want.video_dim, want.text_dim):
        raise LavitiDataError(f"init run {inputs.options['init']} was trained on {cfg.video_dim}-d features / "
                              f"{cfg.text_dim}-d texts; {inputs.feature_set!r} / {text_set!r} have "
                              f"{want.video_dim} / {want.text_dim}")
    return cfg


def task(inputs, overrides: dict) -> Task:
    """Fine-tune on a CharadesEgo csv (e.g. ``CharadesEgo_v1_train_only1st.csv``).

    Options: ``init`` (a laviti run whose best weights start the fine-tune; None: from scratch) and ``classes``
    (``Charades_v1_classes.txt``; default: next to the csv). With ``val_annotations`` (the test csv) the best epoch
    is chosen by mAP and the mAP of the starting weights is reported as ``zero_shot_mAP`` (``initial_mAP``
    from scratch); without, the last epoch is kept.
    """
    store, feature_set, annotations = inputs.store, inputs.feature_set, inputs.annotations
    init = inputs.options.get("init")
    init_config = _init_run(init, inputs.out_dir)
    text_set = inputs.text_set_or(LavitiDataError, "class-name embeddings")
    classes, names = class_list(inputs.options.get("classes"), annotations)
    class_emb = class_embeddings(store, text_set, names, classes)
    cfg = _config(inputs, text_set, overrides, init_config, len(names))
    train_videos = load_charades_ego(annotations, len(names))
    feats = store.load_feature_set(feature_set, sorted({v.video_id for v in train_videos}
                                                       & set(store.videos(feature_set))))
    chunks, stats = action_chunks(feats, train_videos, len(names), cfg)
    if not chunks:
        raise LavitiDataError(f"{annotations}: no training chunk with at least {cfg.kernel} frames in feature set "
                              f"{feature_set!r} ({stats})")
    log.info("laviti-charades: %s", stats)
    val = None
    if inputs.val_annotations is not None:
        val = CharadesMAP(store, feature_set, load_charades_ego(inputs.val_annotations, len(names)), class_emb, cfg,
                          str(inputs.val_annotations))

    def setup(model, criterion, decode):
        """After the seeded build: the --init weights, the class names, the mAP before any fine-tuning."""
        if init is not None:
            load_checkpoint(Path(init) / "best.pt", model)
        criterion.set_class_embeddings(class_emb)
        before = {}
        if val is not None:
            model.eval()
            with torch.no_grad():
                before["zero_shot_mAP" if init else "initial_mAP"] = val.score(val.predict(model, decode))[METRIC]
        return criterion, before

    info = {"text_set": text_set, "classes": classes, "init": str(init) if init else None, "data": stats}
    return Task(cfg, ActionChunks(chunks, class_emb, cfg.num_queries, seed=inputs.seed), collate_actions, val,
                info=info, metrics={f"data_{k}": v for k, v in stats.items()}, setup=setup)


def predictor(inputs, cfg: Config) -> CharadesMAP:
    """Class scores of every video of a CharadesEgo csv with a pretraining (zero-shot) or a fine-tuning run; the
    class list: ``classes``, else the run's, else next to the csv."""
    text_set = inputs.text_set_or(LavitiDataError, "class-name embeddings")
    classes, names = class_list(inputs.options.get("classes") or (inputs.run_config or {}).get("classes"),
                                inputs.annotations)
    videos = load_charades_ego(inputs.annotations, len(names))
    return CharadesMAP(inputs.store, inputs.feature_set, videos, class_embeddings(inputs.store, text_set, names,
                                                                                  classes), cfg,
                       str(inputs.annotations))


def demo(ctx, runner) -> dict:
    """Fine-tune the demo's LAVITI pretraining run (``runs/laviti``, else from scratch) on the demo videos'
    CharadesEgo split; report mAP against the zero-shot mAP of the pretrained weights."""
    init = Path(ctx.out_dir).parent / "laviti"
    init = init if (init / "best.pt").is_file() else None
    head = {} if init else dict(heads=2, head_dim=16, enc_layers=1, dec_layers=1, num_queries=16,
                                num_time_embeddings=64, dropout=0.0)
    tr = dict(epochs=5 if ctx.quick else 30, batch_size=2, lr=1e-3 if ctx.quick else 2e-4, seed=ctx.seed,
              device=ctx.device, progress=not ctx.quick)
    metrics = runner.train("laviti-charades", ctx.store, ctx.feature_set, ctx.charades_train, ctx.out_dir,
                           val_annotations=ctx.charades_val, text_set=ctx.text_set, head_overrides=head,
                           train_overrides=tr, init=init, classes=ctx.charades_classes)
    return {"benchmark": "charades", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.charades_val)}
