"""egoflow: extract features from untrimmed egocentric video once, train small heads from the cache, evaluate.

The public API is small and re-exported here; heavy modules (torch, open_clip, prefect) load lazily.
"""
__version__ = "0.1.0"

_LAZY = {
    "FeatureStore": "egoflow.features_store",
    "VideoFeatures": "egoflow.features_store",
    "list_heads": "egoflow.heads.registry",
    "create_head": "egoflow.heads.registry",
    "extract": "egoflow.extract.pipeline",
    "create_encoder": "egoflow.extract.clip",
}


def __getattr__(name):  # PEP 562: keep `import egoflow` fast; import torch only when asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'egoflow' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
