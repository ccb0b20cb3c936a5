"""VSGN (Zhao et al., ICCV 2021) for Ego4D moment queries, trained from cached features."""
from egoflow.heads.spec import HeadSpec
from egoflow.heads.vsgn import head
from egoflow.heads.vsgn.data import MQDataError
from egoflow.heads.vsgn.model import Config, VSGNConfigError, VSGNInputError, build

SPEC = HeadSpec(
    name="vsgn", benchmark="mq", description="VSGN temporal action localisation for Ego4D moment queries",
    Config=Config, build=build, task=head.task, predictor=head.predictor, train_defaults=head.TRAIN_DEFAULTS,
    demo=head.demo)

__all__ = ["SPEC", "Config", "MQDataError", "VSGNConfigError", "VSGNInputError", "build"]
