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
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
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
