"""VSLNet (Zhang et al., ACL 2020) for Ego4D natural-language queries, trained from cached features."""
from egoflow.heads.spec import HeadSpec
from egoflow.heads.vslnet import head
from egoflow.heads.vslnet.model import Config, build

SPEC = HeadSpec(
    name="vslnet", benchmark="nlq", description="VSLNet span localisation for Ego4D natural-language queries",
    Config=Config, build=build, task=head.task, predictor=head.predictor, train_defaults=head.TRAIN_DEFAULTS,
    warmup_fraction=head.WARMUP_FRACTION, demo=head.demo)

__all__ = ["SPEC", "Config", "build"]
