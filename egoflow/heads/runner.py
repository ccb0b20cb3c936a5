"""The one recipe every head runs: store -> config -> seeded build -> fit -> predict -> submission -> metrics.

    metrics = train("vslnet", store, feature_set, "nlq_train.json", "runs/v", val_annotations="nlq_val.json")
    path = predict("vslnet", "runs/v", store, "nlq_val.json", "preds.json")

``open_store`` and ``resolve_text_set`` live in :mod:`egoflow.heads.spec` (heads use them; a head never imports
this module, which imports the registry and so every head: a head's ``demo`` and protocols get ``train`` passed
in). A head supplies only what differs (its :class:`~egoflow.heads.spec.HeadSpec`: Config, build, the data of a run
and how to predict/score a split). A run directory always holds ``config.json`` (head, benchmark, head and train
config, store, sets, annotations), a flat ``metrics.json``, ``predictions.json`` in the benchmark's official
format (when there is a validation split), ``best.pt`` and ``last.pt`` (resume).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from egoflow.device import resolve_device
from egoflow.formats import write_submission
from egoflow.heads.registry import get_spec, zero_shot_heads
from egoflow.heads.spec import HeadConfigError, HeadSpec, config_from_dict, open_store, resolve_text_set
from egoflow.heads.train import TrainConfig, fit, load_checkpoint, seed_everything


@dataclass
class RunInputs:
    """What a head's ``task`` / ``predictor`` hooks read (the runner has resolved the store and text set)."""

    store: object  # read-only FeatureStore
    feature_set: str  # video features
    text_set: str | None  # text embeddings (None when the store has none and the head needs none)
    annotations: object  # training (or prediction) annotations: a path, or records
    val_annotations: object = None  # validation annotations, or None
    options: dict = dataclasses.field(default_factory=dict)  # head options given (e.g. init, classes)
    run_config: dict | None = None  # config.json of the run being predicted with (predict only)
    out_dir: Path | None = None  # the run directory being written (train only), e.g. to refuse --out = --init
    seed: int = 0  # the run's TrainConfig seed (train only): a head's own random draws follow it too

    def text_set_or(self, error=ValueError, what: str = "text embeddings") -> str:
        """The text set, or a clear error when the store has none to choose from."""
        return resolve_text_set(self.store, self.text_set, what, error)


def _default_text_set(store, text_set):
    """The given text set, else the store's only one, else None (a video-only head needs none)."""
    if text_set is not None:
        return text_set
    sets = store.text_sets()
    return sets[0] if len(sets) == 1 else None


def train_config(defaults: dict, overrides: dict | None, num_samples: int | None = None,
                 warmup_fraction: float = 0.0, head: str = "head") -> TrainConfig:
    """TrainConfig = head defaults + user overrides; warm-up as a fraction of all steps unless given."""
    kw = {**defaults, **(overrides or {})}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(kw) - known)
    if bad:
        raise HeadConfigError(f"{head}: unknown train config keys {bad}; known: {sorted(known)}")
    if warmup_fraction and num_samples and "warmup_steps" not in (overrides or {}):
        steps = kw.get("epochs", TrainConfig.epochs) * -(-num_samples // kw.get("batch_size", TrainConfig.batch_size))
        kw["warmup_steps"] = int(warmup_fraction * steps)
    return TrainConfig(**kw)


def build_seeded(build: Callable, cfg, seed: int):
    """``build(cfg)`` after seeding: the initial weights, too, are a function of the seed."""
    seed_everything(seed)
    return build(cfg)


def _check_options(spec: HeadSpec, options: dict) -> dict:
    given = {k: v for k, v in options.items() if v is not None}
    bad = [k for k in given if k not in spec.options]
    if bad:
        raise HeadConfigError(f"head {spec.name!r} does not take --{' / --'.join(bad)}")
    return given


def _source(a) -> str | None:
    """What config.json records of annotations: the path, or None for in-memory records."""
    return None if a is None or isinstance(a, (list, tuple)) else str(a)


def _flat(metrics: dict) -> dict:
    """Numbers only (curves and per-class tables belong to `egoflow evaluate`'s report)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def train(name: str, store, feature_set: str, annotations, out_dir, *, val_annotations=None, text_set=None,
          head_overrides: dict | None = None, train_overrides: dict | None = None, **options) -> dict:
    """Train head ``name`` from ``store`` into ``out_dir`` (resumes from its last.pt); returns flat metrics.

    With validation annotations the best epoch is kept by the head's metric and its predictions are written
    in the official format. Every input check runs before the first step.
    """
    spec = get_spec(name)
    options = _check_options(spec, options)
    store, out = open_store(store), Path(out_dir)
    seed = {**spec.train_defaults, **(train_overrides or {})}.get("seed", TrainConfig.seed)
    inputs = RunInputs(store, feature_set, _default_text_set(store, text_set), annotations, val_annotations,
                       options, out_dir=out, seed=seed)
    task = spec.task(inputs, dict(head_overrides or {}))
    tcfg = train_config(spec.train_defaults, train_overrides, len(task.train_set), spec.warmup_fraction, name)
    model, criterion, decode = build_seeded(spec.build, task.cfg, tcfg.seed)
    metrics: dict = {}
    if task.setup is not None:
        criterion, before = task.setup(model, criterion, decode)
        metrics.update(before)
    val = task.validation
    if val is not None:
        val.batch_size = tcfg.batch_size
    evaluate = (lambda m: val.score(val.predict(m, decode))) if val is not None else None  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    head_config = dataclasses.asdict(task.cfg)
    config = {"head": name, "benchmark": spec.benchmark, "head_config": head_config,
              "train_config": dataclasses.asdict(tcfg), "store": store.url, "feature_set": feature_set,
              "text_set": inputs.text_set, "annotations": _source(annotations),
              "val_annotations": _source(val_annotations), "selection": [val.metric, val.mode] if val else None,
              **options, **task.info}
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    result = fit(model, criterion, task.train_set, task.collate, tcfg, evaluate=evaluate,
                 metric=val.metric if val else None, mode=val.mode if val else "max", out_dir=out,
                 checkpoint_extra={"head": name, "head_config": head_config})
    metrics.update({k: v for k, v in (result.history[-1] if result.history else {}).items()
                    if k.startswith("train_")})
    if val is not None:
        model.eval()
        records = val.predict(model, decode)  # the model holds the best weights now
        if records is not None:
            write_submission(spec.benchmark, records, out / "predictions.json")
        metrics.update(_flat(val.score(records)))
    metrics.update(best_epoch=result.best_epoch, **task.metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    return metrics


def load_run(run_dir, name: str, device: str = "cpu"):
    """``(model with the best weights, decode, cfg, config dict)`` of a run directory of head ``name`` (or of
    a head whose runs ``name`` can use, e.g. a LAVITI pretraining run for ``laviti-charades``).

    ``device="auto"``: CUDA when this machine has it, else CPU — what prediction wants, since the device a run
    was trained on need not exist where it is used.
    """
    spec = get_spec(name)
    run = Path(run_dir)
    if not (run / "config.json").exists() or not (run / "best.pt").exists():
        raise FileNotFoundError(f"{run} is not a finished {name} run (needs config.json and best.pt)")
    config = json.loads((run / "config.json").read_text())
    if config.get("head") != name and config.get("head") not in spec.loads:
        raise ValueError(f"{run}/config.json is a {config.get('head')!r} run, not {name}")
    owner = get_spec(config["head"])
    cfg = config_from_dict(owner.Config, config["head_config"], owner.name)
    model, _, decode = owner.build(cfg)
    load_checkpoint(run / "best.pt", model)
    return model.to(resolve_device(device)).eval(), decode, cfg, config


def predict(name: str, run_dir, store, annotations, out_path, *, feature_set=None, text_set=None,
            **options) -> str:
    """Write the official submission of ``annotations`` with the best weights of ``run_dir`` (a zero-shot head:
    ``run_dir`` None, and ``store`` may be None when its ``scorer`` option reads the videos itself)."""
    spec = get_spec(name)
    options = _check_options(spec, options)
    if spec.zero_shot:
        if run_dir is not None:
            raise HeadConfigError(f"{name} is a zero-shot predictor: it takes no --run")
        inputs = RunInputs(None if store is None else open_store(store), feature_set, text_set, annotations,
                           options=options)
        records = spec.predictor(inputs, config_from_dict(spec.Config, {}, name)).predict(None, None)
        return write_submission(spec.benchmark, records, out_path)
    if run_dir is None:
        raise HeadConfigError(f"predict {name}: --run is required (zero-shot predictors without a run: "
                              f"{', '.join(zero_shot_heads())})")
    store = open_store(store)
    model, decode, cfg, config = load_run(run_dir, name, "auto")  # the training device may not be here
    inputs = RunInputs(store, feature_set or config["feature_set"],
                       _default_text_set(store, text_set or config.get("text_set")), annotations, None,
                       options, config)
    records = spec.predictor(inputs, cfg).predict(model, decode)
    return write_submission(spec.benchmark, records, out_path)
