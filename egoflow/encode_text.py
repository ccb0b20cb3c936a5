"""``egoflow encode-text``: the strings of annotation files (datasets) encoded into a text set (extract).

It sits above both layers because it joins them: extract does not know a benchmark, and datasets does not
encode.
"""
from __future__ import annotations

from pathlib import Path

from egoflow.datasets.texts import annotation_strings, unique
from egoflow.extract.text import encode_strings
from egoflow.features_store import FeatureStore


def encode_files(store: FeatureStore | str, paths: list[str | Path], encoder, text_set: str | None = None,
                 prompt: str | None = None) -> tuple[str, dict[str, int]]:
    """Encode every string of every annotation file; return (text set, {file: #strings})."""
    counts, allstr = {}, []
    for p in paths:
        _, strings = annotation_strings(p, prompt)
        counts[str(p)] = len(strings)
        allstr += strings
    name, _ = encode_strings(store, unique(allstr), encoder, text_set)
    return name, counts
