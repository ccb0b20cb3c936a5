"""Does a feature set (and text set) fit a recipe? ``Recipe.needs`` against the store's own record of how the
sets were made, before anything trains: one line naming the recipe, the set, what it needs and what the set has.

    check_fit(get_recipe("egovlpv2-nlq"), store, "F", "T")   # RecipeError: recipe egovlpv2-nlq@2 does not fit ...

``needs`` keys (all optional; an empty dict checks nothing):
    encoder        the extractor kind the features come from ("fused"; an open_clip set records "open_clip")
    model          the model family the extractor's model name starts with ("egovlpv2-")
    dim            the feature width
    conditioned    True: a query-conditioned set (one sequence per clip and query, ``extract --queries``)
    text_tokens    True: the text set holds token sequences, not only pooled vectors
    text_dim       the text set's width
"""
from __future__ import annotations

from egoflow.recipes.spec import Recipe, RecipeError

NEEDS_KEYS = ("encoder", "model", "dim", "conditioned", "text_tokens", "text_dim")


def _video_has(info: dict) -> list[str]:
    """What a feature set is, from its info: extractor kind and model, width, conditioned, recipe tag."""
    ext = info.get("extractor") or {}
    kind = ext.get("encoder") or ext.get("kind") or ext.get("name") or "unknown extractor"
    has = [f"{kind} {ext.get('model', '')}".strip() + " features", f"width {info.get('dim')}",
           "query-conditioned" if ext.get("conditioned") else "not query-conditioned"]
    if ext.get("recipe"):
        has.append(f"made with recipe {ext['recipe']}")
    return has


def misfit(needs: dict, info: dict, text_info: dict | None, text_tokens: bool | None) -> tuple[list, list]:
    """(what is missing, what the sets have): empty when the feature set (``store.feature_set_info``) and the
    text set (``store.text_set_info``, whether it has tokens) meet ``needs``."""
    bad = sorted(set(needs) - set(NEEDS_KEYS))
    if bad:
        raise ValueError(f"unknown recipe needs {bad}; known: {list(NEEDS_KEYS)}")
    ext = info.get("extractor") or {}
    kind = ext.get("encoder") or ext.get("kind") or ext.get("name")
    missing = []
    if needs.get("encoder") and kind != needs["encoder"]:
        missing.append(f"{needs['encoder']} features")
    if needs.get("model") and not str(ext.get("model", "")).startswith(needs["model"]):
        missing.append(f"the {needs['model'].rstrip('-')} model family")
    if needs.get("dim") and int(info.get("dim") or 0) != int(needs["dim"]):
        missing.append(f"width {needs['dim']}")
    if needs.get("conditioned") and not ext.get("conditioned"):
        missing.append("a query-conditioned set (extract --queries)")
    has = _video_has(info)
    if needs.get("text_tokens") or needs.get("text_dim"):
        if text_info is None:
            missing.append("a text set")
            has.append("no text set")
        else:
            if needs.get("text_tokens") and not text_tokens:
                missing.append("a text set with token sequences (encode-text with tokens)")
            if needs.get("text_dim") and int(text_info.get("dim") or 0) != int(needs["text_dim"]):
                missing.append(f"text width {needs['text_dim']}")
            has.append(f"text set {'with' if text_tokens else 'without'} token sequences, width "
                       f"{text_info.get('dim')}")
    return missing, has


def check_fit(r: Recipe, store, feature_set: str | None, text_set: str | None = None) -> None:
    """RecipeError (one line) when ``feature_set`` / ``text_set`` of ``store`` do not meet ``r.needs``. No feature
    set given: nothing to check (the verb's own checks report it). No text set given: the store's only one."""
    if not r.needs or not feature_set or feature_set not in store.feature_sets():
        return  # a missing set is the head's error to report, with the sets the store has
    texts = store.text_sets()
    if text_set is None and len(texts) == 1:
        text_set = texts[0]
    text_info = tokens = None
    if text_set in texts:
        text_info, tokens = store.text_set_info(text_set), store.text_set_has_tokens(text_set)
    missing, has = misfit(r.needs, store.feature_set_info(feature_set), text_info, tokens)
    if missing:
        where = f"feature set {feature_set}" + (f" / text set {text_set}" if text_info is not None else "")
        raise RecipeError(f"recipe {r.tag} does not fit {where}: it needs {', '.join(missing)}; "
                          f"{feature_set} has {', '.join(has)}")
