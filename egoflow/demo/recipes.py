"""The demo's recipe rows: every registered recipe's quick form (egoflow.recipes.quick) on the demo data.

A recipe that extracts runs `egoflow extract` / `egoflow encode-text --recipe NAME --model <tiny>` on the demo's
small videos (once per distinct encoder setting, shared by recipes with equal settings); a trained head then runs
its own demo step with the recipe applied by ``egoflow.recipes.apply`` (as `egoflow train HEAD --recipe NAME`);
a zero-shot recipe runs `egoflow predict HEAD --recipe NAME --model <tiny> --videos DIR`. The CLI entry point is
passed in (``cli``: egoflow.cli.main), the layer above this one.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoflow.datasets.synthetic.videos import CONCEPTS, make_dataset
from egoflow.datasets.synthetic.zeroshot_videos import write_video_egomcq, write_video_mir
from egoflow.recipes import get_recipe, list_recipes
from egoflow.recipes.apply import apply
from egoflow.recipes.quick import DATA_DIMS, QUESTION_HEADS, quick_form

SPECIALS_WORDPIECE = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_VOCAB = 320  # egovlpv2-tiny's vocab_size (egoflow.extract.fused.config)


@dataclass
class SmallData:
    data: object  # videos.SyntheticDataset: short small videos at 30 fps (the recipes' frame rules assume 30)
    egomcq: Path  # egomcq.json over the val videos
    mir: Path  # EK-100 MIR retrieval_annotations/ over the val videos
    roberta: Path  # toy RoBERTa BPE folder (egovlpv2-tiny's text side)
    wordpiece: Path  # toy WordPiece vocab.txt folder (egovlp-tiny's text side, 54 entries)


def _words(paths) -> list[str]:
    text = " ".join(Path(p).read_text() for p in paths)
    words = [w.strip('",.:{}[]#').lower() for w in text.split()]
    return sorted({w for w in words if w.isalpha()})


def make_small(out, seed: int, quick: bool) -> SmallData:
    from tokenizers import ByteLevelBPETokenizer

    from egoflow.extract.fused.tokenizer import SPECIALS

    out = Path(out)
    data = make_dataset(out, num_videos=3 if quick else 4, duration_s=24 if quick else 40, seed=seed + 1,
                        size=(64, 48) if quick else (96, 72))
    val = data.splits["val"]
    mcq = write_video_egomcq(data, val, out / "annotations" / "egomcq.json", CONCEPTS, seed=seed)
    mir = write_video_mir(data, val, out / "annotations" / "retrieval_annotations", CONCEPTS)
    ann = [data.annotations[k] for k in ("nlq_train", "nlq_val", "narration")]
    rob = out / "tok-roberta"  # within egovlpv2-tiny's 320 ids: the byte alphabet, specials and a few merges
    rob.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([Path(p).read_text() for p in ann], vocab_size=TINY_VOCAB, min_frequency=2,
                            special_tokens=list(SPECIALS), show_progress=False)
    bpe.save_model(str(rob))
    wp = out / "tok-wordpiece"
    wp.mkdir(parents=True, exist_ok=True)
    (wp / "vocab.txt").write_text("\n".join([*SPECIALS_WORDPIECE, *_words(ann)][:54]) + "\n")
    return SmallData(data, mcq, mir, rob, wp)


def _conditioned_qfvs(store_url: str, feature_set: str, root, seed: int) -> str:
    """A query-conditioned copy of generated QFVS features (they have no videos to extract): each query and
    concept prompt's shots are the video's shots plus a fixed random shift, so the conditioned heads' data path
    runs. Returns its name."""
    from egoflow.datasets.qfvs import concept_prompt, load_qfvs, query_prompt
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.conditioned import write_conditioned

    store, name = FeatureStore(store_url), feature_set + "-conditioned"
    if name in store.feature_sets():
        return name
    dim = int(store.feature_set_info(feature_set)["dim"])
    store.create_feature_set(name, {"encoder": "fused", "conditioned": "query"}, dim=dim, dtype="float32")
    g = np.random.default_rng(seed)
    for uid, v in load_qfvs(root).items():
        vf = store.read_video(feature_set, uid)
        prompts = sorted({query_prompt(*q.concepts) for q in v.queries}
                         | {concept_prompt(c) for q in v.queries for c in q.concepts})
        feats = np.stack([vf.feats + g.normal(size=dim).astype(np.float32) for _ in prompts])
        write_conditioned(store, name, uid, prompts, feats, vf.times)
    return name


class RecipeRunner:
    """``egoflow.heads.runner`` as a head's demo step sees it, with ``train`` under the recipe: the demo step's
    head widths stand for what a user gives on the command line, ``apply`` fills the rest from the recipe; the
    recipe's feature widths (video_dim, text_dim: its full-size model's) come from the tiny model's store."""

    def __init__(self, runner, recipe, form, seed: int, device: str, epochs: int = 0):
        self.runner, self.recipe, self.form, self.seed, self.device = runner, recipe, form, seed, device
        self.epochs = epochs or form.epochs  # 1 in `egoflow demo --quick` (tests)
        self.applied: dict = {}

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def train(self, name, store, feature_set, annotations, out_dir, *, head_overrides=None, train_overrides=None,
              **kw):
        mine = {**(head_overrides or {}), **self.form.head_overrides}
        sets = [f"{k}={json.dumps(v)}" for k, v in mine.items() if not isinstance(v, tuple)]
        argv = ["train", name, "--epochs", str(self.epochs), *(x for s in sets for x in ("--set", s))]
        a = argparse.Namespace(command="train", head=name, recipe=self.recipe.name, set=sets,
                               epochs=self.epochs, lr=None, batch_size=None)
        apply(a, argv)
        over = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
        over = {k: v for k, v in over.items() if k in mine or k not in DATA_DIMS}
        over.update({k: v for k, v in mine.items() if isinstance(v, tuple)})  # fold lists (leave_one_out)
        tr = {**a.train_config, **{k: v for k, v in dict(epochs=a.epochs, lr=a.lr, batch_size=a.batch_size).items()
                                   if v is not None}, "seed": self.seed, "device": self.device, "progress": False}
        if name == "summarizer" and over.get("conditioned"):
            feature_set = _conditioned_qfvs(str(store), feature_set, annotations, self.seed)
        self.applied = {"head": over, "train": tr}
        return self.runner.train(name, store, feature_set, annotations, out_dir, head_overrides=over,
                                 train_overrides=tr, **kw)


def _clip_queries(nlq_paths) -> dict:
    """{clip_uid: [queries]} of Ego4D NLQ files (the --queries of a query-conditioned extraction of clip files)."""
    out: dict = {}
    for p in nlq_paths:
        for v in json.loads(Path(p).read_text())["videos"]:
            for c in v["clips"]:
                qs = out.setdefault(c["clip_uid"], [])
                qs += [q["query"] for a in c["annotations"] for q in a["language_queries"] if q["query"] not in qs]
    return out


def _run(cli, argv: list[str]) -> None:
    rc = cli(argv)
    if rc:
        raise RuntimeError(f"`egoflow {' '.join(argv)}` exited {rc}")


def _tok(small: SmallData, model: str) -> list[str]:
    if model.startswith("egovlpv2-"):
        return ["--tokenizer", str(small.roberta)]
    if model.startswith("egovlp-"):
        return ["--tokenizer", str(small.wordpiece)]
    return []


def _clip_files(small: SmallData, out: Path) -> list[str]:
    """The NLQ clips as files ``<clip_uid>.mp4`` (links to their videos: a generated video under 2 minutes is one
    clip), the input a query-conditioned recipe reads: its features are stored per (clip, query)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for c in small.data.clips:
        if c.start > 0 or c.end < small.data.duration_s:
            raise ValueError(f"clip {c.clip_uid} is not its whole video: the demo's small videos are one clip each")
        f = out / f"{c.clip_uid}.mp4"
        if not f.exists():
            f.symlink_to(Path(small.data.videos[c.video_uid]).resolve())
        files.append(str(f))
    return files


def _question_files(small: SmallData, out: Path) -> list[str]:
    """The EgoTaskQA files the linear demo step writes over the small videos (the same function and inputs, so
    the same questions): the --queries of a per-(video, question) extraction."""
    from egoflow.heads.linear.demo import demo_files

    a = small.data.annotations
    files = demo_files(a["nlq_train"], a["moments_train"], a["moments_val"], out)
    return [str(files["egotaskqa_train"]), str(files["egotaskqa_val"])]


def _extract(cli, r, qf, small, store, name, queries_path, device) -> None:
    vids = [str(p) for p in small.data.videos.values()]
    q = []
    if qf.queries and qf.head in QUESTION_HEADS:  # whole videos, one fused feature set per question
        q = [x for f in _question_files(small, Path(queries_path).parent / "qa") for x in ("--queries", f)]
    elif qf.queries:  # NLQ: the clips, one per query
        vids = _clip_files(small, Path(queries_path).parent / "clips")
        q = ["--queries", str(queries_path)]
    # a head recipe (train only) names the encoder it needs, not extraction settings: the family's fused default
    how = ["--recipe", r.name] if "extract" in r.verbs else ["--encoder", r.needs.get("encoder", "fused")]
    _run(cli, ["extract", *vids, "--store", store, *how, "--model", qf.model, *_tok(small, qf.model),
               "--feature-set", name, "--quiet", "--device", device, *q])


def _encode(cli, r, qf, small, store, name, device) -> None:
    ann = [str(small.data.annotations[k]) for k in ("nlq_train", "nlq_val", "narration")]
    clips = ["--allow-unknown-videos"] if qf.queries else []  # the store holds clips; the narrations name videos
    _run(cli, ["encode-text", *ann, "--store", store, "--recipe", r.name, "--model", qf.model,
               *_tok(small, qf.model), "--text-set", name, "--device", device, *clips])


def _zero_shot(cli, r, qf, small, out: Path, device) -> dict:
    ann = {"egomcq": small.egomcq, "charades": small.data.annotations["charades_val"], "ek100-mir": small.mir}
    bench = {"egomcq": "egomcq", "charades": "charades", "ek100-mir": "ek100-mir"}[qf.head]
    pred = out / {"egomcq": "pred.json", "charades": "scores.txt", "ek100-mir": "sim.pkl"}[qf.head]
    _run(cli, ["predict", qf.head, "--recipe", r.name, "--model", qf.model, *_tok(small, qf.model), "--videos",
               str(small.data.root / "videos"), "--annotations", str(ann[qf.head]), "--out", str(pred),
               "--device", device])
    return {"benchmark": bench, "metrics": {}, "predictions": str(pred), "gt": str(ann[qf.head])}


def recipe_rows(cli, ctx_for, small: SmallData, out, device: str, seed: int, report, logged,
                quick: bool = False) -> tuple[dict, list]:
    """``{row label: {benchmark: metrics}}`` of every registered recipe's quick form, and the failed ones.

    ``ctx_for(out_dir, store=None, feature_set=None, text_set=None, data=None)``: a demo context (the demo's own
    store and files unless given); ``report(name, r)``: a step's metrics as `egoflow evaluate` scores them;
    ``logged(path)``: a context that sends all output to ``path`` (each recipe's ``<out>/<name>/demo.log``)."""
    import traceback

    from egoflow.heads import runner
    from egoflow.heads.registry import get_spec

    out = Path(out)
    store = str(out / "store.zarr")
    dev = "cpu" if device == "auto" else device
    queries = out / "queries.json"
    queries.parent.mkdir(parents=True, exist_ok=True)
    queries.write_text(json.dumps(_clip_queries([small.data.annotations[k] for k in ("nlq_train", "nlq_val")])))
    sets: dict = {}  # extract/text key -> the set made for it (made once, shared)
    rows, failed = {}, []
    for i, name in enumerate(list_recipes()):
        r, t0, c0 = get_recipe(name), time.perf_counter(), time.process_time()
        qf = quick_form(r)
        try:
            with logged(out / name / "demo.log"):
                if qf.verb == "predict":
                    res = _zero_shot(cli, r, qf, small, out / name, dev)
                else:
                    kw = _sets(cli, r, qf, small, store, queries, dev, sets, i)
                    run = RecipeRunner(runner, r, qf, seed, device, 1 if quick else 0)
                    res = get_spec(qf.head).demo(ctx_for(out / name, **kw), run)
                rows[qf.label] = {res["benchmark"]: report(qf.label, res)}
        except Exception:  # noqa: BLE001 - report the recipe, then fail the demo
            print(f"      {name}: FAILED, see {out / name / 'demo.log'}\n{traceback.format_exc()}", flush=True)
            failed.append(name)
            continue
        print(f"      {name:20s} {qf.verb:7s} {qf.head:10s} {res['benchmark']:9s} "
              f"({time.perf_counter() - t0:.0f} s, {time.process_time() - c0:.0f} s CPU)", flush=True)
    return rows, failed


def _sets(cli, r, qf, small, store, queries, dev, sets: dict, i: int) -> dict:
    """The feature and text sets of a trained quick form (made once per distinct setting): context overrides."""
    kw: dict = {}
    if qf.extract:
        key = ("video",) + qf.extract_key(r)
        if key not in sets:
            sets[key] = f"quick-{i}"
            _extract(cli, r, qf, small, store, sets[key], queries, dev)
        kw = {"store": store, "feature_set": sets[key], "data": small.data}
    if qf.encode_text:
        key = ("text",) + qf.text_key(r)
        if key not in sets:
            sets[key] = f"quick-{i}-text"
            _encode(cli, r, qf, small, store, sets[key], dev)
        kw["text_set"] = sets[key]
    return kw
