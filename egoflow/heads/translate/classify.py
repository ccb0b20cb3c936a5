"""VideoTranslate classification: CharadesEgo (mAP) and EK-100 verbs / nouns / actions (top-1, top-5).

Two ways, chosen by ``--set mode=...``:

- ``generative`` (default): fine-tune the decoder to write the class name (CharadesEgo: one target per action
  segment; EK-100: the verb name and the noun name of a segment back to back, each after its own task prefix),
  then classify by ranking every class name by its likelihood (rank.py). A ``translate`` pretraining run used
  directly by ``egoflow predict`` ranks zero-shot, after the narration prefix.
- ``discriminative``: linear layers on the pooled encoder output (CharadesEgo: multi-label BCE over whole
  videos; EK-100: a verb and a noun layer, CE).
- ``discriminative`` with ``fusion=gen+disc``: the generative samples (class-name targets) also train the linear
  layers (the sum of both losses); a class's score is the weighted sum of its standardized ranking score and
  logit (rank.fuse). ``fusion`` can also be given to ``runner.predict`` to score a run another way.

Multi-task (``--set narrations=narration.json``): each label sample trains back to back with a narration sample
of the same store (the narration and label tasks in one batch).
"""
from __future__ import annotations

import numpy as np
import torch

from egoflow.heads.spec import Task
from egoflow.heads.translate.common import batches, eval_mode, prepare, run_setup
from egoflow.heads.translate.data import (
    Clip,
    Collate,
    load_videos,
    make_clipset,
    narration_clips,
)
from egoflow.heads.translate.model import fusion_of
from egoflow.heads.translate.rank import candidate_scores, fuse, pad_ids
from egoflow.heads.translate.text import (
    TranslateInputError,
    check_candidates,
    encode,
    load_tokenizer,
)

TRAIN_DEFAULTS = dict(epochs=10, batch_size=32, lr=1e-4, weight_decay=0.01, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")


class RankEvaluation:
    """Class scores [N, C] of every clip (per label set): candidate ranking or the linear layers."""

    mode = "max"

    def __init__(self, sets: dict, names: dict, tok, keys: list[str], gt, metric: str, batch_size: int = 32,
                 prompt: str = "{}", fusion: str | None = None):
        self.sets, self.names, self.tok, self.keys, self.gt = sets, names, tok, keys, gt  # per label set
        self.metric, self.batch_size, self.prompt = metric, batch_size, prompt
        self.fusion = fusion  # None: the run's own (Config.fusion)

    def _ranking(self, model, name, data) -> torch.Tensor:
        texts = [self.prompt.format(n) for n in self.names[name]]
        width = model.cfg.max_label_len if self.prompt == "{}" else model.cfg.max_narration_len
        ids, m = pad_ids(encode(self.tok, texts, width)[0], model.cfg.pad_id, next(model.parameters()).device)
        return torch.cat([candidate_scores(model, batch, ids, m) for batch, _ in batches(model, data, self.batch_size)])

    @eval_mode
    def scores(self, model) -> dict[str, np.ndarray]:
        rule = self.fusion or fusion_of(model.cfg)
        if rule != "gen" and model.cfg.mode != "discriminative":
            raise TranslateInputError(f"fusion={rule} needs a run trained with mode=discriminative (linear layers)")
        out = {}
        for k, (name, data) in enumerate(self.sets.items()):
            gen = self._ranking(model, name, data) if rule != "disc" else None
            disc = None if rule == "gen" else torch.cat(
                [model(batch)["class_logits"][k] for batch, _ in batches(model, data, self.batch_size)])
            s = gen if disc is None else disc if gen is None else fuse(gen, disc, model.cfg.fusion_weight)
            out[name] = s.float().cpu().numpy()
        return out

    def predict(self, model, decode):
        s = self.scores(model)
        if list(s) == ["label"]:
            return {key: s["label"][i] for i, key in enumerate(self.keys)}
        return {key: {"verb": s["verb"][i], "noun": s["noun"][i]} for i, key in enumerate(self.keys)}

    def score(self, records) -> dict[str, float]:
        from egoflow.evaluate.classification import charades_map_report
        from egoflow.evaluate.recognition import ek100_actions_metrics
        from egoflow.formats import ek100_actions_submission
        if self.metric == "mAP":
            from egoflow.datasets.charades_ego import label_matrix
            scores = np.stack([records[k] for k in self.keys])
            rep = charades_map_report(scores, label_matrix(self.gt, scores.shape[1]))
            return {k: float(v) for k, v in rep.items() if isinstance(v, (int, float))}
        # the official submission file's scoring (egoflow evaluate ek100-ar), on the records as they would be written
        m = ek100_actions_metrics(self.gt, ek100_actions_submission(records))
        return {k: float(v) for k, v in m.items()}


def _kind(cfg, zero_shot: bool, kind: str) -> str:
    """Zero-shot (a pretraining run) ranks after the narration prefix: the only task it has learnt."""
    return "narration" if zero_shot else kind


def _prompt(inputs) -> str:
    """``prompt=`` option of predict: candidates are ranked as ``prompt.format(name)`` — zero-shot, a class name
    phrased like the pretraining text (e.g. ``"#C C handles {}"`` for Ego4D narrations) ranks far better."""
    p = inputs.options.get("prompt") or "{}"
    if "{}" not in p:
        raise TranslateInputError(f"prompt {p!r} has no '{{}}' where the class name goes")
    return p


# ------------------------------------------------------------------------------------------------ CharadesEgo
def charades_classes(inputs, annotations) -> tuple[list[str], str]:
    import os

    from egoflow.datasets.charades_ego import load_charades_classes
    path = inputs.options.get("classes") or (inputs.run_config or {}).get("classes") or os.path.join(
        os.path.dirname(os.path.abspath(str(annotations))), "Charades_v1_classes.txt")
    return check_candidates(load_charades_classes(path), str(path)), str(path)


def _charades_videos(store, feature_set, path, names):
    from egoflow.datasets.charades_ego import load_charades_ego
    gt = load_charades_ego(path, len(names))
    if not gt:
        raise TranslateInputError(f"{path}: no videos")
    return gt, load_videos(store, feature_set, {v.video_id for v in gt}, path)


def _whole(v, videos, kind) -> Clip:
    return Clip(v.video_id, 0.0, v.length_sec or videos[v.video_id].duration, kind, "", v.video_id,
                tuple(v.classes))


def charades_eval(store, feature_set, path, names, tok, cfg, kind, prompt="{}", fusion=None) -> RankEvaluation:
    gt, videos = _charades_videos(store, feature_set, path, names)
    data = make_clipset([_whole(v, videos, kind) for v in gt], videos, tok, cfg)
    return RankEvaluation({"label": data}, {"label": names}, tok, [v.video_id for v in gt], gt, "mAP",
                          prompt=prompt, fusion=fusion)


def _fusion(inputs) -> str | None:
    """``fusion=`` option of predict: score a run's classes by ranking, layers or both (default: the run's)."""
    f = inputs.options.get("fusion")
    if f is not None and f not in ("gen", "disc", "gen+disc"):
        raise TranslateInputError(f"fusion {f!r}: use gen, disc or gen+disc")
    return f


def _check_fusion(overrides: dict) -> tuple[bool, bool]:
    """``(discriminative, fused)`` of a training run's overrides; gen+disc without the layers is an error."""
    disc, fused = overrides.get("mode") == "discriminative", overrides.get("fusion") == "gen+disc"
    if overrides.get("fusion") in ("disc", "gen+disc") and not disc:
        raise TranslateInputError(f"fusion={overrides['fusion']} scores with the linear layers: it needs "
                                  "mode=discriminative")
    return disc, fused


def _multitask(inputs, cfg, clips, groups, videos) -> tuple[list, list, dict]:
    """Pair every label sample with a narration sample (cycled) when ``cfg.narrations`` is set."""
    if not cfg.narrations:
        return clips, groups, videos
    if cfg.mode != "generative":
        raise TranslateInputError(f"narrations={cfg.narrations}: multi-task training writes narrations, so it "
                                  "needs mode=generative (the linear layers have no narration target)")
    from egoflow.heads.translate.head import read_narrations
    narrs, source = read_narrations(cfg.narrations, "multi-task")
    more = load_videos(inputs.store, inputs.feature_set, {n.video_uid for n in narrs}, source)
    nclips = narration_clips(narrs, more, cfg.window_s, source, cfg.drop_outside, {})
    base = len(clips)
    groups = [g + [base + i % len(nclips)] for i, g in enumerate(groups)]
    return clips + nclips, groups, {**videos, **more}


def _narration_texts(overrides) -> list[str]:
    if not overrides.get("narrations"):
        return []
    from egoflow.heads.translate.head import read_narrations
    return [n.text for n in read_narrations(overrides["narrations"], "multi-task")[0]]


def charades_task(inputs, overrides: dict) -> Task:
    names, cpath = charades_classes(inputs, inputs.annotations)
    disc, fused = _check_fusion(overrides)
    if disc:
        overrides = {"num_classes": (len(names),), "multilabel": True, **overrides}
    cfg, tok = prepare("translate-charades", inputs, overrides, names + _narration_texts(overrides))
    gt, videos = _charades_videos(inputs.store, inputs.feature_set, inputs.annotations, names)
    if disc and not fused:
        clips = [_whole(v, videos, "label") for v in gt]
    else:
        clips = [Clip(v.video_id, a.start_sec, a.end_sec, "label", names[a.class_idx], v.video_id, (a.class_idx,))
                 for v in gt for a in v.actions]
    if not clips:
        raise TranslateInputError(f"{inputs.annotations}: no labelled actions to train on")
    clips, groups, videos = _multitask(inputs, cfg, clips, [[i] for i in range(len(clips))], videos)
    train = make_clipset(clips, videos, tok, cfg, groups, cfg.num_classes, cfg.multilabel)
    val = None
    if inputs.val_annotations is not None:
        val = charades_eval(inputs.store, inputs.feature_set, inputs.val_annotations, names, tok, cfg, "label")
    info = {"classes": cpath, "num_classes": len(names), "num_train": len(train), "tokenizer": cfg.tokenizer}
    return Task(cfg, train, Collate(train, cfg.pad_id), val, info,
                {"truncated_targets_train": train.stats["truncated_targets"]},
                setup=run_setup(inputs.options.get("init")))


def charades_predictor(inputs, cfg) -> RankEvaluation:
    names, cpath = charades_classes(inputs, inputs.annotations)
    zero = inputs.run_config.get("head") == "translate"
    if cfg.mode == "discriminative" and len(names) != cfg.num_classes[0]:
        raise TranslateInputError(f"{cpath}: {len(names)} classes, but the run's linear layer has {cfg.num_classes[0]}")
    return charades_eval(inputs.store, inputs.feature_set, inputs.annotations, names,
                         load_tokenizer(cfg.tokenizer), cfg, _kind(cfg, zero, "label"), _prompt(inputs),
                         _fusion(inputs))


# ------------------------------------------------------------------------------------------------ EK-100
def ek100_classes(annotations) -> tuple[list[str], list[str]]:
    from egoflow.datasets.ek100_actions import ek100_class_files, load_ek100_classes
    vf, nf = ek100_class_files(annotations)
    return check_candidates(load_ek100_classes(vf), vf), check_candidates(load_ek100_classes(nf), nf)


def _ek100_segments(store, feature_set, path):
    from egoflow.datasets.ek100_actions import load_ek100_actions
    acts = [a for a in load_ek100_actions(path) if a.verb_class >= 0]
    if not acts:
        raise TranslateInputError(f"{path}: no labelled action segments")
    return acts, load_videos(store, feature_set, {a.video_id for a in acts}, path)


def ek100_eval(store, feature_set, path, verbs, nouns, tok, cfg, zero_shot, prompt="{}",
               fusion=None) -> RankEvaluation:
    acts, videos = _ek100_segments(store, feature_set, path)
    for a in acts:
        if a.verb_class >= len(verbs) or a.noun_class >= len(nouns):
            raise TranslateInputError(f"{path}: segment {a.narration_id} has a class beyond the class lists")
    sets = {}
    for name in ("verb", "noun"):
        # the layers alone read the "label" prefix; a gen+disc run reads the verb / noun prefix it trained with
        kind = "label" if cfg.mode == "discriminative" and cfg.fusion != "gen+disc" else _kind(cfg, zero_shot, name)
        sets[name] = make_clipset([Clip(a.video_id, a.start_sec, a.stop_sec, kind, "", a.narration_id, a.action)
                                   for a in acts], videos, tok, cfg)
    return RankEvaluation(sets, {"verb": verbs, "noun": nouns}, tok, [a.narration_id for a in acts], acts,
                          "action top1", prompt=prompt, fusion=fusion)


def ek100_task(inputs, overrides: dict) -> Task:
    verbs, nouns = ek100_classes(inputs.annotations)
    disc, fused = _check_fusion(overrides)
    if disc:
        overrides = {"num_classes": (len(verbs), len(nouns)), **overrides}
    cfg, tok = prepare("translate-ek100", inputs, overrides, verbs + nouns + _narration_texts(overrides))
    acts, videos = _ek100_segments(inputs.store, inputs.feature_set, inputs.annotations)
    if disc and not fused:
        clips = [Clip(a.video_id, a.start_sec, a.stop_sec, "label", "", a.narration_id, a.action) for a in acts]
        groups = [[i] for i in range(len(clips))]
    else:  # the verb and the noun of a segment back to back
        clips = [Clip(a.video_id, a.start_sec, a.stop_sec, k, (verbs if k == "verb" else nouns)[c], a.narration_id,
                      a.action) for a in acts for k, c in (("verb", a.verb_class), ("noun", a.noun_class))]
        groups = [[2 * i, 2 * i + 1] for i in range(len(acts))]
    clips, groups, videos = _multitask(inputs, cfg, clips, groups, videos)
    train = make_clipset(clips, videos, tok, cfg, groups, cfg.num_classes)
    val = None
    if inputs.val_annotations is not None:
        val = ek100_eval(inputs.store, inputs.feature_set, inputs.val_annotations, verbs, nouns, tok, cfg, False)
    info = {"num_verbs": len(verbs), "num_nouns": len(nouns), "num_train": len(acts), "tokenizer": cfg.tokenizer}
    return Task(cfg, train, Collate(train, cfg.pad_id), val, info,
                {"truncated_targets_train": train.stats["truncated_targets"]},
                setup=run_setup(inputs.options.get("init")))


def ek100_predictor(inputs, cfg) -> RankEvaluation:
    verbs, nouns = ek100_classes(inputs.annotations)
    if cfg.mode == "discriminative" and (len(verbs), len(nouns)) != tuple(cfg.num_classes):
        raise TranslateInputError(f"{inputs.annotations}: class lists of {len(verbs)} verbs / {len(nouns)} nouns "
                                  f"do not fit the run's linear layers {tuple(cfg.num_classes)}")
    return ek100_eval(inputs.store, inputs.feature_set, inputs.annotations, verbs, nouns,
                      load_tokenizer(cfg.tokenizer), cfg, inputs.run_config.get("head") == "translate",
                      _prompt(inputs), _fusion(inputs))
