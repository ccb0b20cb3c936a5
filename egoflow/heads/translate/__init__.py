"""VideoTranslate ("Video Understanding as Machine Translation", Korbar et al. 2022) from cached features.

One T5 encoder-decoder over ``[task prefix; projected video; noisy text]`` and four registry entries:

=====================  ==============  ===========================================================================
head                   benchmark       what
=====================  ==============  ===========================================================================
``translate``          captions        pretraining on Ego4D narrations; captions (greedy / beam); BLEU-4 METEOR CIDEr
``translate-charades``  charades       CharadesEgo mAP: class-name ranking (zero-shot / fine-tuned) or linear layer
``translate-ek100``    ek100-ar        EK-100 verb / noun / action top-1, top-5: ranking or linear layers
``translate-egomcq``   egomcq          EgoMCQ: rank the candidate clips by the query's likelihood (predict only)
=====================  ==============  ===========================================================================

See docs/heads_translate.md.
"""
from functools import partial

from egoflow.heads.spec import HeadSpec
from egoflow.heads.translate import classify, head, mcq
from egoflow.heads.translate.demo import demo, finetune_demo
from egoflow.heads.translate.model import Config, build

_COMMON = dict(Config=Config, build=build, warmup_fraction=head.WARMUP_FRACTION)

SPEC = HeadSpec(name="translate", benchmark="captions", description="VideoTranslate: narration pretraining, "
                "captioning (BLEU-4/METEOR/CIDEr)", task=head.task, predictor=head.predictor,
                train_defaults=head.TRAIN_DEFAULTS, options=("init",), demo=demo, **_COMMON)
CHARADES = HeadSpec(name="translate-charades", benchmark="charades", description="VideoTranslate CharadesEgo: "
                    "class-name ranking or linear layer (mAP)", task=classify.charades_task,
                    predictor=classify.charades_predictor, train_defaults=classify.TRAIN_DEFAULTS,
                    options=("init", "classes", "prompt", "fusion"), loads=("translate",),
                    demo=partial(finetune_demo, "translate-charades"), **_COMMON)
EK100 = HeadSpec(name="translate-ek100", benchmark="ek100-ar", description="VideoTranslate EK-100 verb/noun/"
                 "action: class-name ranking or linear layers (top-1/5)", task=classify.ek100_task,
                 predictor=classify.ek100_predictor, train_defaults=classify.TRAIN_DEFAULTS,
                 options=("init", "prompt", "fusion"), loads=("translate",),
                 demo=partial(finetune_demo, "translate-ek100"), **_COMMON)
EGOMCQ = HeadSpec(name="translate-egomcq", benchmark="egomcq", description="VideoTranslate EgoMCQ: candidate clips "
                  "ranked by the query's likelihood (predict only)", task=mcq.task, predictor=mcq.predictor,
                  loads=("translate", "translate-charades", "translate-ek100"), **_COMMON)
SPECS = (SPEC, CHARADES, EK100, EGOMCQ)

__all__ = ["CHARADES", "EGOMCQ", "EK100", "SPEC", "SPECS", "Config", "build"]
