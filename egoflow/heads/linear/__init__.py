"""Linear heads over pooled clip features: EK-100 actions, Ego4D OSCC and PNR, EgoTaskQA (docs/heads_linear.md).

One network (model.py) and one set of runner hooks (head.py) shared by four registry entries; each benchmark's
files, targets and records are an adapter in tasks.py. ``--set probe=lbfgs`` swaps the trained layer for the
standard scikit-learn L-BFGS logistic-regression probe with C swept on validation (probe.py).
"""
from egoflow.heads.linear import head
from egoflow.heads.linear.model import Config, build
from egoflow.heads.spec import HeadSpec

_DESCRIPTIONS = {
    "linear-ek100": "linear probe: EPIC-KITCHENS-100 verb/noun/action recognition (top-1/top-5)",
    "linear-oscc": "linear probe: Ego4D object state change classification (accuracy)",
    "linear-pnr": "linear per-step scorer: Ego4D PNR keyframe localisation (abs. error, s)",
    "linear-egotaskqa": "linear classifier over the answer vocabulary: EgoTaskQA (pooled clip + question, or the fused "
                        "(clip, question) feature of a query-conditioned set)",
}


def _spec(name: str) -> HeadSpec:
    from egoflow.heads.linear.tasks import TASKS

    task, predictor, demo = head.hooks(name)
    return HeadSpec(name=name, benchmark=TASKS[name].benchmark, description=_DESCRIPTIONS[name], Config=Config,
                    build=build, task=task, predictor=predictor, train_defaults=head.TRAIN_DEFAULTS, demo=demo)


SPECS = {n: _spec(n) for n in _DESCRIPTIONS}
EK100_SPEC, OSCC_SPEC, PNR_SPEC, EGOTASKQA_SPEC = SPECS.values()

__all__ = ["EGOTASKQA_SPEC", "EK100_SPEC", "OSCC_SPEC", "PNR_SPEC", "SPECS", "Config", "build"]
