"""`egoflow deploy` (flows on a Prefect work pool) and `egoflow plan` (cost model before a big extraction)."""
from __future__ import annotations

import argparse
import json


def _pairs(items: list[str] | None, what: str) -> dict:
    out = {}
    for kv in items or []:
        if "=" not in kv:
            raise ValueError(f"{what} expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = v
    return out


def cmd_deploy(a) -> int:
    from egoflow.flows.deploy import ENTRYPOINTS, deploy_all

    env = _pairs(a.env, "--env")
    params = {k: _json_or_str(v) for k, v in _pairs(a.param, "--param").items()}
    bad = [n for n in a.names or [] if n not in ENTRYPOINTS]
    if bad:
        raise ValueError(f"unknown deployment(s) {bad}: choose from {sorted(ENTRYPOINTS)}")
    names = deploy_all(a.source, a.pool, a.names, branch=a.branch, job_variables={"env": env} if env else None,
                       parameters=params, create_pool=not a.no_create_pool)
    for n in names:
        print(f"deployed {n} on pool {a.pool}")
    if env:  # keys only: values may be credentials (use {{ prefect.blocks.secret.NAME }} references)
        print(f"  job env: {', '.join(sorted(env))}")
    print(f"start one worker per GPU:  CUDA_VISIBLE_DEVICES=0 prefect worker start --pool {a.pool} --limit 1")
    return 0


def _json_or_str(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def cmd_plan(a) -> int:
    from egoflow.extract.plan import format_plan, make_plan

    plan = make_plan(a.videos, model=a.model, fps=a.fps, workers=a.workers, gpus_per_worker=a.gpus_per_worker,
                     profile=a.profile, save_profile=a.save_profile, device=a.device, precision=a.precision,
                     batch_size=a.batch_size, shard_hours=a.shard_hours, total_hours=a.hours)
    print(json.dumps(plan, indent=1) if a.json else format_plan(plan))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="register egoflow's flows as deployments on a Prefect work pool")
    p.add_argument("--source", required=True,
                   help="where workers get the code: a git URL (cloned per run) or a checkout path present on "
                        "every worker")
    p.add_argument("--pool", required=True, help="work pool (created as a process pool if missing)")
    p.add_argument("--branch", default=None, help="git branch of --source")
    p.add_argument("--names", nargs="+", default=None,
                   help="deployments to register (default all: extract extract-parent train evaluate)")
    p.add_argument("--env", action="append", metavar="KEY=VALUE",
                   help="job environment, e.g. AWS_SECRET_ACCESS_KEY='{{ prefect.blocks.secret.aws-secret }}' "
                        "(a reference: the value is resolved on the worker and never logged)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="default parameter of the extract deployments (JSON values), e.g. "
                        "encoder='{\"model\": \"ViT-L-14\", \"pretrained\": \"openai\"}'")
    p.add_argument("--no-create-pool", action="store_true", help="fail if the pool does not exist")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("plan", help="cost model: sampled frames, decode and GPU hours, decoders per GPU, shards")
    p.add_argument("videos", nargs="+", help="video files, directories or .txt lists (durations are probed)")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--fps", type=float, default=1.875)
    p.add_argument("--workers", type=int, default=1, help="GPU workers to lay shards out for")
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--shard-hours", type=float, default=0.0, help="target hours per shard (default: 4 per worker)")
    p.add_argument("--hours", type=float, default=0.0,
                   help="plan for this many hours of video in total (e.g. 3670 for Ego4D), scaling the probed mix")
    p.add_argument("--profile", default=None, help="read per-frame costs from this JSON (e.g. from a GPU machine)")
    p.add_argument("--save-profile", default=None, help="write the measured per-frame costs to this JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)
