"""Light fusion tuning: train only the fusion modules and gates (everything pretrained stays frozen) with the
EgoVLPv2 objectives on narrated clips, so a ``clip-fused`` model's fusion is not random.

The objectives are the reference's, one rule each in :mod:`egoflow.extract.fused.objectives`: EgoNCE with
action-aware positives (shared noun and verb) and scene-aware negatives (a clip of the same minute of the same
video joins the batch), MLM (15%; 80/10/10) for models with an MLM head, VTM with hard negatives; the loss is
``egonce_weight x EgoNCE + mlm_weight x MLM + vtm_weight x VTM`` (reference: 1, 1, 2).

The frozen lower layers run once for the whole training set (their tokens are cached), so each step runs only
the top M layers. Deterministic with a seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from egoflow.extract.fused.objectives import (
    egonce_loss,
    egonce_positives,
    mlm_mask,
    scene_negatives,
    tags_from_labels,
    vtm_pairs,
)


@dataclass
class TuneConfig:
    steps: int = 200  # optimiser steps
    batch: int = 12  # pairs sampled per step (scene-aware negatives add as many again)
    lr: float = 1e-3  # AdamW learning rate of the fusion modules
    weight_decay: float = 0.01
    temperature: float = 0.05  # EgoNCE temperature (also sharpens the VTM hard-negative draw)
    egonce_weight: float = 1.0  # reference loss = EgoNCE + MLM + 2 x VTM
    mlm_weight: float = 1.0
    vtm_weight: float = 2.0
    mlm_prob: float = 0.15  # share of real narration tokens picked for MLM
    mlm_mask_frac: float = 0.8  # of the picked: replaced by <mask>
    mlm_random_frac: float = 0.1  # of the picked: replaced by a random token (the rest stay as they are)
    scene_negatives: bool = True  # with chunks given: one clip of the same video-minute joins per sampled clip
    vtm_negatives: str = "reference"  # "reference" (half pairs, half one hard negative) | "triplet" (egoflow's
    # earlier rule: every pair plus a negative text and a negative clip)
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


def _vtm_indices(sim, pos, idx, cfg: TuneConfig, g):
    """(video rows, text rows, labels) into the cached lower tokens."""
    if cfg.vtm_negatives == "triplet":
        w = torch.softmax(sim.T.detach() / cfg.temperature, 1).masked_fill(pos, 0) + 1e-9 * (~pos)
        neg_t = torch.multinomial(w, 1, generator=g).squeeze(1)
        neg_v = torch.multinomial(w.T.contiguous(), 1, generator=g).squeeze(1)
        labels = torch.cat([torch.ones(len(idx)), torch.zeros(2 * len(idx))]).long()
        return torch.cat([idx, idx, idx[neg_v]]), torch.cat([idx, idx[neg_t], idx]), labels
    if cfg.vtm_negatives != "reference":
        raise ValueError(f"vtm_negatives must be 'reference' or 'triplet', got {cfg.vtm_negatives!r}")
    vi, ti, labels = vtm_pairs(sim, pos, cfg.temperature, g)
    return idx[vi], idx[ti], labels


def tune_fusion(model, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                labels: torch.Tensor | None = None, cfg: TuneConfig | None = None, mask_id: int | None = None,
                tags: tuple[torch.Tensor, torch.Tensor] | None = None, chunks: torch.Tensor | None = None
                ) -> list[dict]:
    """Train the fusion of ``model`` on pairs (video[i] ``[F, 3, S, S]`` preprocessed, text ids/mask[i]).

    ``tags``: multi-hot (nouns ``[N, Vn]``, verbs ``[N, Vv]``) of each narration (EgoNCE positives share a noun
    and a verb); or integer ``labels [N]`` (same label = positives). ``chunks [N]``: scene chunk of each clip
    (``objectives.scene_chunks``) for scene-aware negatives. Returns per-step losses.
    """
    cfg = cfg or TuneConfig()
    if tags is None:
        if labels is None:
            raise ValueError("tune_fusion needs tags (nouns, verbs) or integer labels for EgoNCE positives")
        tags = tags_from_labels(labels)
    nouns, verbs = tags
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
        if chunks is not None and cfg.scene_negatives:
            idx = torch.cat([idx, scene_negatives(idx, chunks, g)])
        pos = egonce_positives(nouns[idx], verbs[idx])
        ve = F.normalize(model.encode_video(video[idx]), dim=-1)
        te = F.normalize(model.encode_text(ids[idx], mask[idx]), dim=-1)
        sim = te @ ve.T  # [text, video] cosine, as the reference's sim_matrix(text, video)
        nce = egonce_loss(sim, pos, cfg.temperature)
        vi, ti, target = _vtm_indices(sim, pos, idx, cfg, g)
        o, _ = _outputs(model, v_low[vi], t_low[ti], _bias_rows(bias, ti))
        vtm = F.cross_entropy(o["vtm"], target)
        loss = cfg.egonce_weight * nce + cfg.vtm_weight * vtm
        rec = {"egonce": float(nce.detach()), "vtm": float(vtm.detach())}
        if use_mlm:
            real = mask[idx].bool() & (ids[idx] > 2)  # not <s>, <pad>, </s>
            masked, pick = mlm_mask(ids[idx], real, mask_id, model.cfg.vocab_size, g, cfg.mlm_prob,
                                    cfg.mlm_mask_frac, cfg.mlm_random_frac)
            tm, bm = model.text_lower(masked, mask[idx])
            _, tfm = _outputs(model, v_low[idx], tm, bm)
            if pick.any():
                mlm = F.cross_entropy(model.mlm_logits(tfm)[pick], ids[idx][pick])
                loss = loss + cfg.mlm_weight * mlm
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
