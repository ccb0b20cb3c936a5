"""The linear heads' hooks for the shared runner: annotation file + store -> clip samples; predict/score; demo.

One set of hooks per registry name (``hooks("linear-oscc")``); what differs between benchmarks is in tasks.py.
"""
from __future__ import annotations

from egoflow.features_store.conditioned import is_conditioned
from egoflow.heads.linear.data import ClipSamples, collate, conditioned_samples, run_model, window_samples
from egoflow.heads.linear.model import Config
from egoflow.heads.linear.tasks import PNR, TASKS, EgoTaskQA
from egoflow.heads.spec import HeadConfigError, Task, config_from_dict

# Linear probes converge in a few passes over pooled features; cosine decay to 0 as CLIP-style probes do.
TRAIN_DEFAULTS = dict(epochs=30, batch_size=64, lr=2e-2, weight_decay=1e-4, optimizer="adamw", grad_clip=1.0,
                      schedule="cosine")


class LinearEvaluation:
    """Predict a split's records; score them with the benchmark's metric against ``gt``."""

    def __init__(self, adapter, data: ClipSamples, gt, cfg: Config, batch_size: int = 256):
        self.adapter, self.data, self.gt, self.cfg, self.batch_size = adapter, data, gt, cfg, batch_size
        self.metric, self.mode = adapter.metric, adapter.mode

    def predict(self, model, decode):
        decoded = run_model(model, decode, self.data, self.batch_size)
        if self.cfg.per_step:  # the step index -> its time in clip seconds
            for d, s in zip(decoded, self.data.samples):
                d["time"] = float(s["times"][d["step"]])
        return self.adapter.records(decoded, self.data.keys, self.cfg)

    def score(self, records) -> dict[str, float]:
        return {k: float(v) for k, v in self.adapter.score(records, self.gt).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _samples(adapter, inputs, cfg: Config, path, split: str, text_set):
    sp = adapter.load(path, cfg, split)
    if cfg.conditioned:  # the fused (video, question) features: the question is inside them
        data = conditioned_samples(inputs.store, inputs.feature_set, sp.windows, sp.text_strings, sp.targets,
                                   sp.path, sp.where, cfg.skip_missing, sp.keys)
        return data, _kept_gt(sp.gt, data, cfg)
    texts = inputs.store.load_texts(text_set, sp.text_strings).pooled if cfg.text_dim else None
    data = window_samples(inputs.store, inputs.feature_set, sp.windows, sp.targets, sp.path, sp.where,
                          cfg.skip_missing, texts, sp.keys)
    if adapter is PNR:
        PNR.keyframe_targets(data)
    return data, _kept_gt(sp.gt, data, cfg)


def _kept_gt(gt, data: ClipSamples, cfg: Config):
    if cfg.skip_missing and data.skipped_missing and gt is not None:  # score what could be predicted
        kept = {id(k) for k in data.keys}
        gt = [g for g in gt if id(g) in kept]
    return gt


def _conditioned(name: str, adapter, inputs, cfg: dict | Config | None = None) -> bool:
    """Whether the feature set is query-conditioned (fused per (video, question)): only linear-egotaskqa reads
    one, and a run trained on one predicts from one (and the other way round)."""
    fused = is_conditioned(inputs.store, inputs.feature_set)
    if fused and adapter is not EgoTaskQA:
        raise HeadConfigError(f"{name}: feature set {inputs.feature_set!r} of {inputs.store.url} is "
                              "query-conditioned (fused per video and query); give a plain feature set")
    want = getattr(cfg, "conditioned", None) if not isinstance(cfg, dict) else cfg.get("conditioned")
    if want is not None and bool(want) != fused:
        raise HeadConfigError(f"{name}: the run reads {'a query-conditioned' if want else 'a plain'} feature set "
                              f"(conditioned={bool(want)}) but {inputs.feature_set!r} of {inputs.store.url} is "
                              f"{'query-conditioned' if fused else 'plain'}")
    return fused


def _text_set(adapter, inputs, conditioned: bool = False):
    if adapter is not EgoTaskQA or conditioned:
        return None
    return inputs.text_set_or(what="the question embeddings")


def hooks(name: str):
    """(task, predictor, demo) of registry head ``name``."""
    adapter = TASKS[name]

    def task(inputs, overrides: dict) -> Task:
        if isinstance(inputs.annotations, (list, tuple)):
            raise ValueError(f"{name} reads annotation files (got in-memory records)")
        d = dict(overrides)
        d["conditioned"] = _conditioned(name, adapter, inputs, d)
        text_set = _text_set(adapter, inputs, d["conditioned"])
        first = adapter.load(inputs.annotations, None, "train")
        d.setdefault("video_dim", int(inputs.store.feature_set_info(inputs.feature_set)["dim"]))
        if text_set is not None:
            d.setdefault("text_dim", int(inputs.store.text_set_info(text_set)["dim"]))
        cfg = config_from_dict(Config, adapter.fill(d, first), name)
        train, _ = _samples(adapter, inputs, cfg, inputs.annotations, "train", text_set)
        val = None
        if inputs.val_annotations is not None:
            vdata, gt = _samples(adapter, inputs, cfg, inputs.val_annotations, "val", text_set)
            val = LinearEvaluation(adapter, vdata, gt, cfg)
        setup = None
        if cfg.probe == "lbfgs":
            from egoflow.heads.linear.probe import fit_probe

            def setup(model, criterion, decode):
                return criterion, fit_probe(model, train, val, decode, cfg, inputs.seed)
        info = {"text_set": text_set, "num_train": len(train), "num_val": len(val.data) if val else 0,
                "skipped_missing_train": train.skipped_missing,
                "skipped_missing_val": val.data.skipped_missing if val else 0}
        return Task(cfg, train, collate, val, info, setup=setup)

    def predictor(inputs, cfg: Config) -> LinearEvaluation:
        text_set = _text_set(adapter, inputs, _conditioned(name, adapter, inputs, cfg))
        data, _ = _samples(adapter, inputs, cfg, inputs.annotations, "predict", text_set)
        return LinearEvaluation(adapter, data, None, cfg)

    def demo(ctx, runner) -> dict:
        """Train on files derived from the demo store's MQ moments (see demo.py); predictions + their gt."""
        from egoflow.heads.linear.demo import run_demo
        return run_demo(name, ctx, runner.train)

    return task, predictor, demo

