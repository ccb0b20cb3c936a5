"""`egoflow search "where did I leave the keys" --store S --feature-set F -k 10 [--out DIR]`: natural-language
moment search over a whole store.

The query goes through the text tower of the open_clip model that made the feature set (its extractor config,
or ``--model/--pretrained``); the feature set's steps are searched with the faiss index of
``features_store/index.py`` (built once and saved beside a local store, on the GPU when faiss has one; an
approximate IVF-PQ index with exact re-ranking above ``approx_min_rows`` steps, ``--exact`` keeps it flat); hits of a
video closer than ``--merge-gap`` seconds are merged into moments; ``--out`` also writes ``search.json`` and a
contact sheet ``search.png`` of the moments (thumbnails decoded from the source videos the store recorded).
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path


class SearchError(ValueError):
    """A search that cannot run as asked (empty store, stale index, text tower not matching the features)."""


@dataclass
class Moment:
    video_uid: str
    start_sec: float  # first hit's step time (video seconds)
    end_sec: float  # last hit's step time
    score: float  # best hit's score
    best_sec: float  # time of the best hit (the thumbnail)
    hits: list = field(default_factory=list)  # [(time, score)]


def merge_moments(hits: list[tuple[str, float, float]], gap: float) -> list[Moment]:
    """``(video, time, score)`` hits -> moments: hits of one video within ``gap`` s of each other chain into one;
    moments sorted by their best score."""
    by_video: dict[str, list[tuple[float, float]]] = {}
    for v, t, s in hits:
        by_video.setdefault(v, []).append((t, s))
    out = []
    for v, hs in by_video.items():
        hs.sort()
        run = [hs[0]]
        for h in hs[1:] + [None]:
            if h is not None and h[0] - run[-1][0] <= gap:
                run.append(h)
                continue
            best = max(run, key=lambda x: x[1])
            out.append(Moment(v, run[0][0], run[-1][0], best[1], best[0], run))
            run = [h]
    return sorted(out, key=lambda m: -m.score)


def _hms(sec: float) -> str:
    return f"{int(sec // 3600)}:{int(sec % 3600 // 60):02d}:{sec % 60:04.1f}"


def text_encoder(info: dict, model: str | None, pretrained: str | None, device: str):
    """The open_clip text tower of the model that made the feature set (unless given)."""
    from egoflow.extract.clip import create_encoder

    ext = info.get("extractor", {})
    if model is None or pretrained is None:
        if ext.get("encoder") != "open_clip":
            raise SearchError(f"feature set was not made by an open_clip encoder (extractor {ext.get('encoder')!r}):"
                              " pass --model and --pretrained for the query's text tower")
        if ext.get("pretrained") == "file":
            raise SearchError("feature set was made from a local checkpoint: pass --pretrained PATH (and --model)")
    precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(ext.get("precision"), "auto")
    return create_encoder(model or ext["model"], pretrained or ext.get("pretrained", "none"), precision, device)


def open_index(store, feature_set: str, index_path=None, rebuild: bool = False, device: str = "auto",
               exact: bool = False, approx_min_rows: int | None = None):
    """The feature set's index: a given ``index_path`` must match the set (stale -> error naming it); the default
    one beside a local store is rebuilt when stale; a remote store's is built in memory. ``exact``: flat index
    (an approximate one saved there is rebuilt flat); ``approx_min_rows``: steps from which it is approximate."""
    from egoflow.features_store.ann import APPROX_MIN_ROWS
    from egoflow.features_store.index import FeatureIndex, SearchIndexError

    kw = {"device": device, "exact": exact, "approx_min_rows": approx_min_rows or APPROX_MIN_ROWS}

    if not store.videos(feature_set):
        raise SearchError(f"feature set {feature_set!r} of {store.url} has no complete video: nothing to search")
    if index_path is not None and not rebuild and (Path(index_path) / "index.json").exists():
        ix = FeatureIndex.load(index_path, store, device=device)  # SearchIndexError when stale
        if ix.info.get("feature_set") != feature_set:
            raise SearchIndexError(f"index at {index_path} was built from feature set {ix.info.get('feature_set')!r},"
                                   f" not {feature_set!r} (index.json: feature_set)")
        if not (exact and ix.kind != "flat"):
            return ix
        rebuild = True  # --exact over a saved approximate index: rebuild it flat
    try:
        return FeatureIndex.for_feature_set(store, feature_set, path=index_path, rebuild=rebuild, **kw)
    except SearchIndexError as e:
        if "not local" not in str(e):
            raise
        return FeatureIndex.from_feature_set(store, feature_set, **kw)


def search(store, feature_set: str, query: str, k: int = 10, *, encoder=None, model=None, pretrained=None,
           merge_gap: float | None = None, index_path=None, rebuild: bool = False, device: str = "auto",
           exact: bool = False, approx_min_rows: int | None = None) -> dict:
    """``{"query", "hits": [{video_uid, time, score}], "moments": [Moment as dict]}`` of ``query``."""
    from egoflow.features_store import FeatureStore

    store = store if hasattr(store, "videos") else FeatureStore(str(store), mode="r")
    if not query.strip():
        raise SearchError("empty query")
    ix = open_index(store, feature_set, index_path, rebuild, device, exact, approx_min_rows)
    info = store.feature_set_info(feature_set)
    enc = encoder or text_encoder(info, model, pretrained, device)
    q = enc.encode_text([query], tokens=False)[0]
    if q.shape[1] != ix.dim:
        raise SearchError(f"the text tower gives {q.shape[1]}-d embeddings but feature set {feature_set!r} is "
                          f"{ix.dim}-d: pass the --model/--pretrained that made it")
    hits = ix.search(q, k).hits(0)
    if merge_gap is None:  # two steps of the first hit's video: neighbouring steps are one moment
        fps = (store.video_attrs(feature_set, hits[0][0]) or {}).get("fps") if hits else None
        merge_gap = 2.0 / fps if fps else 2.0
    moments = merge_moments(hits, merge_gap)
    return {"query": query, "feature_set": feature_set, "store": store.url, "merge_gap_s": merge_gap,
            "index": {"type": ix.kind, "rows": len(ix), "params": ix.params.as_dict() if ix.params else {}},
            "hits": [{"video_uid": v, "time": t, "score": s} for v, t, s in hits],
            "moments": [asdict(m) for m in moments]}


def grab_frame(path, t: float, size: int = 160):
    """RGB uint8 frame of ``path`` at ``t`` seconds (the first frame at or after it), or None if unreadable."""
    try:
        import av

        with av.open(str(path)) as c:
            s = c.streams.video[0]
            c.seek(int(max(t - 1.0, 0) / s.time_base), stream=s, backward=True)
            frame = None
            for frame in c.decode(s):
                if frame.time is not None and frame.time >= t:
                    break
            if frame is None:
                return None
            img = frame.to_image()
            img.thumbnail((size, size))
            return img
    except Exception:  # noqa: BLE001 - a missing/corrupt source only costs its thumbnail
        return None


def contact_sheet(result: dict, store, out_png, cols: int = 5, size: int = 160) -> tuple[str, int]:
    """A grid of the moments' thumbnails (best hit's frame) captioned video / time / score; returns (path,
    number of thumbnails that could not be decoded: their tiles are grey)."""
    from PIL import Image, ImageDraw

    moments = result["moments"]
    rows = max(1, -(-len(moments) // cols))
    sheet = Image.new("RGB", (cols * size, rows * (size + 28) + 24), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f'"{result["query"]}"  ({result["feature_set"]})', fill="black")
    missing = 0
    for i, m in enumerate(moments):
        x, y = (i % cols) * size, 24 + (i // cols) * (size + 28)
        src = ((store.video_attrs(result["feature_set"], m["video_uid"]) or {}).get("source") or {}).get("path")
        img = grab_frame(src, m["best_sec"], size) if src else None
        if img is None:
            missing += 1
            img = Image.new("RGB", (size, size * 3 // 4), (200, 200, 200))
        sheet.paste(img, (x + (size - img.width) // 2, y))
        draw.text((x + 2, y + img.height + 1), f"{i + 1}. {m['video_uid'][:18]}", fill="black")
        draw.text((x + 2, y + img.height + 13), f"{_hms(m['start_sec'])}-{_hms(m['end_sec'])} {m['score']:.3f}",
                  fill="black")
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png)
    return str(out_png), missing


def cmd_search(a) -> int:
    from egoflow.features_store import FeatureStore

    store = FeatureStore(a.store, mode="r")
    res = search(store, a.feature_set, a.query, a.k, model=a.model, pretrained=a.pretrained, merge_gap=a.merge_gap,
                 index_path=a.index, rebuild=a.rebuild_index, device=a.device, exact=a.exact)
    print(f"{'rank':>4}  {'video':24s}  {'time':>10}  score")
    for i, h in enumerate(res["hits"], 1):
        print(f"{i:4d}  {h['video_uid']:24s}  {_hms(h['time']):>10}  {h['score']:.4f}")
    print(f"moments (hits within {res['merge_gap_s']:.2f} s merged):")
    for i, m in enumerate(res["moments"], 1):
        print(f"{i:4d}  {m['video_uid']:24s}  {_hms(m['start_sec'])}-{_hms(m['end_sec'])}  {m['score']:.4f}  "
              f"({len(m['hits'])} hits)")
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "search.json").write_text(json.dumps(res, indent=1))
        png, missing = contact_sheet(res, store, out / "search.png")
        print(f"contact sheet: {png}" + (f" ({missing} thumbnail(s) without a readable source video)"
                                         if missing else ""), file=sys.stdout)
    return 0


def demo(ctx) -> dict:
    """The demo's search step: the first NLQ query of the demo over the whole store -> search.json + contact
    sheet in ``ctx.out_dir`` (the lead's demo report shows the PNG)."""
    from egoflow.datasets.ego4d import load_nlq
    from egoflow.features_store import FeatureStore

    store = FeatureStore(str(ctx.store), mode="r")
    query = load_nlq(ctx.nlq_val)[0].query
    res = search(store, ctx.feature_set, query, 10, device=ctx.device,
                 index_path=Path(ctx.out_dir) / "index", rebuild=True)
    out = Path(ctx.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(res, indent=1))
    png, missing = contact_sheet(res, store, out / "search.png")
    return {"query": query, "png": png, "json": str(out / "search.json"), "moments": len(res["moments"]),
            "top_score": res["hits"][0]["score"] if res["hits"] else None, "thumbnails_missing": missing}
