"""`egoflow` command line: one verb per stage (see DESIGN.md).

    egoflow extract VIDEO_OR_DIR_OR_LIST --store S --model ViT-B-32 --pretrained TAG|PATH|none --fps 1.875
    egoflow store ls|info|verify|export|import --store S
    egoflow encode-text ANNOTATIONS... --store S
    egoflow train HEAD --store S --feature-set F --annotations A --out RUN_DIR
    egoflow predict HEAD --run RUN_DIR --store S --annotations A --out FILE
    egoflow train laviti-charades --init LAVITI_RUN --annotations CharadesEgo_v1_train_only1st.csv ...
    egoflow evaluate BENCHMARK... --pred FILE... --gt FILE... --out DIR
    egoflow segment --store S --feature-set F VIDEO_UID
    egoflow demo [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys


def _add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ViT-B-32", help="open_clip architecture (default ViT-B-32)")
    p.add_argument("--pretrained", default="none",
                   help="open_clip tag (e.g. laion2b_s34b_b79k), local checkpoint path, or none (random init)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")


def _encoder(a):
    from egoflow.extract.clip import create_encoder

    return create_encoder(a.model, a.pretrained, a.precision, a.device, a.batch_size)


def cmd_extract(a) -> int:
    from egoflow.extract.pipeline import ExtractConfig, extract

    cfg = ExtractConfig(fps=a.fps, window=a.window, stride=a.stride, backend=a.backend, force=a.force)
    if a.prefect:
        from egoflow.flows.extract import extract_flow

        res = extract_flow(a.inputs, a.store, a.model, a.pretrained, a.precision, a.device, a.batch_size,
                           a.fps, a.window, a.stride, a.backend, a.feature_set, a.shard, a.force)
        return 0 if res["ok"] else 1
    summary, name = extract(a.inputs, a.store, _encoder(a), cfg, a.feature_set, progress=not a.quiet,
                            shard_spec=a.shard, pack=not a.no_pack)
    print(f"feature set {name}: {summary.line()}")
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed {r.video_uid} [{r.stage}] {r.reason}  ({r.path})")
    return 0 if summary.ok else 1


def cmd_store(a) -> int:
    from egoflow.features_store import FeatureStore

    store = FeatureStore(a.store, mode="r")
    if a.action == "ls":
        for name in store.feature_sets():
            print(f"{name}\t{len(store.videos(name))} videos")
        for name in store.text_sets():
            print(f"texts/{name}")
        return 0
    if a.action == "info":
        names = [a.feature_set] if a.feature_set else store.feature_sets()
        for name in names:
            info = store.info(name)
            if a.json:
                print(json.dumps(info, indent=1))
                continue
            print(f"{name}: {info['videos_complete']} complete, {info['videos_failed']} failed, "
                  f"{info['videos_incomplete']} incomplete | {info['hours']:.3f} h | {info['steps']} steps x "
                  f"{info['dim']} ({info['dtype']}) | hash {info['config_hash']}")
            print("  extractor: " + json.dumps(info["extractor"], sort_keys=True))
            for f in store.failures(name):
                print(f"  FAILED {f['video_uid']} [{f['stage']}] {f['reason']}")
        for name in store.text_sets():
            print(f"texts/{name}: {len(store._text_lookup(name))} strings")
        return 0
    problems = store.verify()  # verify
    for p in problems:
        print("PROBLEM", p)
    print(f"verify {a.store}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def cmd_encode_text(a) -> int:
    from egoflow.extract.text import encode_files

    name, counts = encode_files(a.store, a.annotations, _encoder(a), a.text_set, a.prompt)
    for f, n in counts.items():
        print(f"{f}: {n} strings")
    print(f"text set {name} in {a.store}")
    return 0


def _parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for kv in pairs or []:
        if "=" not in kv:
            raise ValueError(f"--set expects key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def cmd_train(a) -> int:
    from egoflow.heads.runner import train

    train_over = {k: v for k, v in dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                                        device=a.device).items() if v is not None}
    metrics = train(a.head, a.store, a.feature_set, a.annotations, a.out, val_annotations=a.val_annotations,
                    text_set=a.text_set, head_overrides=_parse_overrides(a.set), train_overrides=train_over,
                    init=a.init, classes=a.classes)
    print(json.dumps(metrics, indent=1, default=float))
    return 0


def cmd_predict(a) -> int:
    from egoflow.heads.runner import predict

    path = predict(a.head, a.run, a.store, a.annotations, a.out, feature_set=a.feature_set, text_set=a.text_set,
                   classes=a.classes)
    print(f"predictions written to {path}")
    return 0


def cmd_heads(a) -> int:
    from egoflow.heads.registry import describe_heads

    heads = describe_heads()
    width = max(map(len, heads))
    for name, d in heads.items():
        print(f"{name:{width}s}  {d['benchmark']:8s}  {d['description']}")
    return 0


def cmd_demo(a) -> int:
    from egoflow.demo import run_demo

    return run_demo(a.out, pretrained=a.pretrained, model=a.model, quick=a.quick, device=a.device)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="egoflow", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="decode videos, encode frames, write features into a store")
    p.add_argument("inputs", nargs="+", help="video files, directories (recursive) or .txt lists of paths")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--feature-set", default=None, help="name (default: derived, e.g. clip-ViT-B-32-none-1.875fps)")
    p.add_argument("--fps", type=float, default=1.875, help="sampled frames per second")
    p.add_argument("--window", type=int, default=0, help="clip-level: frames per window (0: frame-level)")
    p.add_argument("--stride", type=int, default=0, help="clip-level: frames between windows (default window)")
    p.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav"])
    p.add_argument("--shard", default=None, help="I/N: process only this worker's share of the videos")
    p.add_argument("--force", action="store_true", help="recompute videos that are already complete")
    p.add_argument("--prefect", action="store_true", help="run as the Prefect flow (one task per video)")
    p.add_argument("--no-pack", action="store_true",
                   help="skip packing the set at the end (e.g. while other shards are still writing)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_encoder_args(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("store", help="inspect, verify, export or import a feature store")
    ssub = p.add_subparsers(dest="action", required=True)
    for action, hlp in (("ls", "list feature and text sets"), ("info", "counts, hours, failures"),
                        ("verify", "check every complete video's arrays")):
        q = ssub.add_parser(action, help=hlp)
        q.add_argument("--store", required=True)
        if action == "info":
            q.add_argument("--feature-set", default=None)
            q.add_argument("--json", action="store_true")
        q.set_defaults(func=cmd_store)
    try:
        from egoflow.features_store.interop import register_store_commands
    except ImportError:
        register_store_commands = None
    if register_store_commands is not None:
        register_store_commands(ssub)

    p = sub.add_parser("encode-text", help="encode queries/narrations/labels of annotation files into texts/")
    p.add_argument("annotations", nargs="+", help="Ego4D NLQ/MQ/narration JSON files or .txt lists")
    p.add_argument("--store", required=True)
    p.add_argument("--text-set", default=None, help="default: clip-<model>-<pretrained>-text")
    p.add_argument("--prompt", default=None, help='template for label names, e.g. "a photo of {}"')
    _add_encoder_args(p)
    p.set_defaults(func=cmd_encode_text)

    p = sub.add_parser("train", help="train a head from a feature store")
    p.add_argument("head", help="see `egoflow heads`")
    p.add_argument("--store", required=True)
    p.add_argument("--feature-set", required=True)
    p.add_argument("--annotations", required=True, help="training annotations")
    p.add_argument("--val-annotations", default=None, help="validation annotations (best checkpoint)")
    p.add_argument("--text-set", default=None)
    p.add_argument("--out", required=True, help="run directory (resumes if it has last.pt)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="head config override (repeatable)")
    p.add_argument("--init", default=None, metavar="RUN_DIR", help="start from this run's best weights "
                   "(laviti-charades: a laviti pretraining run)")
    p.add_argument("--classes", default=None, help="class list, e.g. Charades_v1_classes.txt (default: next to "
                   "the annotations)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="write official-format predictions with a trained run")
    p.add_argument("head")
    p.add_argument("--run", required=True, help="run directory of `egoflow train`")
    p.add_argument("--store", required=True)
    p.add_argument("--annotations", required=True)
    p.add_argument("--out", required=True, help="predictions JSON path")
    p.add_argument("--feature-set", default=None)
    p.add_argument("--text-set", default=None)
    p.add_argument("--classes", default=None, help="class list (laviti-charades; default: the run's, or next to "
                   "the annotations)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("heads", help="list the registered heads")
    p.set_defaults(func=cmd_heads)

    p = sub.add_parser("demo", help="the whole pipeline on generated videos, ending with a report")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--pretrained", default="none", help="weights for the demo encoder (default: random init)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="tiny model and short videos (seconds, for tests)")
    p.set_defaults(func=cmd_demo)

    for mod in ("egoflow.evaluate.cli", "egoflow.segment.cli"):
        try:
            register = __import__(mod, fromlist=["register"]).register
        except ImportError as e:
            if e.name and e.name.startswith("egoflow"):
                continue  # module not built in this checkout: its verb is simply absent
            raise
        register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from egoflow.errors import user_errors

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_errors() as e:
        print(f"egoflow {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
