"""`egoflow recipes [show NAME]`: the named paper/reference settings (egoflow.recipes)."""
from __future__ import annotations


def cmd_recipes(a) -> int:
    # imported here: the head recipes read the heads' reference settings (torch), which other verbs need not load
    from egoflow.recipes.show import cmd_recipes as run

    return run(a)


def register(sub) -> None:
    p = sub.add_parser("recipes", help="named paper/reference settings (list, or `show NAME`)")
    p.add_argument("action", nargs="?", default="list", choices=["list", "show"])
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--json", action="store_true", help="show: the recipe as JSON")
    p.add_argument("--markdown", action="store_true", help="show: the recipe as a docs/recipes.md section")
    p.set_defaults(func=cmd_recipes)
