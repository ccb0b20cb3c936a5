"""`egoflow search "text" --store S --feature-set F -k 10 [--out DIR]` (the search itself: egoflow/search_cli.py)."""
from __future__ import annotations

from egoflow.cli.args import add_storage_args
from egoflow.search_cli import cmd_search


def register(sub) -> None:
    p = sub.add_parser("search", help="natural-language moment search over a store (+ contact sheet)")
    p.add_argument("query", help='e.g. "where did I leave the keys"')
    p.add_argument("--store", required=True)
    p.add_argument("--feature-set", required=True)
    p.add_argument("-k", type=int, default=10, help="hits (steps) to return")
    p.add_argument("--out", default=None, help="folder for search.json and the contact sheet search.png")
    p.add_argument("--merge-gap", type=float, default=None, help="merge hits of a video this close (s; default "
                   "two steps)")
    p.add_argument("--model", default=None, help="open_clip text tower (default: the feature set's extractor)")
    p.add_argument("--pretrained", default=None, help="its weights (default: the feature set's extractor)")
    p.add_argument("--index", default=None, help="saved index folder (default: <store>.index/<feature set>)")
    p.add_argument("--rebuild-index", action="store_true", help="rebuild the index even if a fresh one exists")
    p.add_argument("--exact", action="store_true", help="exact (flat) index even for a large set (default: "
                   "approximate IVF-PQ with exact re-ranking from 50 k steps, docs/search.md)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (text tower and faiss)")
    add_storage_args(p)
    p.set_defaults(func=cmd_search)
