"""Load the released EgoVLPv2 checkpoint (or any state dict with its names) into :class:`FusedModel`.

The released file is ``{"state_dict": {"module.video_model...": ...}, ...}`` from DistributedDataParallel.
Names are mapped by the table below; every key is accounted for: mapped, known-ignorable (buffers and identity
heads of the reference), or unexpected. Missing and unexpected keys are errors naming them; a shape mismatch
names the key and both shapes. A temporal embedding made for another number of frames is resized as the
reference does (fewer frames in the file: bilinear interpolation; more: the first F), with a warning; a
spatial position embedding of another image size is refused.
"""
from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from egoflow.checks import one_line
from egoflow.extract.fused.config import FusedModelError

# (reference name pattern, egoflow name) applied in order, first match wins
KEY_MAP: list[tuple[str, str]] = [
    (r"^video_model\.", "video."),
    (r"^text_model\.", "text."),
    (r"^vid_proj\.", "video_proj."),
    (r"^txt_proj\.", "text_proj."),
    (r"^cls_token$", "fusion_cls"),
    (r"^norm\.", "fusion_norm."),
    (r"^cross_modal_text_transform\.", "fusion_text_in."),
    (r"^cross_modal_video_transform\.", "fusion_video_in."),
    (r"^cross_modal_text_pooler\.dense\.", "text_pooler."),
    (r"^cross_modal_video_pooler\.dense\.", "video_pooler."),
    (r"^itm_score\.fc\.", "vtm_head."),
    (r"^mlm_score\.transform\.dense\.", "mlm.dense."),
    (r"^mlm_score\.transform\.LayerNorm\.", "mlm.norm."),
    (r"^mlm_score\.decoder\.", "mlm.decoder."),
    (r"^mlm_score\.bias$", "mlm.bias"),
]
# reference keys that hold nothing our model needs (index buffers, identity heads)
IGNORED = re.compile(r"^text_model\.embeddings\.(position_ids|token_type_ids)$|^video_model\.(head|fc|pre_logits)\."
                     r"|^text_model\.pooler\.")


@dataclass
class LoadReport:
    loaded: int = 0  # tensors copied into the model
    ignored: list[str] = field(default_factory=list)  # reference keys deliberately not used
    resized: list[str] = field(default_factory=list)  # keys resized to the model (e.g. temporal embedding)
    missing: list[str] = field(default_factory=list)  # model keys the file does not have
    unexpected: list[str] = field(default_factory=list)  # file keys that map to nothing


def map_key(key: str) -> str | None:
    """Reference name (``module.`` prefix allowed) -> egoflow name, or None when it maps to nothing."""
    key = key.removeprefix("module.")
    for pat, rep in KEY_MAP:
        if re.match(pat, key):
            return re.sub(pat, rep, key, count=1)
    return None


class _LenientUnpickler(pickle.Unpickler):
    """Unpickles tensors and containers; any other class (the reference's config objects) becomes a stub, so a
    training checkpoint loads without the reference code and without running its classes."""

    SAFE = ("torch", "collections", "numpy", "_codecs")

    def find_class(self, module, name):
        if module.split(".")[0] in self.SAFE:
            return super().find_class(module, name)
        return type(name, (), {"__setstate__": lambda self, s: None, "__init__": lambda self, *a, **k: None})


class _LenientPickle:
    Unpickler = _LenientUnpickler
    load = staticmethod(pickle.load)


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FusedModelError(f"{what} {p} does not exist")
    if not p.is_file():
        raise FusedModelError(f"{what} {p} is not a file")
    return p


def _tensors(obj, p: Path, what: str) -> dict[str, torch.Tensor]:
    for k in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(k), dict):
            obj = obj[k]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FusedModelError(f"{what} {p}: no state dict of tensors inside")
    return obj


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint file -> its flat state dict (``state_dict`` / ``model`` entry when wrapped)."""
    p = _existing(path, "checkpoint")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a training checkpoint with pickled config objects: lenient, no code runs
        try:
            obj = torch.load(p, map_location="cpu", weights_only=False, pickle_module=_LenientPickle)
        except Exception as e:  # noqa: BLE001
            raise FusedModelError(f"checkpoint {p}: cannot be read by torch.load ({one_line(e)})") from None
    return _tensors(obj, p, "checkpoint")


def read_weights(path: str | Path, what: str = "weights file") -> dict[str, torch.Tensor]:
    """A file of tensors we wrote (``--fusion-checkpoint``): loaded with ``weights_only`` (no pickled code), any
    failure one line naming the file."""
    p = _existing(path, what)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - garbage, truncated or foreign files raise many different types
        raise FusedModelError(f"{what} {p}: cannot be read by torch.load ({one_line(e)})") from None
    return _tensors(obj, p, what)


def _resize_temporal(t: torch.Tensor, frames: int, src: str) -> torch.Tensor:
    n = t.shape[1]
    warnings.warn(f"{src}: temporal embedding made for {n} frames, model uses {frames}: "
                  f"{'keeping the first ' + str(frames) if n > frames else 'bilinear interpolation'} (as EgoVLPv2)",
                  stacklevel=3)
    if n > frames:
        return t[:, :frames]
    return F.interpolate(t[None], (frames, t.shape[2]), mode="bilinear", align_corners=True)[0]


def load_state_dict(model, state: dict[str, torch.Tensor], src: str = "state dict", strict: bool = True
                    ) -> LoadReport:
    """Map ``state`` onto ``model``; with ``strict`` any missing/unexpected key or bad shape is an error."""
    egovlp = next((k for k in state if k.removeprefix("module.").startswith("text_model.transformer.layer.")), None)
    if egovlp is not None:  # DistilBERT names: the EgoVLP (v1) dual encoder
        raise FusedModelError(f"{src} is an EgoVLP checkpoint (e.g. {egovlp}), not EgoVLPv2: load it with "
                              "--model egovlp-base")
    check_projection(model, state, src)
    own = model.state_dict()
    rep, new = LoadReport(), {}
    for k, v in state.items():
        if IGNORED.match(k.removeprefix("module.")):
            rep.ignored.append(k)
            continue
        ours = map_key(k)
        if ours is None or ours not in own:
            rep.unexpected.append(k)
            continue
        if ours == "video.temporal_embed" and v.shape != own[ours].shape and v.shape[2:] == own[ours].shape[2:]:
            v = _resize_temporal(v, own[ours].shape[1], src)
            rep.resized.append(k)
        if ours == "video.pos_embed" and v.shape != own[ours].shape:
            raise FusedModelError(f"{src}: {k} has {v.shape[1] - 1} patches per frame, the model "
                                  f"{own[ours].shape[1] - 1} (image size {model.cfg.image_size}, patch "
                                  f"{model.cfg.patch_size}): use the checkpoint's image size")
        if v.shape != own[ours].shape:
            raise FusedModelError(f"{src}: {k} has shape {tuple(v.shape)}, {model.cfg.name} expects "
                                  f"{tuple(own[ours].shape)} (checkpoint of another size or architecture?)")
        new[ours] = v
    rep.missing = sorted(set(own) - set(new))
    if not new:
        raise FusedModelError(f"{src}: none of its {len(state)} keys is an EgoVLPv2 key "
                              f"(e.g. {next(iter(state), '')!r})"
                              " - a checkpoint of another architecture?")
    if strict and (rep.missing or rep.unexpected):
        raise FusedModelError(f"{src} does not match {model.cfg.name}: missing {few_keys(rep.missing)}; "
                              f"unexpected {few_keys(rep.unexpected)}")
    model.load_state_dict(new, strict=False)
    rep.loaded = len(new)
    return rep


def projection_kind(state: dict[str, torch.Tensor]) -> str:
    """``small`` (``txt_proj.1`` / ``vid_proj.0.bias``: the smallproj files), ``minimal`` (``vid_proj.4``:
    EgoVLPv2.pth) or '' (no projection keys)."""
    names = {k.removeprefix("module.") for k in state}
    if "txt_proj.1.weight" in names or "vid_proj.0.bias" in names:
        return "small"
    if "vid_proj.4.weight" in names or "txt_proj.4.weight" in names:
        return "minimal"
    return ""


def check_projection(model, state: dict[str, torch.Tensor], src: str) -> None:
    """A checkpoint whose dual projection is the other kind than the model's: one line naming the model to use."""
    have, want = projection_kind(state), getattr(model.cfg, "projection", "minimal")
    if not have or have == want:
        return
    key = next(k for k in state if k.removeprefix("module.").startswith(("vid_proj.", "txt_proj.")))
    dim = state[key].shape[0]
    use = {"small": "egovlpv2-base-smallproj (or another *-smallproj model)", "minimal": "egovlpv2-base"}[have]
    raise FusedModelError(f"{src} has the {have} {dim}-d projection ({key}), {model.cfg.name} the {want} "
                          f"{model.cfg.proj_dim}-d one: load it with --model {use}")


def few_keys(keys: list[str], n: int = 8) -> str:
    """``"N (k1, k2, ...)"`` of a key list for a one-line error (``"none"`` when empty)."""
    if not keys:
        return "none"
    return f"{len(keys)} ({', '.join(keys[:n])}{', ...' if len(keys) > n else ''})"


def to_reference_names(model) -> dict[str, torch.Tensor]:
    """Our state dict under the released checkpoint's names (for exporting back; inverse of :func:`map_key`)."""
    inverse = {}
    for pat, rep in KEY_MAP:
        inverse[rep] = pat.strip("^$").replace("\\.", ".")
    out = {}
    for k, v in model.state_dict().items():
        for rep, ref in sorted(inverse.items(), key=lambda kv: -len(kv[0])):
            if k == rep or (rep.endswith(".") and k.startswith(rep)):
                out[ref + k[len(rep):]] = v
                break
    return out
