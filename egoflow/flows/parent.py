"""The parent flow: split a video list into shards, run one child flow run per shard on a work pool, re-run
what did not finish, pack once.

    extract_parent_flow(["/data/ego4d/list.txt"], "s3://bucket/ego4d.zarr",
                        EncoderSpec("clip", "ViT-L-14", "openai", device="cuda"), ExtractConfig(fps=1.875),
                        sharding=Sharding("egoflow-extract/extract", shards=64))

Each shard is a flow run of the ``extract`` deployment (``run_deployment``), picked up by whichever worker of
the pool is free; the child gets the same :class:`EncoderSpec` (frozen CLIP or fused) and, for
query-conditioned features, its videos' queries. The store's ``complete`` markers are the only record of what is
done: after each round the parent re-reads them and submits the videos that are neither complete nor recorded
as failed *by this run's children* again, in new shards, up to ``max_rounds`` rounds.

A child run that crashed or failed is re-run. One still "Running" is *stalled* only when both (a) its heartbeats
stopped (it beats every ``stall_s / 6`` s, :mod:`egoflow.flows.heartbeat`) and (b) no video of its shard
finished, each for ``stall_s`` seconds counted from the run's start, not from its submission: a slow start or a
long video keeps beating, a ``kill -9``'d worker (whose run stays "Running" forever) does not. A stalled run is
set to Cancelling (a live worker then kills it) and its videos go to the next round. A run a worker took but
whose process has not started the flow yet ("Pending": Python, Prefect and egoflow still importing, which takes
tens of seconds on a busy node) cannot beat: it is given ``max(stall_s, PENDING_S)``. The parent ends Failed,
naming the videos that are not done (or failed), when any are left.

Children never pack (``pack=False``); the parent packs once at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from egoflow.extract.encoders import FROZEN_CLIP, EncoderSpec, describe
from egoflow.extract.fused.extract import conditioned_set_name
from egoflow.extract.pipeline import (
    ExtractConfig,
    default_set_name,
    discover_videos,
    source_info,
    video_uid,
    with_frames,
)
from egoflow.extract.plan import make_shards, probe_hours
from egoflow.extract.query import queries_for
from egoflow.features_store import FeatureStore
from egoflow.features_store.remote import open_store
from egoflow.flows.heartbeat import beat_interval, last_beats

FINAL_OK = "COMPLETED"
MIN_STALL_S = 20.0  # a heartbeat takes its interval plus the server's event flush (5 s) to be seen: margin for load
PENDING_S = 120.0  # a Pending run's process is still starting (imports): no heartbeat possible before this


@dataclass(frozen=True)
class Sharding:
    deployment: str = "egoflow-extract/extract"  # the child flow's deployment, FLOW/DEPLOYMENT
    shards: int = 0  # number of shards of equal video count (0 with shard_hours: by duration; else 1)
    shard_hours: float = 0.0  # or shards of about this many hours of video (probed durations)
    stall_s: float = 600.0  # re-run a shard silent (no heartbeat) and without progress this long (lost worker)
    poll_s: float = 0.0  # seconds between looks at the children (0: min(5, stall_s / 10))
    max_rounds: int = 3  # rounds of re-running what is not done
    job_variables: dict | None = None  # per-run work-pool job variables, e.g. {"env": {...}}


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


def _free_claims(store: FeatureStore, name: str, shard: list) -> list[str]:
    """Release the claims a stalled run left on its shard's unfinished videos. On another host a claim is only
    taken over after hours (its process cannot be checked from here), so a re-run would skip those videos; a
    run that neither beats nor progresses for stall_s is not writing them."""
    from egoflow.features_store import claims

    if store is None or name not in store.feature_sets():
        return []
    fs = store.feature_set_group(name).group
    mine = {video_uid(p) for p in shard}
    freed = []
    for c in claims.holders(fs):
        if c["name"] in mine and not store.is_complete(name, c["name"]):
            claims.release(fs, c["name"], c.get("token"))
            freed.append(c["name"])
    return freed


def _wait(client, runs: dict, store, name, sharding: Sharding, since: float, log) -> tuple[dict[str, str], set]:
    """Poll the child runs until each is final or stalled (module doc); return ({run id: final state name},
    the runs whose heartbeats were seen)."""
    from prefect.states import Cancelling

    stall_s, poll_s = sharding.stall_s, sharding.poll_s or min(5.0, sharding.stall_s / 10)
    state: dict[str, str] = {}
    seen: set[str] = set()
    progress: dict[str, tuple[float, int]] = {}  # run id -> (last progress time, finished count)
    while len(state) < len(runs):
        live = {}
        for rid, (fr_name, shard) in runs.items():
            if rid in state:
                continue
            st = client.read_flow_run(rid).state
            kind = st.type.value if st else "SCHEDULED"
            if kind in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                state[rid] = st.name
                if kind != FINAL_OK:
                    log.warning(f"shard {fr_name}: {st.name}: {(st.message or '')[:300]}")
            elif kind in ("PENDING", "RUNNING", "CANCELLING"):  # a worker has it (SCHEDULED: waiting for one)
                live[rid] = (fr_name, shard, kind, st.timestamp.timestamp())
        beats = last_beats(client, list(live), since) if live else {}
        seen |= set(beats)
        now = time.time()
        for rid, (fr_name, shard, kind, entered) in live.items():
            n = len(_finished(store, name, shard, since))
            t, have = progress.get(rid, (entered, 0))  # the clock starts when the run starts, not at submission
            if n != have:
                progress[rid] = t, have = now, n
            limit = max(stall_s, PENDING_S) if kind == "PENDING" else stall_s  # Pending: its process is starting
            silent = now - max(entered, beats.get(rid, 0.0))
            if silent > limit and now - t > limit:
                msg = (f"stalled: no heartbeat for {silent:.0f} s and no video of its shard finished for "
                       f"{now - t:.0f} s (worker lost?)")
                client.set_flow_run_state(rid, Cancelling(message=msg), force=True)
                freed = _free_claims(store, name, shard)
                log.warning(f"shard {fr_name}: {msg}; its unfinished videos go to the next round"
                            + (f" (claims of {', '.join(freed)} released)" if freed else ""))
                state[rid] = "Stalled"
        if len(state) < len(runs):
            time.sleep(poll_s)
    return state, seen


@flow(name="egoflow-extract-parent", log_prints=True)
def extract_parent_flow(inputs: list[str], store: str, encoder: EncoderSpec = FROZEN_CLIP,
                        options: ExtractConfig | None = None, sharding: Sharding = Sharding(),
                        feature_set: str | None = None, queries: dict[str, list[str]] | list[str] | None = None,
                        in_flight: int = 0, storage_options: dict | None = None, pack: bool = True):
    """Extract ``inputs`` into ``store`` with one ``sharding.deployment`` run per shard; returns the final counts
    (a Failed state carrying them, naming what is not done, when anything is left). Parameters as
    :func:`egoflow.flows.extract.extract_flow`."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from egoflow.errors import EgoflowUserError

    if sharding.stall_s < MIN_STALL_S:
        raise EgoflowUserError(f"--stall-s {sharding.stall_s:g} is shorter than a heartbeat takes to be seen; "
                               f"use at least {MIN_STALL_S:g} (docs/scale-out.md: choosing --stall-s)")
    log = get_run_logger()
    since = time.time()
    cfg = with_frames(encoder, options or ExtractConfig())
    paths = discover_videos(inputs)
    if queries is not None:  # videos without a query have nothing to extract: left out, said once
        no_q = [p for p in paths if not queries_for(queries, video_uid(p))]
        if no_q:
            log.warning(f"{len(no_q)} video(s) have no queries and are skipped, e.g. {[str(p) for p in no_q[:3]]}")
        paths = [p for p in paths if p not in no_q]
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:  # the children record each as a failure ("open" stage); the other videos go on
        log.warning(f"{len(missing)} listed video(s) do not exist, e.g. {missing[:3]}")
    st = open_store(store, storage_options=storage_options)  # unreachable/bad store: fail before any shard
    if queries is None:
        name = feature_set or default_set_name(encoder, cfg)
    else:
        name = feature_set or conditioned_set_name(describe(encoder), cfg)
    weights = {k: v for k, v in describe(encoder).items() if k != "encoder"}
    _check_same_config(st, name, {**weights, "fps": cfg.fps, "window": cfg.window, "stride": cfg.stride or cfg.window})
    params = {"store": store, "encoder": encoder, "options": cfg, "feature_set": name, "in_flight": in_flight,
              "pack": False, "storage_options": storage_options, "heartbeat_s": beat_interval(sharding.stall_s)}
    history = []
    with get_client(sync_client=True) as client:
        for rnd in range(1, sharding.max_rounds + 1):
            todo = [p for p in paths if str(p) not in _finished(st, name, paths, since)]
            if not todo:
                break
            hours = probe_hours(todo) if sharding.shard_hours else None
            # a later round keeps round 1's shard size (its few leftovers make few shards, not `shards` tiny ones)
            size = -(-len(todo) // -(-len(paths) // (sharding.shards or 1)))
            split = make_shards(todo, size, sharding.shard_hours, hours)
            print(f"round {rnd}: {len(todo)} video(s) in {len(split)} shard(s) -> {sharding.deployment}")
            runs = {}
            for i, part in enumerate(split):
                qs = _shard_queries(queries, part)
                fr = run_deployment(sharding.deployment, timeout=0, flow_run_name=f"{name}-r{rnd}-s{i}",
                                    parameters={**params, "inputs": [str(p) for p in part], "queries": qs},
                                    job_variables=sharding.job_variables)
                runs[str(fr.id)] = (fr.name, part)
            states, beating = _wait(client, runs, st, name, sharding, since, log)
            print(f"round {rnd}: heartbeats from {_beat_count(client, runs, since, beating)} of {len(runs)} "
                  "shard run(s)")
            history.append({"round": rnd, "shards": len(split), "videos": len(todo),
                            "states": sorted(states.values())})
    done = _finished(st, name, paths, since)
    complete = [video_uid(p) for p in paths if str(p) in done and st.is_complete(name, video_uid(p))]
    uids = {video_uid(p) for p in paths}
    failed = [f["video_uid"] for f in (st.failures(name) if name in st.feature_sets() else [])
              if f["video_uid"] in uids]
    left = [video_uid(p) for p in paths if video_uid(p) not in set(complete) | set(failed)]
    if pack and complete and queries is None:
        st.pack(name)  # once, here: children run with pack=False (conditioned sets are read per (clip, query))
    line = (f"{name}: {len(complete)} complete, {len(failed)} failed, {len(left)} not done after {len(history)} "
            f"round(s)")
    print(line)
    res = {"feature_set": name, "complete": complete, "failed": failed, "not_done": left, "rounds": history,
           "ok": not failed and not left}
    if res["ok"]:
        return Completed(message=line, data=res)
    what = "; ".join(f"{k}: {', '.join(v[:50])}{' ...' if len(v) > 50 else ''}"
                     for k, v in (("not done", left), ("failed", failed)) if v)
    return Failed(message=f"{line} ({what})", data=res)


def _beat_count(client, runs: dict, since: float, seen: set) -> int:
    """How many of a round's runs beat (seen while live, or found now: a short run may end between two looks,
    its last events still in the server's flush). Fewer than the runs: heartbeats do not get through."""
    for wait in (0.0, 6.0):
        time.sleep(wait)
        seen = seen | set(last_beats(client, [r for r in runs if r not in seen], since))
        if len(seen) == len(runs):
            break
    return len(seen)


def _shard_queries(queries, part: list) -> dict[str, list[str]] | list[str] | None:
    """The queries a shard's run needs: its videos' entries (the whole map would go with every run)."""
    if queries is None or isinstance(queries, list):
        return queries
    return {video_uid(p): queries_for(queries, video_uid(p)) for p in part}
