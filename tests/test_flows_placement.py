"""Which device each worker would take (checked on CPU: the GPU count is passed in) and videos in flight."""
import pytest

from egoflow.flows.placement import local_rank, videos_in_flight, worker_device


def test_one_visible_gpu_is_cuda0_whatever_the_rank():
    # the launcher (dask-cuda, Ray num_gpus, a hand-set env) pinned the worker: CUDA renumbers its GPU 0
    assert worker_device("auto", {"CUDA_VISIBLE_DEVICES": "3", "LOCAL_RANK": "2"}, gpus=1) == "cuda:0"


def test_local_rank_and_slurm_localid_spread_workers_over_gpus():
    assert [worker_device("cuda", {"LOCAL_RANK": str(r)}, gpus=4) for r in range(6)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert worker_device("auto", {"SLURM_LOCALID": "3"}, gpus=8) == "cuda:3"
    assert local_rank({"LOCAL_RANK": "1", "SLURM_LOCALID": "5"}) == 1  # torchrun's own rank wins
    assert worker_device("auto", {}, gpus=2) == "cuda:0"  # no rank anywhere: the first GPU


def test_explicit_device_is_kept_and_cpu_without_gpus():
    assert worker_device("cuda:5", {"LOCAL_RANK": "1"}, gpus=8) == "cuda:5"
    assert worker_device("cpu", {"LOCAL_RANK": "1"}, gpus=8) == "cpu"
    assert worker_device("auto", {"LOCAL_RANK": "1"}, gpus=0) == "cpu"
    with pytest.raises(RuntimeError, match="sees no GPU"):
        worker_device("cuda", {"CUDA_VISIBLE_DEVICES": ""}, gpus=0)


def test_dask_workers_each_take_their_own_gpu():
    """A plain LocalCluster: the worker's index is its rank (dask-cuda would set CUDA_VISIBLE_DEVICES instead)."""
    from distributed import Client, LocalCluster

    def which(_):
        from egoflow.flows.placement import dask_worker_index, worker_device

        return dask_worker_index(), worker_device("auto", env={}, gpus=2)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        got = {client.submit(which, i, workers=[w], pure=False).result() for i, w in enumerate(workers)}
    assert got == {(0, "cuda:0"), (1, "cuda:1")}


def test_videos_in_flight_default_and_override():
    assert videos_in_flight(0, {}, gpus=0, cpus=2) == 2
    assert videos_in_flight(0, {}, gpus=0, cpus=64) == 4
    assert videos_in_flight(0, {}, gpus=1) == 2
    assert videos_in_flight(0, {"EGOFLOW_VIDEOS_IN_FLIGHT": "6"}, gpus=1) == 6
    assert videos_in_flight(3, {"EGOFLOW_VIDEOS_IN_FLIGHT": "6"}) == 3
    with pytest.raises(ValueError, match="EGOFLOW_VIDEOS_IN_FLIGHT"):
        videos_in_flight(0, {"EGOFLOW_VIDEOS_IN_FLIGHT": "0"})
