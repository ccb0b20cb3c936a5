"""`egoflow train | predict | heads`: every registry entry (trained heads and the zero-shot predictors) through the
one runner; `--encoder fused` hands the zero-shot entries the fused backbone's scorer."""
from __future__ import annotations

import json

from egoflow.cli.args import add_encoder_args, add_storage_args, spec_from_args
from egoflow.extract.encoders import create


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


def _check_recipe(a, overrides: dict | None = None) -> None:
    """With ``--recipe``: its head overrides and the ``--set`` keys are the head's, and the feature / text set
    fit it (``Recipe.needs``) -- one line before anything is loaded or trained."""
    from egoflow.heads.registry import get_spec
    from egoflow.heads.spec import open_store
    from egoflow.recipes import get_recipe
    from egoflow.recipes.additions import check_head_overrides, field_defaults
    from egoflow.recipes.fit import check_fit

    r = get_recipe(a.recipe)
    check_head_overrides(r)
    keys = field_defaults(get_spec(a.head).Config) if overrides else {}
    bad = sorted(set(overrides or {}) - set(keys))
    if bad:
        raise ValueError(f"--set {', '.join(bad)}: not a config key of head {a.head} (with recipe {r.tag}); "
                         f"its keys: {', '.join(sorted(keys))}")
    if a.store and a.feature_set:
        check_fit(r, open_store(a.store), a.feature_set, a.text_set)


def cmd_train(a) -> int:
    from egoflow.heads.runner import train

    if getattr(a, "recipe", None):
        _check_recipe(a, _parse_overrides(a.set))
    train_over = {**(getattr(a, "train_config", None) or {}),  # a --recipe's settings without a flag
                  **{k: v for k, v in dict(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                                           device=a.device).items() if v is not None}}
    metrics = train(a.head, a.store, a.feature_set, a.annotations, a.out, val_annotations=a.val_annotations,
                    text_set=a.text_set, head_overrides=_parse_overrides(a.set), train_overrides=train_over,
                    init=a.init, classes=a.classes)
    print(json.dumps(metrics, indent=1, default=float))
    return 0


def cmd_predict(a) -> int:
    from egoflow.heads.registry import get_spec, zero_shot_heads
    from egoflow.heads.runner import predict

    spec = get_spec(a.head)
    scorer = a.scorer
    if getattr(a, "recipe", None):
        _check_recipe(a)
    # the fused backbone scores video-text pairs: a scorer of the zero-shot entries (a trained head's recipe
    # names the fused encoder its store features came from: the head still predicts from the store)
    if a.encoder == "fused" and (spec.zero_shot or not getattr(a, "recipe", None)):
        if not spec.zero_shot:
            raise ValueError(f"--encoder fused scores clips for the zero-shot predictors "
                             f"({', '.join(zero_shot_heads())}); {a.head} predicts with a run from store features")
        from egoflow.fused_cli import fused_scorer

        scorer = fused_scorer(a, lambda a: create(spec_from_args(a)))
    elif not a.store:
        raise ValueError(f"egoflow predict {a.head} needs --store")
    options = {k: v for k, v in dict(classes=a.classes, prompt=a.prompt, split=a.split, scorer=scorer,
                                     fusion=a.fusion).items() if v is not None}
    path = predict(a.head, a.run, a.store, a.annotations, a.out, feature_set=a.feature_set, text_set=a.text_set,
                   **options)
    print(f"{'zero-shot ' if spec.zero_shot else ''}predictions written to {path}")
    return 0


def cmd_heads(a) -> int:
    from egoflow.heads.registry import describe_heads

    heads = describe_heads()
    width, bench = max(map(len, heads)), max(len(d["benchmark"]) for d in heads.values())
    for name, d in heads.items():
        print(f"{name:{width}s}  {d['benchmark']:{bench}s}  {d['description']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a head from a feature store")
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
    p.add_argument("--recipe", default=None, help="named settings (`egoflow recipes`): head overrides + schedule")
    p.add_argument("--init", default=None, metavar="RUN_DIR", help="start from this run's best weights "
                   "(laviti-charades: a laviti pretraining run)")
    p.add_argument("--classes", default=None, help="class list, e.g. Charades_v1_classes.txt (default: next to "
                   "the annotations)")
    add_storage_args(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("predict", help="write official-format predictions with a trained run")
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
    p.add_argument("--scorer", default=None, help="zero-shot: clip-text score of store features (default clip: "
                   "CLIP cosine; egoflow.heads.zeroshot.register_scorer adds more)")
    p.add_argument("--prompt", default=None, help='class-name template, e.g. "a video of {}" (zero-shot charades; '
                   'translate-charades / translate-ek100 ranking)')
    p.add_argument("--split", default=None, help="zero-shot ek100-mir: split of the retrieval_annotations folder "
                   "(default test)")
    p.add_argument("--fusion", default=None, choices=["gen", "disc", "gen+disc"], help="translate-charades / "
                   "translate-ek100: class scores by ranking, linear layers or both (default: the run's)")
    p.add_argument("--videos", default=None, help="--encoder fused (zero-shot egomcq / ek100-mir / charades): "
                   "folder of the videos (<video_uid>.mp4)")
    p.add_argument("--score", default=None, choices=["dual", "vtm", "ensemble"],
                   help="--encoder fused egomcq / ek100-mir: dual (cosine), vtm (fusion P(match)) or ensemble "
                   "(their sum); default ensemble for egomcq, dual for ek100-mir (vtm scores every pair)")
    p.add_argument("--fps", type=float, default=None, help="--encoder fused egomcq / ek100-mir: decoding rate for "
                   "clip frames (default 8)")
    add_encoder_args(p)
    add_storage_args(p)
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("heads", help="list the registered heads (trained and zero-shot)")
    p.set_defaults(func=cmd_heads)
