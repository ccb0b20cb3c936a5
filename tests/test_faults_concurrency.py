"""Fault class 4 (issue 12): concurrent ``extract`` writers on one store never crash each other.

The stress test forks N writers from a parent that has already loaded everything (the tiny random-init test
encoder, generated 1-2 s videos), holds them on a barrier and releases them at the same instant, without
``--shard``: every trial, every writer must exit cleanly (exit 0, no exception), every video must be complete
exactly once, and ``store verify`` must pass. Trials: STRESS_TRIALS (50 by default; ~1-2 min on 2 cores).
"""
import faulthandler
import multiprocessing as mp
import os
import traceback
from pathlib import Path

import pytest

from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.clip import create_encoder
from egoflow.extract.pipeline import ExtractConfig, extract, shard
from egoflow.features_store import FeatureStore

TINY = "egoflow-tiny-ViT"
WRITERS = 4
TRIALS = int(os.environ.get("STRESS_TRIALS", "50"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("stress")
    for i in range(3):
        make_video(d / f"clip-{i}.mp4", [(0, 1 + (i % 2), "red kettle")], fps=10, size=(32, 32), seed=i)
    return d


def _writer(url, videos, encoder, barrier, q):
    faulthandler.dump_traceback_later(300, exit=True)  # a hung writer fails the trial, not the CI job
    code = 0
    try:
        barrier.wait()
        summary, _ = extract([str(videos)], url, encoder, ExtractConfig(fps=2.0), progress=False)
        q.put(("ok", [(r.video_uid, r.status, r.reason) for r in summary.results]))
    except BaseException:  # noqa: BLE001 - report whatever killed the writer
        q.put(("crash", traceback.format_exc()))
        code = 1
    q.close()
    q.join_thread()
    os._exit(code)


def _trials(video_dir, root, trials, out):
    """Run every trial from a fresh (spawned) process: forking from it is safe, while the pytest process may hold
    threads of earlier tests (Prefect, thread pools) whose locks a forked child could inherit mid-use."""
    import torch

    torch.set_num_threads(1)  # each forked writer uses one thread: 4 writers on 2 cores
    encoder = create_encoder(TINY, "none", precision="fp32", device="cpu")
    ctx = mp.get_context("fork")
    report = {"crashes": [], "counts": {"done": 0, "skipped": 0, "failed": 0}, "problems": []}
    for trial in range(trials):
        url = str(Path(root) / f"t{trial}.zarr")
        barrier, q = ctx.Barrier(WRITERS), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(url, video_dir, encoder, barrier, q)) for _ in range(WRITERS)]
        for p in procs:
            p.start()
        results = [q.get(timeout=400) for _ in procs]
        for p in procs:
            p.join(60)
        report["crashes"] += [(trial, r[1]) for r in results if r[0] == "crash"]
        if [p.exitcode for p in procs] != [0] * WRITERS:
            report["problems"].append((trial, "exit codes", [p.exitcode for p in procs]))
        for status, rows in results:
            for _, st, _ in rows if status == "ok" else []:
                report["counts"][st] += 1
        store = FeatureStore(url, mode="r")
        (name,) = store.feature_sets()
        if store.videos(name) != ["clip-0", "clip-1", "clip-2"] or store.verify():
            report["problems"].append((trial, "store", store.videos(name), store.verify()))
    out.put(report)


def test_concurrent_extract_writers_stress(videos, tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    coordinator = ctx.Process(target=_trials, args=(videos, tmp_path, TRIALS, out))
    coordinator.start()
    report = out.get(timeout=1800)
    coordinator.join(60)
    counts = report["counts"]
    print(f"\n{TRIALS} trials x {WRITERS} writers: {counts}, crashes {len(report['crashes'])}, "
          f"problems {len(report['problems'])}")
    assert not report["crashes"], report["crashes"][0][1]
    assert not report["problems"], report["problems"][:3]
    assert counts["failed"] == 0 and counts["done"] == 3 * TRIALS  # each video extracted exactly once per trial
    assert counts["skipped"] == 3 * TRIALS * (WRITERS - 1)


def test_shard_split_is_balanced(tmp_path):
    """5 files, 4 workers: every worker gets at least one, and the largest files are spread out."""
    paths = []
    for i, size in enumerate([900, 800, 100, 100, 100]):
        p = tmp_path / f"v{i}.mp4"
        p.write_bytes(b"x" * size)
        paths.append(p)
    parts = [shard(paths, f"{i}/4") for i in range(4)]
    assert sorted(len(x) for x in parts) == [1, 1, 1, 2]
    assert sorted(str(p) for part in parts for p in part) == sorted(str(p) for p in paths)  # each once
    big = [i for i, part in enumerate(parts) if Path(tmp_path / "v0.mp4") in part or tmp_path / "v1.mp4" in part]
    assert len(big) == 2  # the two large ones on different workers
    for n in (2, 3, 7):  # any n: a partition, and nobody idle while another has 2+
        parts = [shard(paths, f"{i}/{n}") for i in range(n)]
        assert sum(len(x) for x in parts) == 5 and min(len(x) for x in parts) >= (1 if n <= 5 else 0)


def test_claims_are_exclusive_and_a_dead_writers_claim_is_taken_over(tmp_path):
    import json
    import socket

    s = FeatureStore(str(tmp_path / "s.zarr"))
    s.create_feature_set("fs", {"fps": 1.0}, dim=4)
    token = s.claim("fs", "vid")
    assert token and s.claim("fs", "vid") is None  # a second writer loses
    assert [c["name"] for c in s.info("fs")["claims"]] == ["vid"]
    s.release("fs", "vid", token)
    assert s.claim("fs", "vid") is not None  # released: claimable again
    dead = {"token": "t", "host": socket.gethostname(), "pid": 2 ** 22 + 12345, "time": 0}  # no such process
    (tmp_path / "s.zarr" / "fs" / "_claims" / "old.json").write_text(json.dumps(dead))
    assert [c["stale"] for c in s.info("fs")["claims"] if c["name"] == "old"] == [True]
    assert s.claim("fs", "old") is not None  # a kill -9'd writer does not block the rerun
    assert s.videos("fs") == [] and s.verify() == []  # claims are never videos
