"""Prefect 3 flow for extraction: one task per video, a bounded number in flight, retries for transient errors.

Runs locally with no server (Prefect's ephemeral mode) and, unchanged, as a deployment on a GPU worker pool
(one flow run per shard, started by :mod:`egoflow.flows.parent`); pass a Dask or Ray task runner
(:func:`egoflow.flows.deploy.make_task_runner`) to spread one run's videos over GPUs. Each task calls
:func:`egoflow.extract.pipeline.extract_one`, the same function the CLI loop calls; the device comes from
:func:`egoflow.flows.placement.worker_device` and the encoder is loaded once per worker process
(``create_encoder`` caches it by config).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed

from egoflow.extract.pipeline import (
    TRANSIENT,
    ExtractConfig,
    Summary,
    VideoResult,
    discover,
    extract_one,
    prepare,
    shard,
)
from egoflow.features_store.remote import open_store
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


def _make_encoder(encoder_kw: dict):
    """Frozen CLIP, or the fused backbone when ``encoder_kw["kind"] == "fused"`` (cached per process either way)."""
    kw = dict(encoder_kw)
    if kw.pop("kind", "clip") == "fused":
        from egoflow.extract.fused.encoder import create_fused_encoder

        return create_fused_encoder(**kw)
    from egoflow.extract.clip import create_encoder

    return create_encoder(**kw)


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_retry_transient,
      task_run_name="extract-{path}")
def extract_video_task(path: str, store_url: str, feature_set: str, encoder_kw: dict, cfg: dict,
                       storage_options: dict | None = None) -> dict:
    # resolved here, on the worker: a Dask/Ray worker's GPU is not the flow process's
    encoder = _make_encoder({**encoder_kw, "device": worker_device(encoder_kw.get("device", "auto"))})
    r = extract_one(path, open_store(store_url, storage_options=storage_options), feature_set, encoder,
                    ExtractConfig(**cfg))
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
def extract_flow(inputs: list[str], store: str, model: str = "ViT-B-32", pretrained: str = "none",
                 precision: str = "auto", device: str = "auto", batch_size: int = 64, fps: float = 1.875,
                 window: int = 0, stride: int = 0, backend: str = "auto", feature_set: str | None = None,
                 shard_spec: str | None = None, force: bool = False, in_flight: int = 0, pack: bool = True,
                 storage_options: dict | None = None, gpus_per_video: float = 0.0, encoder: str = "clip",
                 tokenizer: str = "", num_frames: int = 16, fusion_checkpoint: str = "") -> dict:
    """Extract ``inputs`` (files, directories, list files) into ``store``; returns the summary as a dict.

    ``in_flight``: videos decoded/encoded at once (0: :func:`videos_in_flight`'s default). ``pack=False`` for a
    shard of a larger run (the parent flow packs once at the end). ``storage_options``: fsspec options for the
    store (no secrets: they would be stored with the run's parameters; credentials come from the worker's
    environment). ``gpus_per_video``: Ray ``num_gpus`` per task (ignored by other runners).
    ``encoder="fused"``: the fused backbone's dual window features (``tokenizer``, ``num_frames``,
    ``fusion_checkpoint`` as ``egoflow extract --encoder fused``).
    """
    enc_kw = {"model": model, "pretrained": pretrained, "precision": precision, "device": device,
              "batch_size": batch_size}
    if encoder == "fused":
        enc_kw.update(kind="fused", tokenizer=tokenizer, num_frames=num_frames, batch_size=min(batch_size, 8),
                      fusion_checkpoint=fusion_checkpoint)
    cfg = ExtractConfig(fps=fps, window=window, stride=stride, backend=backend, force=force)
    # the flow process's own encoder (same resolved device as its thread-runner tasks: one model per process)
    st, name = prepare(open_store(store, storage_options=storage_options),
                       _make_encoder({**enc_kw, "device": worker_device(device)}), cfg, feature_set)
    paths, problems = discover(inputs)  # unreadable folders, broken links, uid clashes: failures, not a crash
    paths, problems = shard(paths, shard_spec), shard(problems, shard_spec)
    limit = videos_in_flight(in_flight)
    t0 = time.perf_counter()
    with _gpu_options(gpus_per_video):
        results = list(bounded(lambda p: extract_video_task.submit(str(p), store, name, enc_kw, asdict(cfg),
                                                                   storage_options), paths, limit))
    order = {str(p): i for i, p in enumerate(paths)}  # report in input order, not completion order
    results.sort(key=lambda r: order.get(r["path"], len(order)))
    summary = Summary(list(problems) + [VideoResult(**r) for r in results], time.perf_counter() - t0)
    if pack and summary.count("done"):
        st.pack(name)  # one contiguous copy so heads load the set fast (a cache; per-video groups stay the truth)
    print(f"{summary.line()} | {limit} videos in flight")
    return {"feature_set": name, "line": summary.line(), "ok": summary.ok,
            "results": [asdict(r) for r in summary.results]}
