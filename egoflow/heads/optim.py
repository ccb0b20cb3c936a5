"""Optimisers and parameter groups the heads' reference code uses, for ``heads.train.fit``.

``adamw-hf`` is the AdamW of transformers < 4.40 (the Ego4D VSLNet baseline's optimiser): eps is added to the
un-corrected sqrt(v) and the bias correction is folded into the step size, and the decoupled decay is applied
after the update. It differs from ``torch.optim.AdamW`` where gradients are small next to eps (after clipping a
large norm): measured 7e-4 apart after one step on the VSLNet parity batch, 0 with this one.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class AdamWHF(torch.optim.Optimizer):
    """AdamW as in BERT / transformers' legacy ``AdamW`` (default eps 1e-6, bias correction on)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient: a handful of foreach kernels per group instead of
        eight small ops per parameter (the same element-wise arithmetic, so the same numbers)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, grads, alpha=1.0 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)
            steps = [self.state[p]["step"] for p in params]
            sizes = [-group["lr"] * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t) for t in steps]
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, m, denom, sizes)
            if group["weight_decay"] > 0.0:
                torch._foreach_add_(params, params, alpha=-group["lr"] * group["weight_decay"])
        return loss


def SGDMomentum(params, lr: float):  # noqa: N802 - named like the optimiser classes beside it
    """SGD with momentum 0.9 and L2 weight decay per group (the TSN / EPIC-KITCHENS C1 baselines' optimiser)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adamw-hf": AdamWHF, "sgd": SGDMomentum}


def param_groups(modules: Iterable[nn.Module], weight_decay: float, no_decay_norm_bias: bool) -> list[dict]:
    """Trainable parameters as optimiser groups; with ``no_decay_norm_bias`` biases and LayerNorm weights get no
    weight decay (the BERT rule the VSLNet baseline applies by parameter name)."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for sub in module.modules():
            for name, p in sub.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                exempt = no_decay_norm_bias and (name == "bias" or isinstance(sub, nn.LayerNorm))
                (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups
