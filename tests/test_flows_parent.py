"""The parent flow with real parts on loopback: a Prefect server, a process work pool, two workers, a deployment
made by `egoflow deploy`, ~12 generated videos, and one worker killed with SIGKILL mid-run. The commands are the
ones docs/scale-out.md gives. Everything runs on 127.0.0.1 and is stopped here, whatever happens.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.plan import make_shards
from egoflow.features_store import FeatureStore

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ["--model", "egoflow-tiny-ViT", "--precision", "fp32", "--device", "cpu", "--fps", "2"]
POOL = "egoflow-test"


def test_shards_by_count_and_by_duration():
    paths = [f"v{i}" for i in range(7)]
    assert make_shards(paths, 3) == [["v0", "v1", "v2"], ["v3", "v4", "v5"], ["v6"]]
    assert make_shards(paths, 20) == [[p] for p in paths]  # never an empty shard
    hours = [4.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    by_h = make_shards(paths, 2, hours=hours)
    assert sorted(sum(hours[int(p[1:])] for p in s) for s in by_h) == [4.5, 4.5]  # 4 + 0.5 vs 1 + 1 + 1 + 1 + 0.5
    assert len(make_shards(paths, shard_hours=3.0, hours=hours)) == 3  # 9 h of video / 3 h per shard
    assert make_shards([], 4) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd, env, log: Path) -> subprocess.Popen:
    # own session: killing its process group also kills the flow runs a worker started (a lost node)
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(p: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(p.pid, sig)
        p.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


def _cli(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egoflow.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Prefect server, the pool and the `extract` deployment (docs/scale-out.md, steps 1-3)."""
    tmp = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp / "prefect"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_UI_ENABLED": "false", "OMP_NUM_THREADS": "1", "EGOFLOW_VIDEOS_IN_FLIGHT": "1",
           "PREFECT_WORKER_QUERY_SECONDS": "2"}  # workers poll for runs every 2 s (default 10)
    env.pop("PREFECT_API_KEY", None)
    # a moto S3 server on loopback; every worker gets its endpoint and keys from its environment (as in the docs)
    from moto.server import ThreadedMotoServer

    s3_port = _free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    s3.start()
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}", "AWS_EC2_METADATA_DISABLED": "true"})
    procs = [_start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                    tmp / "server.log")]
    try:
        for _ in range(480):  # a loaded 2-core machine can take minutes (docs: wait for /api/health)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("prefect server did not start: " + (tmp / "server.log").read_text()[-2000:])
        r = subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _cli(["deploy", "--source", str(REPO), "--pool", POOL, "--names", "extract"], env)
        assert r.returncode == 0 and "deployed egoflow-extract/extract" in r.stdout, r.stdout + r.stderr
        yield env, tmp, procs
    finally:
        for p in procs[::-1]:
            _stop(p)
        s3.stop()


def _worker(env, tmp, name) -> subprocess.Popen:
    return _start([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"], env,
                  tmp / f"{name}.log")


def _kill_tree(p: subprocess.Popen) -> None:
    """SIGKILL a worker and every process under it: its flow-run process may run in a session of its own, and
    a lost node loses both (the run then stops heart-beating and stays "Running")."""
    import psutil

    procs = psutil.Process(p.pid).children(recursive=True)
    for q in [psutil.Process(p.pid), *procs]:
        with contextlib.suppress(psutil.NoSuchProcess):
            q.kill()


def _busy(p: subprocess.Popen) -> bool:
    import psutil

    try:
        return bool(psutil.Process(p.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(420)
def test_parent_flow_survives_a_killed_worker(cluster, tmp_path):
    env, tmp, procs = cluster
    uids = [f"clip{i:02d}" for i in range(12)]
    for i, u in enumerate(uids):
        make_video(tmp_path / f"{u}.mp4", [(0, 2, "red kettle")], fps=30, size=(96, 72), seed=i)
    (tmp_path / "list.txt").write_text("\n".join(f"{u}.mp4" for u in uids) + "\n")
    # w0 alone first: w1 starts once w0 runs a shard, so w0 always holds one from its first video (with both
    # started together, a slow-starting w0 could find w1 done with a shard and nothing left to lose)
    w0, w1 = _worker(env, tmp, "w0"), None
    procs.append(w0)
    store = str(tmp_path / "s.zarr")
    parent = _start([sys.executable, "-m", "egoflow.cli", "extract", str(tmp_path / "list.txt"), "--store", store,
                     "--submit", "egoflow-extract/extract", "--shards", "2", "--stall-s", "40", *TINY], env,
                    tmp_path / "parent.log")
    procs.append(parent)
    fset = "clip-egoflow-tiny-ViT-none-2fps"
    killed = False
    start = time.time()
    deadline = start + 300
    while parent.poll() is None and time.time() < deadline:
        if w1 is None and (_busy(w0) or time.time() - start > 120):  # 120 s: never wait forever for w0
            w1 = _worker(env, tmp, "w1")
            procs.append(w1)
        done = len(FeatureStore(store, mode="r").videos(fset)) if Path(store, fset).exists() else 0
        # two shards of 6: with fewer than 6 videos complete in all, w0's shard still has work left when it is
        # lost (killing it later could find its shard already finished, and nothing would stall)
        if not killed and _busy(w0) and 1 <= done < 6:
            _kill_tree(w0)
            killed = True
            print(f"killed w0 with {done} video(s) complete")
        time.sleep(0.5)
    log = (tmp_path / "parent.log").read_text()
    assert parent.returncode == 0, log[-4000:]
    assert killed, "w0 never picked up a shard"
    s = FeatureStore(store, mode="r")
    assert s.videos(fset) == uids and s.failures(fset) == [] and s.verify() == []
    assert s.info(fset)["videos_incomplete"] == 0  # every video exactly once, none half-written
    assert "stalled" in log and "round 2" in log  # the lost shard was detected and re-run
    assert Path(store, fset, "_packed").exists()  # packed once, by the parent
    r = _cli(["store", "verify", "--store", store], env)
    assert r.returncode == 0 and "OK" in r.stdout
    print(json.dumps({"parent_log_tail": log[-600:]}))


@pytest.mark.timeout(300)
def test_parent_flow_into_an_s3_store(cluster, tmp_path):
    """The same commands with the store on S3 (a moto server on 127.0.0.1; workers get the endpoint and keys
    from their environment, as docs/scale-out.md says)."""
    env, tmp, procs = cluster
    import s3fs

    # moto keeps its buckets per process: another test's moto server may already have made "egoflow"
    s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL"], key="testing", secret="testing").mkdir("egoflow-parent")
    uids = [f"s3clip{i}" for i in range(4)]
    for i, u in enumerate(uids):
        make_video(tmp_path / f"{u}.mp4", [(0, 2, "blue mug")], fps=30, size=(96, 72), seed=20 + i)
    w = _worker(env, tmp, "w-s3")
    procs.append(w)
    store = "s3://egoflow-parent/parent.zarr"
    # one listed video does not exist: its child records the failure, the other videos and shards go on
    r = _cli(["extract", *(str(tmp_path / f"{u}.mp4") for u in uids), str(tmp_path / "gone.mp4"), "--store", store,
              "--submit", "egoflow-extract/extract", "--shard-hours", "0.0012", "--stall-s", "120", *TINY], env,
             timeout=240)
    assert r.returncode == 1, (r.stdout + r.stderr)[-3000:]  # not ok: one video failed
    assert "5 video(s) in 2 shard(s)" in r.stdout + r.stderr  # 4 x 2 s of video (+ 0 s missing) / 4.3 s per shard
    assert "do not exist" in r.stdout + r.stderr and "4 complete, 1 failed, 0 not done" in r.stdout + r.stderr
    # the parent's own Prefect state says so too, naming the video (a dashboard shows Failed, not Completed)
    assert "extract --submit: Failed: " in r.stderr and "(failed: gone)" in r.stderr, r.stderr[-2000:]
    r = _cli(["store", "info", "--store", store], env)
    assert "4 complete, 1 failed, 0 incomplete" in r.stdout and "FAILED gone [open]" in r.stdout, r.stdout
    r = _cli(["store", "verify", "--store", store], env)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


@pytest.mark.timeout(420)
def test_submit_runs_fused_and_query_conditioned_with_a_short_stall_s(cluster, tmp_path):
    """--submit with the fused encoder (egovlpv2-tiny, --window 4: the one frames flag), dual then
    query-conditioned, on two process workers, with --stall-s 20: shorter than a shard's start-up plus its first
    video here, so only the heartbeats keep these healthy shards from being cancelled. Every video is done once,
    in one round, nothing is called stalled, and the parent saw every shard's heartbeats."""
    from egoflow.extract.fused.tokenizer import write_tiny_vocab
    from egoflow.features_store.conditioned import read_conditioned

    env, tmp, procs = cluster
    tok = str(write_tiny_vocab(tmp_path / "tok", ["red", "kettle", "the", "mug", "blue"]))
    uids = [f"fclip{i}" for i in range(4)]
    for i, u in enumerate(uids):
        make_video(tmp_path / f"{u}.mp4", [(0, 2, "red kettle")], fps=10, size=(48, 40), seed=40 + i)
    (tmp_path / "q.json").write_text(json.dumps({u: ["red kettle", "the blue mug"] for u in uids[:3]}))
    procs += [_worker(env, tmp, "fw0"), _worker(env, tmp, "fw1")]
    store = str(tmp_path / "f.zarr")
    fused = ["--encoder", "fused", "--model", "egovlpv2-tiny", "--window", "4", "--fps", "4", "--tokenizer", tok,
             "--precision", "fp32", "--device", "cpu", "--submit", "egoflow-extract/extract", "--shards", "2",
             "--stall-s", "20"]
    videos = [str(tmp_path / f"{u}.mp4") for u in uids]
    t0 = time.time()
    r = _cli(["extract", *videos, "--store", store, *fused], env, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    s = FeatureStore(store, mode="r")
    dual = "fused-egovlpv2-tiny-none-4fps-w4s4"
    first = min(Path(store, dual, u, "zarr.json").stat().st_mtime for u in uids)  # its "complete" mark
    # the old rule (no progress for stall_s since submission) cancelled shards this slow to start (the issue)
    print(f"first video complete {first - t0:.1f} s after the parent started (--stall-s 20)")
    assert s.videos(dual) == uids and s.failures(dual) == [] and s.info(dual)["videos_incomplete"] == 0
    assert "4 video(s) in 2 shard(s)" in out and "round 2" not in out and "stalled" not in out, out[-3000:]
    assert "round 1: heartbeats from 2 of 2 shard run(s)" in out, out[-3000:]  # the children beat
    assert Path(store, dual, "_packed").exists()
    r = _cli(["extract", *videos, "--store", store, *fused, "--queries", str(tmp_path / "q.json")], env, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "1 video(s) have no queries" in out and "3 video(s) in 2 shard(s)" in out and "stalled" not in out
    cond = dual + "-query"
    s = FeatureStore(store, mode="r")
    assert s.videos(cond) == uids[:3] and s.failures(cond) == []
    for u in uids[:3]:
        c = read_conditioned(s, cond, u, "the blue mug")
        assert c.feats.shape[0] == s.read_video(dual, u).feats.shape[0]
    r = _cli(["store", "verify", "--store", store], env)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def test_deploy_refuses_a_source_without_egoflow(tmp_path):
    from egoflow.flows.deploy import deploy_all

    with pytest.raises(FileNotFoundError, match="no egoflow checkout"):
        deploy_all(str(tmp_path), "pool")
    with pytest.raises(ValueError, match="needs --source"):
        deploy_all("", "pool")


def test_served_deployment_names_never_collide_with_the_pool_ones():
    from egoflow.flows.deploy import ENTRYPOINTS, served_deployments

    names = [d.name for d in served_deployments()]
    assert names == [f"serve-{n}" for n in ENTRYPOINTS] and not set(names) & set(ENTRYPOINTS)


class _Runs:
    """A fake Prefect client for the parent's stall check: run states, heartbeat events, forced states."""

    def __init__(self, runs: dict):
        self.runs, self.polls, self.forced = runs, 0, []

    def read_flow_run(self, rid):
        from types import SimpleNamespace

        kind, entered, done_after = self.runs[rid]["state"], self.runs[rid]["entered"], self.runs[rid].get("done")
        if done_after is not None and self.polls >= done_after:
            kind = "COMPLETED"
        return SimpleNamespace(state=SimpleNamespace(type=SimpleNamespace(value=kind), name=kind.title(), message="",
                                                     timestamp=entered))

    def read_events(self, filter, limit):
        from datetime import datetime, timezone
        from types import SimpleNamespace

        self.polls += 1 / len(self.runs)
        rid = filter.resource.id[0].rsplit(".", 1)[1]
        beats = self.runs[rid].get("beats")
        return SimpleNamespace(events=[SimpleNamespace(occurred=datetime.now(timezone.utc))] if beats else [])

    def set_flow_run_state(self, rid, state, force):
        self.forced.append(rid)


def test_a_shard_is_stalled_only_when_silent_and_without_progress(monkeypatch):
    """Stalled = no heartbeat AND no finished video for stall_s, counted from the run's start: a run that keeps
    beating (slow start-up, a long video) or keeps finishing videos is never cancelled, whatever its age."""
    import logging
    from datetime import datetime, timedelta, timezone

    from egoflow.flows import parent

    now = datetime.now(timezone.utc)
    old = now - timedelta(seconds=30)
    client = _Runs({"beating": {"state": "RUNNING", "entered": old, "beats": True, "done": 6},
                    "silent": {"state": "RUNNING", "entered": old},
                    "new": {"state": "RUNNING", "entered": now},
                    "pending": {"state": "PENDING", "entered": now},
                    "busy": {"state": "RUNNING", "entered": old, "done": 6},
                    "queued": {"state": "SCHEDULED", "entered": old, "done": 6}})
    ticks = iter(range(1, 10**6))  # one more finished video at every look
    monkeypatch.setattr(parent, "_finished", lambda st, name, shard, since: set(shard[:next(ticks)])
                        if shard == ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"] else set())
    runs = {rid: (rid, ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"] if rid == "busy" else ["x"])
            for rid in client.runs}
    t0 = time.time()
    monkeypatch.setattr(parent, "PENDING_S", 1.0)
    states, beating = parent._wait(client, runs, None, "F", parent.Sharding(stall_s=0.5, poll_s=0.1), 0.0,
                                   logging.getLogger("t"))
    assert states == {"beating": "Completed", "busy": "Completed", "queued": "Completed", "silent": "Stalled",
                      "new": "Stalled", "pending": "Stalled"}
    assert client.forced[0] == "silent" and set(client.forced) == {"silent", "new", "pending"}
    assert beating == {"beating"}
    assert time.time() - t0 >= 1.0  # "new" had its stall_s from its start; "pending" max(stall_s, PENDING_S)


def test_parent_refuses_another_config_before_any_shard(tmp_path, prefect_harness):
    from egoflow.features_store import FeatureSetMismatch
    from egoflow.flows.parent import Sharding, extract_parent_flow

    store = FeatureStore(str(tmp_path / "s.zarr"))
    store.create_feature_set("clip-ViT-B-32-none-1.875fps", {"model": "ViT-B-32", "pretrained": "none", "fps": 2.0,
                                                             "window": 0, "stride": 0}, dim=4)
    with pytest.raises(FeatureSetMismatch, match="fps: 2.0 vs 1.875"):
        extract_parent_flow([str(tmp_path / "a.mp4")], str(tmp_path / "s.zarr"),
                            feature_set="clip-ViT-B-32-none-1.875fps", sharding=Sharding("nowhere/none"))
    from egoflow.cli import main

    base = ["extract", str(tmp_path / "a.mp4"), "--store", str(tmp_path / "s.zarr"), "--submit", "nowhere/none"]
    assert main([*base, "--feature-set", "clip-ViT-B-32-none-1.875fps"]) == 2  # one line, exit 2, as before
    assert main([*base, "--stall-s", "5"]) == 2  # shorter than a heartbeat takes to be seen


def test_a_stalled_shard_s_claims_are_released_for_the_next_round(tmp_path):
    """A claim of another host is only taken over after hours: the parent releases the claims a stalled run
    left on its shard's unfinished videos, so the next round's run extracts them instead of skipping them."""
    from egoflow.flows.parent import _free_claims

    store = FeatureStore(str(tmp_path / "s.zarr"))
    store.create_feature_set("F", {"model": "m"}, dim=4)
    assert store.claim("F", "v1") and store.claim("F", "other")
    assert _free_claims(store, "F", [Path("/d/v1.mp4"), Path("/d/v2.mp4")]) == ["v1"]
    assert store.claim("F", "v1") is not None  # free again
    assert store.claim("F", "other") is None  # not this shard's: left alone
    assert _free_claims(None, "F", []) == [] and _free_claims(store, "nope", []) == []
