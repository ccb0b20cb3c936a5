"""``--recipe NAME`` on a parsed command line: fill every setting the user did not give, say in one line what an
explicit flag changes, refuse flags that contradict the recipe.

The encoder settings that have no flag (frame rule, transform, pre-resize, feature, text tokens, recipe tag)
go to ``args.encoder_extras`` for the encoder factory.
"""
from __future__ import annotations

import json
import sys

from egoflow.recipes.spec import Recipe, RecipeError, get_recipe

SPEC_TO_DEST = {"kind": "encoder", "model": "model", "frames": "frames", "precision": "precision"}
FLAG_ALIASES = {"--frames": ("--window", "--num-frames")}  # old spellings of one flag (egoflow.cli.args)
EXTRA_KEYS = ("frame_rule", "transform", "pre_resize", "window_rate", "tail", "feature", "text_tokens")


def explicit_flags(argv: list[str]) -> dict[str, str]:
    """``{"--flag": raw value}`` of the options written on the command line (``--x v`` and ``--x=v``; an old
    spelling counts as its flag)."""
    alias = {old: new for new, olds in FLAG_ALIASES.items() for old in olds}
    out = {}
    for i, tok in enumerate(argv):
        if tok.startswith("--"):
            name, eq, val = tok.partition("=")
            out[alias.get(name, name)] = val if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    return out


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _family(model: str) -> str:
    """Models of one family share an architecture and a checkpoint format (sizes may differ: a departure);
    another family contradicts the recipe. Every open_clip model is one family."""
    for fam in ("egovlpv2-", "egovlp-", "clip-fused-"):
        if model.startswith(fam):
            return fam
    return "open_clip"


def _value(raw: str):
    """A ``--set`` value as the train verb reads it (JSON, else the string)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def recipe_values(r: Recipe, verb: str) -> dict:
    """{argparse dest: value} the recipe sets for ``verb``."""
    vals = {SPEC_TO_DEST[k]: v for k, v in r.encoder.items() if k in SPEC_TO_DEST}
    vals.update(r.options)
    if verb == "train":
        vals.update(r.train)
    return vals


def apply(args, argv: list[str]) -> Recipe | None:
    """Apply ``args.recipe`` (if any) to ``args`` in place; returns the recipe."""
    name = getattr(args, "recipe", None)
    if not name:
        return None
    r = get_recipe(name)
    verb = getattr(args, "command", "")
    if verb not in r.verbs:
        raise RecipeError(f"recipe {r.tag} is for `egoflow {'|'.join(r.verbs)}`, not `egoflow {verb}`")
    head = getattr(args, "head", None)
    if verb in ("predict", "train") and r.head and head and head != r.head:
        raise RecipeError(f"recipe {r.tag} is for `egoflow {verb} {r.head}`, not `egoflow {verb} {head}`")
    given = explicit_flags(argv)
    differs = []
    for dest, want in recipe_values(r, verb).items():
        if not hasattr(args, dest):
            continue
        flag = _flag(dest)
        if flag not in given:
            setattr(args, dest, want)
            continue
        have = getattr(args, dest)
        if have == want:
            continue
        if dest == "encoder" or (dest == "model" and _family(str(have)) != _family(str(want))):
            raise RecipeError(f"{flag} {have} contradicts recipe {r.tag}, which uses {flag} {want}")
        differs.append(f"{flag} {have} (recipe: {want})")
    tag = r.tag + (" with " + ", ".join(d.split(" (")[0] for d in differs) if differs else "")
    # EncoderSpec field names: EncoderSpec(**flags, **args.encoder_extras) is the recipe's spec
    args.encoder_extras = {k: r.encoder[k] for k in EXTRA_KEYS if k in r.encoder and r.encoder[k]}
    args.encoder_extras["recipe"] = tag
    if verb == "train":
        args.train_config = dict(r.train_config)  # TrainConfig fields without a flag (cli.heads.cmd_train)
    if verb == "train" and r.head_overrides:
        mine = dict(s.split("=", 1) for s in (getattr(args, "set", None) or []) if "=" in s)
        differs += [f"--set {k}={v} (recipe: {json.dumps(r.head_overrides[k])})" for k, v in mine.items()
                    if k in r.head_overrides and _value(v) != json.loads(json.dumps(r.head_overrides[k]))]
        args.set = [f"{k}={json.dumps(v)}" for k, v in r.head_overrides.items() if k not in mine] + \
                   list(getattr(args, "set", None) or [])
    if differs:
        print(f"recipe {r.tag}: {'; '.join(differs)} differ from the recipe", file=sys.stderr)
    return r
