"""The parent flow: split a video list into shards, run one child flow run per shard on a work pool, re-run
what did not finish, pack once.

    extract_parent_flow(["/data/ego4d/list.txt"], "s3://bucket/ego4d.zarr", deployment="egoflow-extract/extract",
                        shards=64, model="ViT-L-14", pretrained="openai", device="cuda")

Each shard is a flow run of the ``extract`` deployment (``run_deployment``), picked up by whichever worker of
the pool is free. The store's ``complete`` markers are the only record of what is done: after each round the
parent re-reads them and submits the videos that are neither complete nor recorded as failed *by this run's
children* again, in new shards, up to ``max_rounds`` rounds. A child run that crashed or failed is re-run; one
still "Running" whose shard made no progress in the store for ``stall_s`` seconds (its worker died: a
``kill -9`` leaves the run "Running" forever) is set to Cancelling (a live worker then kills it) and re-run.
Children never pack (``pack=False``); the parent packs once at the end.
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger

from egoflow.extract.pipeline import (
    ExtractConfig,
    discover_videos,
    feature_set_name,
    source_info,
    video_uid,
)
from egoflow.extract.plan import make_shards, probe_hours
from egoflow.features_store import FeatureStore
from egoflow.features_store.remote import open_store

FINAL_OK = "COMPLETED"


def _finished(store: FeatureStore, name: str, paths: list[Path], since: float) -> set[str]:
    """Paths whose video is complete for its current source, or whose failure was recorded after ``since``."""
    fs = getattr(store.root.store, "fs", None)
    if fs is not None:  # s3fs & co. cache directory listings: the children's new groups would stay invisible
        fs.invalidate_cache()
    if name not in store.feature_sets():
        return set()
    done = set()
    for p in paths:
        a = store.video_attrs(name, video_uid(p)) or {}
        if a.get("complete") is True:
            try:
                src = source_info(p)
            except OSError:
                continue
            if all((a.get("source") or {}).get(k) == src.get(k) for k in ("bytes", "mtime")):
                done.add(str(p))
        elif a.get("failure") and time.mktime(time.strptime(a["failure"]["time"], "%Y-%m-%dT%H:%M:%S")) >= since - 1:
            done.add(str(p))
    return done


def _check_same_config(store: FeatureStore, name: str, want: dict) -> None:
    """Fail before any shard runs when ``name`` exists with another model/weights/fps/window (the full config,
    precision included, is checked again by each child: writing into a set with another hash is an error)."""
    if name not in store.feature_sets():
        return
    have = store.feature_set_info(name).get("extractor", {})
    diff = sorted(k for k, v in want.items() if k in have and have[k] != v)
    if diff:
        from egoflow.features_store import FeatureSetMismatch

        what = ", ".join(f"{k}: {have[k]!r} vs {want[k]!r}" for k in diff)
        raise FeatureSetMismatch(f"feature set {name!r} in {store.url} was made with other settings ({what}); "
                                 "use another --feature-set")


def _wait(client, runs: dict, store, name, stall_s: float, poll_s: float, since: float, log) -> dict[str, str]:
    """Poll the child runs until each is final or stalled; return {run id: final state name}."""
    state: dict[str, str] = {}
    activity: dict[str, tuple[float, int]] = {}  # run id -> (last progress time, finished count)
    while len(state) < len(runs):
        for rid, (fr_name, shard) in runs.items():
            if rid in state:
                continue
            st = client.read_flow_run(rid).state
            kind = st.type.value if st else "SCHEDULED"
            if kind in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                state[rid] = st.name
                if kind != FINAL_OK:
                    log.warning(f"shard {fr_name}: {st.name}: {(st.message or '')[:300]}")
                continue
            if kind in ("SCHEDULED", "PAUSED"):
                continue  # waiting for a free worker is not a stall; PENDING/RUNNING/CANCELLING: a worker has it
            n = len(_finished(store, name, shard, since))
            t, have = activity.get(rid, (time.time(), -1))
            if n != have:
                activity[rid] = (time.time(), n)
            elif time.time() - t > stall_s:
                from prefect.states import Cancelling

                msg = f"stalled: no video of its shard finished in {stall_s:.0f} s (worker lost?)"
                client.set_flow_run_state(rid, Cancelling(message=msg), force=True)
                log.warning(f"shard {fr_name}: {msg}; its unfinished videos go to the next round")
                state[rid] = "Stalled"
        if len(state) < len(runs):
            time.sleep(poll_s)
    return state


@flow(name="egoflow-extract-parent", log_prints=True)
def extract_parent_flow(inputs: list[str], store: str, deployment: str = "egoflow-extract/extract",
                        shards: int = 0, shard_hours: float = 0.0, model: str = "ViT-B-32", pretrained: str = "none",
                        precision: str = "auto", device: str = "auto", batch_size: int = 64, fps: float = 1.875,
                        window: int = 0, stride: int = 0, backend: str = "auto", feature_set: str | None = None,
                        in_flight: int = 0, storage_options: dict | None = None, stall_s: float = 600.0,
                        poll_s: float = 0.0, max_rounds: int = 3, pack: bool = True,
                        job_variables: dict | None = None) -> dict:
    """Extract ``inputs`` into ``store`` with one ``deployment`` run per shard; returns the final counts."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from egoflow.extract.clip import weights_description

    log = get_run_logger()
    poll_s = poll_s or min(5.0, stall_s / 10)  # 0: often enough to notice a stall within ~10% of stall_s
    since = time.time()
    paths = discover_videos(inputs)
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:  # the children record each as a failure ("open" stage); the other videos go on
        log.warning(f"{len(missing)} listed video(s) do not exist, e.g. {missing[:3]}")
    st = open_store(store, storage_options=storage_options)  # unreachable/bad store: fail before any shard
    cfg = ExtractConfig(fps=fps, window=window, stride=stride, backend=backend)
    name = feature_set or feature_set_name({"model": model, **weights_description(pretrained)}, cfg)
    _check_same_config(st, name, {"model": model, "fps": fps, "window": window, "stride": stride or window,
                                  **weights_description(pretrained)})
    params = {"store": store, "model": model, "pretrained": pretrained, "precision": precision, "device": device,
              "batch_size": batch_size, "fps": fps, "window": window, "stride": stride, "backend": backend,
              "feature_set": name, "in_flight": in_flight, "pack": False, "storage_options": storage_options}
    history = []
    with get_client(sync_client=True) as client:
        for rnd in range(1, max_rounds + 1):
            todo = [p for p in paths if str(p) not in _finished(st, name, paths, since)]
            if not todo:
                break
            hours = probe_hours(todo) if shard_hours else None
            # a later round keeps round 1's shard size (its few leftovers make few shards, not `shards` tiny ones)
            split = make_shards(todo, -(-len(todo) // -(-len(paths) // (shards or 1))), shard_hours, hours)
            print(f"round {rnd}: {len(todo)} video(s) in {len(split)} shard(s) -> {deployment}")
            runs = {}
            for i, part in enumerate(split):
                fr = run_deployment(deployment, parameters={**params, "inputs": [str(p) for p in part]},
                                    timeout=0, flow_run_name=f"{name}-r{rnd}-s{i}", job_variables=job_variables)
                runs[str(fr.id)] = (fr.name, part)
            states = _wait(client, runs, st, name, stall_s, poll_s, since, log)
            history.append({"round": rnd, "shards": len(split), "videos": len(todo),
                            "states": sorted(states.values())})
    complete = [video_uid(p) for p in paths if str(p) in _finished(st, name, paths, since)
                and st.is_complete(name, video_uid(p))]
    uids = {video_uid(p) for p in paths}
    failed = [f["video_uid"] for f in (st.failures(name) if name in st.feature_sets() else [])
              if f["video_uid"] in uids]
    left = [video_uid(p) for p in paths if video_uid(p) not in set(complete) | set(failed)]
    if pack and complete:
        st.pack(name)  # once, here: children run with pack=False
    print(f"{name}: {len(complete)} complete, {len(failed)} failed, {len(left)} not done after {len(history)} "
          f"round(s)")
    return {"feature_set": name, "complete": complete, "failed": failed, "not_done": left, "rounds": history,
            "ok": not failed and not left}
