"""Run egoflow's flows unchanged on many GPUs/nodes: pick a task runner, or deploy them on a work pool.

    from egoflow.extract.encoders import EncoderSpec
    from egoflow.flows.deploy import with_task_runner
    from egoflow.flows.extract import extract_flow
    if __name__ == "__main__":  # Dask/Ray start worker processes: a script needs this guard
        with_task_runner(extract_flow, "dask-cuda")(inputs=[...], store="s3://bucket/f.zarr",
                                                    encoder=EncoderSpec("fused", "egovlpv2-base", device="cuda"))

Deployments on a work pool: ``egoflow deploy --source GIT_URL_OR_PATH --pool POOL`` (what :func:`deploy_all`
does) or ``prefect deploy --all`` with ``prefect.yaml``. ``serve_all()`` is the no-infrastructure alternative.
"""
from __future__ import annotations

ENTRYPOINTS = {  # deployment name -> flow entrypoint, relative to the source's root
    "extract": "egoflow/flows/extract.py:extract_flow",
    "extract-parent": "egoflow/flows/parent.py:extract_parent_flow",
    "train": "egoflow/flows/train.py:train_flow",
    "evaluate": "egoflow/flows/evaluate.py:evaluate_flow",
}


def make_task_runner(kind: str = "thread", *, max_workers: int | None = None, address: str | None = None,
                     cluster_class: str | None = None, cluster_kwargs: dict | None = None,
                     init_kwargs: dict | None = None, **kw):
    """A Prefect task runner:

    - ``thread``: Prefect's thread pool (``max_workers``);
    - ``dask``: ``prefect_dask.DaskTaskRunner``: attach to a running scheduler (``address="tcp://host:8786"``)
      or start ``cluster_class`` (default ``distributed.LocalCluster``) with ``cluster_kwargs`` (legacy: any
      other keyword, e.g. ``n_workers=4``);
    - ``dask-cuda``: a ``dask_cuda.LocalCUDACluster``, one worker per GPU, each with its own CUDA_VISIBLE_DEVICES;
    - ``ray``: ``prefect_ray.RayTaskRunner`` (``address`` of a Ray cluster, ``init_kwargs``); give each video a
      GPU with the extract flow's ``gpus_per_video=1``.
    """
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max_workers)
    if kind in ("dask", "dask-cuda"):
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise ImportError("the dask task runner needs `pip install egoflow[dask]`") from e
        if address:
            return DaskTaskRunner(address=address)
        if kind == "dask-cuda":
            try:
                import dask_cuda  # noqa: F401
            except ImportError as e:
                raise ImportError("the dask-cuda task runner needs `pip install egoflow[dask-cuda]` "
                                  "(dask-cuda, on a machine with NVIDIA GPUs)") from e
            cluster_class = "dask_cuda.LocalCUDACluster"
        return DaskTaskRunner(cluster_class=cluster_class or "distributed.LocalCluster",
                              cluster_kwargs={**kw, **(cluster_kwargs or {})})
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as e:
            raise ImportError("the ray task runner needs `pip install egoflow[ray]`") from e
        return RayTaskRunner(address=address, init_kwargs=init_kwargs)
    raise ValueError(f"unknown task runner {kind!r}: use thread, dask, dask-cuda or ray")


def with_task_runner(flow, kind: str = "thread", **kw):
    """The same flow with another task runner (one task per video/head is what gets distributed)."""
    return flow.with_options(task_runner=make_task_runner(kind, **kw))


def _flow(name: str):
    from importlib import import_module

    path, attr = ENTRYPOINTS[name].split(":")
    return getattr(import_module(path.removesuffix(".py").replace("/", ".")), attr)


def ensure_pool(pool: str, pool_type: str = "process") -> bool:
    """Create work pool ``pool`` if it does not exist (what ``prefect work-pool create POOL --type process``
    does); return True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type=pool_type))
            return True


def deploy_all(source: str, pool: str, names: list[str] | None = None, branch: str | None = None,
               job_variables: dict | None = None, parameters: dict | None = None, create_pool: bool = True,
               ) -> list[str]:
    """Register deployments of the flows on ``pool``; return their ``flow/deployment`` names.

    ``source``: where workers get the code, the deployment's pull step: a git URL (``git_clone``; ``branch``)
    or a path that exists on every worker (``set_working_directory``). ``job_variables``: e.g.
    ``{"env": {"AWS_ACCESS_KEY_ID": "{{ prefect.blocks.secret.aws-key }}"}}``: credentials by reference, so
    their values are neither stored in the deployment nor logged.
    """
    from prefect import Flow

    if not source:
        raise ValueError("deploy needs --source: a git URL or a path that exists on every worker")
    if "://" not in source and not source.endswith(".git"):
        from pathlib import Path

        if not (Path(source) / ENTRYPOINTS["extract"].split(":")[0]).is_file():
            raise FileNotFoundError(f"--source {source}: no egoflow checkout there (missing "
                                    f"{ENTRYPOINTS['extract'].split(':')[0]})")
        source = str(Path(source).resolve())
    elif branch:
        from prefect.runner.storage import GitRepository

        source = GitRepository(url=source, branch=branch)
    if create_pool:
        ensure_pool(pool)
    out = []
    for name in names or list(ENTRYPOINTS):
        f = Flow.from_source(source=source, entrypoint=ENTRYPOINTS[name])
        f.deploy(name=name, work_pool_name=pool, job_variables=job_variables or {},
                 parameters=(parameters or {}) if name.startswith("extract") else {}, build=False, push=False,
                 print_next_steps=False)
        out.append(f"{f.name}/{name}")
    return out


def serve_all() -> None:  # pragma: no cover - blocks forever by design
    """Serve every flow from this process; names get a ``serve-`` prefix so they never replace the work-pool
    deployments of ``deploy_all`` / prefect.yaml (same flow, same deployment name would be one deployment)."""
    from prefect import serve

    serve(*served_deployments())


def served_deployments() -> list:
    """One ``serve-<name>`` deployment per flow (for ``serve_all``)."""
    return [_flow(n).to_deployment(f"serve-{n}") for n in ENTRYPOINTS]
