"""Head recipes: a head trained as its reference code trains it (``egoflow train HEAD --recipe NAME``).

Each takes the head's own record of the reference (``BASELINE_*`` / ``REFERENCE_*`` / ``PAPER_*`` beside the
head, where the parity tests use them) so that the recipe, the parity test and ``recipes show`` cannot drift
apart. egoflow's own options (padding masks, small position init, caps, learned matcher costs ...) are the head's
defaults and are switched off here.
"""
from __future__ import annotations

from dataclasses import fields

from egoflow.heads.laviti import head as laviti_head
from egoflow.heads.registry import get_spec
from egoflow.heads.summarizer import head as summarizer_head
from egoflow.heads.train import TrainConfig
from egoflow.heads.vsgn import head as vsgn_head
from egoflow.heads.vslnet import head as vslnet_head
from egoflow.recipes.spec import NOT_FOUND, Recipe, Setting, register

EP = "EGO4D/episodic-memory@5275b95"
V2 = "facebookresearch/EgoVLPv2@550c059"
CLI_TRAIN = ("epochs", "lr", "batch_size")  # train options that have a flag; the rest travel as train_config


def _settings(head: str, over: dict, train: dict, source: str, from_paper: bool) -> tuple[Setting, ...]:
    """One row per value the recipe fixes: the reference code's value (or, with no public code, the paper's)
    against egoflow's default."""
    cfg = {f.name: f.default for f in fields(get_spec(head).Config)}
    defaults = {**{f.name: f.default for f in fields(TrainConfig)}, **get_spec(head).train_defaults}

    def row(name, v, default):
        given = (repr(v), NOT_FOUND) if from_paper else (NOT_FOUND, repr(v))
        return Setting(name, *given, source, f"{v!r} (default {default!r})")
    return tuple([row(k, v, cfg.get(k)) for k, v in over.items()]
                 + [row(f"train.{k}", v, defaults.get(k)) for k, v in train.items()])


def _head_recipe(name: str, head: str, paper: str, target: str, over: dict, train: dict, source: str,
                 differs: tuple[str, ...], commands: tuple[str, ...], from_paper: bool = False,
                 needs: dict | None = None, version: int = 1) -> Recipe:
    return register(Recipe(
        name=name, version=version, paper=paper, target=target, verbs=("train",),
        settings=_settings(head, over, train, source, from_paper), head=head, head_overrides=dict(over),
        train={k: v for k, v in train.items() if k in CLI_TRAIN},
        train_config={k: v for k, v in train.items() if k not in CLI_TRAIN},
        commands=commands, differs=differs, needs=needs or {}))


EGO4D_VSLNET = _head_recipe(
    "ego4d-vslnet", "vslnet", "Ego4D NLQ baseline (VSLNet, --predictor bert)",
    "the Ego4D baseline's NLQ val numbers with its own (SlowFast + BERT) features; with other features: none",
    vslnet_head.BASELINE_HEAD, vslnet_head.BASELINE_TRAIN,
    f"{EP}:NLQ/VSLNet/{{run_train.sh,options.py,model/VSLNet.py}}",
    ("its text side is a frozen BERT's token features: use a text set made by the same text model",
     "forward, loss and one optimiser step equal the baseline at tiny size (tests/test_heads_vslnet_reference.py)",
     vslnet_head.DROPOUT_DIFFERS),
    ("egoflow train vslnet --recipe ego4d-vslnet --store S --feature-set F --text-set T --annotations "
     "nlq_train.json --val-annotations nlq_val.json --out runs/vslnet-ego4d",),
    needs={"text_tokens": True})  # the baseline reads a text encoder's token sequence (its query encoder)

EGO4D_VSGN = _head_recipe(
    "ego4d-vsgn", "vsgn", "Ego4D MQ baseline (VSGN with xGPN)",
    "the Ego4D baseline's MQ val numbers with its own features; with other features: none",
    vsgn_head.REFERENCE_HEAD, vsgn_head.REFERENCE_TRAIN, f"{EP}:MQ/{{Models,Train.py,Infer.py}}",
    ("clips are resampled to 928 steps (the baseline truncates at the native rate); Soft-NMS only (the baseline "
     "runs a hard NMS 0.4 first)",
     "EgoVLPv2's MQ numbers come from a 144-run grid: egoflow.heads.grid with vsgn.head.EGOVLPV2_GRID"),
    ("egoflow train vsgn --recipe ego4d-vsgn --store S --feature-set F --annotations moments_train.json "
     "--val-annotations moments_val.json --out runs/vsgn-ego4d",))

EGOVLPV2_QFVS_HEAD = _head_recipe(
    "egovlpv2-qfvs-head", "summarizer", "EgoVLPv2 QFVS head (QFVS/model/model_summary.py, runner_train.py)",
    "QFVS average F1 52.08 (QFVS/README.md), on the fused features of egovlpv2-qfvs",
    summarizer_head.PAPER_HEAD, summarizer_head.PAPER_TRAIN, f"{V2}:QFVS/{{QFVS.yml,runner_train.py,segment}}",
    ("needs a query-conditioned set with each query's prompt and both concept prompts (extract --recipe "
     "egovlpv2-qfvs --queries ...)", "fp32 (the reference trains with CUDA mixed precision)"),
    ("egoflow train summarizer --recipe egovlpv2-qfvs-head --store S --feature-set F --annotations QFVS/ "
     "--out runs/qfvs",), needs={"conditioned": True})

LAVITI_HEAD = _head_recipe(
    "laviti-paper", "laviti", "LAVITI (paper's matcher, plain ranking and schedule)",
    "none measured here (no public code)", laviti_head.PAPER_HEAD, laviti_head.PAPER_TRAIN, NOT_FOUND,
    ("no public code: the paper column is the paper's values as issue 21 quotes them; lr and weight decay are "
     "egoflow's (not given in what we read)",),
    ("egoflow train laviti --recipe laviti-paper --store S --feature-set F --text-set T --annotations "
     "narration.json --out runs/laviti",), from_paper=True, version=2)  # 2: egoflow's NMS off
