"""What every head's ``train_from_store`` / ``predict_from_store`` shares: store and text-set resolution, the
train config with its defaults, seeded model building, and reading a run directory back."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable


def open_store(store):
    """A read-only FeatureStore from a path/URL (a store object passes through): heads never write features."""
    from egoflow.features_store import FeatureStore

    return store if hasattr(store, "load_feature_set") else FeatureStore(str(store), mode="r")


def resolve_text_set(store, text_set: str | None, what: str = "text embeddings", error=ValueError) -> str:
    """``text_set`` checked against the store, or the store's only text set when none is given."""
    sets = store.text_sets()
    if text_set is not None:
        if text_set not in sets:
            raise error(f"text set {text_set!r} not in store {store.url}; have {sets or 'none'} "
                        "(run `egoflow encode-text`)")
        return text_set
    if len(sets) != 1:
        raise error(f"store {store.url} has text sets {sets or 'none'}: pass text_set= ({what})")
    return sets[0]


def train_config(defaults: dict, overrides: dict | None, num_samples: int | None = None,
                 warmup_fraction: float = 0.0, head: str = "head"):
    """TrainConfig = head defaults + user overrides; warm-up as a fraction of all steps unless given."""
    from egoflow.heads.train import TrainConfig

    kw = {**defaults, **(overrides or {})}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(kw) - known)
    if bad:
        raise ValueError(f"{head}: unknown train config keys {bad}; known: {sorted(known)}")
    if warmup_fraction and num_samples and "warmup_steps" not in (overrides or {}):
        steps = kw.get("epochs", TrainConfig.epochs) * -(-num_samples // kw.get("batch_size", TrainConfig.batch_size))
        kw["warmup_steps"] = int(warmup_fraction * steps)
    return TrainConfig(**kw)


def build_seeded(build: Callable, cfg, seed: int):
    """``build(cfg)`` after seeding: the initial weights, too, are a function of the seed."""
    from egoflow.heads.train import seed_everything

    seed_everything(seed)
    return build(cfg)


def load_run(run_dir, head: str, build: Callable, config_from_dict: Callable, device="cpu"):
    """``(model with the best weights, decode, config dict)`` of a run directory written by ``head``.

    ``device="auto"``: CUDA when this machine has it, else CPU — what prediction wants, since the device a run
    was trained on need not exist where it is used.
    """
    from egoflow.device import resolve_device
    from egoflow.heads.train import load_checkpoint

    run = Path(run_dir)
    if not (run / "config.json").exists() or not (run / "best.pt").exists():
        raise FileNotFoundError(f"{run} is not a finished {head} run (needs config.json and best.pt)")
    config = json.loads((run / "config.json").read_text())
    if config.get("head") != head:
        raise ValueError(f"{run}/config.json is a {config.get('head')!r} run, not {head}")
    model, _, decode = build(config_from_dict(config["head_config"]))
    load_checkpoint(run / "best.pt", model)
    return model.to(resolve_device(device) if device == "auto" else device).eval(), decode, config


def lazy_entry_points(run_module: str) -> tuple[Callable, Callable, Callable]:
    """``train_from_store, predict_from_store, demo_step`` forwarding to ``run_module``, imported on first call.

    A head file keeps the registry interface while its store-facing code (which imports the head file for
    ``Config``/``build``) lives apart, with no import cycle whichever module is imported first.
    """
    import importlib

    def forward(name: str) -> Callable:
        def call(*args, **kwargs):
            return getattr(importlib.import_module(run_module), name)(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"See {run_module}.{name}."
        return call

    return forward("train_from_store"), forward("predict_from_store"), forward("demo_step")
