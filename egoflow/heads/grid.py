"""Grid search over head and training settings, as reference code does it (e.g. EgoVLPv2's MQ head-tuning
script trains VSGN for every batch size x lr x step size x gamma and keeps the best Average-mAP).

    best = grid_search("vsgn", store, feature_set, "mq_train.json", "runs/grid", vsgn.head.EGOVLPV2_GRID,
                       val_annotations="mq_val.json")

Each combination is one ordinary run directory (``out_dir/<key=value,...>``, resumable like any run);
``grid.json`` lists every combination's metrics and the best one by the head's selection metric. ``step_size``
is torch's StepLR period in epochs (the reference scripts' ``--step_size``): it becomes the "step" schedule's
milestones. The best is chosen on the validation annotations given; a number reported next to a paper's must
then come from a split the search did not see.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

from egoflow.heads.registry import get_spec
from egoflow.heads.runner import train
from egoflow.heads.spec import HeadConfigError
from egoflow.heads.train import TrainConfig


def combinations(grid: dict[str, list]) -> list[dict]:
    """Cartesian product of ``grid`` in the order given (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _split(name: str, combo: dict, train_overrides: dict) -> tuple[dict, dict]:
    """One combination -> (head overrides, train overrides); unknown keys name both key lists."""
    spec = get_spec(name)
    head_keys = {f.name for f in dataclasses.fields(spec.Config)}
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)} | {"step_size"}
    bad = sorted(set(combo) - head_keys - train_keys)
    if bad:
        raise HeadConfigError(f"grid for {name}: unknown key(s) {bad}; head keys {sorted(head_keys)}, train keys "
                              f"{sorted(train_keys)}")
    head = {k: v for k, v in combo.items() if k in head_keys}
    tr = {**train_overrides, **{k: v for k, v in combo.items() if k in train_keys and k not in head_keys}}
    if "step_size" in tr:
        period = int(tr.pop("step_size"))
        epochs = tr.get("epochs", spec.train_defaults.get("epochs", TrainConfig.epochs))
        tr.update(schedule="step", step_milestones=tuple(range(period, epochs, period)))
    return head, tr


def run_name(combo: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in combo.items()).replace("/", "_")


def grid_search(name: str, store, feature_set: str, annotations, out_dir, grid: dict[str, list], *,
                val_annotations, head_overrides: dict | None = None, train_overrides: dict | None = None,
                **options) -> dict:
    """Train ``name`` once per combination of ``grid``; returns ``{"metric", "best", "runs": [...]}``."""
    if val_annotations is None:
        raise HeadConfigError(f"grid search for {name} needs validation annotations to choose by")
    combos = combinations(grid)
    if not combos:
        raise HeadConfigError(f"grid for {name} is empty")
    splits = [_split(name, c, dict(train_overrides or {})) for c in combos]  # every key checked before a run
    out = Path(out_dir)
    rows, metric, mode = [], None, "max"
    for combo, (head, tr) in zip(combos, splits):
        run_dir = out / run_name(combo)
        metrics = train(name, store, feature_set, annotations, run_dir, val_annotations=val_annotations,
                        head_overrides={**(head_overrides or {}), **head}, train_overrides=tr, **options)
        metric, mode = json.loads((run_dir / "config.json").read_text())["selection"]  # the head's own choice
        rows.append({"params": combo, "run_dir": str(run_dir), "metrics": metrics})
    pick = max if mode == "max" else min
    best = pick(rows, key=lambda r: r["metrics"][metric])
    result = {"head": name, "metric": metric, "best": best, "runs": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps(result, indent=1, default=float))
    return result

