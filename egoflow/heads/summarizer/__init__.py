"""Query-focused video summarizer (QFVS, EgoVLPv2's head on frozen features) with KTS segments."""
from egoflow.heads.spec import HeadSpec
from egoflow.heads.summarizer import head, protocol
from egoflow.heads.summarizer.data import SummarizerDataError
from egoflow.heads.summarizer.model import Config, build

SPEC = HeadSpec(
    name="summarizer", benchmark="qfvs",
    description="KTS + transformer query-focused video summarizer",
    Config=Config, build=build, task=head.task, predictor=head.predictor, train_defaults=head.TRAIN_DEFAULTS,
    demo=protocol.demo)

__all__ = ["SPEC", "Config", "SummarizerDataError", "build"]
