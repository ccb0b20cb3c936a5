from egoflow.datasets.synthetic.videos import make_video
from egoflow.features_store import FeatureStore
from egoflow.flows.extract import _retry_transient, extract_flow


def test_flow_extracts_one_task_per_video_and_records_failures(tmp_path, prefect_harness):
    make_video(tmp_path / "v1.mp4", [(0, 3, "red kettle")], fps=30, size=(96, 72))
    make_video(tmp_path / "v2.mp4", [(0, 2, "blue mug")], fps=30, size=(96, 72), seed=3)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    url = str(tmp_path / "s.zarr")
    res = extract_flow([str(tmp_path)], url, model="egoflow-tiny-ViT", precision="fp32", device="cpu", fps=2.0)
    assert res["ok"] is False
    by_uid = {r["video_uid"]: r["status"] for r in res["results"]}
    assert by_uid == {"v1": "done", "v2": "done", "bad": "failed"}
    s = FeatureStore(url)
    assert s.videos(res["feature_set"]) == ["v1", "v2"] and s.verify() == []
    again = extract_flow([str(tmp_path)], url, model="egoflow-tiny-ViT", precision="fp32", device="cpu", fps=2.0)
    assert {r["video_uid"]: r["status"] for r in again["results"]}["v1"] == "skipped"


class _State:
    def __init__(self, exc):
        self.exc = exc

    def result(self):
        raise self.exc


def test_only_transient_errors_are_retried():
    assert _retry_transient(None, None, _State(ConnectionError("reset")))
    assert _retry_transient(None, None, _State(TimeoutError()))
    assert not _retry_transient(None, None, _State(ValueError("corrupt")))


def test_bounded_keeps_at_most_limit_videos_in_flight(prefect_harness):
    import threading
    import time

    from prefect import flow, task

    from egoflow.flows.extract import bounded

    lock, live, peak = threading.Lock(), [0], [0]

    @task
    def work(i):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        with lock:
            live[0] -= 1
        return i

    @flow
    def many():
        return sorted(bounded(work.submit, range(12), 3))

    assert many() == list(range(12))
    assert peak[0] == 3  # the thread pool alone would have run all 12 at once


def test_flow_does_not_pack_a_shard_and_takes_storage_options(tmp_path, prefect_harness):
    make_video(tmp_path / "v1.mp4", [(0, 2, "red kettle")], fps=30, size=(96, 72))
    url = str(tmp_path / "s.zarr")
    res = extract_flow([str(tmp_path / "v1.mp4")], url, model="egoflow-tiny-ViT", precision="fp32", device="cpu",
                       fps=2.0, pack=False, in_flight=1, storage_options={"auto_mkdir": True})
    assert res["ok"]
    assert not (tmp_path / "s.zarr" / res["feature_set"] / "_packed").exists()


def test_ray_runs_give_each_video_a_gpu(monkeypatch):
    """On Ray, videos are submitted with num_gpus (Ray then sets each task's CUDA_VISIBLE_DEVICES, so
    worker_device picks cuda:0 of that one GPU); other runners get no resource request.

    Checked end to end by hand (120 s, too slow for the suite): a RayTaskRunner with num_gpus=2 declared gave
    four tasks CUDA_VISIBLE_DEVICES 0, 1, 0, 1 and worker_device 'cuda:0' each.
    """
    from types import SimpleNamespace

    from prefect.context import FlowRunContext
    from prefect_ray.context import RemoteOptionsContext

    from egoflow.flows import extract as mod

    RayTaskRunner = type("RayTaskRunner", (), {})
    monkeypatch.setattr(FlowRunContext, "get", classmethod(lambda cls: SimpleNamespace(task_runner=RayTaskRunner())))
    with mod._gpu_options(1):
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 1}
    with mod._gpu_options(0):
        assert RemoteOptionsContext.get().current_remote_options == {}


def test_flow_extracts_with_the_fused_encoder(tmp_path, prefect_harness):
    """--encoder fused through the same flow (random-initialised egovlpv2-tiny; windows of 4 frames)."""
    import numpy as np

    make_video(tmp_path / "v1.mp4", [(0, 2, "red kettle")], fps=10, size=(48, 40))
    url = str(tmp_path / "f.zarr")
    res = extract_flow([str(tmp_path)], url, model="egovlpv2-tiny", precision="fp32", device="cpu", fps=4.0,
                       encoder="fused", num_frames=4)
    assert res["ok"] and res["feature_set"] == "fused-egovlpv2-tiny-none-4fps-w4s4"
    vf = FeatureStore(url).read_video(res["feature_set"], "v1")
    assert vf.feats.shape == (2, 16) and vf.attrs["window"] == {"frames": 4, "stride": 4}
    assert np.allclose(np.linalg.norm(vf.feats, axis=1), 1, atol=2e-3)
