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
import os
import sys

from egoflow.cli.args import add_encoder_args, add_storage_args, options_from_args, spec_from_args
from egoflow.cli.flows import register as register_flow_verbs
from egoflow.cli.fused import register as register_fused
from egoflow.cli.heads import register as register_heads
from egoflow.cli.recipes import register as register_recipes
from egoflow.cli.search import register as register_search
from egoflow.cli.segment import register as register_segment
from egoflow.cli.store import register as register_store
from egoflow.evaluate.cli import register as register_evaluate
from egoflow.extract.encoders import create


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
        writes = a.command in ("extract", "encode-text") or getattr(a, "action", None) == "import"
        remote.open_store(store, mode="a" if writes else "r")


def cmd_extract(a) -> int:
    from egoflow.extract._torchcodec import resolve as resolve_backend
    from egoflow.extract.pipeline import extract

    a.backend = resolve_backend(a.backend, a.strict, warn=lambda m: print(m, file=sys.stderr))
    spec = spec_from_args(a)  # the encoder, once: every path below carries this spec
    cfg = options_from_args(a, spec)  # and these options (decode, backend, fps, ...), to every worker too
    queries = None
    if a.queries:
        from egoflow.datasets.egotaskqa import is_question_file, questions_by_video
        from egoflow.extract.fused.extract import merge_queries, queries_from_file

        if not spec.fused:
            raise ValueError("--queries (query-conditioned features) needs --encoder fused")
        if not spec.tokenizer and not spec.model.startswith("clip-fused-"):  # before any model loads or video runs
            raise ValueError(f"--queries: {spec.model} encodes text with --tokenizer DIR (vocab.json + merges.txt)")
        queries = merge_queries([questions_by_video(f) if is_question_file(f) else queries_from_file(f)
                                 for f in a.queries])  # EgoTaskQA files: their questions, by store video
    if spec.recipe:
        _check_recipe_window(a, spec, cfg)
    if a.submit:
        from egoflow.features_store.remote import parse_storage_options
        from egoflow.flows.parent import Sharding, extract_parent_flow

        sharding = Sharding(a.submit, a.shards, a.shard_hours, a.stall_s)
        state = extract_parent_flow(a.inputs, a.store, spec, cfg, sharding, a.feature_set, queries, a.in_flight,
                                    parse_storage_options(a.storage_options) or None, pack=not a.no_pack,
                                    return_state=True)
        if isinstance(err := state.result(raise_on_failure=False), BaseException):
            raise err  # refused before any shard (bad --stall-s, another set's settings): a one-line error, exit 2
        if not state.is_completed():
            print(f"extract --submit: {state.name}: {state.message}", file=sys.stderr)
        return 0 if state.is_completed() else 1
    if a.prefect:
        from egoflow.flows.extract import extract_flow

        res = extract_flow(a.inputs, a.store, spec, cfg, a.feature_set, queries, a.shard, a.in_flight,
                           pack=not a.no_pack)
        return 0 if res["ok"] else 1
    if queries is not None:
        from egoflow.extract.query import extract_conditioned

        summary, name = extract_conditioned(a.inputs, a.store, spec, queries, cfg, a.feature_set,
                                            progress=not a.quiet, strict=a.strict)
        print(f"query-conditioned feature set {name}: {summary.line()}")
        return 0 if summary.ok else 1
    summary, name = extract(a.inputs, a.store, spec, cfg, a.feature_set, progress=not a.quiet, shard_spec=a.shard,
                            pack=not a.no_pack)
    print(f"feature set {name}: {summary.line()}")
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed {r.video_uid} [{r.stage}] {r.reason}  ({r.path})")
    return 0 if summary.ok else 1


def _check_recipe_window(a, spec, cfg) -> None:
    """--recipe: inputs shorter than the recipe's window are refused before any model loads or anything is
    written (one line, exit 2); with --skip-short every worker records them as failed and goes on."""
    from egoflow.extract.discover import discover
    from egoflow.extract.pipeline import shard
    from egoflow.extract.short import describe_window, find_short, short_error, window_seconds

    need = window_seconds(spec.frames, cfg.fps, spec.frame_rule, spec.window_rate)
    if a.skip_short:
        cfg.min_duration_s = need
        return
    paths, _ = discover(a.inputs)  # unreadable inputs are the extraction's failures to record
    short = find_short(shard(paths, a.shard), need)
    if short:
        raise short_error(short, spec.recipe, describe_window(spec.frames, cfg.fps, spec.frame_rule,
                                                              spec.window_rate))


def cmd_encode_text(a) -> int:
    from egoflow.encode_text import encode_files

    spec = spec_from_args(a)
    name, counts = encode_files(a.store, a.annotations, lambda: create(spec), a.text_set, a.prompt,
                                allow_unknown_videos=a.allow_unknown_videos)  # files checked before the model loads
    for f, n in counts.items():
        print(f"{f}: {n} strings")
    print(f"text set {name} in {a.store}")
    return 0


def cmd_demo(a) -> int:
    from egoflow.demo import PARTS, run_demo

    return run_demo(a.out, pretrained=a.pretrained, model=a.model, quick=a.quick, device=a.device,
                    parts=("fused",) if a.fused else PARTS, cli=main)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="egoflow", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="decode videos, encode frames, write features into a store")
    p.add_argument("inputs", nargs="+", help="video files, directories (recursive) or .txt lists of paths")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--feature-set", default=None, help="name (default: derived, e.g. clip-ViT-B-32-none-1.875fps)")
    p.add_argument("--fps", type=float, default=None, help="sampled frames per second (default 1.875; fused: "
                   "1.875 x stride (or x --frames), i.e. Ego4D's 1.875 features/s)")
    p.add_argument("--queries", action="append", default=None, help="fused: query-conditioned features for these "
                   "queries (Ego4D NLQ JSON keyed by clip_uid, EgoTaskQA *_qas.json, JSON {uid: [queries]}, or .txt "
                   "for every video); repeat it to join files (every split's questions in one run)")
    p.add_argument("--stride", type=int, default=0, help="frames between window starts (default: --frames)")
    p.add_argument("--backend", default="auto", choices=["auto", "decord", "pyav", "torchcodec-cuda"],
                   help="video reader; torchcodec-cuda decodes on the GPU (NVDEC), else falls back to pyav")
    p.add_argument("--strict", action="store_true", help="exit 2 instead of warning and carrying on: "
                   "--backend torchcodec-cuda without a usable GPU decoder (else CPU fallback), --queries with a "
                   "fusion whose gates are all 0 (the features would ignore the query)")
    p.add_argument("--decode", default="sparse", choices=["sparse", "full"],
                   help="PyAV: decode only the frames the samples depend on (same frames, faster) or every frame")
    p.add_argument("--shard", default=None, help="I/N: process only this worker's share of the videos")
    p.add_argument("--force", action="store_true", help="recompute videos that are already complete")
    p.add_argument("--skip-short", action="store_true", help="--recipe: record videos shorter than the recipe's "
                   "window as failed and extract the rest (default: refuse them all up front, exit 2)")
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
                   help="--submit: re-run a shard whose run stopped heart-beating and finished no video for this "
                        "long (a lost worker; docs/scale-out.md)")
    add_encoder_args(p)
    add_storage_args(p)
    p.set_defaults(func=cmd_extract)

    register_store(sub)

    p = sub.add_parser("encode-text", help="encode queries/narrations/labels of annotation files into texts/")
    p.add_argument("annotations", nargs="+", help="Ego4D NLQ/MQ/narration JSON files or .txt lists")
    p.add_argument("--store", required=True)
    p.add_argument("--text-set", default=None, help="default: clip-<model>-<pretrained>-text")
    p.add_argument("--prompt", default=None, help='template for label names, e.g. "a photo of {}"')
    p.add_argument("--allow-unknown-videos", action="store_true",
                   help="encode a file naming videos that no feature set of the store holds (an error by default)")
    add_encoder_args(p)
    add_storage_args(p)
    p.set_defaults(func=cmd_encode_text)

    register_heads(sub)

    p = sub.add_parser("demo", help="the whole pipeline on generated videos, ending with a report")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--pretrained", default="none", help="weights for the demo encoder (default: random init)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="tiny model and short videos (seconds, for tests)")
    p.add_argument("--fused", action="store_true", help="only the demo's fused part: clip-fused (tiny open_clip "
                   "unless --model), fusion tuning, query-conditioned extraction, zero-shot NLQ and EgoMCQ, report")
    p.set_defaults(func=cmd_demo)

    register_evaluate(sub)
    register_segment(sub)
    register_flow_verbs(sub)
    register_search(sub)
    register_fused(sub)
    register_recipes(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from egoflow.errors import EXIT_ENVIRONMENT, describe, is_environment_error, user_errors

    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "recipe", None):  # the registry imports the heads (torch): only when a recipe is asked
            from egoflow.recipes import apply as apply_recipe

            apply_recipe(args, sys.argv[1:] if argv is None else list(argv))
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
