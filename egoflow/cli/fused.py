"""`egoflow info --encoder fused`: the fused backbone's cost report (egoflow/fused_cli.py)."""
from __future__ import annotations


def cmd_info(a) -> int:
    # imported here, as every verb's work: the fused backbone pulls in torch, which `egoflow --help` need not load
    from egoflow.fused_cli import cmd_info as run

    return run(a)


def register(sub) -> None:
    p = sub.add_parser("info", help="cost report of an encoder (fused: parameters, GMACs per window and query)")
    p.add_argument("--encoder", default="fused", choices=["fused"])
    p.add_argument("--model", default=None, help="fused model (default egovlpv2-base)")
    p.add_argument("--num-frames", type=int, default=16, help="frames per window F")
    p.add_argument("--text-tokens", type=int, default=16, help="tokens per query")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)
