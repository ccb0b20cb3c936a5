"""Every registered recipe has a quick form (egoflow.recipes.quick): the demo's row for it, derived from its verbs,
head and encoder family; a recipe without one fails here (add its head's line to egoflow.recipes.quick)."""
import pytest

from egoflow.recipes import Recipe, RecipeError, get_recipe, list_recipes
from egoflow.recipes.quick import TINY_MODEL, quick_form


@pytest.mark.parametrize("name", list_recipes())
def test_every_registered_recipe_has_a_quick_form(name):
    r = get_recipe(name)
    qf = quick_form(r)  # RecipeError: no quick form
    assert qf.verb in r.verbs and qf.recipe == r.tag
    assert "quick form, random init, not comparable to the paper's" in qf.label and r.target in qf.label
    if r.encoder.get("model"):  # a tiny model of the same family
        assert qf.model in TINY_MODEL.values() and "tiny" in qf.model
        assert qf.model.split("-")[0] == r.encoder["model"].split("-")[0] or r.encoder.get("kind", "clip") == "clip"
    if qf.verb == "train":
        assert 1 <= qf.epochs <= 2


def test_derivation_by_family_verbs_and_head():
    nlq, mq = quick_form(get_recipe("egovlpv2-nlq")), quick_form(get_recipe("egovlpv2-mq"))
    assert (nlq.head, nlq.model, nlq.extract, nlq.encode_text, nlq.queries) == ("vslnet", "egovlpv2-tiny", True, True,
                                                                               True)
    assert (mq.head, mq.extract, mq.encode_text, mq.queries) == ("vsgn", True, False, False)
    # equal encoder settings share one extraction (egovlp-nlq's text tokens change only its text set)
    a, b = get_recipe("egovlp-nlq"), get_recipe("egovlp-mq")
    assert quick_form(a).extract_key(a) == quick_form(b).extract_key(b)
    assert quick_form(a).text_key(a) != quick_form(get_recipe("egovlpv2-nlq")).text_key(get_recipe("egovlpv2-nlq"))
    clip = quick_form(get_recipe("ego4d-clip-1.875fps"))  # no head field: the one its commands train
    assert (clip.head, clip.model, clip.verb) == ("vslnet", "egoflow-tiny-ViT", "train")
    mcq = quick_form(get_recipe("egovlpv2-egomcq"))
    assert (mcq.verb, mcq.head, mcq.extract) == ("predict", "egomcq", False)
    head_only = quick_form(get_recipe("ego4d-vsgn"))  # a head recipe: the demo's own features
    assert (head_only.model, head_only.extract) == ("", False)
    # a head recipe that needs query-conditioned fused features: the tiny model of the family it needs extracts
    # the demo videos per question (a plain set would be refused by the recipe's fit check)
    qa = quick_form(get_recipe("egovlpv2-egotaskqa"))
    assert (qa.model, qa.extract, qa.queries, qa.encode_text) == ("egovlpv2-tiny", True, True, False)
    assert qa.extract_key(get_recipe("egovlpv2-egotaskqa")) != nlq.extract_key(get_recipe("egovlpv2-nlq"))
    # a paper network size (t5-large) gives way to the demo step's tiny widths
    assert quick_form(get_recipe("videotranslate-paper")).head_overrides == {"size": ""}


def test_a_recipe_without_a_quick_form_is_refused():
    r = Recipe(name="x-extract-only", version=1, paper="p", target="t", verbs=("extract",), settings=(),
               encoder={"kind": "clip", "model": "ViT-B-32"})
    with pytest.raises(RecipeError, match="x-extract-only@1 has no quick form"):
        quick_form(r)
    r = Recipe(name="x-no-demo", version=1, paper="p", target="t", verbs=("predict",), settings=(),
               head="translate-egomcq")
    with pytest.raises(RecipeError, match="no quick form"):
        quick_form(r)
