"""Zero-shot retrieval predictions with a frozen dual encoder (EgoMCQ, EK-100 MIR, CharadesEgo): no training, no
run directory. Three predict-only registry entries (``egoflow heads`` lists them; ``egoflow predict NAME`` without
``--run`` goes through ``egoflow.heads.runner`` like every head); the clip-text scorer is pluggable (scoring.py),
and the fused backbone's scorer is passed in by the CLI (docs/zeroshot.md).
"""
from egoflow.heads.spec import HeadSpec
from egoflow.heads.zeroshot.demo import demo
from egoflow.heads.zeroshot.predict import (
    Config,
    ZeroShotError,
    build,
    charades_predictor,
    egomcq_predictor,
    ek100_mir_predictor,
    task,
)
from egoflow.heads.zeroshot.scoring import SCORERS, Scorer, Span, StoreScorer, clip_cosine, get_scorer, register_scorer

_COMMON = dict(Config=Config, build=build, task=task, zero_shot=True)

EGOMCQ = HeadSpec(name="egomcq", benchmark="egomcq", description="zero-shot EgoMCQ: a query text against its 5 "
                  "candidate clips (predict only; --encoder fused: the fused scorer)", predictor=egomcq_predictor,
                  options=("scorer",), **_COMMON)
EK100_MIR = HeadSpec(name="ek100-mir", benchmark="ek100-mir", description="zero-shot EK-100 multi-instance "
                     "retrieval similarity matrix (predict only; --encoder fused: the fused scorer)",
                     predictor=ek100_mir_predictor, options=("scorer", "split"), **_COMMON)
CHARADES = HeadSpec(name="charades", benchmark="charades", description="zero-shot CharadesEgo classification from "
                    "prompted class names (predict only)", predictor=charades_predictor,
                    options=("scorer", "classes", "prompt"), **_COMMON)
SPECS = (EGOMCQ, EK100_MIR, CHARADES)

__all__ = ["CHARADES", "EGOMCQ", "EK100_MIR", "SCORERS", "SPECS", "Scorer", "Span", "StoreScorer", "ZeroShotError",
           "clip_cosine", "demo", "get_scorer", "register_scorer"]
