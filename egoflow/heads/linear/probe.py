"""The standard linear-probe protocol (CLIP, Radford et al. 2021, sec. 3.2 / appendix A.3): scikit-learn L-BFGS
logistic regression on the frozen features, its L2 strength chosen by a sweep scored on the validation split.

CLIP sweeps C = 1/lambda log-spaced and keeps the best validation score; here the sweep is ``cfg.c_grid`` and the
score is the benchmark's own metric (the head's Evaluation, the code ``egoflow evaluate`` runs). The fitted
coefficients are copied into the head's linear layer, so prediction, checkpoints and ``egoflow predict`` are the
same as for the torch-trained probe.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader

from egoflow.heads.linear.data import collate

FAR = -30.0  # bias of a class never seen in training: never predicted


@torch.no_grad()
def design_matrix(model, data) -> tuple[np.ndarray, np.ndarray]:
    """(X [N, D], y [N, K]) of the training samples; per step (PNR): one row per step, y = 1 at the keyframe."""
    xs, ys = [], []
    for batch in DataLoader(data, batch_size=512, shuffle=False, collate_fn=collate):
        x = model.inputs(batch).float()
        if model.cfg.per_step:
            m = batch["mask"]
            onehot = torch.zeros(m.shape, dtype=torch.long)
            onehot[torch.arange(len(m)), batch["targets"][:, 0]] = 1
            xs.append(x[m].numpy())
            ys.append(onehot[m].numpy()[:, None])
        else:
            xs.append(x.numpy())
            ys.append(batch["targets"].numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _fit(X, y, C: float, max_iter: int, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported by n_iter_ == max_iter instead
        return clf.fit(X, y)


def _load(layer: torch.nn.Linear, clf, per_step: bool) -> None:
    """Copy a fitted LogisticRegression into ``layer`` (classes absent from training get bias FAR)."""
    coef, bias = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    W = np.zeros(tuple(layer.weight.shape), np.float32)
    b = np.full(layer.out_features, FAR, np.float32)
    if per_step:  # binary: the positive class's logit; the softmax over steps is shift invariant
        W[0], b[0] = coef[0], bias[0]
    elif len(clf.classes_) == 2:  # sklearn keeps one row for binary problems: logits (0, w.x + b)
        lo, hi = (int(c) for c in clf.classes_)
        W[lo], b[lo] = 0.0, 0.0
        W[hi], b[hi] = coef[0], bias[0]
    else:
        for row, c in enumerate(clf.classes_):
            W[int(c)], b[int(c)] = coef[row], bias[row]
    layer.weight.data.copy_(torch.from_numpy(W))
    layer.bias.data.copy_(torch.from_numpy(b))


def fit_probe(model, train_set, validation, decode, cfg, seed: int = 0) -> dict:
    """Sweep ``cfg.c_grid`` (one C for every output, as CLIP), keep the best on ``validation``; returns the
    metrics recorded in metrics.json. Without validation only a single C may be given."""
    X, Y = design_matrix(model.cpu(), train_set)
    grid = tuple(float(c) for c in cfg.c_grid)
    if validation is None and len(grid) != 1:
        raise ValueError("probe='lbfgs' sweeps C on the validation split: pass val annotations, or a single C "
                         "(--set c_grid=[1.0])")
    best, results = None, {}
    for C in grid:
        fitted = [_fit(X, Y[:, k], C, cfg.max_iter, seed) for k in range(Y.shape[1])]
        for layer, clf in zip(model.outputs, fitted):
            _load(layer, clf, cfg.per_step)
        if validation is None:
            best = (C, None, fitted)
            break
        value = float(validation.score(validation.predict(model, decode))[validation.metric])
        results[C] = value
        better = best is None or (value > best[1] if validation.mode == "max" else value < best[1])
        if better:
            best = (C, value, fitted)
    C, value, fitted = best
    for layer, clf in zip(model.outputs, fitted):
        _load(layer, clf, cfg.per_step)
    for p in model.outputs.parameters():
        p.requires_grad_(False)
    out = {"probe_C": C, "probe_train_rows": len(X),
           "probe_converged": int(all(int(np.max(c.n_iter_)) < cfg.max_iter for c in fitted))}
    if value is not None:
        out[f"probe_val {validation.metric}"] = value
        out.update({f"probe_sweep C={c:g}": v for c, v in results.items()})
    return out
