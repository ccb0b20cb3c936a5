"""`egoflow` command line: one verb per stage (see DESIGN.md).

    egoflow extract VIDEO_OR_DIR_OR_LIST --store S --model ViT-B-32 --pretrained TAG|PATH|none --fps 1.875
    egoflow store ls|info|verify|export|import --store S
    egoflow encode-text ANNOTATIONS... --store S
    egoflow train HEAD --store S --feature-set F --annotations A --out RUN_DIR
    egoflow predict HEAD --run RUN_DIR --store S --annotations A --out FILE
    egoflow predict egomcq|ek100-mir|charades --store S --feature-set F --annotations A --out FILE   (zero-shot)
    egoflow search "text" --store S --feature-set F -k 10 [--out DIR]
    egoflow train laviti-charades --init LAVITI_RUN --annotations CharadesEgo_v1_train_only1st.csv ...
    egoflow evaluate BENCHMARK... --pred FILE... --gt FILE... --out DIR
    egoflow segment --store S --feature-set F VIDEO_UID
    egoflow extract LIST --store s3://b/f.zarr --submit egoflow-extract/extract --shards N   (parent flow)
    egoflow deploy --source GIT_URL_OR_PATH --pool POOL
    egoflow plan VIDEOS --model M --fps F [--workers N]
    egoflow demo [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from egoflow.evaluate.cli import register as register_evaluate
from egoflow.flows.cli import register as register_flow_verbs
from egoflow.fused_cli import register as register_fused
from egoflow.search_cli import register as register_search
from egoflow.segment.cli import register as register_segment


def _add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", default="clip", choices=["clip", "fused"],
                   help="clip: frozen open_clip frames; fused: EgoVLPv2-style fused backbone on windows")
    p.add_argument("--model", default=None, help="open_clip architecture (default ViT-B-32), or with --encoder "
                   "fused a fused model (default egovlpv2-base; clip-fused-<open_clip model>)")
    p.add_argument("--tokenizer", default="", help="fused: folder with RoBERTa vocab.json + merges.txt")
    p.add_argument("--num-frames", type=int, default=16, help="fused: frames per window F (default 16)")
    p.add_argument("--fusion-checkpoint", default="", help="clip-fused: tuned fusion weights")
    p.add_argument("--pretrained", default="none",
                   help="open_clip tag (e.g. laion2b_s34b_b79k), local checkpoint path, or none (random init)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")


def _add_storage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help='fsspec options for an s3:// (etc.) store, e.g. \'{"endpoint_url": "http://host:9000"}\' '
                        "or @file.json; credentials come from the environment (docs/scale-out.md)")


def _open_remote(a) -> None:
    """Apply --storage-options for the whole process and fail early, in one line, on an unusable remote store."""
    store = getattr(a, "store", None)
    if not store:
        return
    from egoflow.features_store import remote

    apply_storage_options = remote.apply_storage_options
    opts = remote.parse_storage_options(getattr(a, "storage_options", None))
    apply_storage_options(store, opts)
    if remote.protocol(store) not in (None, "memory", "file"):
        remote.open_store(store, mode="a" if a.command in ("extract", "encode-text") else "r")


def _encoder(a):
    if getattr(a, "encoder", "clip") == "fused":
        from egoflow.extract.fused.encoder import create_fused_encoder

        return create_fused_encoder(a.model, a.pretrained, a.tokenizer, a.num_frames, a.precision, a.device,
                                    min(a.batch_size, 8), fusion_checkpoint=a.fusion_checkpoint)
    from egoflow.extract.clip import create_encoder

    return create_encoder(a.model, a.pretrained, a.precision, a.device, a.batch_size)


def _resolve_encoder_defaults(a) -> None:
    """--model / --fps defaults depend on --encoder: fused windows default to Ego4D's 1.875 features/s."""
    fused = getattr(a, "encoder", "clip") == "fused"
    if hasattr(a, "encoder") and getattr(a, "model", "") is None:  # verbs with encoder args (not search)
        a.model = "egovlpv2-base" if fused else "ViT-B-32"
    if getattr(a, "command", None) == "extract" and a.fps is None:
        a.fps = 1.875 * ((a.stride or a.window or a.num_frames) if fused else 1)


def cmd_extract(a) -> int:
    from egoflow.extract.pipeline import ExtractConfig, extract

    cfg = ExtractConfig(fps=a.fps, window=a.window, stride=a.stride, backend=a.backend, force=a.force)
    if a.submit:
        if a.encoder != "clip" or a.queries:
            raise ValueError("--submit (sharded extraction on a work pool) runs frozen-CLIP frame features; run "
                             "--encoder fused extraction with --prefect or per --shard")
        from egoflow.features_store.remote import parse_storage_options
        from egoflow.flows.parent import extract_parent_flow

        res = extract_parent_flow(a.inputs, a.store, a.submit, a.shards, a.shard_hours, a.model, a.pretrained,
                                  a.precision, a.device, a.batch_size, a.fps, a.window, a.stride, a.backend,
                                  a.feature_set, a.in_flight, parse_storage_options(a.storage_options) or None,
                                  a.stall_s, pack=not a.no_pack)
        return 0 if res["ok"] else 1
    if a.queries:
        if a.encoder != "fused":
            raise ValueError("--queries (query-conditioned features) needs --encoder fused")
        from egoflow.extract.fused.extract import extract_conditioned, queries_from_file

        summary, name = extract_conditioned(a.inputs, a.store, _encoder(a), queries_from_file(a.queries), cfg,
                                            a.feature_set, progress=not a.quiet)
        print(f"query-conditioned feature set {name}: {summary.line()}")
        return 0 if summary.ok else 1
    if a.prefect:
        from egoflow.flows.extract import extract_flow

        res = extract_flow(a.inputs, a.store, a.model, a.pretrained, a.precision, a.device, a.batch_size,
                           a.fps, a.window, a.stride, a.backend, a.feature_set, a.shard, a.force,
                           in_flight=a.in_flight, pack=not a.no_pack, encoder=a.encoder, tokenizer=a.tokenizer,
                           num_frames=a.num_frames, fusion_checkpoint=a.fusion_checkpoint)
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
            for c in info.get("claims", []):
                print(f"  {'STALE CLAIM' if c['stale'] else 'being written'}: {c['name']} by {c['host']} "
                      f"pid {c['pid']}")
            for f in store.failures(name):
                print(f"  FAILED {f['video_uid']} [{f['stage']}] {f['reason']}")
        for name in store.text_sets():
            print(f"texts/{name}: {store.num_texts(name)} strings")
        return 0
    problems = store.verify()  # verify
    for p in problems:
        print("PROBLEM", p)
    print(f"verify {a.store}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 1


def cmd_store_export(a) -> int:
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.interop import export_hdf5, export_pt

    store = FeatureStore(a.store, mode="r")
    uids = a.videos.split(",") if a.videos else None
    done = (export_pt if a.format == "pt" else export_hdf5)(store, a.feature_set, a.out, uids)
    print(f"exported {len(done)} videos of {a.feature_set} to {a.out} ({a.format})")
    return 0


def cmd_store_import(a) -> int:
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.interop import import_hdf5, import_pt

    store = FeatureStore(a.store)
    extractor = json.loads(Path(a.extractor).read_text() if Path(a.extractor).is_file() else a.extractor) \
        if a.extractor else None
    fn = import_pt if a.format == "pt" else import_hdf5
    rep = fn(store, a.feature_set, a.src, a.fps, extractor, a.window_frames, a.stride_frames, a.source_fps,
             dtype=a.dtype, skip_existing=not a.force)
    if rep.imported:
        store.pack(a.feature_set)  # bulk loads read the packed copy (see docs/store.md, "Loading speed")
    for where, reason in rep.failed:
        print(f"FAILED {where}: {reason}")
    print(f"{a.feature_set}: {rep.summary()}")
    return 0 if rep.ok else 1


def cmd_store_pack(a) -> int:
    from egoflow.features_store import FeatureStore

    store = FeatureStore(a.store)
    for name in [a.feature_set] if a.feature_set else store.feature_sets():
        r = store.pack(name)
        print(f"packed {name}: {r['videos']} videos, {r['rows']} steps")
    return 0


def cmd_encode_text(a) -> int:
    from egoflow.encode_text import encode_files

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
    from egoflow.heads.zeroshot import ZEROSHOT

    if a.head in ("egomcq", "ek100-mir") and a.encoder == "fused":  # the fused backbone scores video-text pairs
        from egoflow.fused_cli import cmd_predict_egomcq, cmd_predict_ek100_mir

        return (cmd_predict_egomcq if a.head == "egomcq" else cmd_predict_ek100_mir)(a, _encoder)
    if not a.store:
        raise ValueError(f"egoflow predict {a.head} needs --store")

    if a.run is None:  # zero-shot: store features + texts, nothing trained (egoflow.heads.zeroshot)
        if a.head not in ZEROSHOT:
            raise ValueError(f"predict {a.head}: --run is required (zero-shot predictors without a run: "
                             f"{', '.join(sorted(ZEROSHOT))})")
        from egoflow.heads.zeroshot import predict as zeroshot_predict

        path = zeroshot_predict(a.head, a.store, a.annotations, a.out, feature_set=a.feature_set,
                                text_set=a.text_set, scorer=a.scorer, classes=a.classes, prompt=a.prompt,
                                split=a.split)
        print(f"zero-shot predictions written to {path}")
        return 0
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
    if a.fused:
        from egoflow.fused_demo import run_fused_demo

        model = "egoflow-tiny-ViT" if a.model == "ViT-B-32" else a.model  # CPU-sized unless asked otherwise
        run_fused_demo(a.out, model=model, pretrained=a.pretrained, quick=a.quick,
                       device="cpu" if a.device == "auto" else a.device)
        return 0
    from egoflow.demo import run_demo

    return run_demo(a.out, pretrained=a.pretrained, model=a.model, quick=a.quick, device=a.device)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="egoflow", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="decode videos, encode frames, write features into a store")
    p.add_argument("inputs", nargs="+", help="video files, directories (recursive) or .txt lists of paths")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--feature-set", default=None, help="name (default: derived, e.g. clip-ViT-B-32-none-1.875fps)")
    p.add_argument("--fps", type=float, default=None, help="sampled frames per second (default 1.875; fused: "
                   "1.875 x stride, i.e. Ego4D's 1.875 features/s)")
    p.add_argument("--queries", default=None, help="fused: query-conditioned features for these queries "
                   "(Ego4D NLQ JSON keyed by clip_uid, JSON {uid: [queries]}, or .txt for every video)")
    p.add_argument("--window", type=int, default=0, help="clip-level: frames per window (0: frame-level)")
    p.add_argument("--stride", type=int, default=0, help="clip-level: frames between windows (default window)")
    p.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav"])
    p.add_argument("--shard", default=None, help="I/N: process only this worker's share of the videos")
    p.add_argument("--force", action="store_true", help="recompute videos that are already complete")
    p.add_argument("--prefect", action="store_true", help="run as the Prefect flow (one task per video)")
    p.add_argument("--no-pack", action="store_true",
                   help="skip packing the set at the end (e.g. while other shards are still writing)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--in-flight", type=int, default=0,
                   help="--prefect/--submit: videos decoded at once per worker (default: 2 with a GPU, else "
                        "min(4, cores); env EGOFLOW_VIDEOS_IN_FLIGHT)")
    p.add_argument("--submit", default=None, metavar="FLOW/DEPLOYMENT",
                   help="run the parent flow: one run of this deployment per shard (e.g. egoflow-extract/extract)")
    p.add_argument("--shards", type=int, default=0, help="--submit: number of shards (equal video count)")
    p.add_argument("--shard-hours", type=float, default=0.0,
                   help="--submit: shards of about this many hours of video (probed durations)")
    p.add_argument("--stall-s", type=float, default=600.0,
                   help="--submit: re-run a shard whose run made no progress for this long (lost worker)")
    _add_encoder_args(p)
    _add_storage_args(p)
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
        _add_storage_args(q)
        q.set_defaults(func=cmd_store)
    q = ssub.add_parser("pack", help="write a packed copy of feature sets for fast bulk loading")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", default=None, help="default: every feature set")
    q.set_defaults(func=cmd_store_pack)
    q = ssub.add_parser("export", help="write a feature set as one .pt per video or one HDF5 file")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", required=True)
    q.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    q.add_argument("--out", required=True, help="directory (pt) or file (hdf5)")
    q.add_argument("--videos", default=None, help="comma-separated uids (default: all complete videos)")
    q.set_defaults(func=cmd_store_export)
    q = ssub.add_parser("import", help="import .pt files or an HDF5 file into a feature set")
    q.add_argument("--store", required=True)
    q.add_argument("--feature-set", required=True)
    q.add_argument("--format", choices=["pt", "hdf5"], default="pt")
    q.add_argument("--src", required=True, help="directory of <uid>.pt (pt) or file (hdf5)")
    q.add_argument("--fps", type=float, default=None, help="steps per second when the files carry no times")
    q.add_argument("--window-frames", type=int, default=None, help="window features: frames per window (Ego4D 32)")
    q.add_argument("--stride-frames", type=int, default=None, help="window features: frames between windows (16)")
    q.add_argument("--source-fps", type=float, default=30.0, help="frame rate the windows count in")
    q.add_argument("--extractor", default=None, help="extractor config: JSON string or file (default: sidecar)")
    q.add_argument("--dtype", choices=["float16", "float32"], default=None, help="stored dtype (default float16)")
    q.add_argument("--force", action="store_true", help="re-import videos that are already complete")
    q.set_defaults(func=cmd_store_import)

    p = sub.add_parser("encode-text", help="encode queries/narrations/labels of annotation files into texts/")
    p.add_argument("annotations", nargs="+", help="Ego4D NLQ/MQ/narration JSON files or .txt lists")
    p.add_argument("--store", required=True)
    p.add_argument("--text-set", default=None, help="default: clip-<model>-<pretrained>-text")
    p.add_argument("--prompt", default=None, help='template for label names, e.g. "a photo of {}"')
    _add_encoder_args(p)
    _add_storage_args(p)
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
    _add_storage_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="write official-format predictions with a trained run")
    p.add_argument("head")
    p.add_argument("--run", default=None, help="run directory of `egoflow train` (omit for the zero-shot "
                   "predictors egomcq, ek100-mir, charades)")
    p.add_argument("--store", default=None, help="feature store (every predictor but --encoder fused egomcq / "
                   "ek100-mir, which read the videos)")
    p.add_argument("--annotations", required=True)
    p.add_argument("--out", required=True, help="predictions JSON path")
    p.add_argument("--feature-set", default=None)
    p.add_argument("--text-set", default=None)
    p.add_argument("--classes", default=None, help="class list (laviti-charades; default: the run's, or next to "
                   "the annotations)")
    p.add_argument("--scorer", default="clip", help="zero-shot clip-text score (default: CLIP cosine)")
    p.add_argument("--prompt", default=None, help='zero-shot charades: class-name template, e.g. "a video of {}"')
    p.add_argument("--split", default="test", help="zero-shot ek100-mir: split of the retrieval_annotations folder")
    p.add_argument("--videos", default=None, help="--encoder fused egomcq / ek100-mir: folder of the videos "
                   "(<video_uid>.mp4)")
    p.add_argument("--score", default=None, choices=["dual", "vtm", "ensemble"],
                   help="--encoder fused egomcq / ek100-mir: dual (cosine), vtm (fusion P(match)) or ensemble "
                   "(their sum); default ensemble for egomcq, dual for ek100-mir (vtm scores every pair)")
    p.add_argument("--fps", type=float, default=None, help="--encoder fused egomcq / ek100-mir: decoding rate for "
                   "clip frames (default 8)")
    _add_encoder_args(p)
    _add_storage_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("heads", help="list the registered heads")
    p.set_defaults(func=cmd_heads)

    p = sub.add_parser("demo", help="the whole pipeline on generated videos, ending with a report")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--pretrained", default="none", help="weights for the demo encoder (default: random init)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="tiny model and short videos (seconds, for tests)")
    p.add_argument("--fused", action="store_true", help="the fused path instead: clip-fused (tiny open_clip "
                   "unless --model), fusion tuning, query-conditioned extraction, zero-shot NLQ, report")
    p.set_defaults(func=cmd_demo)

    register_evaluate(sub)
    register_segment(sub)
    register_flow_verbs(sub)
    register_search(sub)
    register_fused(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from egoflow.errors import EXIT_ENVIRONMENT, describe, is_environment_error, user_errors

    args = build_parser().parse_args(argv)
    _resolve_encoder_defaults(args)
    try:
        _open_remote(args)
        return int(args.func(args) or 0)
    except OSError as e:  # disk full, read-only store, ...: the machine, not the input (exit 3)
        if not is_environment_error(e, getattr(args, "store", None)) or os.environ.get("EGOFLOW_DEBUG"):
            if isinstance(e, user_errors()):
                print(f"egoflow {args.command}: error: {e}", file=sys.stderr)
                return 2
            raise
        print(f"egoflow {args.command}: environment error: {describe(e)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except user_errors() as e:
        print(f"egoflow {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
