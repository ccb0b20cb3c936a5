"""The one training loop every head uses: AdamW/Adam, warm-up, clipping, seeded, tqdm, best-by-metric, resume.

A head provides ``model(batch) -> outputs`` and ``criterion(outputs, batch) -> {"loss": scalar, ...}``; an
``evaluate(model) -> {metric: value}`` callable scores it on validation data with the benchmark's own metric.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from egoflow.device import resolve_device
from egoflow.heads.optim import OPTIMIZERS, param_groups


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the training set
    batch_size: int = 32  # samples per optimisation step
    lr: float = 1e-3  # peak learning rate (after warm-up)
    weight_decay: float = 0.01  # decoupled for AdamW, L2 for Adam
    optimizer: str = "adamw"  # "adamw" | "adam" | "adamw-hf" (transformers' legacy AdamW, eps 1e-6: baselines)
    #   | "sgd" (momentum 0.9, L2 decay: the TSN / EPIC-KITCHENS baselines)
    no_decay_norm_bias: bool = False  # no weight decay on biases and LayerNorm weights (BERT/VSLNet baseline rule)
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps
    warmup_epochs: int = 0  # more warm-up, in epochs (steps_per_epoch x this is added to warmup_steps)
    warmup_fraction: float = 0.0  # more warm-up: int(this x all steps) (transformers' recipes, e.g. EgoTaskQA's 0.1)
    schedule: str = "constant"  # after warm-up: "constant" | "cosine" | "linear" (both to 0 at the end) | "step"
    #   | "cosine-floor" (EgoVLPv2 QFVS / Barlow Twins: warm-up lr * step / W from 0 at step 0, cosine to lr / 1000)
    #   | "inverse-sqrt" (Transformer / T5: after a warm-up of W steps, lr * sqrt(W / (step + 1)); W = 0: from step 0)
    bias_lr_scale: float = 1.0  # != 1: 1-D parameters (biases, norm weights) in their own group at lr x this
    step_milestones: tuple = ()  # epochs at which "step" multiplies the lr by step_gamma
    step_gamma: float = 0.1  # factor of the "step" schedule
    grad_clip: float = 1.0  # max global grad norm; <= 0 disables clipping
    eval_every: int = 1  # evaluate every this many epochs (and always after the last)
    seed: int = 0  # fixes init, shuffling and dropout: same seed, same result on CPU
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    num_workers: int = 0  # DataLoader workers (features are in memory already; 0 is usually fastest)
    progress: bool = True  # tqdm bars


@dataclass
class FitResult:
    best_metric: float | None  # best value of the selection metric (None without evaluate)
    best_epoch: int  # epoch (1-based) of the best checkpoint
    history: list[dict] = field(default_factory=list)  # per epoch: train losses + eval metrics
    best_path: str | None = None
    last_path: str | None = None


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a generator for DataLoader shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def move_to(batch: Any, device: torch.device) -> Any:
    """Recursively move tensors in dicts/lists/tuples to ``device`` (other values pass through)."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = cfg.warmup_steps + cfg.warmup_epochs * steps_per_epoch + int(cfg.warmup_fraction * total)

    def f(step: int) -> float:
        if cfg.schedule == "cosine-floor":  # the reference's own rule: its first step has lr 0
            if step < warm:
                return step / warm
            q = 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
            return q + 1e-3 * (1.0 - q)
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            t = (step - warm) / max(1, total - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        if cfg.schedule == "linear":  # transformers' get_linear_schedule_with_warmup after the warm-up
            return max(0.0, (total - step) / max(1, total - warm))
        if cfg.schedule == "inverse-sqrt":  # 1 at the warm-up's last step, then decays as 1 / sqrt(step)
            return math.sqrt(max(1, warm) / max(step + 1, warm, 1))
        if cfg.schedule == "step":
            epoch = step // max(1, steps_per_epoch)
            return cfg.step_gamma ** sum(epoch >= m for m in cfg.step_milestones)
        return 1.0

    if cfg.schedule not in ("constant", "cosine", "linear", "step", "cosine-floor", "inverse-sqrt"):
        raise ValueError(f"unknown schedule {cfg.schedule!r}: use constant, cosine, linear, step, cosine-floor or "
                         "inverse-sqrt")
    return f


def _split_1d(groups: list[dict], cfg: TrainConfig) -> list[dict]:
    """With ``bias_lr_scale != 1`` each group's 1-D parameters go to a group of their own at lr x scale (the
    EgoVLPv2 QFVS runner's weights / biases groups, both with the same weight decay)."""
    if cfg.bias_lr_scale == 1.0:
        return groups
    out = []
    for g in groups:
        out.append({**g, "params": [p for p in g["params"] if p.ndim > 1]})
        vec = [p for p in g["params"] if p.ndim <= 1]
        if vec:
            out.append({**g, "params": vec, "lr": cfg.lr * cfg.bias_lr_scale})
    return out


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint under the real name


def _rng_state(gen: torch.Generator, train_set) -> dict:
    """Every random state a resumed run needs to continue exactly: python, numpy, torch, the loader's shuffling
    and a dataset's own draws (a dataset with ``rng_state()`` / ``set_rng_state()``, e.g. LAVITI's intervals)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "loader": gen.get_state()}
    if hasattr(train_set, "rng_state"):
        state["dataset"] = train_set.rng_state()
    return state


def _set_rng_state(state: dict, gen: torch.Generator, train_set) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    gen.set_state(state["loader"])
    if "dataset" in state and hasattr(train_set, "set_rng_state"):
        train_set.set_rng_state(state["dataset"])


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None) -> dict:
    """Read a checkpoint written by :func:`fit`; load its weights into ``model`` when given."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if model is not None:
        model.load_state_dict(ckpt["model"])
    return ckpt


def fit(model: torch.nn.Module, criterion: Callable, train_set: Dataset, collate_fn: Callable | None,
        cfg: TrainConfig, evaluate: Callable[[torch.nn.Module], dict] | None = None, metric: str | None = None,
        mode: str = "max", out_dir: str | os.PathLike | None = None, resume: bool = True,
        checkpoint_extra: dict | None = None) -> FitResult:
    """Train ``model`` on ``train_set``; keep the best epoch by ``metric`` of ``evaluate``; resume from out_dir.

    On return the model holds the best weights (the last ones when there is no ``evaluate``).
    """
    if len(train_set) == 0:
        raise ValueError("empty training set")
    if evaluate is not None and metric is None:
        raise ValueError("fit(): give the metric name that selects the best checkpoint")
    sign = 1.0 if mode == "max" else -1.0
    gen = seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device)
    if isinstance(criterion, torch.nn.Module):
        criterion.to(device)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate_fn,
                        generator=gen, num_workers=cfg.num_workers, drop_last=False)
    params = [p for p in list(model.parameters()) + list(getattr(criterion, "parameters", lambda: [])())
              if p.requires_grad]
    opt_cls = OPTIMIZERS.get(cfg.optimizer)
    if opt_cls is None:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use {', '.join(OPTIMIZERS)}")
    modules = [m for m in (model, criterion) if isinstance(m, torch.nn.Module)]
    opt = opt_cls(_split_1d(param_groups(modules, cfg.weight_decay, cfg.no_decay_norm_bias), cfg), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, len(loader)))

    out = Path(out_dir) if out_dir is not None else None
    best, best_epoch, history, start = None, 0, [], 1
    best_state = None
    extra = {"train_config": dataclasses.asdict(cfg), **(checkpoint_extra or {})}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        last = out / "last.pt"
        if resume and last.exists():
            ck = load_checkpoint(last, model)
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            if isinstance(criterion, torch.nn.Module) and "criterion" in ck:
                criterion.load_state_dict(ck["criterion"])
            _set_rng_state(ck["rng"], gen, train_set)
            best, best_epoch, history, start = ck["best"], ck["best_epoch"], ck["history"], ck["epoch"] + 1
            if cfg.progress:
                print(f"resuming {out} from epoch {ck['epoch']} (best {metric}={best})")

    for epoch in range(start, cfg.epochs + 1):
        model.train()
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False)
        for batch in bar:
            batch = move_to(batch, device)
            losses = criterion(model(batch), batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: {float(loss)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            n += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], **{f"train_{k}": v / n for k, v in sums.items()}}
        if evaluate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            model.eval()
            with torch.no_grad():
                metrics = evaluate(model)
            row.update(metrics)
            if metric not in metrics:
                raise KeyError(f"evaluate() returned no {metric!r}; it returned {sorted(metrics)}")
            value = float(metrics[metric])
            if best is None or sign * value > sign * best:
                best, best_epoch = value, epoch
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                if out is not None:
                    _save({"model": best_state, "epoch": epoch, "metric": metric, "value": value, **extra},
                          out / "best.pt")
        history.append(row)
        if cfg.progress:
            shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
            tqdm.write(f"epoch {epoch}: {shown}")
        if out is not None:
            _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                   "criterion": criterion.state_dict() if isinstance(criterion, torch.nn.Module) else {},
                   "rng": _rng_state(gen, train_set), "epoch": epoch, "best": best, "best_epoch": best_epoch,
                   "history": history, **extra}, out / "last.pt")
            (out / "history.json").write_text(json.dumps(history, indent=1, default=float))

    if evaluate is None and out is not None:
        _save({"model": model.state_dict(), "epoch": cfg.epochs, **extra}, out / "best.pt")
    elif best_state is not None:
        model.load_state_dict(best_state)
    elif out is not None and (out / "best.pt").exists():
        load_checkpoint(out / "best.pt", model)  # resumed after the last epoch: best is on disk
    return FitResult(best, best_epoch or cfg.epochs, history,
                     str(out / "best.pt") if out is not None else None,
                     str(out / "last.pt") if out is not None else None)
