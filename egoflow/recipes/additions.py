"""What egoflow adds to a head recipe: every head ``Config`` / ``TrainConfig`` value where the head's defaults
differ from the recipe, derived from the two (so the list cannot drift from either).

    from egoflow.recipes.additions import additions
    for a in additions("ego4d-vslnet"):
        print(a.key, a.recipe, "->", a.egoflow, a.what)      # mask_conv_padding False -> True  egoflow option: ...

``benchmarks/recipe_additions.py`` trains the recipe, then the recipe with each addition switched on alone
(the recipe's key dropped: the head's default applies), then egoflow's defaults.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass

from egoflow.heads.registry import get_spec
from egoflow.heads.train import TrainConfig
from egoflow.recipes.spec import Recipe, RecipeError, get_recipe

# head keys the runner takes from the store or the annotations: a recipe's value is a fact about its features,
# not an option of egoflow's (``Recipe.needs`` checks the features)
DATA_KEYS = ("video_dim", "text_dim", "labels", "num_classes", "conditioned")
_FIELD = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.*)$")


@dataclass(frozen=True)
class Addition:
    key: str  # head Config field, or "train.<TrainConfig field>"
    recipe: object  # the recipe's value
    egoflow: object  # egoflow's default: what the head does without the recipe
    what: str  # the field's one-line comment in its dataclass

    @property
    def train(self) -> bool:
        return self.key.startswith("train.")

    @property
    def field(self) -> str:
        return self.key.removeprefix("train.")


def field_comments(cls: type) -> dict[str, str]:
    """{field: its trailing ``# comment``} from a commented dataclass's source (``{}`` without source)."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in map(_FIELD.match, src.splitlines()) if m}


def field_defaults(cls: type) -> dict:
    """{field: default} of a dataclass (default factories called)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _norm(v):
    return [_norm(x) for x in v] if isinstance(v, (list, tuple)) else v


def check_head_overrides(r: Recipe) -> None:
    """RecipeError naming the recipe, the key(s) its head's Config lacks and the keys it has."""
    if not r.head or not r.head_overrides:
        return
    keys = field_defaults(get_spec(r.head).Config)
    bad = sorted(set(r.head_overrides) - set(keys))
    if bad:
        raise RecipeError(f"recipe {r.tag} sets {', '.join(bad)}, which head {r.head}'s config does not have; "
                          f"its keys: {', '.join(sorted(keys))}")


def additions(recipe: Recipe | str) -> list[Addition]:
    """egoflow's values where they differ from ``recipe``'s head overrides and training, head keys first.

    The head's warm-up fraction counts as its ``warmup_steps`` default (the runner applies it unless the recipe
    gives ``warmup_steps``)."""
    r = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if not r.head:
        return []
    check_head_overrides(r)
    spec = get_spec(r.head)
    head_def, head_com = field_defaults(spec.Config), field_comments(spec.Config)
    out = [Addition(k, v, head_def[k], head_com.get(k, "")) for k, v in r.head_overrides.items()
           if k not in DATA_KEYS and _norm(v) != _norm(head_def[k])]
    train_def = {**field_defaults(TrainConfig), **spec.train_defaults}
    if spec.warmup_fraction:
        train_def["warmup_steps"] = f"{spec.warmup_fraction:.0%} of all steps"
    train_com = field_comments(TrainConfig)
    for k, v in {**r.train, **r.train_config}.items():
        if _norm(v) != _norm(train_def.get(k)):
            out.append(Addition(f"train.{k}", v, train_def.get(k), train_com.get(k, "")))
    return out


def replaced(recipe: Recipe | str, size: dict, budget: dict) -> list[str]:
    """The recipe's values (where egoflow's differ) that a benchmark's ``size`` (head keys) or ``budget`` (train
    keys) replace in every row: ``"key value"`` each."""
    return [f"{a.key} {a.recipe}" for a in additions(recipe) if a.field in (budget if a.train else size)]


def ablation(recipe: Recipe | str, size: dict, budget: dict) -> list[tuple[str, dict, dict]]:
    """(row name, head overrides, train overrides): the recipe; the recipe with each addition switched on alone
    (its key dropped, so the head's default applies); egoflow's defaults. ``size`` / ``budget`` go into every
    row, and an addition they replace has no row of its own (``replaced``)."""
    r = get_recipe(recipe) if isinstance(recipe, str) else recipe
    rec_head = {**r.head_overrides, **size}
    rec_train = {**r.train, **r.train_config, **budget}
    out = [(f"recipe {r.tag}", rec_head, rec_train)]
    for a in additions(r):
        if a.field in (budget if a.train else size):
            continue
        head = {k: v for k, v in rec_head.items() if a.train or k != a.key}
        train = {k: v for k, v in rec_train.items() if not a.train or k != a.field}
        out.append((f"+ {a.key}={a.egoflow} (recipe {a.recipe})", head, train))
    out.append(("egoflow defaults (no recipe)", dict(size), dict(budget)))
    return out
