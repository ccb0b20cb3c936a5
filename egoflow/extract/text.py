"""Encode strings into a text set of the store (``texts/<text_set>``), skipping those already there.

Which strings an annotation file holds is the datasets layer's business (``egoflow.datasets.texts``); the
``encode-text`` verb composes the two in ``egoflow.encode_text``.
"""
from __future__ import annotations

from egoflow.features_store import FeatureStore


def text_set_name(encoder) -> str:
    d = encoder.describe()
    kind = "fused" if d.get("encoder") == "fused" else "clip"
    return f"{kind}-{d['model']}-{d['pretrained'] if d['pretrained'] != 'file' else 'ckpt'}-text".replace("/", "_")


def encode_strings(store: FeatureStore | str, strings: list[str], encoder, text_set: str | None = None,
                   tokens: bool = True) -> tuple[str, int]:
    """Encode the strings not yet in ``text_set``; return (text set name, number added)."""
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    name = text_set or text_set_name(encoder)
    todo = [s for s, have in zip(strings, store.has_texts(name, strings) if name in store.text_sets()
                                 else [False] * len(strings)) if not have]
    if not todo:
        return name, 0
    pooled, toks, lens = encoder.encode_text(todo, tokens=tokens)
    added = store.write_texts(name, todo, pooled, toks, lens, config=encoder.describe())
    return name, added
