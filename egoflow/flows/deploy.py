"""Run egoflow's flows unchanged on many GPUs/nodes: pick a task runner, or serve/deploy them.

    from egoflow.flows.deploy import with_task_runner
    from egoflow.flows.extract import extract_flow
    with_task_runner(extract_flow, "dask", n_workers=4)(inputs=[...], store="s3://bucket/f.zarr", device="cuda")

Deployments on a worker pool are declared in ``prefect.yaml`` at the repository root (``prefect deploy --all``);
``serve_all()`` is the no-infrastructure alternative: a long-running process that executes scheduled runs.
"""
from __future__ import annotations


def make_task_runner(kind: str = "thread", **kw):
    """``thread`` (Prefect default), ``dask`` (needs prefect-dask) or ``ray`` (needs prefect-ray)."""
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=kw.get("max_workers"))
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise ImportError("the dask task runner needs `pip install egoflow[dask]`") from e
        return DaskTaskRunner(cluster_kwargs=kw) if kw else DaskTaskRunner()
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as e:
            raise ImportError("the ray task runner needs `pip install egoflow[ray]`") from e
        return RayTaskRunner(**kw)
    raise ValueError(f"unknown task runner {kind!r}: use thread, dask or ray")


def with_task_runner(flow, kind: str = "thread", **kw):
    """The same flow with another task runner (one task per video/head is what gets distributed)."""
    return flow.with_options(task_runner=make_task_runner(kind, **kw))


def serve_all() -> None:  # pragma: no cover - blocks forever by design
    from prefect import serve

    from egoflow.flows.evaluate import evaluate_flow
    from egoflow.flows.extract import extract_flow
    from egoflow.flows.train import train_flow

    serve(extract_flow.to_deployment("extract"), train_flow.to_deployment("train"),
          evaluate_flow.to_deployment("evaluate"))
