"""Which GPU a worker process takes, and how many videos it keeps in flight.

The ecosystem's convention, in the order it is honoured:

1. ``CUDA_VISIBLE_DEVICES`` naming exactly one device (set per worker by the launcher, by dask-cuda's
   ``LocalCUDACluster``, by Ray for a task with ``num_gpus=1``, or by hand: ``CUDA_VISIBLE_DEVICES=3 prefect
   worker start ...``): that device, which the process sees as ``cuda:0``.
2. A local rank: ``LOCAL_RANK`` (torchrun), ``SLURM_LOCALID`` (srun), or the index of the Dask worker this task
   runs on (a plain ``LocalCluster`` names its workers 0..n-1): ``cuda:{rank % visible GPUs}``.
3. Otherwise ``cuda:0`` (one GPU, or one worker per machine).

An explicit ``cuda:N`` or ``cpu`` is always kept. Nothing here touches CUDA when no GPU is visible, so the
choice each worker *would* make is testable on a CPU machine (``gpu_count`` is passed in).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID")  # torchrun, Slurm: the rank of this process on its node
IN_FLIGHT_ENV = "EGOFLOW_VIDEOS_IN_FLIGHT"  # overrides the default number of videos a worker decodes at once


def gpu_count() -> int:
    """GPUs this process can see (0 without CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return 0


def dask_worker_index() -> int | None:
    """Index of the Dask worker running this code (``LocalCluster`` names them 0..n-1), else None."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):  # not inside a Dask worker
        return None
    try:
        return int(str(name).rsplit("-", 1)[-1])
    except ValueError:
        return None


def local_rank(env: Mapping[str, str] | None = None) -> int | None:
    """This process's rank on its node from LOCAL_RANK / SLURM_LOCALID / the Dask worker index, else None."""
    env = os.environ if env is None else env
    for var in RANK_VARS:
        if env.get(var, "").strip().isdigit():
            return int(env[var])
    return dask_worker_index()


def worker_device(requested: str = "auto", env: Mapping[str, str] | None = None, gpus: int | None = None,
                  rank: int | None = None) -> str:
    """The device string this worker should load its model on (``cpu``, ``cuda:N``); see the module doc."""
    env = os.environ if env is None else env
    if requested not in ("auto", "cuda"):
        return requested  # cpu or an explicit cuda:N: the user decided
    gpus = gpu_count() if gpus is None else gpus
    if gpus == 0:
        if requested == "cuda":
            raise RuntimeError("device 'cuda' requested but this worker sees no GPU "
                               f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', 'unset')!r})")
        return "cpu"
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if len(visible) == 1:
        return "cuda:0"  # the launcher pinned this worker to one GPU; CUDA renumbers it 0
    rank = local_rank(env) if rank is None else rank
    return f"cuda:{rank % gpus}" if rank is not None else "cuda:0"


def videos_in_flight(requested: int = 0, env: Mapping[str, str] | None = None, gpus: int | None = None,
                     cpus: int | None = None) -> int:
    """Videos a worker decodes and encodes at once: ``requested`` > 0, else $EGOFLOW_VIDEOS_IN_FLIGHT, else
    2 when a GPU is visible (one video decoding while the other encodes; a process drives one GPU) or, on
    CPU, min(4, cores). With a Dask/Ray runner spreading one flow run over n workers, pass n x that.

    Each video in flight holds one decode batch and its features (~100 MB at 224 px), so this, not the
    number of videos in the run, sets a worker's memory.
    """
    env = os.environ if env is None else env
    if requested and requested > 0:
        return int(requested)
    if env.get(IN_FLIGHT_ENV, "").strip():
        n = int(env[IN_FLIGHT_ENV])
        if n < 1:
            raise ValueError(f"{IN_FLIGHT_ENV} must be >= 1, got {n}")
        return n
    gpus = gpu_count() if gpus is None else gpus
    if gpus:
        return 2
    return max(1, min(4, cpus if cpus is not None else (os.cpu_count() or 1)))


__all__ = ["dask_worker_index", "gpu_count", "local_rank", "videos_in_flight", "worker_device"]
