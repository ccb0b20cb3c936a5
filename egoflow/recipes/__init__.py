"""Named paper/reference settings for extraction and heads (DESIGN.md "Recipes").

    egoflow recipes                      # the list
    egoflow recipes show egovlpv2-nlq    # every setting: paper / reference (repo@commit:file) / egoflow
    egoflow extract clips/ --store S --recipe egovlpv2-nlq --pretrained EgoVLPv2.pth --tokenizer rb/ --queries Q

The package sits just above heads | extract: it produces EncoderSpecs, CLI options and head overrides, and
nothing below it imports it.
"""
from egoflow.recipes import egovlpv2, heads, linear, others, translate  # noqa: F401  (registers the built-in recipes)
from egoflow.recipes.apply import apply, explicit_flags
from egoflow.recipes.spec import NOT_FOUND, Recipe, RecipeError, Setting, get_recipe, list_recipes, register

__all__ = ["NOT_FOUND", "Recipe", "RecipeError", "Setting", "apply", "explicit_flags", "get_recipe",
           "list_recipes", "register"]
