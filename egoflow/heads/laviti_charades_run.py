"""LAVITI on CharadesEgo from a feature store: fine-tune (shared loop), zero-shot/fine-tuned submission, demo step.

Re-exported by ``egoflow.heads.laviti_charades``; see docs/heads_laviti.md. Videos are looked up by their
CharadesEgo ``id`` in the feature set (extract ``<id>.mp4`` files and the uid is the id); class names by their
text in the text set (``egoflow encode-text Charades_v1_classes.txt`` encodes the names).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from egoflow.datasets.charades_ego import label_matrix, load_charades_classes, load_charades_ego
from egoflow.heads import runs
from egoflow.heads.laviti import build, config_from_dict
from egoflow.heads.laviti_charades import (ActionChunks, FinetuneConfig, FinetuneCriterion, action_chunks,
                                           collate_actions)
from egoflow.heads.laviti_data import LavitiDataError
from egoflow.heads.laviti_run import head_config, load_run, open_store, resolve_text_set, text_embeddings

log = logging.getLogger(__name__)

TRAIN_DEFAULTS = dict(epochs=20, batch_size=16, lr=5e-5, weight_decay=0.05, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")  # fine-tuning: half the pretraining lr; warm-up 5% of all steps
WARMUP_FRACTION = 0.05
METRIC = "mAP"
CLASSES_FILE = "Charades_v1_classes.txt"


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
    """``evaluate(model)`` for fit: class scores of every video of a CharadesEgo csv -> mAP; keeps the scores."""

    def __init__(self, store, feature_set: str, videos: list, class_emb: np.ndarray, decode, where: str):
        missing = sorted({v.video_id for v in videos} - set(store.videos(feature_set)))
        if missing:
            raise LavitiDataError(f"{where}: {len(missing)} video(s) without features in {feature_set!r}: "
                                  f"{missing[:5]}")
        feats = store.load_feature_set(feature_set, [v.video_id for v in videos])
        self.ids, self.feats = [v.video_id for v in videos], [feats[v.video_id] for v in videos]
        self.labels = label_matrix(videos, len(class_emb))
        self.class_emb, self.decode, self.scores = class_emb, decode, None

    def predict(self, model) -> np.ndarray:
        from egoflow.heads.laviti_zeroshot import charades_scores
        self.scores = charades_scores(model, self.decode, self.feats, self.class_emb, model.cfg)
        return self.scores

    def __call__(self, model) -> dict:
        from egoflow.evaluate.classification import charades_map_report
        report = charades_map_report(self.predict(model), self.labels)
        return {k: v for k, v in report.items() if k != "per_class_AP"}


def write_submission(ids: list[str], scores: np.ndarray, path) -> str:
    """``.json``: ``{"results": {id: [C scores]}}``; otherwise the official text format ``id s_0 … s_{C-1}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps({"version": "1.0", "challenge": "charades_ego_classification",
                                    "results": {i: [round(float(x), 6) for x in s] for i, s in zip(ids, scores)}}))
    else:
        path.write_text("".join(f"{i} " + " ".join(f"{x:.6f}" for x in s) + "\n" for i, s in zip(ids, scores)))
    return str(path)


def _split_overrides(overrides: dict | None) -> tuple[dict, FinetuneConfig]:
    """``--set`` keys of the fine-tune (FinetuneConfig) apart from the network's (laviti Config)."""
    ft_keys = {f.name for f in dataclasses.fields(FinetuneConfig)}
    overrides = overrides or {}
    return ({k: v for k, v in overrides.items() if k not in ft_keys},
            FinetuneConfig(**{k: v for k, v in overrides.items() if k in ft_keys}))


def _initial_config(store, feature_set, text_set, init, overrides: dict):
    """``(cfg, weights)``: the network config of pretraining run ``init`` (non-architecture ``overrides``
    applied) and its best weights, or a new config from the store and ``overrides`` and no weights."""
    if init is None:
        return head_config(store, feature_set, text_set, overrides), None
    pretrained, _, config = load_run(init)  # checks that init is a finished LAVITI run
    arch = {"input_dim", "text_dim", "heads", "head_dim", "enc_layers", "dec_layers", "ffn_mult", "kernel",
            "num_queries", "num_time_embeddings"}
    changed = sorted(k for k in set(overrides) & arch if overrides[k] != config["head_config"].get(k))
    if changed:
        raise LavitiDataError(f"init run {init}: cannot change the network's {changed} when fine-tuning it")
    cfg = config_from_dict({**config["head_config"], **overrides})
    want = head_config(store, feature_set, text_set, {})
    if (cfg.input_dim, cfg.text_dim) != (want.input_dim, want.text_dim):
        raise LavitiDataError(f"init run {init} was trained on {cfg.input_dim}-d features / {cfg.text_dim}-d texts; "
                              f"{feature_set!r} / {text_set!r} have {want.input_dim} / {want.text_dim}")
    return cfg, pretrained.state_dict()


def train_from_store(store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
                     head_overrides: dict | None = None, train_overrides: dict | None = None, init=None,
                     classes=None) -> dict:
    """Fine-tune LAVITI on a CharadesEgo csv (``annotations``, e.g. ``CharadesEgo_v1_train_only1st.csv``).

    ``init``: a ``egoflow train laviti`` run directory whose best weights start the fine-tune (None: from
    scratch). ``classes``: ``Charades_v1_classes.txt`` (default: next to the csv). With ``val_annotations``
    (the test csv) the best epoch is chosen by mAP, the zero-shot mAP of the initial weights is reported as
    ``zero_shot_mAP`` and the scores are written to out_dir/predictions.json (``egoflow evaluate charades``
    reads it); without, the last epoch is kept. Writes config.json and metrics.json.
    """
    from egoflow.heads.train import fit
    store, out = open_store(store), Path(out_dir)
    if init is not None and out.resolve() == Path(init).resolve():
        raise LavitiDataError(f"--out {out} is the --init run itself: fine-tuning would overwrite the pretraining "
                              "run; give a new run directory")
    text_set = resolve_text_set(store, text_set)
    classes, names = class_list(classes, annotations)
    class_emb = class_embeddings(store, text_set, names, classes)
    net_overrides, ft = _split_overrides(head_overrides)
    cfg, weights = _initial_config(store, feature_set, text_set, init, net_overrides)
    train_videos = load_charades_ego(annotations, len(names))
    feats = store.load_feature_set(feature_set, sorted({v.video_id for v in train_videos}
                                                       & set(store.videos(feature_set))))
    chunks, stats = action_chunks(feats, train_videos, len(names), cfg)
    if not chunks:
        raise LavitiDataError(f"{annotations}: no training chunk with at least {cfg.kernel} frames in feature set "
                              f"{feature_set!r} ({stats})")
    log.info("laviti-charades: %s", stats)
    tcfg = runs.train_config(TRAIN_DEFAULTS, train_overrides, len(chunks), WARMUP_FRACTION, "laviti-charades")
    model, _, decode = runs.build_seeded(build, cfg, tcfg.seed)  # built anew: dropout etc. of cfg take effect
    if weights is not None:
        model.load_state_dict(weights)
    criterion = FinetuneCriterion(cfg, ft, class_emb)
    evaluate = None
    metrics: dict = {}
    if val_annotations is not None:
        evaluate = CharadesMAP(store, feature_set, load_charades_ego(val_annotations, len(names)), class_emb, decode,
                               str(val_annotations))
        model.eval()
        with torch.no_grad():
            metrics["zero_shot_mAP" if init else "initial_mAP"] = evaluate(model)[METRIC]
    out.mkdir(parents=True, exist_ok=True)
    config = {"head": "laviti", "benchmark": "charades", "task": "charades_finetune",
              "head_config": dataclasses.asdict(cfg), "finetune_config": dataclasses.asdict(ft),
              "train_config": dataclasses.asdict(tcfg), "store": store.url, "feature_set": feature_set,
              "text_set": text_set, "annotations": str(annotations), "classes": classes,
              "init": str(init) if init else None,
              "val_annotations": str(val_annotations) if val_annotations is not None else None, "data": stats}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    result = fit(model, criterion, ActionChunks(chunks, class_emb, cfg.num_queries, seed=tcfg.seed),
                 collate_actions, tcfg, evaluate=evaluate, metric=METRIC if evaluate else None, mode="max",
                 out_dir=out, checkpoint_extra={"head": "laviti", "head_config": dataclasses.asdict(cfg)})
    metrics.update({k: v for k, v in (result.history[-1] if result.history else {}).items()
                    if k.startswith("train_")})
    if evaluate is not None:
        model.eval()
        with torch.no_grad():
            metrics.update(evaluate(model))  # the model holds the best weights now
        write_submission(evaluate.ids, evaluate.scores, out / "predictions.json")
    metrics.update(best_epoch=result.best_epoch, **{f"data_{k}": v for k, v in stats.items()})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def predict_from_store(run_dir, store, annotations, out_path, *, feature_set=None, text_set=None,
                       classes=None) -> str:
    """Class scores for every video of a CharadesEgo csv with the best weights of ``run_dir`` — a pretraining
    run (zero-shot) or a fine-tuning run — written to ``out_path`` (see :func:`write_submission`)."""
    store = open_store(store)
    model, decode, config = load_run(run_dir, "auto")
    feature_set = feature_set or config["feature_set"]
    text_set = resolve_text_set(store, text_set or config.get("text_set"))
    classes, names = class_list(classes or config.get("classes"), annotations)
    videos = load_charades_ego(annotations, len(names))
    evaluate = CharadesMAP(store, feature_set, videos, class_embeddings(store, text_set, names, classes), decode,
                           str(annotations))
    return write_submission(evaluate.ids, evaluate.predict(model), out_path)


def demo_step(ctx) -> dict:
    """Fine-tune the demo's LAVITI pretraining run (``runs/laviti``, else from scratch) on the demo videos'
    CharadesEgo split; report mAP against the zero-shot mAP of the pretrained weights."""
    init = Path(ctx.out_dir).parent / "laviti"
    init = init if (init / "best.pt").is_file() else None
    head = {} if init else dict(heads=2, head_dim=16, enc_layers=1, dec_layers=1, num_queries=16,
                                num_time_embeddings=64, dropout=0.0)
    train = dict(epochs=5 if ctx.quick else 30, batch_size=2, lr=1e-3 if ctx.quick else 2e-4, seed=ctx.seed,
                 device=ctx.device, progress=not ctx.quick)
    metrics = train_from_store(ctx.store, ctx.feature_set, ctx.charades_train, ctx.out_dir,
                               val_annotations=ctx.charades_val, text_set=ctx.text_set, head_overrides=head,
                               train_overrides=train, init=init, classes=ctx.charades_classes)
    return {"benchmark": "charades", "metrics": metrics, "predictions": str(Path(ctx.out_dir) / "predictions.json"),
            "gt": str(ctx.charades_val)}
