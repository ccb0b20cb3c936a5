"""What ``egoflow recipes`` (list) and ``egoflow recipes show NAME`` print (every setting in three columns);
the verb's arguments are in ``egoflow/cli/recipes.py``."""
from __future__ import annotations

import json
import textwrap
from dataclasses import asdict

from egoflow.recipes import get_recipe, list_recipes


def format_recipe(name: str, width: int = 38) -> str:
    r = get_recipe(name)
    lines = [f"{r.tag}: {r.paper}", f"target: {r.target}", f"verbs: {', '.join(r.verbs)}"
             + (f"   head: {r.head}" if r.head else "") + (f"   checkpoint: {r.checkpoint}" if r.checkpoint else ""),
             ""]
    cols = ("setting", "paper", "reference (repo@commit:file)", "egoflow")
    rows = [(s.name, s.paper, f"{s.reference} [{s.source}]", s.egoflow) for s in r.settings]
    w = (18, width, width + 14, width)
    lines.append(" | ".join(c.ljust(k) for c, k in zip(cols, w)).rstrip())
    lines.append("-+-".join("-" * k for k in w))
    for row in rows:
        wrapped = [textwrap.wrap(c, k) or [""] for c, k in zip(row, w)]
        for i in range(max(map(len, wrapped))):
            lines.append(" | ".join((c[i] if i < len(c) else "").ljust(k) for c, k in zip(wrapped, w)).rstrip())
    if r.head_overrides or r.train or r.train_config:
        lines += ["", f"head overrides: {json.dumps(r.head_overrides)}   train: "
                  f"{json.dumps({**r.train, **r.train_config})}"]
    if r.needs:
        lines += ["", f"fits feature / text sets with: {json.dumps(r.needs)} (checked by train / predict)"]
    if r.differs:
        lines += ["", "still differs:"] + [f"  - {d}" for d in r.differs]
    lines += ["", "end to end:"] + [f"  {c}" for c in r.commands]
    return "\n".join(lines)


def format_markdown(name: str) -> str:
    """The recipe as a docs/recipes.md section (the page embeds this output verbatim; a test keeps it in sync)."""
    r = get_recipe(name)

    def cell(t: str) -> str:
        return t.replace("|", "\\|")

    out = [f"### `{r.tag}`", "", f"{r.paper}. **Target:** {r.target}.", "",
           f"Verbs: {', '.join(r.verbs)}" + (f"; head `{r.head}`" if r.head else "")
           + (f"; checkpoint `{r.checkpoint}`" if r.checkpoint else "") + ".", "",
           "| setting | paper | reference | where (repo@commit:file) | egoflow |", "|---|---|---|---|---|"]
    out += [f"| {cell(s.name)} | {cell(s.paper)} | {cell(s.reference)} | {cell(s.source)} | {cell(s.egoflow)} |"
            for s in r.settings]
    if r.head_overrides or r.train or r.train_config:
        out += ["", f"Head overrides `{json.dumps(r.head_overrides)}`, schedule "
                f"`{json.dumps({**r.train, **r.train_config})}`."]
    if r.differs:
        out += ["", "Still differs:", ""] + [f"- {d}" for d in r.differs]
    out += ["", "```"] + list(r.commands) + ["```"]
    return "\n".join(out)


def cmd_recipes(a) -> int:
    if a.action == "show":
        if not a.name:
            raise ValueError(f"egoflow recipes show NAME: name one of {', '.join(list_recipes())}")
        if a.markdown:
            print(format_markdown(a.name))
        else:
            print(json.dumps(asdict(get_recipe(a.name)), indent=1) if a.json else format_recipe(a.name))
        return 0
    rs = [get_recipe(n) for n in list_recipes()]
    w = max(len(r.tag) for r in rs)  # one column however long a name gets
    for r in rs:
        print(f"{r.tag:{w}s} {'|'.join(r.verbs):34s} {r.target}")
    return 0

