"""The fused path's rows of the demo report: zero-shot NLQ from the VTM scores of query-conditioned features
(untuned and tuned fusion, egoflow.fused_demo) and zero-shot EgoMCQ by the fused scorer (`egoflow predict egomcq
--encoder fused`), on the demo's small videos; every row scored by `egoflow evaluate`'s code."""
from __future__ import annotations

from pathlib import Path


def fused_rows(small, out, model: str, pretrained: str, device: str, seed: int, quick: bool, report) -> dict:
    """``{row: {benchmark: metrics}}``; ``small``: the demo's small dataset (``SmallData``); ``report(name, r)``
    scores a prediction file like ``egoflow evaluate``."""
    from egoflow.fused_cli import FusedScorer
    from egoflow.fused_demo import fused_nlq
    from egoflow.heads import runner

    out = Path(out)
    dev = "cpu" if device == "auto" else device
    res = fused_nlq(small.data, out, model=model, pretrained=pretrained, quick=quick, device=dev, seed=seed,
                    steps=40 if quick else 150)
    tag = f"clip-fused-{model}"
    rows = {}
    for stage in ("untuned", "tuned"):
        r = {"benchmark": "nlq", "metrics": res["tuning"] if stage == "tuned" else {}, **res[stage]}
        rows[f"fused {tag}, {stage} fusion: zero-shot NLQ (VTM of query-conditioned features)"] = \
            {"nlq": report("nlq", r)}
    pred = out / "egomcq_pred.json"
    scorer = FusedScorer(small.data.root / "videos", res["encoder"], score="ensemble", progress=False)
    runner.predict("egomcq", None, None, str(small.egomcq), str(pred), scorer=scorer)
    rows[f"fused {tag}, tuned fusion: zero-shot EgoMCQ (dual + VTM ensemble)"] = \
        {"egomcq": report("egomcq", {"benchmark": "egomcq", "metrics": {}, "predictions": str(pred),
                                     "gt": str(small.egomcq)})}
    t = res["tuning"]
    print(f"      fusion tuned on {t['pairs']} narrated windows: VTM loss {t['vtm_loss_first']:.3f} -> "
          f"{t['vtm_loss_last']:.3f}", flush=True)
    return rows
