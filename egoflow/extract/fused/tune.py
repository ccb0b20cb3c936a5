"""Light fusion tuning: train only the fusion modules and gates (everything pretrained stays frozen) with the
EgoVLPv2 objectives on narrated clips, so a ``clip-fused`` model's fusion is not random.

* EgoNCE: InfoNCE over the batch's dual embeddings where clips sharing an action/object label are positives of
  each other (EgoNCE's action-aware positives), temperature 0.05, both directions;
* VTM with hard negatives: each positive (clip, narration) pair plus one negative narration and one negative
  clip, sampled in proportion to their dual similarity among pairs of another label (as the reference);
* MLM (models with an MLM head, i.e. the EgoVLPv2 configs): 15% of the narration tokens masked, predicted from
  the fused text tokens.

The frozen lower layers run once for the whole training set (their tokens are cached), so each step runs only
the top M layers. Deterministic with a seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class TuneConfig:
    steps: int = 200  # optimiser steps
    batch: int = 12  # pairs per step
    lr: float = 1e-3  # AdamW learning rate of the fusion modules
    weight_decay: float = 0.01
    temperature: float = 0.05  # EgoNCE temperature
    vtm_weight: float = 2.0  # as the reference's loss = EgoNCE + MLM + 2 * VTM
    mlm_prob: float = 0.15  # share of narration tokens masked for MLM
    seed: int = 0


def fusion_parameters(model) -> list[torch.nn.Parameter]:
    """What tuning trains: clip-fused's added modules, or an EgoVLPv2 model's cross-attention, gates and heads."""
    if hasattr(model, "fusion_parameters"):
        return model.fusion_parameters()
    keep = ("i2t", "t2i", "fusion_", "pooler", "vtm_head", "mlm.")
    return [p for n, p in model.named_parameters() if any(k in n for k in keep)]


def _bias_rows(bias, idx):
    return (bias[0][idx], bias[1]) if isinstance(bias, tuple) else bias[idx]


def _outputs(model, v, t, bias):
    vf, tf = model.fuse(v, t, bias)
    o = model.fused_outputs(vf, tf, bias[0]) if isinstance(bias, tuple) else model.fused_outputs(vf, tf)
    return o, tf


def tune_fusion(model, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                cfg: TuneConfig | None = None, mask_id: int | None = None) -> list[dict]:
    """Train the fusion of ``model`` on pairs (video[i] ``[F, 3, S, S]`` preprocessed, text ids/mask[i]) with
    integer ``labels [N]`` (same label = positives for EgoNCE, never hard negatives). Returns per-step losses."""
    cfg = cfg or TuneConfig()
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    params = fusion_parameters(model)
    frozen = {p for p in model.parameters()} - set(params)
    for p in frozen:
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    with torch.no_grad():  # frozen lower layers: once for the whole set
        v_low = torch.cat([model.video_lower(video[i:i + 16]) for i in range(0, len(video), 16)])
        t_low, bias = model.text_lower(ids, mask)
    use_mlm = getattr(model, "mlm", None) is not None and mask_id is not None
    history = []
    model.train()
    for _ in range(cfg.steps):
        idx = torch.randperm(len(video), generator=g)[:cfg.batch]
        lab = labels[idx]
        same = lab[:, None] == lab[None, :]
        # EgoNCE on the dual embeddings
        ve = F.normalize(model.encode_video(video[idx]), dim=-1)
        te = F.normalize(model.encode_text(ids[idx], mask[idx]), dim=-1)
        sim = ve @ te.T / cfg.temperature
        nce = sum(-(torch.logsumexp(s.masked_fill(~same, -1e4), 1) - torch.logsumexp(s, 1)).mean()
                  for s in (sim, sim.T)) / 2
        # VTM with hard negatives (sampled among other labels by dual similarity)
        with torch.no_grad():
            w = (sim.detach()).softmax(1).masked_fill(same, 0) + 1e-9 * (~same)
            neg_t = torch.multinomial(w, 1, generator=g).squeeze(1)
            neg_v = torch.multinomial(w.T.contiguous(), 1, generator=g).squeeze(1)
        vi = torch.cat([idx, idx, idx[neg_v]])
        ti = torch.cat([idx, idx[neg_t], idx])
        o, _ = _outputs(model, v_low[vi], t_low[ti], _bias_rows(bias, ti))
        target = torch.cat([torch.ones(len(idx)), torch.zeros(2 * len(idx))]).long()
        vtm = F.cross_entropy(o["vtm"], target)
        loss = nce + cfg.vtm_weight * vtm
        rec = {"egonce": float(nce.detach()), "vtm": float(vtm.detach())}
        if use_mlm:
            real = mask[idx].bool() & (ids[idx] > 2)  # not <s>, <pad>, </s>
            pick = real & (torch.rand(real.shape, generator=g) < cfg.mlm_prob)
            masked = ids[idx].masked_fill(pick, mask_id)
            tm, bm = model.text_lower(masked, mask[idx])
            _, tfm = _outputs(model, v_low[idx], tm, bm)
            if pick.any():
                mlm = F.cross_entropy(model.mlm_logits(tfm)[pick], ids[idx][pick])
                loss = loss + mlm
                rec["mlm"] = float(mlm.detach())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        history.append(rec)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return history


@torch.no_grad()
def vtm_accuracy(model, video, ids, mask, labels) -> float:
    """Held-out VTM accuracy on balanced pairs: each clip with its own text (match) and with the text of the
    next clip of another label (no match); P(match) > 0.5 counts as "match". Chance is 0.5."""
    n = len(video)
    neg = torch.tensor([next(j for k in range(1, n) if labels[j := (i + k) % n] != labels[i]) for i in range(n)])
    vi = torch.cat([torch.arange(n), torch.arange(n)])
    ti = torch.cat([torch.arange(n), neg])
    v_low = model.video_lower(video)
    t_low, bias = model.text_lower(ids, mask)
    o, _ = _outputs(model, v_low[vi], t_low[ti], _bias_rows(bias, ti))
    pred = o["vtm"].softmax(-1)[:, 1] > 0.5
    truth = torch.cat([torch.ones(n), torch.zeros(n)]).bool()
    return float((pred == truth).float().mean())


def save_fusion(model, path) -> None:
    """Write the tuned fusion weights of a clip-fused model (not the frozen CLIP): load them with
    ``create_fused_model("clip-fused-<model>", fusion_checkpoint=path)`` / ``--fusion-checkpoint``."""
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("clip.")}, path)
