"""Task runners for many GPUs: attach to a running Dask scheduler, dask-cuda's cluster class, Ray's address."""
import importlib.util

import pytest

from egoflow.flows.deploy import make_task_runner


def test_dask_runner_attaches_to_an_address_or_starts_a_cluster_class():
    r = make_task_runner("dask", address="tcp://10.0.0.1:8786")
    assert r.address == "tcp://10.0.0.1:8786"
    r = make_task_runner("dask", n_workers=4)  # the old keyword form still starts a LocalCluster
    assert r.cluster_class == "distributed.LocalCluster" and r.cluster_kwargs == {"n_workers": 4}


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is not None, reason="checks the message without it")
def test_dask_cuda_without_the_package_names_the_extra():
    with pytest.raises(ImportError, match=r"egoflow\[dask-cuda\]"):
        make_task_runner("dask-cuda")


def test_ray_runner_takes_an_address_and_unknown_kinds_are_refused():
    assert make_task_runner("ray", address="ray://head:10001").address == "ray://head:10001"
    with pytest.raises(ValueError, match="dask-cuda"):
        make_task_runner("mpi")
