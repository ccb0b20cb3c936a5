"""Prefect flow for evaluation: score run directories against benchmarks and write one report."""
from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task

from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.evaluate.report import write_report


@task(task_run_name="evaluate-{run_dir}")
def evaluate_run_task(run_dir: str, gt: str | None = None) -> tuple[str, str, dict]:
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    bench = get_benchmark(cfg["benchmark"])
    gt_path = gt or cfg.get("val_annotations")
    if not gt_path:
        raise ValueError(f"{run_dir}/config.json has no val_annotations; pass the ground truth explicitly")
    return Path(run_dir).name, bench.name, bench.evaluate(gt_path, str(Path(run_dir) / "predictions.json"))


@flow(name="egoflow-evaluate", log_prints=True)
def evaluate_flow(runs: list[str], out_dir: str, gt: dict[str, str] | None = None) -> dict:
    """Evaluate ``runs`` (ground truth per run from ``gt`` or each run's config) into ``out_dir``."""
    futures = [evaluate_run_task.submit(r, (gt or {}).get(r)) for r in runs]
    results: dict[str, dict] = {}
    for f in futures:
        name, bench, metrics = f.result()
        results.setdefault(name, {})[bench] = metrics
    md, js = write_report(results, out_dir)
    print(f"report: {md}")
    return results
