"""Evaluation reports: one table per benchmark with the runs side by side, plots, and the raw numbers as JSON.

``write_report(results, out_dir)`` with ``results = {run_name: {benchmark: metrics}}`` writes ``report.md``,
``report.json`` and PNG plots (matplotlib, Agg): recall vs IoU for NLQ, AP per tIoU for MQ, precision/recall
curves for retrieval, per-video F1 for QFVS. Fractions are shown as percentages (2 decimals), counts as integers.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from egoflow.evaluate.benchmarks import ALIASES, BENCHMARKS


def _bench_key(name: str) -> str:
    return ALIASES.get(name.lower(), name.lower())


def _scalar(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _columns(bench: str, runs: list[dict]) -> list[str]:
    present = [k for m in runs for k, v in m.items() if _scalar(v)]
    spec = BENCHMARKS.get(_bench_key(bench))
    if spec is not None:
        cols = [k for k in spec.headline if k in present]
        if cols:
            return cols
    return list(dict.fromkeys(present))


def _fmt(bench: str, key: str, v) -> str:
    if v is None:
        return "—"
    if key.startswith("num_") or isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "nan"
    spec = BENCHMARKS.get(_bench_key(bench))
    return f"{100 * v:.2f}" if spec is not None and spec.percent else f"{v:.4f}"


def _by_benchmark(results: dict) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for run, benches in results.items():
        for bench, metrics in benches.items():
            out.setdefault(bench, {})[run] = metrics
    return out


def table_rows(bench: str, runs: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    cols = _columns(bench, list(runs.values()))
    rows = [[run] + [_fmt(bench, c, m.get(c)) for c in cols] for run, m in runs.items()]
    return ["run"] + cols, rows


def format_table(results: dict) -> str:
    """Plain-text tables (one per benchmark) for the terminal."""
    parts = []
    for bench, runs in _by_benchmark(results).items():
        header, rows = table_rows(bench, runs)
        widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

        def line(r, widths=widths):
            return "  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))

        unit = " (%)" if BENCHMARKS.get(_bench_key(bench)) and BENCHMARKS[_bench_key(bench)].percent else ""
        parts.append("\n".join([f"== {bench}{unit}", line(header), line(["-" * w for w in widths])] +
                               [line(r) for r in rows]))
    return "\n\n".join(parts)


def _plt():
    import matplotlib
    matplotlib.use("Agg")  # no display; safe in workers and CI
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> bool:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return True


def _plot_nlq(runs: dict, path: str) -> bool:
    curves = {r: m["curves"]["recall_vs_iou"] for r, m in runs.items() if "recall_vs_iou" in m.get("curves", {})}
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (run, c) in enumerate(curves.items()):
        for j, key in enumerate(k for k in c if k.startswith("R@")):
            ax.plot(c["iou"], np.array(c[key]) * 100, color=f"C{i}", ls=["-", "--", ":", "-."][j % 4],
                    label=f"{run} {key}")
    ax.set(xlabel="IoU threshold (recall counts IoU > threshold)", ylabel="recall (%)", title="NLQ recall vs IoU")
    ax.grid(alpha=.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _plot_mq(runs: dict, path: str) -> bool:
    series = {}
    for run, m in runs.items():
        pts = sorted((float(k.split("=")[1]), v) for k, v in m.items() if k.startswith("AP@tIoU=") and _scalar(v))
        if pts:
            series[run] = pts
    if not series:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (run, pts) in enumerate(series.items()):
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", color=f"C{i}", label=run)
    ax.set(xlabel="tIoU threshold", ylabel="mAP (%)", title="MQ average precision per tIoU")
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _plot_pr(runs: dict, path: str) -> bool:
    data = {r: {k: c for k, c in m.get("curves", {}).items() if k.startswith("pr") and c.get("recall")}
            for r, m in runs.items()}
    names = sorted({k for d in data.values() for k in d})
    if not names:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, (run, d) in enumerate(data.items()):
            if name in d:
                ax.plot(d[name]["recall"], d[name]["precision"], color=f"C{i}", label=run)
        ax.set(xlabel="recall", ylabel="precision", title=f"{name} (mean over queries)", xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def _plot_qfvs(runs: dict, path: str) -> bool:
    per = {r: m["per_video"] for r, m in runs.items() if m.get("per_video")}
    if not per:
        return False
    plt = _plt()
    videos = sorted({v for d in per.values() for v in d})
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / len(per)
    for i, (run, d) in enumerate(per.items()):
        x = np.arange(len(videos)) + i * width
        ax.bar(x, [100 * d.get(v, {}).get("F1", 0.0) for v in videos], width, label=run, color=f"C{i}")
    ax.set_xticks(np.arange(len(videos)) + 0.4 - width / 2, videos)
    ax.set(ylabel="F1 (%)", title="QFVS F1 per video")
    ax.legend(fontsize=8)
    return _save(fig, path)


PLOTS = {"nlq": ("nlq_recall_vs_iou.png", _plot_nlq), "mq": ("mq_ap_per_tiou.png", _plot_mq),
         "ek100-mir": ("ek100_mir_pr.png", _plot_pr), "qfvs": ("qfvs_f1_per_video.png", _plot_qfvs)}


def jsonable(x):
    """``x`` with numpy values as python ones and NaN as None, for strict JSON."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)  # strict JSON has no NaN
    return x


def missing_notes(results: dict) -> list[str]:
    notes = []
    for run, benches in results.items():
        for bench, m in benches.items():
            for k, v in m.items():
                if k.startswith("num_missing") and _scalar(v) and v > 0:
                    what = k[len("num_missing"):].strip("_ ") or "predictions"
                    how = {"skip": "not scored", "official": "not scored", "miss": "counted as misses",
                           "wrong": "counted as wrong", "empty": "scored as empty captions"}.get(
                        m.get("missing_policy"), "counted as misses")
                    notes.append(f"{run} / {bench}: {int(v)} missing {what} ({how})")
    return notes


def write_report(results: dict, out_dir, title: str = "egoflow evaluation") -> tuple[str, str]:
    """Write report.md, report.json and plots into ``out_dir``; returns (md_path, json_path)."""
    os.makedirs(out_dir, exist_ok=True)
    lines = [f"# {title}", ""]
    for bench, runs in _by_benchmark(results).items():
        header, rows = table_rows(bench, runs)
        spec = BENCHMARKS.get(_bench_key(bench))
        lines += [f"## {bench}" + (" (%, counts as integers)" if spec and spec.percent else ""), "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
        plot = PLOTS.get(_bench_key(bench))
        if plot and plot[1](runs, os.path.join(out_dir, plot[0])):
            lines += [f"![{bench}]({plot[0]})", ""]
    notes = missing_notes(results)
    if notes:
        lines += ["## Missing predictions", ""] + [f"- {n}" for n in notes] + [""]
    md_path = os.path.join(out_dir, "report.md")
    json_path = os.path.join(out_dir, "report.json")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(jsonable(results), f, indent=1)
    return md_path, json_path
