"""`egoflow demo`: generated videos -> features -> text embeddings -> every head, the fused path and every
recipe's quick form -> one report.

Everything is made here (no download): synthetic untrimmed videos of scene segments with known concepts and
their Ego4D-format annotations. Unless real weights are given, the encoder is a RANDOMLY INITIALISED
ViT-B-32: the numbers show the pipeline works end to end, they are not research results. The fused path
(egoflow.demo.fused) and the recipes' quick forms (egoflow.demo.recipes) run on a second, small set of videos.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path

BANNER = "=" * 78


@dataclass
class DemoContext:
    store: str  # URL/path of the demo feature store
    feature_set: str  # frame-level CLIP features of the demo videos
    text_set: str  # embeddings of every NLQ query, narration text, MQ label and class name (raw strings)
    nlq_train: Path  # Ego4D-format annotation files of the generated videos
    nlq_val: Path
    mq_train: Path
    mq_val: Path
    narrations: Path
    out_dir: Path  # this head's own run directory
    device: str  # auto | cpu | cuda
    seed: int
    quick: bool  # True in tests: every step takes seconds
    charades_train: Path | None = None  # CharadesEgo-format split of the same videos (each concept a class)
    charades_val: Path | None = None
    charades_classes: Path | None = None  # Charades_v1_classes.txt of the concepts


def _say(msg: str) -> None:
    print(msg, flush=True)


def _report_metrics(name: str, r: dict) -> dict:
    """A head's metrics as `egoflow evaluate` scores its prediction file (with the curves the plots need), on top
    of what its run reported (best epoch, zero-shot numbers, ...); the head's own numbers when it wrote no file."""
    from egoflow.evaluate.cli import evaluate_jobs

    pred, gt = r.get("predictions"), r.get("gt")
    if not pred or not gt or not Path(pred).is_file():
        return r["metrics"]
    return {**r["metrics"], **evaluate_jobs([(name, r["benchmark"], str(gt), str(pred))])[name][r["benchmark"]]}


def _headline(bench: str, metrics: dict) -> str:
    from egoflow.evaluate.benchmarks import get_benchmark

    cols = [k for k in get_benchmark(bench).headline
            if isinstance(metrics.get(k), float) and not k.startswith("num_")][:3]
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in cols)


@contextlib.contextmanager
def _logged(path: Path):
    """Everything printed meanwhile, by Python or by child processes (Java for METEOR), goes to ``path``: the file
    descriptors are redirected too, not only ``sys.stdout``/``sys.stderr``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, s in zip((1, 2), saved):
                os.dup2(s, fd)
                os.close(s)


def _run_head(spec, ctx) -> tuple[dict, dict]:
    """One head's demo step and its report metrics, with all their output in ``<run dir>/demo.log``."""
    from egoflow.heads import runner

    with _logged(ctx.out_dir / "demo.log"):
        r = spec.demo(ctx, runner)
        return r, _report_metrics(spec.name, r)


def _extras(store_url, feature_set, text_set, files, charades, out, device, seed, quick, results, failed):
    """Zero-shot CharadesEgo from class names (no training) as one more report row, then `egoflow search` with
    the first val query; returns the search result (its contact sheet goes into the report)."""
    from egoflow.heads import runner
    from egoflow.heads.zeroshot import demo as zeroshot_demo
    from egoflow.search_cli import demo as search_demo

    search = None
    for name, step in (("clip-zeroshot", partial(zeroshot_demo, runner=runner)), ("search", search_demo)):
        ctx = DemoContext(store_url, feature_set, text_set, *files, out / "runs" / name, device, seed, quick,
                          **charades)
        try:
            r = step(ctx)
        except Exception:  # noqa: BLE001 - report the step, then fail the demo
            print(f"      {name}: FAILED\n{traceback.format_exc()}", flush=True)
            failed.append(name)
            continue
        if name == "search":
            search = r
            _say(f"      search           {r['query']!r}: {r['moments']} moments, contact sheet {r['png']}")
        else:
            results[name] = {r["benchmark"]: _report_metrics(name, r)}
            _say(f"      {name:16s} {r['benchmark']:8s} {_headline(r['benchmark'], r['metrics'])}  (zero-shot)")
    return search


def _add_search_to_report(search: dict, md: Path) -> None:
    """The contact sheet of the demo's moment search, copied beside report.md and shown in it."""
    import shutil

    if not search.get("png") or not Path(search["png"]).is_file() or search.get("top_score") is None:
        return
    shutil.copy(search["png"], md.parent / "search.png")
    with open(md, "a", encoding="utf-8") as f:
        f.write(f"\n## Moment search\n\n`egoflow search {search['query']!r}`: {search['moments']} moments "
                f"(top score {search['top_score']:.3f}).\n\n![search contact sheet](search.png)\n")


class _Stages:
    """Wall and CPU seconds (this process and its threads) of each demo stage, for the log and the report."""

    def __init__(self):
        self.times: dict[str, dict] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.times[name] = {"wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(time.process_time() - c, 1)}

    def markdown(self) -> str:
        rows = [f"| {k} | {v['wall_s']:.0f} | {v['cpu_s']:.0f} |" for k, v in self.times.items()]
        return "\n## Demo stage times\n\n| stage | wall s | CPU s |\n|---|---|---|\n" + "\n".join(rows) + "\n"


PARTS = ("heads", "fused", "recipes")  # what `egoflow demo` runs; `--fused` runs only "fused"


def run_demo(out: str | Path = "demo_out", pretrained: str = "none", model: str = "ViT-B-32",
             quick: bool = False, device: str = "auto", seed: int = 0, heads: list[str] | None = None,
             parts: tuple[str, ...] = PARTS, cli=None) -> int:
    """Run the whole pipeline into ``out``; return 0 when every stage worked. ``cli``: egoflow.cli.main (the
    recipes' quick forms run its verbs; passed in by the CLI, the layer above)."""
    from egoflow.datasets.synthetic.videos import make_dataset
    from egoflow.demo.recipes import make_small

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start, c_start, stage = time.perf_counter(), time.process_time(), _Stages()
    if quick:
        model = "egoflow-tiny-ViT" if model == "ViT-B-32" and pretrained == "none" else model
    if pretrained == "none":
        _say(f"{BANNER}\nDEMO WITH A RANDOMLY INITIALISED {model}: no weights can be downloaded here, so the\n"
             f"numbers below only show that every stage runs; pass --pretrained TAG|PATH for real features.\n"
             f"{BANNER}")
    _say("[1/7] generating synthetic videos and Ego4D-format annotations ...")
    with stage("generate videos"):
        ds = make_dataset(out / "videos", num_videos=3 if quick else 5, duration_s=40 if quick else 80, seed=seed) \
            if "heads" in parts else None
        small = make_small(out / "small", seed, quick) if {"fused", "recipes"} & set(parts) else None
    _say(f"      {len(ds.videos) if ds else 0} videos in {out / 'videos'}, {len(small.data.videos) if small else 0} "
         f"small ones in {out / 'small'} (fused path, recipes)")
    results, failed, summary, feature_set = {}, [], None, ""
    if ds is not None:
        store_url, feature_set, text_set, files, charades, summary = _features(ds, out, model, pretrained, device,
                                                                               quick, stage)
    else:
        store_url, text_set, files, charades = "", "", [None] * 5, {}

    def ctx_for(out_dir, store=None, feature_set=None, text_set=None, data=None):
        if data is not None:
            a = data.annotations
            f = [a["nlq_train"], a["nlq_val"], a["moments_train"], a["moments_val"], a["narration"]]
            ch = {k: a[k] for k in ("charades_train", "charades_val", "charades_classes")}
        return DemoContext(store or store_url, feature_set or _fs, text_set or text_set_, *(f if data else files),
                           Path(out_dir), device, seed, True, **(ch if data else charades))
    _fs, text_set_ = feature_set, text_set

    def report(name, r):
        return _report_metrics(name, r)

    search = None
    if "heads" in parts:
        _say("[5/7] training heads and evaluating (each head's log: <run dir>/demo.log) ...")
        with stage("heads"):
            _heads(heads, store_url, feature_set, text_set, files, charades, out, device, seed, quick, results, failed)
        if heads is None:  # the whole demo: zero-shot CLIP row and a moment search over the store
            with stage("zero-shot CLIP + search"):
                search = _extras(store_url, feature_set, text_set, files, charades, out, device, seed, quick, results,
                                 failed)
    if "fused" in parts:
        from egoflow.demo.fused import fused_rows

        _say("[6/7] fused path: fusion tuning, query-conditioned extraction, zero-shot NLQ and EgoMCQ ...")
        fmodel = "egoflow-tiny-ViT" if model == "ViT-B-32" and pretrained == "none" else model
        with stage("fused path"):
            try:
                with _logged(out / "fused" / "demo.log"):
                    rows = fused_rows(small, out / "fused", fmodel, pretrained, device, seed, quick, report)
                results.update(rows)
                for k, v in rows.items():
                    b = next(iter(v))
                    _say(f"      {b:8s} {_headline(b, v[b])}  {k}")
            except Exception:  # noqa: BLE001 - report the step, then fail the demo
                _say(f"      fused: FAILED, see {out / 'fused' / 'demo.log'}\n{traceback.format_exc()}")
                failed.append("fused")
    if "recipes" in parts and cli is not None:
        from egoflow.demo.recipes import recipe_rows

        _say("[7/7] every recipe's quick form (tiny model of its family, random init, 1-2 epochs) ...")
        with stage("recipes (quick forms)"):
            rows, bad = recipe_rows(cli, ctx_for, small, out / "recipes", device, seed, report, _logged, quick)
        results.update(rows)
        failed += bad
    if results:
        from egoflow.evaluate.report import write_report

        md, js = write_report(results, out / "report", title="egoflow demo")
        if search:
            _add_search_to_report(search, Path(md))
        stage.times["total"] = {"wall_s": round(time.perf_counter() - t_start, 1),
                                "cpu_s": round(time.process_time() - c_start, 1)}
        with open(md, "a", encoding="utf-8") as f:
            f.write(stage.markdown())
        _say(f"report: {md}\n        {js}")
    from egoflow.evaluate.report import jsonable

    (out / "demo_summary.json").write_text(json.dumps(jsonable(
        {"model": model, "pretrained": pretrained, "feature_set": feature_set,
         "extract": summary.line() if summary else "", "results": results, "failed_heads": failed,
         "stage_seconds": stage.times}), indent=1, allow_nan=False, default=str))
    _say(f"demo finished in {time.perf_counter() - t_start:.0f} s ({time.process_time() - c_start:.0f} s CPU): "
         + ", ".join(f"{k} {v['wall_s']:.0f}/{v['cpu_s']:.0f}" for k, v in stage.times.items())
         + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 0 if (summary is None or summary.ok) and not failed else 1


def _features(ds, out, model, pretrained, device, quick, stage):
    """Stages 2-4: frame features of the demo videos, text embeddings of their annotations, the store summary."""
    from egoflow.encode_text import encode_files
    from egoflow.extract.clip import create_encoder
    from egoflow.extract.pipeline import ExtractConfig, extract
    from egoflow.features_store import FeatureStore

    _say("[2/7] extracting frame features ...")
    with stage("extract features"):
        encoder = create_encoder(model, pretrained, device=device)
        store_url = str(out / "features.zarr")
        summary, feature_set = extract(list(ds.videos.values()), store_url, encoder, ExtractConfig(fps=1.875),
                                       progress=not quick)
    _say(f"      {summary.line()}")
    _say("[3/7] encoding queries, narrations and labels ...")
    ann = ds.annotations
    files = [ann["nlq_train"], ann["nlq_val"], ann["moments_train"], ann["moments_val"], ann["narration"]]
    with stage("encode texts"):
        text_set, counts = encode_files(store_url, files + [ann["charades_classes"]], encoder)
    charades = {k: ann[k] for k in ("charades_train", "charades_val", "charades_classes")}
    store = FeatureStore(store_url, mode="r")
    _say("[4/7] store summary")
    for name in store.feature_sets():
        info = store.info(name)
        _say(f"      {name}: {info['videos_complete']} videos complete, {info['videos_failed']} failed, "
             f"{info['hours'] * 60:.1f} min of video, {info['steps']} steps x {info['dim']}")
    _say(f"      texts/{text_set}: {sum(counts.values())} strings")
    return store_url, feature_set, text_set, files, charades, summary


def _heads(heads, store_url, feature_set, text_set, files, charades, out, device, seed, quick, results, failed):
    from tqdm.auto import tqdm

    from egoflow.heads.registry import get_spec, list_heads

    names = heads or [n for n in list_heads() if get_spec(n).demo is not None]  # e.g. predict-only heads
    bar = tqdm(names, desc="      heads", unit="head", disable=quick, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        ctx = DemoContext(store_url, feature_set, text_set, *files, out / "runs" / name, device, seed, quick,
                          **charades)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            r, metrics = _run_head(get_spec(name), ctx)
        except Exception:  # noqa: BLE001 - report every head, then fail the demo
            tqdm.write(f"      {name}: FAILED, see {ctx.out_dir / 'demo.log'}\n{traceback.format_exc()}")
            failed.append(name)
            continue
        results[name] = {r["benchmark"]: metrics}
        tqdm.write(f"      {name:16s} {r['benchmark']:8s} {_headline(r['benchmark'], r['metrics'])}  "
                   f"({time.perf_counter() - t0:.0f} s, {time.process_time() - c0:.0f} s CPU)")


if __name__ == "__main__":
    sys.exit(run_demo())
