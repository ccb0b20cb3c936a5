"""The linear heads' demo step: files derived from the demo store's MQ moments, a short run, its predictions."""
from __future__ import annotations

from pathlib import Path


def run_demo(name: str, ctx, train) -> dict:
    """Train ``name`` on files made from ``ctx.mq_train`` / ``ctx.mq_val`` (see ``files_from_mq``); the EgoTaskQA
    questions are NLQ queries of ``ctx.nlq_train`` (their embeddings are in the demo's text set). ``train``:
    :func:`egoflow.heads.runner.train`, passed in (a head never imports the runner)."""
    from egoflow.heads.linear.tasks import TASKS

    out = Path(ctx.out_dir)
    files = demo_files(ctx.nlq_train, ctx.mq_train, ctx.mq_val, out / "data")
    kind = {"linear-ek100": "ek100", "linear-oscc": "fho", "linear-pnr": "fho", "linear-egotaskqa": "egotaskqa"}[name]
    tr = {"epochs": 5 if ctx.quick else 40, "batch_size": 16, "seed": ctx.seed, "device": ctx.device,
          "progress": not ctx.quick}
    metrics = train(name, ctx.store, ctx.feature_set, files[f"{kind}_train"], out, val_annotations=files[f"{kind}_val"],
                    text_set=ctx.text_set, train_overrides=tr)
    return {"benchmark": TASKS[name].benchmark, "metrics": metrics, "predictions": str(out / "predictions.json"),
            "gt": str(files[f"{kind}_val"])}


def demo_files(nlq_train, mq_train, mq_val, out_dir) -> dict[str, Path]:
    """The demo step's files (``files_from_mq``; questions: the first four NLQ queries of ``nlq_train``). The same
    inputs give the same files, so a query-conditioned extraction can be made over them before the step runs."""
    from egoflow.datasets.ego4d import load_nlq
    from egoflow.datasets.synthetic.linear import files_from_mq

    questions = sorted({q.query for q in load_nlq(nlq_train)})[:4]
    return files_from_mq(mq_train, mq_val, questions, out_dir)
