"""egoflow.recipes.additions: egoflow's values where a head recipe differs, derived from the recipe and the head."""
from __future__ import annotations

import dataclasses

import pytest

from egoflow.heads.registry import get_spec
from egoflow.recipes import Recipe, RecipeError, get_recipe, list_recipes
from egoflow.recipes.additions import (
    DATA_KEYS,
    ablation,
    additions,
    check_head_overrides,
    field_comments,
    field_defaults,
    replaced,
)


def _recipe(head: str, over: dict, train_config: dict | None = None) -> Recipe:
    return Recipe(name="probe", version=1, paper="", target="", verbs=("train",), settings=(), head=head,
                  head_overrides=over, train_config=train_config or {})


def test_vslnet_recipe_additions_are_egoflows_options_with_their_comments():
    adds = {a.key: a for a in additions("ego4d-vslnet")}
    cfg = get_spec("vslnet").Config
    head = {k for k in adds if not k.startswith("train.")}
    assert head == {"mask_conv_padding", "pos_init_std"}  # every other baseline value is egoflow's default too
    assert adds["mask_conv_padding"].recipe is False and adds["mask_conv_padding"].egoflow is cfg.mask_conv_padding
    assert "egoflow option" in adds["pos_init_std"].what
    assert adds["train.optimizer"].egoflow == "adamw" and adds["train.optimizer"].recipe == "adamw-hf"
    assert adds["train.warmup_steps"].egoflow == "5% of all steps"  # the head's warm-up fraction, not TrainConfig's 0


def test_laviti_paper_switches_off_the_learned_matcher_and_nms():
    adds = {a.key: (a.recipe, a.egoflow) for a in additions(get_recipe("laviti-paper"))}
    assert adds["matcher"] == ("paper", "learned") and adds["nms_iou"] == (0.0, 0.5)
    assert get_recipe("laviti-paper").version == 2


def test_derivation_follows_the_head_config():
    cfg = field_defaults(get_spec("vsgn").Config)
    assert additions(_recipe("vsgn", {"w_aux": cfg["w_aux"], "box_offset": cfg["box_offset"]})) == []
    (a,) = additions(_recipe("vsgn", {"w_aux": 0.2, "video_dim": 4096, "anchor_scales": list(cfg["anchor_scales"])}))
    assert (a.key, a.recipe, a.egoflow) == ("w_aux", 0.2, cfg["w_aux"])  # data keys and list == tuple: no row
    assert "video_dim" in DATA_KEYS
    (t,) = additions(_recipe("vsgn", {}, {"grad_clip": 0.0, "optimizer": "adam"}))  # adam is vsgn's default
    assert (t.key, t.train, t.field) == ("train.grad_clip", True, "grad_clip")


def test_unknown_head_override_lists_the_keys():
    with pytest.raises(RecipeError, match=r"recipe probe@1 sets nope, which head vslnet's config does not have; "
                                          r"its keys: .*mask_conv_padding"):
        additions(_recipe("vslnet", {"nope": 1}))


def test_every_registered_recipe_names_only_its_heads_keys():
    for name in list_recipes():
        check_head_overrides(get_recipe(name))  # raises on drift


def test_field_comments_read_every_commented_field():
    com = field_comments(get_spec("vslnet").Config)
    assert set(com) == {f.name for f in dataclasses.fields(get_spec("vslnet").Config)}
    assert com["dim"] == "common model dim"
    assert field_comments(int) == {}


def test_ablation_rows_switch_on_one_addition_each():
    size, budget = {"dim": 32}, {"epochs": 3, "lr": 5e-3}
    rows = ablation("ego4d-vslnet", size, budget)
    names = [r[0] for r in rows]
    assert names[0] == "recipe ego4d-vslnet@1" and names[-1] == "egoflow defaults (no recipe)"
    assert replaced("ego4d-vslnet", size, budget) == ["train.epochs 200", "train.lr 0.0001"]
    adds = [a for a in additions("ego4d-vslnet") if a.field not in ("epochs", "lr")]
    assert len(rows) == len(adds) + 2
    _, rec_head, rec_train = rows[0]
    assert rec_head["mask_conv_padding"] is False and rec_head["dim"] == 32 and rec_train["lr"] == 5e-3
    for a, (name, head, train) in zip(adds, rows[1:-1]):
        assert name.startswith(f"+ {a.key}=")
        assert (set(rec_train) - set(train) if a.train else set(rec_head) - set(head)) == {a.field}
        assert (head == rec_head) if a.train else (train == rec_train)
    assert rows[-1][1:] == (size, budget)
