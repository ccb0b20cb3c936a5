"""What a recipe is: every setting a paper or its reference code fixes, with three values each, and the
values egoflow applies (an EncoderSpec's fields, CLI options, head overrides).

    from egoflow.recipes import get_recipe, list_recipes
    r = get_recipe("egovlpv2-nlq")
    r.encoder_spec(pretrained="EgoVLPv2.pth", tokenizer="roberta-base/")   # -> extract.encoders.EncoderSpec
"""
from __future__ import annotations

from dataclasses import dataclass, field

from egoflow.errors import EgoflowUserError
from egoflow.extract.encoders import EncoderSpec

NOT_FOUND = "not found"  # a value we could not find in the paper or the reference code (never guessed)


class RecipeError(EgoflowUserError, ValueError):
    """Unknown recipe, a flag that contradicts one, a verb or head it is not for."""


@dataclass(frozen=True)
class Setting:
    name: str  # what is set, e.g. "frames per window"
    paper: str  # the paper's value ("not found" / "not stated")
    reference: str  # the reference code's value
    source: str  # where the reference value is: "repo@commit:file" (or "not found")
    egoflow: str  # what egoflow does under this recipe


@dataclass(frozen=True)
class Recipe:
    name: str  # registry name, e.g. "egovlpv2-nlq"
    version: int  # bumped whenever a value changes (stored with the features as name@version)
    paper: str  # the paper (and where its number is reported)
    target: str  # the benchmark number the recipe targets, as the paper / reference reports it
    verbs: tuple[str, ...]  # egoflow verbs the recipe applies to (extract, encode-text, predict, train)
    settings: tuple[Setting, ...]  # every setting: paper / reference / egoflow
    encoder: dict = field(default_factory=dict)  # EncoderSpec fields (kind, model, frames, precision, reference ...)
    options: dict = field(default_factory=dict)  # CLI options by argparse dest (fps, window, stride, score ...)
    head: str = ""  # the head of predict/train ("" any)
    head_overrides: dict = field(default_factory=dict)  # head Config overrides for train (`--set KEY=VALUE`)
    train: dict = field(default_factory=dict)  # train options by dest (epochs, lr, batch_size)
    train_config: dict = field(default_factory=dict)  # other TrainConfig fields of train (optimizer, schedule, ...)
    checkpoint: str = ""  # the released checkpoint file the reference loads
    commands: tuple[str, ...] = ()  # end to end: extract -> encode text -> train/predict -> evaluate
    differs: tuple[str, ...] = ()  # what egoflow still does differently, and why
    # what the feature / text set of train and predict must be (egoflow.recipes.fit.NEEDS_KEYS); {}: no check
    needs: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def encoder_spec(self, **overrides) -> EncoderSpec:
        """The recipe's EncoderSpec (``overrides``: pretrained, tokenizer, device ... or a departing value)."""
        e = dict(self.encoder)
        kw = {"kind": e.pop("kind", "clip"), "recipe": self.tag, **e}
        kw.update(overrides)
        return EncoderSpec(**kw)


_REGISTRY: dict[str, Recipe] = {}


def register(r: Recipe) -> Recipe:
    if r.name in _REGISTRY and _REGISTRY[r.name] is not r:
        raise ValueError(f"a recipe named {r.name!r} is already registered")
    _REGISTRY[r.name] = r
    return r


def list_recipes() -> list[str]:
    return sorted(_REGISTRY)


def get_recipe(name: str) -> Recipe:
    base = name.split("@")[0]
    if base not in _REGISTRY:
        raise RecipeError(f"unknown recipe {name!r}; known: {', '.join(list_recipes())}")
    r = _REGISTRY[base]
    if "@" in name and name.split("@")[1] != str(r.version):
        raise RecipeError(f"recipe {base} is at version {r.version}, not {name.split('@')[1]}")
    return r
