"""Task heads trained from the feature store: one package per head, one registry, one runner.

    from egoflow.heads import create_head, list_heads, train, predict
"""
from egoflow.heads.registry import create_head, get_spec, list_heads, register
from egoflow.heads.runner import load_run, predict, train

__all__ = ["create_head", "get_spec", "list_heads", "register", "train", "predict", "load_run"]
