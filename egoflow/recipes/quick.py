"""A recipe's "quick form": the recipe as a user applies it (``--recipe NAME`` on the same verbs), with a tiny
model of the same family (random init), tiny head widths and 1-2 epochs: the demo's proof that every recipe runs
end to end in seconds. Its numbers are not comparable to the paper's.

The form is derived from the recipe's fields (verbs, head, encoder family), so a new recipe gets one without
code; a head not in ``TINY_HEAD`` / ``HEAD_DATA`` needs one line there (tests/test_recipes_quick.py fails until
then).

    from egoflow.recipes import get_recipe
    from egoflow.recipes.quick import quick_form
    quick_form(get_recipe("egovlpv2-nlq"))   # QuickForm(verb="train", head="vslnet", model="egovlpv2-tiny", ...)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from egoflow.recipes.apply import _family
from egoflow.recipes.spec import Recipe, RecipeError

# family (recipes.apply._family) -> the tiny random-init model of that family
TINY_MODEL = {"egovlpv2-": "egovlpv2-tiny", "egovlp-": "egovlp-tiny", "clip-fused-": "clip-fused-egoflow-tiny-ViT",
              "open_clip": "egoflow-tiny-ViT"}
# Trained heads run their own demo step (tiny widths, the demo's data) with the recipe applied on top; these widths
# are the recipe values a demo step does not shrink itself (head -> overrides over the recipe's).
# A paper recipe's named network size (VideoTranslate's size=t5-large) is dropped so the demo step's tiny widths
# stand: the quick form prints that it differs from the recipe there.
TINY_EXTRA = {"summarizer": {"ffn_dim": 32}, "translate": {"size": ""}, "translate-charades": {"size": ""},
              "translate-ek100": {"size": ""}}
# heads whose demo step trains on the demo videos' feature store: an encoder recipe extracts those videos with its
# tiny model first (the other heads' demo steps generate their own features)
VIDEO_HEADS = ("vslnet", "vsgn", "laviti")
TEXT_HEADS = ("vslnet", "laviti")  # ... and of those, the heads that read a text set
# heads that read a query-conditioned set per (video, question): a recipe that needs one (Recipe.needs) extracts
# the demo videos with the tiny model of the family it needs and the demo step's questions as --queries
QUESTION_HEADS = ("linear-egotaskqa",)
# zero-shot predictors scored on the demo videos by the fused scorer (`egoflow predict HEAD --encoder fused`)
ZERO_SHOT = ("egomcq", "charades", "ek100-mir")
DATA_DIMS = ("video_dim", "text_dim")  # head values that describe the features: taken from the tiny model's store


@dataclass(frozen=True)
class QuickForm:
    recipe: str  # the recipe's tag, name@version
    verb: str  # train (the head's demo step, recipe applied) | predict (zero-shot, fused scorer on the videos)
    head: str  # the head trained or the zero-shot predictor
    model: str  # tiny model of the recipe's family ("" when the recipe names no encoder)
    extract: bool  # the recipe extracts the demo videos with the tiny model (else the demo's own features)
    encode_text: bool  # ... and encodes the demo's texts with it
    queries: bool  # query-conditioned extraction (the recipe's head reads conditioned features)
    epochs: int  # 1-2
    head_overrides: dict = field(default_factory=dict)  # widths over the recipe's (TINY_EXTRA)
    label: str = ""  # the report row

    def extract_key(self, r: Recipe) -> tuple:
        """Recipes with equal keys share one extraction: the encoder settings that change the video features."""
        enc = {k: v for k, v in r.encoder.items() if k not in ("model", "text_tokens")}
        opts = {k: v for k, v in r.options.items() if k in ("fps", "stride")}
        # conditioned sets differ by what the head's queries are (NLQ clips and queries, EgoTaskQA questions)
        return (self.model, self.queries and self.head, tuple(sorted(enc.items())), tuple(sorted(opts.items())))

    def text_key(self, r: Recipe) -> tuple:
        """Recipes with equal keys share one text set."""
        return (self.model, r.encoder.get("kind", "clip"), r.encoder.get("text_tokens", ""))


def _head(r: Recipe) -> str:
    """The recipe's head, else the first head its commands train or predict with (``egoflow train vslnet ...``)."""
    if r.head:
        return r.head
    for c in r.commands:
        m = re.match(r"egoflow (train|predict) (\S+)", c)
        if m:
            return m.group(2)
    return ""


def quick_form(r: Recipe) -> QuickForm:
    """The quick form of recipe ``r``; RecipeError when it has none."""
    from egoflow.heads.registry import get_spec, list_heads

    head = _head(r)
    needed = r.encoder.get("model") or r.needs.get("model", "")  # the recipe's encoder, else the one it needs
    model = TINY_MODEL[_family(needed)] if needed else ""
    label = f"{r.tag} (quick form, random init, not comparable to the paper's {r.target})"
    if head in ZERO_SHOT and "predict" in r.verbs and r.encoder.get("kind") == "fused":
        return QuickForm(r.tag, "predict", head, model, False, False, False, 0, label=label)
    if "train" not in r.verbs or head not in list_heads() or get_spec(head).demo is None:
        raise RecipeError(f"recipe {r.tag} has no quick form: it trains no head with a demo step and is no "
                          f"fused zero-shot predictor (head {head or '(none)'!r}; see egoflow.recipes.quick)")
    questions = head in QUESTION_HEADS and bool(r.needs.get("conditioned")) and bool(model)
    extract = questions or (bool(model) and "extract" in r.verbs and head in VIDEO_HEADS)
    conditioned = bool(r.head_overrides.get("conditioned") or r.needs.get("conditioned"))
    return QuickForm(r.tag, "train", head, model, extract, extract and head in TEXT_HEADS, extract and conditioned,
                     2, dict(TINY_EXTRA.get(head, {})), label)
