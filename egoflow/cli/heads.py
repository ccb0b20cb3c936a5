"""`egoflow train | predict | heads`: the registry's heads through the shared runner (and zero-shot predictors)."""
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

        cmd = cmd_predict_egomcq if a.head == "egomcq" else cmd_predict_ek100_mir
        return cmd(a, lambda a: create(spec_from_args(a)))
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
                   classes=a.classes, prompt=a.prompt)
    print(f"predictions written to {path}")
    return 0


def cmd_heads(a) -> int:
    from egoflow.heads.registry import describe_heads

    heads = describe_heads()
    width = max(map(len, heads))
    for name, d in heads.items():
        print(f"{name:{width}s}  {d['benchmark']:8s}  {d['description']}")
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
    p.add_argument("--scorer", default="clip", help="zero-shot clip-text score (default: CLIP cosine)")
    p.add_argument("--prompt", default=None, help='class-name template, e.g. "a video of {}" (zero-shot charades; '
                   'translate-charades / translate-ek100 ranking)')
    p.add_argument("--split", default="test", help="zero-shot ek100-mir: split of the retrieval_annotations folder")
    p.add_argument("--videos", default=None, help="--encoder fused egomcq / ek100-mir: folder of the videos "
                   "(<video_uid>.mp4)")
    p.add_argument("--score", default=None, choices=["dual", "vtm", "ensemble"],
                   help="--encoder fused egomcq / ek100-mir: dual (cosine), vtm (fusion P(match)) or ensemble "
                   "(their sum); default ensemble for egomcq, dual for ek100-mir (vtm scores every pair)")
    p.add_argument("--fps", type=float, default=None, help="--encoder fused egomcq / ek100-mir: decoding rate for "
                   "clip frames (default 8)")
    add_encoder_args(p)
    add_storage_args(p)
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("heads", help="list the registered heads")
    p.set_defaults(func=cmd_heads)
