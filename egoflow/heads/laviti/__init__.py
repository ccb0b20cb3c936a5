"""LAVITI (Liu et al., "Contrastive Language Video Time Pre-training", 2024) on cached CLIP frame features.

One network, two registry entries: ``laviti`` pretrains on narrations and answers NLQ zero-shot; ``laviti-charades``
fine-tunes it on CharadesEgo (``--init`` a laviti run) and scores CharadesEgo with either kind of run. A
fine-tuned best.pt is a plain LAVITI checkpoint, so `egoflow predict laviti` takes such runs too.

Files: ``model.py`` (Config, CharadesConfig, network, Decode, build), ``temporal.py`` (TE table), ``matcher.py``
(three-way Hungarian matching), ``criterion.py`` (pretraining and fine-tune losses), ``data.py`` (chunks,
narration intervals, batches), ``charades_data.py`` (CharadesEgo actions as training chunks), ``zeroshot.py``
(moments of a clip, NLQ ranking, CharadesEgo scores), ``head.py`` / ``charades.py`` (runner hooks, demo).
Choices the paper leaves open: docs/heads_laviti.md.
"""
from egoflow.heads.laviti import charades, head
from egoflow.heads.laviti.model import CharadesConfig, Config, build, build_charades
from egoflow.heads.spec import HeadSpec

SPEC = HeadSpec(
    name="laviti", benchmark="nlq",
    description="LAVITI language-video-time set prediction; zero-shot NLQ",
    Config=Config, build=build, task=head.task, predictor=head.predictor, train_defaults=head.TRAIN_DEFAULTS,
    warmup_fraction=head.WARMUP_FRACTION, loads=("laviti-charades",), demo=head.demo)

CHARADES_SPEC = HeadSpec(
    name="laviti-charades", benchmark="charades",
    description="LAVITI on CharadesEgo: fine-tune a pretraining run (--init); zero-shot with predict",
    Config=CharadesConfig, build=build_charades, task=charades.task, predictor=charades.predictor,
    train_defaults=charades.TRAIN_DEFAULTS, warmup_fraction=charades.WARMUP_FRACTION, options=("init", "classes"),
    loads=("laviti",), demo=charades.demo)

__all__ = ["CHARADES_SPEC", "SPEC", "CharadesConfig", "Config", "build", "build_charades"]
