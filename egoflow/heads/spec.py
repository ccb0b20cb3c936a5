"""What a head is, as the runner sees it: a :class:`HeadSpec` (name, Config, build, data hooks), the :class:`Task`
of one training run, and the :class:`Evaluation` protocol (predict records, score them). No head imported here.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch.utils.data import Dataset


class HeadConfigError(ValueError):
    """A head or train config key that does not exist (named, with the fields that do)."""


class Evaluation(Protocol):
    """Predictions of a model on a split, and their score with the benchmark's official metric."""

    metric: str  # the metric that picks the best epoch
    mode: str  # "max" | "min"
    batch_size: int  # samples per forward pass; the runner sets it to the training batch size

    def predict(self, model, decode) -> Any:
        """Records in the head's benchmark format (``egoflow.formats``), or None (nothing to submit)."""

    def score(self, records) -> dict[str, float]:
        """Flat ``{metric: value}`` of ``records``."""


@dataclass
class Task:
    """What a head hands the runner for one training run."""

    cfg: Any  # the head's Config, input widths filled from the store
    train_set: Dataset  # training samples
    collate: Callable  # samples -> batch dict of tensors
    validation: Evaluation | None = None  # scored every epoch; picks the best checkpoint; predictions.json
    info: dict = field(default_factory=dict)  # recorded in config.json (input counts, paths, ...)
    metrics: dict = field(default_factory=dict)  # added to metrics.json (data statistics, ...)
    # after the seeded build: (model, criterion, decode) -> (criterion, metrics), e.g. load --init weights
    setup: Callable | None = None


@dataclass(frozen=True)
class HeadSpec:
    name: str  # registry name: `egoflow train NAME`
    benchmark: str  # `egoflow evaluate` benchmark of its predictions (and their format in egoflow.formats)
    description: str  # one line for `egoflow heads`
    Config: type  # dataclass of the head's settings; `--set key=value` overrides its fields
    build: Callable  # build(cfg) -> (model, criterion, decode), DETR style
    task: Callable  # task(inputs: RunInputs, overrides: dict) -> Task
    predictor: Callable  # predictor(inputs: RunInputs, cfg) -> Evaluation whose predict() `egoflow predict` writes
    train_defaults: dict = field(default_factory=dict)  # the head's recipe: TrainConfig fields
    warmup_fraction: float = 0.0  # warm-up as this fraction of all steps unless warmup_steps is given
    options: tuple = ()  # extra keyword options the head takes (CLI `--init`, `--classes`)
    loads: tuple = ()  # heads whose run directories this head can also predict with (same network)
    zero_shot: bool = False  # predict-only without a run directory (nothing trained: the frozen encoder scores)
    # demo(ctx: egoflow.demo.DemoContext, runner: the egoflow.heads.runner module, passed in because a head never
    # imports it: it imports the registry and so every head) -> result dict of the head's demo step
    demo: Callable | None = None


def config_from_dict(Config: type, d: dict, name: str):
    """``Config(**d)``, strictly: an unknown key is an error naming head ``name``, the key and the fields; JSON
    lists become tuples where the field is a tuple (run directories store configs as JSON). A head passes its own
    ``Config`` (from its model.py), so it never imports its package's SPEC to read one."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    bad = sorted(set(d) - set(fields))
    if bad:
        raise HeadConfigError(f"head {name!r} has no config key(s) {bad}; its keys: {sorted(fields)}")
    hints = typing.get_type_hints(Config)
    return Config(**{k: tuple(v) if isinstance(v, list) and _is_tuple(hints.get(k), fields[k]) else v
                     for k, v in d.items()})


def _is_tuple(hint, f: dataclasses.Field) -> bool:
    return hint is tuple or typing.get_origin(hint) is tuple or isinstance(f.default, tuple)


def open_store(store):
    """A read-only FeatureStore from a path/URL (a store object passes through): heads never write features."""
    from egoflow.features_store import FeatureStore

    return store if hasattr(store, "load_feature_set") else FeatureStore(str(store), mode="r")


def feature_set_info(store, feature_set: str, error=ValueError) -> dict:
    """The feature set's info (dim, extractor, ...), or ``error`` naming the store and the sets it has."""
    sets = store.feature_sets()
    if feature_set not in sets:
        shown = ", ".join(repr(s) for s in sets[:5]) + (f" … and {len(sets) - 5} more" if len(sets) > 5 else "")
        raise error(f"feature set {feature_set!r} is not in store {getattr(store, 'url', store)!r} (it has: "
                    f"{shown or 'none'})")
    return store.feature_set_info(feature_set)


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
