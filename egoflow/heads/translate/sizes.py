"""T5 shapes by name: ``--set size=t5-large`` builds that network at random init (no weights are downloaded);
a ``--init`` T5 folder still fixes the shape from its own ``config.json`` and must agree with ``size``.

The numbers are the public ``config.json`` of each original (v1.0) T5 checkpoint: ReLU feed-forward, tied
input/output embeddings.
"""
from __future__ import annotations

from egoflow.heads.translate.text import TranslateInputError

_V10 = dict(feed_forward_proj="relu", tie_word_embeddings=True)
T5_SIZES = {
    "t5-small": dict(d_model=512, d_ff=2048, d_kv=64, num_heads=8, num_layers=6, num_decoder_layers=6, **_V10),
    "t5-base": dict(d_model=768, d_ff=3072, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12, **_V10),
    "t5-large": dict(d_model=1024, d_ff=4096, d_kv=64, num_heads=16, num_layers=24, num_decoder_layers=24, **_V10),
}


def size_fields(overrides: dict) -> dict:
    """The shape fields of ``overrides["size"]`` (``{}`` when unset or ``""``) merged over ``overrides``; an
    explicit field contradicting the size is an error naming both (never a silently different network)."""
    size = overrides.get("size") or ""
    if not size:
        return dict(overrides)
    if size not in T5_SIZES:
        raise TranslateInputError(f"size={size!r} is not a known T5 size: use one of {', '.join(T5_SIZES)} "
                                  "(or size= and the shape fields)")
    for k, v in T5_SIZES[size].items():
        if k in overrides and overrides[k] != v:
            raise TranslateInputError(f"size={size} has {k}={v}, but the config sets {k}={overrides[k]} "
                                      "(drop one of them)")
    return {**overrides, **T5_SIZES[size]}
