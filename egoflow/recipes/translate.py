"""VideoTranslate recipes (Korbar et al., "Video Understanding as Machine Translation"): the paper's network size,
schedule, discriminative token and gen+disc fusion (``egoflow train translate* --recipe NAME``).

There is no public code, and the paper's body could not be read here: the paper column holds what issue 21
quotes of it; a value it does not give (lr, batch, warm-up length, the noise, the fusion weight) is pinned to
egoflow's own with the paper column "not found". egoflow's own options stay off in these recipes (the mean
pooling, fusion by mode, the cosine schedule).
"""
from __future__ import annotations

from dataclasses import fields

from egoflow.heads.registry import get_spec
from egoflow.heads.translate import head as translate_head
from egoflow.heads.translate.head import WARMUP_FRACTION
from egoflow.recipes.heads import CLI_TRAIN
from egoflow.recipes.spec import NOT_FOUND, Recipe, Setting, register

PAPER = "Korbar et al. 2022, Video Understanding as Machine Translation (no public code)"


def _settings(head: str, paper: dict, ours: dict, train: dict) -> tuple[Setting, ...]:
    """One row per value the recipe fixes: the paper's (``paper``, ``train``) or egoflow's where the paper's was
    not found (``ours``), against the head's default."""
    cfg = {f.name: f.default for f in fields(get_spec(head).Config)}
    rows = [Setting(k, repr(v), NOT_FOUND, NOT_FOUND, f"{v!r} (default {cfg[k]!r})") for k, v in paper.items()]
    rows += [Setting(k, NOT_FOUND, NOT_FOUND, NOT_FOUND, f"{v!r} (egoflow's; default {cfg[k]!r})")
             for k, v in ours.items()]
    defaults = get_spec(head).train_defaults
    rows += [Setting(f"train.{k}", repr(v), NOT_FOUND, NOT_FOUND, f"{v!r} (default {defaults.get(k)!r})")
             for k, v in train.items()]
    rows += [Setting(f"train.{k}", NOT_FOUND, NOT_FOUND, NOT_FOUND, f"{defaults[k]!r} (egoflow's)")
             for k in ("lr", "batch_size")]
    rows.append(Setting("train.warmup_steps", NOT_FOUND, NOT_FOUND, NOT_FOUND,
                        f"{WARMUP_FRACTION:.0%} of all steps (egoflow's warmup_fraction)"))
    return tuple(rows)


def _recipe(name: str, head: str, target: str, paper: dict, ours: dict, commands: tuple[str, ...]) -> Recipe:
    train = translate_head.PAPER_TRAIN
    return register(Recipe(
        name=name, version=1, paper=PAPER, target=target, verbs=("train",),
        settings=_settings(head, paper, ours, train), head=head, head_overrides={**paper, **ours},
        train={k: v for k, v in train.items() if k in CLI_TRAIN},
        train_config={k: v for k, v in train.items() if k not in CLI_TRAIN}, commands=commands,
        differs=("no public code, and the paper's body could not be read here: the paper column is what issue 21 "
                 "quotes; lr, batch, warm-up length, the text noise and the fusion weight are egoflow's",
                 "t5-large is built at random init unless --init gives a local t5-large folder (its weights)",
                 "egoflow reads cached (frozen) video features; the paper's own ablation (its Table 7e, as issue 21 "
                 "reports it) finds a frozen video encoder does poorly (docs/heads_translate.md)")))


VIDEOTRANSLATE = _recipe(
    "videotranslate-paper", "translate", "none measured here (no public code, no weights offline)",
    translate_head.PAPER_HEAD, translate_head.EGOFLOW_HEAD,
    ("egoflow train translate --recipe videotranslate-paper --store S --feature-set F --annotations "
     "narration_train.json --val-annotations narration_val.json --out runs/vt [--init t5-large-folder]",))

VIDEOTRANSLATE_CHARADES = _recipe(
    "videotranslate-charades-paper", "translate-charades", "none measured here (no public code)",
    translate_head.PAPER_CLASSIFY_HEAD, {**translate_head.EGOFLOW_HEAD, **translate_head.EGOFLOW_CLASSIFY_HEAD},
    ("egoflow train translate-charades --recipe videotranslate-charades-paper --init runs/vt --store S "
     "--feature-set F --annotations CharadesEgo_v1_train_only1st.csv --val-annotations "
     "CharadesEgo_v1_test_only1st.csv --out runs/vt-ch",))

VIDEOTRANSLATE_EK100 = _recipe(
    "videotranslate-ek100-paper", "translate-ek100", "none measured here (no public code)",
    translate_head.PAPER_CLASSIFY_HEAD, {**translate_head.EGOFLOW_HEAD, **translate_head.EGOFLOW_CLASSIFY_HEAD},
    ("egoflow train translate-ek100 --recipe videotranslate-ek100-paper --init runs/vt --store S --feature-set F "
     "--annotations EPIC_100_train.csv --val-annotations EPIC_100_validation.csv --out runs/vt-ek",))
