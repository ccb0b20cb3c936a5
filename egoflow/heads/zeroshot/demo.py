"""The demo's zero-shot row (``egoflow demo``): CharadesEgo classification of the demo videos from their class
names, written by the runner like `egoflow predict charades` and scored by `egoflow evaluate`'s code."""
from __future__ import annotations

import os

from egoflow.evaluate.benchmarks import get_benchmark


def demo(ctx, runner) -> dict:
    """``runner`` is the egoflow.heads.runner module, passed in (a head never imports it). The demo's text set
    holds the raw class names, so no prompt."""
    out = os.path.join(ctx.out_dir, "charades_zeroshot.txt")
    runner.predict("charades", None, ctx.store, str(ctx.charades_val), out, feature_set=ctx.feature_set,
                   text_set=ctx.text_set, classes=str(ctx.charades_classes))
    metrics = get_benchmark("charades").evaluate(str(ctx.charades_val), out)
    return {"benchmark": "charades", "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "predictions": out, "gt": str(ctx.charades_val)}
