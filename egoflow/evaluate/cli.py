"""``egoflow evaluate``: score prediction files or run directories and write a report.

    egoflow evaluate nlq --pred a.json b.json --gt nlq_val.json --out report/        two runs side by side
    egoflow evaluate nlq mq --pred nlq.json mq.json --gt nlq_val.json moments_val.json --out report/
    egoflow evaluate nlq --runs runs/vslnet runs/vslnet-big --gt nlq_val.json --out report/

A run directory holds ``predictions.json`` and ``config.json`` (key ``"benchmark"``; the ground truth comes from
``--gt`` or the config's ``"val_annotations"``). ``register(subparsers)`` adds the verb to the main CLI;
``main(argv)`` runs it standalone and returns the exit status (2 on bad input, with one clear message).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from egoflow.datasets.errors import AnnotationError
from egoflow.evaluate.benchmarks import BENCHMARKS, get_benchmark
from egoflow.evaluate.report import format_table, write_report


class UsageError(ValueError):
    """The command line does not describe a consistent set of evaluations."""


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help=f"one or more of: {', '.join(BENCHMARKS)}")
    p.add_argument("--pred", nargs="+", default=[], metavar="FILE", help="prediction files (official formats)")
    p.add_argument("--gt", nargs="+", default=[], metavar="FILE", help="ground truth, one per benchmark")
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN_DIR", help="run directories to evaluate")
    p.add_argument("--name", nargs="+", default=[], help="run names for --pred (default: file names)")
    p.add_argument("--out", required=True, metavar="DIR", help="report directory")
    p.add_argument("--store", default=None, help="accepted for symmetry with the other verbs; not used")
    p.add_argument("--nlq-missing", choices=("skip", "miss"), default="skip",
                   help="NLQ: average over the predicted queries (official, default) or count a missing one as a miss")
    p.add_argument("--nlq-zero-union", choices=("nan", "zero"), default="nan",
                   help="NLQ: IoU of a zero-length window on the same instant as a zero-length answer: NaN (official, "
                        "default; mIoU becomes NaN) or 0")
    p.add_argument("--ek100-missing", choices=("official", "wrong"), default="official",
                   help="EK-100 AR: score only the predicted segments (official, default) or count missing ones wrong")
    p.add_argument("--ek100-ties", choices=("numpy", "stable"), default="numpy",
                   help="EK-100 AR: rank tied scores as the official np.argsort(...)[::-1] (default) or lower index "
                        "first")
    p.add_argument("--captions-missing", choices=("error", "skip", "empty"), default="error",
                   help="captions: a ground-truth id without a caption is an error (COCO's evaluator asserts; "
                        "default), left out (skip) or scored as an empty caption")
    p.add_argument("--captions-empty", choices=("official", "placeholder"), default="official",
                   help="captions: score an empty caption as it is (pycocoevalcap, default) or as '<empty>'")
    p.add_argument("--mq-recall-order", choices=("file", "score"), default="file",
                   help="MQ Recall@k: the first k*n predictions in file order (official, default) or by score")
    p.add_argument("--mq-zero-length", choices=("official", "no-match"), default="official",
                   help="MQ AP: a zero-length prediction on a zero-length moment matches (official: tIoU NaN) "
                        "or gets tIoU 0 (no-match)")
    p.add_argument("--charades-ties", choices=("numpy", "stable"), default="numpy",
                   help="CharadesEgo AP: rank tied scores as the reference's np.argsort (default) or stably")
    p.add_argument("--title", default="egoflow evaluation")
    return p


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an ``argparse`` subparsers object; its func returns the exit code."""
    p = subparsers.add_parser("evaluate", help="score predictions against benchmarks and write a report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(func=run)
    return p


def _stem(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    return base.rsplit(".", 1)[0] if "." in base else base


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def plan(args) -> list[tuple[str, str, str, str]]:
    """(run name, benchmark, ground-truth path, predictions path) for every evaluation asked for."""
    benches = [get_benchmark(b).name for b in args.benchmarks]
    jobs = []
    if args.pred:
        if not benches:
            raise UsageError("--pred needs BENCHMARK names")
        if len(benches) == 1:
            if len(args.gt) not in (1, len(args.pred)):
                raise UsageError(f"give one --gt for all predictions or one per prediction ({len(args.pred)})")
            gts = args.gt * len(args.pred) if len(args.gt) == 1 else args.gt
            names = args.name or _unique([_stem(p) for p in args.pred])
            if len(names) != len(args.pred):
                raise UsageError(f"{len(names)} --name for {len(args.pred)} --pred")
            jobs += [(n, benches[0], g, p) for n, g, p in zip(names, gts, args.pred)]
        else:
            if len(args.pred) != len(benches) or len(args.gt) != len(benches):
                raise UsageError(f"{len(benches)} benchmarks need as many --pred and --gt files, in the same order")
            name = args.name[0] if args.name else "run"
            jobs += [(name, b, g, p) for b, g, p in zip(benches, args.gt, args.pred)]
    for run_dir in args.runs:
        cfg_path = os.path.join(run_dir, "config.json")
        pred = os.path.join(run_dir, "predictions.json")
        if not os.path.isfile(cfg_path):
            raise UsageError(f"{run_dir}: no config.json (not a run directory)")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise UsageError(f"{cfg_path}: invalid JSON ({e})") from None
        if not isinstance(cfg, dict) or not cfg.get("benchmark"):
            raise UsageError(f"{cfg_path}: missing key 'benchmark'")
        bench = get_benchmark(str(cfg["benchmark"])).name
        if benches and bench not in benches:
            print(f"note: skipping {run_dir} (benchmark {bench} not asked for)", file=sys.stderr)
            continue
        if not os.path.isfile(pred):
            raise UsageError(f"{run_dir}: no predictions.json")
        if args.gt and not args.pred:
            if benches:
                if len(args.gt) != len(benches):
                    raise UsageError(f"give one --gt per benchmark ({len(benches)}), in the same order")
                gt = args.gt[benches.index(bench)]
            elif len(args.gt) == 1:
                gt = args.gt[0]
            else:
                raise UsageError("with several --gt files, name the benchmarks they belong to")
        elif cfg.get("val_annotations"):
            gt = cfg["val_annotations"]
        else:
            raise UsageError(f"{run_dir}: no ground truth (pass --gt or set val_annotations in config.json)")
        jobs.append((os.path.basename(os.path.normpath(run_dir)), bench, gt, pred))
    if not jobs:
        raise UsageError("nothing to evaluate: give --pred with --gt, or --runs")
    return jobs


def evaluate_jobs(jobs, nlq_missing: str = "skip", options: dict | None = None) -> dict:
    """``options``: per-benchmark keyword arguments for the official-vs-sensible edge choices, e.g.
    {"mq": {"recall_order": "score"}, "charades": {"ties": "stable"}}."""
    results: dict[str, dict[str, dict]] = {}
    for run_name, bench, gt, pred in jobs:
        spec = get_benchmark(bench)
        kwargs = {"missing": nlq_missing} if spec.name == "nlq" else {}
        kwargs.update((options or {}).get(spec.name, {}))
        if not os.path.exists(gt):
            raise AnnotationError(gt, None, f"not found (ground truth for {spec.name}: {spec.gt_help})")
        if run_name in results and spec.name in results[run_name]:
            raise UsageError(f"run {run_name!r} evaluated twice on {spec.name}; use --name")
        results.setdefault(run_name, {})[spec.name] = spec.evaluate(gt, pred, **kwargs)
    return results


def run(args) -> int:
    try:
        options = {"mq": {"recall_order": getattr(args, "mq_recall_order", "file"),
                          "zero_length": getattr(args, "mq_zero_length", "official")},
                   "charades": {"ties": getattr(args, "charades_ties", "numpy")},
                   "nlq": {"zero_union": getattr(args, "nlq_zero_union", "nan")},
                   "ek100-ar": {"missing": getattr(args, "ek100_missing", "official"),
                                "ties": getattr(args, "ek100_ties", "numpy")},
                   "captions": {"missing": getattr(args, "captions_missing", "error"),
                                "empty": getattr(args, "captions_empty", "official")}}
        results = evaluate_jobs(plan(args), args.nlq_missing, options)
    except (AnnotationError, UsageError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"egoflow evaluate: error: {msg}", file=sys.stderr)
        return 2
    print(format_table(results))
    md, js = write_report(results, args.out, title=args.title)
    print(f"\nreport: {md}\n        {js}")
    return 0


def main(argv=None) -> int:
    parser = configure(argparse.ArgumentParser(prog="egoflow evaluate", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
