"""Zero-shot retrieval predictions with the frozen dual encoder (EgoMCQ, EK-100 MIR, CharadesEgo): no training,
no run directory; `egoflow predict NAME` without ``--run`` (docs/zeroshot.md). The clip-text score is pluggable
(scoring.py: ``register_scorer``)."""
from egoflow.heads.zeroshot.predict import ZEROSHOT, demo, list_zeroshot, predict
from egoflow.heads.zeroshot.scoring import SCORERS, clip_cosine, get_scorer, register_scorer

__all__ = ["SCORERS", "ZEROSHOT", "clip_cosine", "demo", "get_scorer", "list_zeroshot", "predict", "register_scorer"]
