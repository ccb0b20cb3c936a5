"""The walk of ``--model`` from ``cmd_extract`` to the store, measured on a real run (issue 19).

    PYTHONPATH=TREE python benchmarks/extract_model_walk.py LABEL MODEL extract VIDEOS --store S --model MODEL ...
    SUBMIT_INPROC=1 PYTHONPATH=TREE python benchmarks/extract_model_walk.py submit MODEL extract ... --submit x/y

Every egoflow function called with the model name among its arguments (directly, or inside an argparse
Namespace, a dataclass, a dict or an encoder object's ``cfg``) is a step of the walk. *Rooms*: the distinct egoflow
modules on it (the fused model's own insides, ``extract.fused.{model,video,text,config}``, left out). *Climbs
back*: distinct call edges A -> B (A != B) into a higher import-linter layer, or into a module first entered before
A was. ``WALK_SKIP_INIT=1`` does not count a dataclass being built (``__init__`` / ``__post_init__`` of a data
record, e.g. the CLI building an EncoderSpec) as a visit. ``SUBMIT_INPROC=1`` runs each shard of ``--submit`` as
``extract_flow`` in this process with its parameters through JSON, as a deployment run stores them (no pool
needed). Prints one JSON line after ``@@@``.
Run it with TREE = a checkout before and after a change to compare the two.
"""
import argparse
import dataclasses
import json
import os
import sys
import threading

LAYERS = [["egoflow.cli"], ["egoflow.flows", "egoflow.demo"],
          ["egoflow.encode_text", "egoflow.search_cli", "egoflow.fused_cli", "egoflow.fused_demo"],
          ["egoflow.heads", "egoflow.extract"], ["egoflow.segment"], ["egoflow.evaluate"], ["egoflow.datasets"],
          ["egoflow.features_store"], ["egoflow.device", "egoflow.errors", "egoflow.formats"]]
INTERNAL = ("egoflow.extract.fused", "egoflow.extract.fused.model", "egoflow.extract.fused.video",
            "egoflow.extract.fused.text", "egoflow.extract.fused.config")


def layer(mod: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(mod == n or mod.startswith(n + ".") for n in names):
            return i
    return 99


def carries(v, model: str, depth: int = 0) -> bool:
    if isinstance(v, str):
        return v == model
    if depth > 2:
        return False
    if isinstance(v, dict):
        return any(carries(x, model, depth + 1) for x in list(v.values())[:50])
    if isinstance(v, (list, tuple)) and len(v) < 50:
        return any(carries(x, model, depth + 1) for x in v)
    if isinstance(v, argparse.Namespace):
        return any(carries(x, model, depth + 1) for x in vars(v).values())
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return any(carries(getattr(v, f.name), model, depth + 1) for f in dataclasses.fields(v))
    cfg = getattr(v, "cfg", None) if type(v).__module__.startswith("egoflow") else None
    return cfg is not None and carries(cfg, model, depth + 1)


def _submit_in_process() -> None:
    from types import SimpleNamespace

    import prefect.deployments

    from egoflow.flows.extract import extract_flow

    def run_deployment(name, parameters, **kw):
        wire = json.loads(json.dumps(extract_flow.serialize_parameters(parameters)))
        st = extract_flow(**extract_flow.validate_parameters(wire), return_state=True)
        return SimpleNamespace(id=st.state_details.flow_run_id, name=kw.get("flow_run_name"))

    prefect.deployments.run_deployment = run_deployment


def trace(argv: list[str], model: str) -> tuple[int, list[str], list]:
    calls = []
    skip_init = bool(os.environ.get("WALK_SKIP_INIT"))

    def prof(frame, event, arg):
        if event != "call":
            return
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith("egoflow") or frame.f_code.co_name.startswith("<"):
            return
        code = frame.f_code
        if skip_init and code.co_name in ("__init__", "__post_init__") and "self" in frame.f_locals and \
                dataclasses.is_dataclass(type(frame.f_locals["self"])):
            return
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        try:
            if not any(carries(frame.f_locals[n], model) for n in names if n in frame.f_locals):
                return
        except Exception:  # noqa: BLE001 - a half-built object (inside its __init__)
            return
        caller = frame.f_back
        while caller is not None and not caller.f_globals.get("__name__", "").startswith("egoflow"):
            caller = caller.f_back  # through Prefect's engine: the egoflow frame that called it
        calls.append((caller.f_globals["__name__"] if caller is not None else "", mod, code.co_name))

    from egoflow.cli import main

    if os.environ.get("SUBMIT_INPROC"):
        _submit_in_process()
    sys.setprofile(prof)
    threading.setprofile(prof)
    try:
        rc = main(argv)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    calls = calls[[i for i, c in enumerate(calls) if c[2] == "cmd_extract"][0]:]
    calls = [c for c in calls if c[1] not in INTERNAL]
    order: dict[str, int] = {}
    for c, m, _ in calls:
        for x in (c, m):
            if x and x not in order:
                order[x] = len(order)
    climbs = {(c, m) for c, m, _ in calls if c and c != m and (layer(m) < layer(c) or order[m] < order[c])}
    return rc, list(order), sorted(climbs)


if __name__ == "__main__":
    label, model, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    rc, rooms, climbs = trace(argv, model)
    print("@@@" + json.dumps({"path": label, "rc": rc, "rooms": len(rooms), "climbs_back": len(climbs),
                              "modules": rooms, "climbs": climbs}))
