import json

from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.encoders import EncoderSpec
from egoflow.extract.pipeline import ExtractConfig
from egoflow.features_store import FeatureStore
from egoflow.flows.extract import _retry_transient, extract_flow

TINY = EncoderSpec(model="egoflow-tiny-ViT", precision="fp32", device="cpu")


def test_flow_extracts_one_task_per_video_and_records_failures(tmp_path, prefect_harness):
    make_video(tmp_path / "v1.mp4", [(0, 3, "red kettle")], fps=30, size=(96, 72))
    make_video(tmp_path / "v2.mp4", [(0, 2, "blue mug")], fps=30, size=(96, 72), seed=3)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    url = str(tmp_path / "s.zarr")
    res = extract_flow([str(tmp_path)], url, TINY, ExtractConfig(fps=2.0))
    assert res["ok"] is False
    by_uid = {r["video_uid"]: r["status"] for r in res["results"]}
    assert by_uid == {"v1": "done", "v2": "done", "bad": "failed"}
    s = FeatureStore(url)
    assert s.videos(res["feature_set"]) == ["v1", "v2"] and s.verify() == []
    again = extract_flow([str(tmp_path)], url, TINY, ExtractConfig(fps=2.0))
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
    res = extract_flow([str(tmp_path / "v1.mp4")], url, TINY, ExtractConfig(fps=2.0), pack=False, in_flight=1,
                       storage_options={"auto_mkdir": True})
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


def test_flow_extracts_with_the_fused_encoder_dual_and_query_conditioned(tmp_path, prefect_harness):
    """The same flow with the fused spec (random-initialised egovlpv2-tiny, windows of 4 frames): dual window
    features, then query-conditioned features of the same videos, one task per video either way."""
    import numpy as np

    from egoflow.extract.fused.tokenizer import write_tiny_vocab
    from egoflow.features_store.conditioned import read_conditioned

    make_video(tmp_path / "v1.mp4", [(0, 2, "red kettle")], fps=10, size=(48, 40))
    make_video(tmp_path / "v2.mp4", [(0, 2, "blue mug")], fps=10, size=(48, 40), seed=2)
    tok = str(write_tiny_vocab(tmp_path / "tok", ["red", "kettle", "the", "mug"]))
    spec = EncoderSpec("fused", "egovlpv2-tiny", precision="fp32", device="cpu", frames=4, tokenizer=tok)
    url = str(tmp_path / "f.zarr")
    res = extract_flow([str(tmp_path / "v1.mp4"), str(tmp_path / "v2.mp4")], url, spec, ExtractConfig(fps=4.0))
    assert res["ok"] and res["feature_set"] == "fused-egovlpv2-tiny-none-4fps-w4s4"
    vf = FeatureStore(url).read_video(res["feature_set"], "v1")
    assert vf.feats.shape == (2, 16) and vf.attrs["window"] == {"frames": 4, "stride": 4}
    assert np.allclose(np.linalg.norm(vf.feats, axis=1), 1, atol=2e-3)
    q = extract_flow([str(tmp_path / "v1.mp4"), str(tmp_path / "v2.mp4")], url, spec, ExtractConfig(fps=4.0),
                     queries={"v1": ["red kettle", "the mug"]})
    assert q["feature_set"] == "fused-egovlpv2-tiny-none-4fps-w4s4-query"
    assert {r["video_uid"]: (r["status"], r["reason"]) for r in q["results"]} == {
        "v1": ("done", ""), "v2": ("skipped", "no queries for this video")}
    c = read_conditioned(FeatureStore(url), q["feature_set"], "v1", "the mug")
    assert c.feats.shape[0] == vf.feats.shape[0] and np.abs(c.feats).max() > 0


def test_laptop_command_runs_the_flow(tmp_path, prefect_harness):
    """docs/scale-out.md step 0: one command, the tiny model, as a Prefect flow."""
    from egoflow.cli import main

    make_video(tmp_path / "v" / "a.mp4", [(0, 2, "red kettle")], fps=30, size=(96, 72))
    url = str(tmp_path / "feats.zarr")
    assert main(["extract", str(tmp_path / "v"), "--store", url, "--model", "egoflow-tiny-ViT", "--device", "cpu",
                 "--prefect"]) == 0
    assert FeatureStore(url).videos("clip-egoflow-tiny-ViT-none-1.875fps") == ["a"]


def test_flow_parameters_survive_a_json_round_trip():
    """A deployment run stores its parameters as JSON: the spec and options come back as the same dataclasses."""
    from prefect.utilities.callables import parameters_to_args_kwargs  # noqa: F401 - Prefect 3 API present

    from egoflow.flows.parent import Sharding, extract_parent_flow

    spec = EncoderSpec("fused", "egovlpv2-tiny", "/w/ego.pth", frames=4, tokenizer="/tok", recipe="nlq@1")
    params = {"inputs": ["a.mp4"], "store": "s3://b/f.zarr", "encoder": spec, "options": ExtractConfig(fps=7.5),
              "queries": {"a": ["q"]}}
    wire = json.loads(json.dumps(extract_flow.serialize_parameters(params)))
    back = extract_flow.validate_parameters(wire)
    assert back["encoder"] == spec and back["options"] == ExtractConfig(fps=7.5) and back["queries"] == {"a": ["q"]}
    wire = json.loads(json.dumps(extract_parent_flow.serialize_parameters(
        {**params, "sharding": Sharding("x/y", shards=4, stall_s=30)})))
    back = extract_parent_flow.validate_parameters(wire)
    assert back["sharding"] == Sharding("x/y", shards=4, stall_s=30) and back["encoder"] == spec
    assert len(extract_flow.parameters.properties) <= 12 and len(extract_parent_flow.parameters.properties) <= 10


def test_query_conditioned_extraction_on_a_dask_runner(tmp_path, prefect_harness):
    """The spec and the queries travel to Dask worker processes (pickled) and the fused encoder is rebuilt there,
    on the device that worker picks."""
    from egoflow.extract.fused.tokenizer import write_tiny_vocab
    from egoflow.features_store.conditioned import conditioned_queries
    from egoflow.flows.deploy import with_task_runner

    make_video(tmp_path / "v1.mp4", [(0, 2, "red kettle")], fps=10, size=(48, 40))
    tok = str(write_tiny_vocab(tmp_path / "tok", ["red", "kettle"]))
    spec = EncoderSpec("fused", "egovlpv2-tiny", precision="fp32", device="auto", frames=4, tokenizer=tok)
    url = str(tmp_path / "d.zarr")
    run = with_task_runner(extract_flow, "dask", n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    res = run([str(tmp_path / "v1.mp4")], url, spec, ExtractConfig(fps=4.0), queries=["red kettle"])
    assert res["ok"] and [r["status"] for r in res["results"]] == ["done"]
    assert conditioned_queries(FeatureStore(url), res["feature_set"], "v1") == ["red kettle"]
