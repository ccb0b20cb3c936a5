"""Load the released EgoVLP checkpoint (showlab/EgoVLP ``egovlp.pth``) into :class:`EgoVLPModel`.

The file is the trainer's ``{"arch", "epoch", "state_dict", "optimizer", "monitor_best", "config"}`` with the
state dict under DistributedDataParallel names (``module.video_model.*``, ``module.text_model.*`` in
transformers' DistilBERT names, ``module.vid_proj.0.*``, ``module.txt_proj.1.*``); the ``config`` entry is a
pickled reference object, read without the reference code (:func:`checkpoint.read_state_dict`). Our module
names equal the reference's, so a key maps by dropping ``module.``.

Every key is accounted for (loaded, ignorable, or unexpected); missing/unexpected keys and bad shapes are one
error line naming them. A temporal embedding made for a different number of frames follows the reference's
``_inflate_positional_embeds``: more rows than the model -> the first ``num_frames``; fewer -> the rest filled
with zeros (``load_temporal_fix="zeros"``, its default and what its eval configs use) or bilinear interpolation
(``temporal_fix="bilinear"``), with a warning. A spatial position embedding of another size is refused.
"""
from __future__ import annotations

import re
import warnings

import torch
import torch.nn.functional as F

from egoflow.extract.fused.checkpoint import LoadReport, few_keys
from egoflow.extract.fused.config import FusedModelError

# reference keys that hold nothing our model needs (transformers' index buffer; identity heads of old models)
IGNORED = re.compile(r"^text_model\.embeddings\.position_ids$|^video_model\.(head|pre_logits|fc)\.")
# keys only an EgoVLPv2 checkpoint has (RoBERTa text tower, fusion heads / gates)
EGOVLPV2 = re.compile(r"^text_model\.encoder\.layer\.|^(itm_score|mlm_score|cross_modal_\w+)\.|\.alpha_i2t$")


def resize_temporal(t: torch.Tensor, frames: int, fix: str, src: str) -> torch.Tensor:
    """Temporal embedding ``[1, n, D]`` -> ``[1, frames, D]`` by the reference's rule (see module doc)."""
    n = t.shape[1]
    how = f"keeping the first {frames}" if n > frames else {"zeros": "zeros after them",
                                                             "bilinear": "bilinear interpolation"}[fix]
    warnings.warn(f"{src}: temporal embedding made for {n} frames, model uses {frames}: {how} (as EgoVLP)",
                  stacklevel=3)
    if n > frames:
        return t[:, :frames]
    if fix == "zeros":
        out = torch.zeros(t.shape[0], frames, t.shape[2], dtype=t.dtype)
        out[:, :n] = t
        return out
    return F.interpolate(t[None], (frames, t.shape[2]), mode="bilinear", align_corners=True)[0]


def load_egovlp_state_dict(model, state: dict[str, torch.Tensor], src: str = "state dict", strict: bool = True
                           ) -> LoadReport:
    """Copy ``state`` (released names, ``module.`` prefix optional) into ``model``; see the module doc."""
    v2 = next((k for k in state if EGOVLPV2.search(k.removeprefix("module."))), None)
    if v2 is not None:
        raise FusedModelError(f"{src} is an EgoVLPv2 checkpoint (e.g. {v2}), not EgoVLP: load it with "
                              "--model egovlpv2-base")
    own = model.state_dict()
    rep, new = LoadReport(), {}
    for k, v in state.items():
        key = k.removeprefix("module.")
        if IGNORED.match(key):
            rep.ignored.append(k)
            continue
        if key not in own:
            rep.unexpected.append(k)
            continue
        want = own[key].shape
        if key == "video_model.temporal_embed" and v.ndim == 3 and v.shape[::2] == want[::2] and v.shape != want:
            v = resize_temporal(v, want[1], model.cfg.temporal_fix, src)
            rep.resized.append(k)
        if key == "video_model.pos_embed" and v.shape != want:
            raise FusedModelError(f"{src}: {k} has {v.shape[1] - 1} patches per frame, {model.cfg.name} "
                                  f"{want[1] - 1} (image size {model.cfg.image_size}, patch {model.cfg.patch_size})")
        if v.shape != want:
            raise FusedModelError(f"{src}: {k} has shape {tuple(v.shape)}, {model.cfg.name} expects {tuple(want)} "
                                  "(a checkpoint of another size or architecture?)")
        new[key] = v
    if not new:
        raise FusedModelError(f"{src}: none of its {len(state)} keys is an EgoVLP key (e.g. "
                              f"{next(iter(state), '')!r}) - a checkpoint of another architecture?")
    rep.missing = sorted(set(own) - set(new))
    if strict and (rep.missing or rep.unexpected):
        raise FusedModelError(f"{src} does not match {model.cfg.name}: missing {few_keys(rep.missing)}; "
                              f"unexpected {few_keys(rep.unexpected)}")
    model.load_state_dict(new, strict=False)
    rep.loaded = len(new)
    return rep
