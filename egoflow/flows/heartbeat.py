"""Flow-run heartbeats: a child run says it is alive; the parent flow reads when each child last said so.

A shard's flow run emits ``prefect.flow-run.heartbeat`` events for itself every ``every_s`` seconds from a daemon
thread (:func:`beating`), the event Prefect's own engine emits when a worker sets
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` (at most every 30 s): the parent reads both alike (:func:`last_beats`).
The thread beats while the process lives, whatever the main thread is doing (decoding a long video, loading a
model), and stops with the process: a ``kill -9`` of the worker or the node stops the beats, a slow shard does not.
Events reach the server's event store within its flush interval
(``PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL``, 5 s by default), so a beat is seen up to
``every_s`` + ~5 s after the last one.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime
import threading

HEARTBEAT = "prefect.flow-run.heartbeat"  # Prefect's own event name: one reader for its beats and ours


def beat_interval(stall_s: float) -> float:
    """Seconds between beats for a parent that calls a shard stalled after ``stall_s`` silent seconds: six beats
    per ``stall_s`` (so a late event or two never looks like silence), between 1 and 30 s."""
    return float(min(30.0, max(1.0, stall_s / 6)))


@contextlib.contextmanager
def beating(every_s: float):
    """Emit this flow run's heartbeat every ``every_s`` seconds while the block runs (nothing when 0, or outside a
    flow run)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx else None
    if not every_s or run is None:
        yield
        return
    from prefect.events import emit_event

    stop = threading.Event()
    resource = {"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name}

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a lost beat is a late beat; never fail the extraction for it
                emit_event(event=HEARTBEAT, resource=resource, payload={"source": "egoflow"})
            stop.wait(every_s)

    # the thread needs this context (the run's API settings), as Prefect's own heartbeat thread does
    thread = threading.Thread(target=contextvars.copy_context().run, args=(loop,), daemon=True,
                              name="egoflow-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)


def last_beats(client, run_ids: list[str], since: float) -> dict[str, float]:
    """``{run id: unix time of its latest heartbeat}`` for the runs that beat after ``since`` (one query per run:
    the newest event only). An events API that cannot be read gives ``{}`` (the parent then goes by progress)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    out: dict[str, float] = {}
    start = datetime.datetime.fromtimestamp(since, datetime.timezone.utc)
    for rid in run_ids:
        flt = EventFilter(occurred=EventOccurredFilter(since=start), event=EventNameFilter(name=[HEARTBEAT]),
                          resource=EventResourceFilter(id=[f"prefect.flow-run.{rid}"]))
        try:
            page = client.read_events(filter=flt, limit=1)  # newest first (EventFilter's default order)
        except Exception:  # noqa: BLE001 - an old server without the events API: no beats known
            return out
        if page.events:
            out[rid] = page.events[0].occurred.timestamp()
    return out
