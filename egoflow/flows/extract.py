"""Prefect 3 flow for extraction: one task per video, retries for transient errors only.

Runs locally with no server (Prefect's ephemeral mode) and, unchanged, as a deployment on a GPU worker pool;
pass a Dask or Ray task runner (``prefect-dask`` / ``prefect-ray``) to spread videos over GPUs and nodes. Each
task calls :func:`egoflow.extract.pipeline.extract_one`, the same function the CLI loop calls; the encoder is
loaded once per worker process (``create_encoder`` caches it).
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow, get_run_logger, task

from egoflow.extract.pipeline import (TRANSIENT, ExtractConfig, Summary, VideoResult, discover, extract_one,
                                      prepare, shard)
from egoflow.features_store import FeatureStore


def _retry_transient(task, task_run, state) -> bool:
    """Retry only connection/timeout errors (e.g. a remote store hiccup), never a corrupt video."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_retry_transient,
      task_run_name="extract-{path}")
def extract_video_task(path: str, store_url: str, feature_set: str, encoder_kw: dict, cfg: dict) -> dict:
    from egoflow.extract.clip import create_encoder

    encoder = create_encoder(**encoder_kw)
    r = extract_one(path, FeatureStore(store_url), feature_set, encoder, ExtractConfig(**cfg))
    if r.status == "failed":
        get_run_logger().warning(f"{r.video_uid} failed at {r.stage}: {r.reason}")
    return asdict(r)


@flow(name="egoflow-extract", log_prints=True)
def extract_flow(inputs: list[str], store: str, model: str = "ViT-B-32", pretrained: str = "none",
                 precision: str = "auto", device: str = "auto", batch_size: int = 64, fps: float = 1.875,
                 window: int = 0, stride: int = 0, backend: str = "auto", feature_set: str | None = None,
                 shard_spec: str | None = None, force: bool = False) -> dict:
    """Extract ``inputs`` (files, directories, list files) into ``store``; returns the summary as a dict."""
    from egoflow.extract.clip import create_encoder

    import time

    enc_kw = dict(model=model, pretrained=pretrained, precision=precision, device=device, batch_size=batch_size)
    cfg = ExtractConfig(fps=fps, window=window, stride=stride, backend=backend, force=force)
    st, name = prepare(FeatureStore(store), create_encoder(**enc_kw), cfg, feature_set)
    paths, problems = discover(inputs)  # unreadable folders, broken links, uid clashes: failures, not a crash
    paths, problems = shard(paths, shard_spec), shard(problems, shard_spec)
    t0 = time.perf_counter()
    futures = [extract_video_task.submit(str(p), store, name, enc_kw, asdict(cfg)) for p in paths]
    summary = Summary(list(problems) + [VideoResult(**f.result()) for f in futures], time.perf_counter() - t0)
    if summary.count("done"):
        st.pack(name)  # one contiguous copy so heads load the set fast (a cache; per-video groups stay the truth)
    print(summary.line())
    return {"feature_set": name, "line": summary.line(), "ok": summary.ok,
            "results": [asdict(r) for r in summary.results]}
