"""Every head's training/inference speed and quality on its synthetic benchmark, measured in one run.

    python benchmarks/heads_train.py [--quick] [--heads vslnet vsgn laviti summarizer]

Each ``benchmarks/heads_<name>.py`` exposes ``run(quick) -> dict`` (samples/s in training and inference, and
the benchmark metric after a fixed number of epochs, with its chance level); this script runs them in turn and
prints one table plus ``bench_out/heads_train.json``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def load(name: str):
    """Import ``heads_<name>`` by its plain module name, so that worker processes it spawns can import it too."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(f"heads_{name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small settings (a minute per head)")
    ap.add_argument("--heads", nargs="+", default=sorted(p.stem[6:] for p in HERE.glob("heads_*.py")
                                                         if p.stem != "heads_train"))
    ap.add_argument("--out", default="bench_out/heads_train.json")
    a = ap.parse_args()
    results = {}
    for name in a.heads:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        results[name] = load(name).run(quick=a.quick)
        results[name]["wall_s"] = time.perf_counter() - t0
    print("\nhead        metric / value")
    for name, r in results.items():
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                          if isinstance(v, (int, float)))
        print(f"{name:11s} {shown}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
