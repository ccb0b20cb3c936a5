"""``egoflow encode-text``: the strings of annotation files (datasets) encoded into a text set (extract).

It sits above both layers because it joins them: extract does not know a benchmark, and datasets does not
encode. Every file is read and checked before the encoder is loaded, so a bad file costs no model loading.
"""
from __future__ import annotations

from pathlib import Path

from egoflow.datasets.errors import AnnotationError
from egoflow.datasets.texts import annotation_texts, unique
from egoflow.extract.text import encode_strings
from egoflow.features_store import FeatureStore


def encode_files(store: FeatureStore | str, paths: list[str | Path], encoder, text_set: str | None = None,
                 prompt: str | None = None, allow_unknown_videos: bool = False) -> tuple[str, dict[str, int]]:
    """Encode every string of every annotation file; return (text set, {file: #strings}).

    ``encoder`` may be a zero-argument callable that builds it (called once every file has passed its checks).
    When the store already holds video features, a file naming a video that none of its feature sets has is an
    ``AnnotationError`` (a wrong file or a wrong store) unless ``allow_unknown_videos``.
    """
    counts, allstr, texts = {}, [], {}
    for p in paths:
        texts[str(p)] = t = annotation_texts(p, prompt)
        counts[str(p)] = len(t.strings)
        allstr += t.strings
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    if not allow_unknown_videos:
        check_videos(store, texts)
    if callable(encoder) and not hasattr(encoder, "encode_text"):
        encoder = encoder()
    name, _ = encode_strings(store, unique(allstr), encoder, text_set)
    return name, counts


def check_videos(store: FeatureStore, texts: dict) -> None:
    """Every video a file names must be in some feature set of ``store`` (by video or clip uid), when it has any."""
    sets = store.feature_sets()
    if not sets:  # texts encoded before any extraction: nothing to check against yet
        return
    known = set().union(*(store.videos(s) for s in sets))
    for path, t in texts.items():
        unknown = [uid for uid in t.videos if uid not in known and not t.clips.get(uid, set()) & known]
        if unknown:
            raise AnnotationError(path, t.videos[unknown[0]],
                                  f"video {unknown[0]!r} is in none of the feature sets of {store.url} "
                                  f"({len(unknown)} of {len(t.videos)} videos unknown: wrong file or store? "
                                  "--allow-unknown-videos encodes anyway)")
