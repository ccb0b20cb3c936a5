"""Prefect 3 flow for extraction: one task per video, a bounded number in flight, retries for transient errors.

    extract_flow(["/data/videos"], "s3://bucket/f.zarr", EncoderSpec("fused", "egovlpv2-base", "EgoVLPv2.pth"),
                 ExtractConfig(fps=30, stride=16))

Runs locally with no server (Prefect's ephemeral mode) and, unchanged, as a deployment on a GPU worker pool
(one flow run per shard, started by :mod:`egoflow.flows.parent`); pass a Dask or Ray task runner
(:func:`egoflow.flows.deploy.make_task_runner`) to spread one run's videos over GPUs. The encoder is one
parameter, an :class:`~egoflow.extract.encoders.EncoderSpec` (frozen CLIP or the fused backbone; Prefect stores it
as JSON and rebuilds it on the worker); ``queries`` switches to query-conditioned features (fused). Each task
calls :func:`egoflow.extract.pipeline.extract_one` (or ``extract_conditioned_one``), the functions the CLI loop
calls, with the spec on the device :func:`egoflow.flows.placement.worker_device` picks for *its* process; the
encoder is loaded once per worker process (``encoders.create`` caches it by spec).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed

from egoflow.extract.encoders import FROZEN_CLIP, EncoderSpec, create
from egoflow.extract.pipeline import (
    TRANSIENT,
    ExtractConfig,
    Summary,
    VideoResult,
    discover,
    extract_one,
    prepare,
    shard,
    video_uid,
    with_frames,
)
from egoflow.extract.query import extract_conditioned_one, prepare_conditioned, queries_for
from egoflow.features_store.remote import open_store
from egoflow.flows.heartbeat import beating
from egoflow.flows.placement import videos_in_flight, worker_device


def _retry_transient(task, task_run, state) -> bool:
    """Retry only connection/timeout errors (e.g. a remote store hiccup), never a corrupt video."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


def on_this_worker(spec: EncoderSpec) -> EncoderSpec:
    """The spec on the device this process takes (a Dask/Ray worker's GPU is not the flow process's)."""
    return spec.with_device(worker_device(spec.device))


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_retry_transient,
      task_run_name="extract-{path}")
def extract_video_task(path: str, store_url: str, feature_set: str, encoder: EncoderSpec, options: ExtractConfig,
                       queries: list[str] | None = None, storage_options: dict | None = None) -> dict:
    """One video: window/frame features, or (``queries`` not None) its query-conditioned features."""
    st = open_store(store_url, storage_options=storage_options)
    spec = on_this_worker(encoder)
    if queries is None:
        r = extract_one(path, st, feature_set, spec, options)
    else:
        r = extract_conditioned_one(path, st, feature_set, spec, queries, options)
    if r.status == "failed":
        get_run_logger().warning(f"{r.video_uid} failed at {r.stage}: {r.reason}")
    return asdict(r)


def bounded(submit: Callable, items: Iterable, limit: int) -> Iterator:
    """``submit(item)`` for every item with at most ``limit`` futures pending; yields results as they finish.

    Submitting every video at once makes every decoder start at once (memory grows with the number of videos);
    this keeps ``limit`` in flight whatever the task runner.
    """
    pending = []
    for item in items:
        if len(pending) >= limit:
            done = next(as_completed(pending))
            pending.remove(done)
            yield done.result()
        pending.append(submit(item))
    for f in as_completed(pending):
        yield f.result()


def _gpu_options(gpus_per_video: float):
    """Ray resources per task (``num_gpus``: Ray then sets the task's CUDA_VISIBLE_DEVICES) when on Ray."""
    from contextlib import nullcontext

    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if gpus_per_video and ctx and type(ctx.task_runner).__name__ == "RayTaskRunner":
        from prefect_ray.context import remote_options

        return remote_options(num_gpus=gpus_per_video)
    return nullcontext()


@flow(name="egoflow-extract", log_prints=True)
def extract_flow(inputs: list[str], store: str, encoder: EncoderSpec = FROZEN_CLIP,
                 options: ExtractConfig | None = None, feature_set: str | None = None,
                 queries: dict[str, list[str]] | list[str] | None = None, shard_spec: str | None = None,
                 in_flight: int = 0, pack: bool = True, storage_options: dict | None = None,
                 gpus_per_video: float = 0.0, heartbeat_s: float = 0.0) -> dict:
    """Extract ``inputs`` (files, directories, list files) into ``store`` with ``encoder``; the summary as a dict.

    ``options``: fps, stride, backend, force (the window is ``encoder.frames``). ``queries``: query-conditioned
    features for these queries (``{video_uid: [query]}``, or one list for every video; fused encoder).
    ``shard_spec``: ``I/N``, this worker's share. ``in_flight``: videos decoded/encoded at once (0:
    :func:`videos_in_flight`'s default). ``pack=False`` for a shard of a larger run (the parent flow packs once).
    ``storage_options``: fsspec options for the store (no secrets: they would be stored with the run's
    parameters; credentials come from the worker's environment). ``gpus_per_video``: Ray ``num_gpus`` per task
    (ignored by other runners). ``heartbeat_s``: emit this run's heartbeat that often (the parent's stall check).
    """
    with beating(heartbeat_s):
        cfg = with_frames(encoder, options or ExtractConfig())
        st = open_store(store, storage_options=storage_options)
        # the flow process's own encoder (same resolved device as its thread-runner tasks: one model per process)
        if queries is None:
            st, name = prepare(st, create(on_this_worker(encoder)), cfg, feature_set)
        else:
            st, name = prepare_conditioned(st, on_this_worker(encoder), cfg, feature_set)
        paths, problems = discover(inputs)  # unreadable folders, broken links, uid clashes: failures, not a crash
        paths, problems = shard(paths, shard_spec), shard(problems, shard_spec)
        limit = videos_in_flight(in_flight)
        t0 = time.perf_counter()

        def submit(p):
            qs = None if queries is None else queries_for(queries, video_uid(p))
            return extract_video_task.submit(str(p), store, name, encoder, cfg, qs, storage_options)

        with _gpu_options(gpus_per_video):
            results = list(bounded(submit, paths, limit))
        order = {str(p): i for i, p in enumerate(paths)}  # report in input order, not completion order
        results.sort(key=lambda r: order.get(r["path"], len(order)))
        summary = Summary(list(problems) + [VideoResult(**r) for r in results], time.perf_counter() - t0)
        if pack and queries is None and summary.count("done"):  # (conditioned sets are read per (clip, query))
            st.pack(name)  # one contiguous copy so heads load the set fast (a cache; per-video groups stay the truth)
        print(f"{summary.line()} | {limit} videos in flight")
    return {"feature_set": name, "line": summary.line(), "ok": summary.ok,
            "results": [asdict(r) for r in summary.results]}
