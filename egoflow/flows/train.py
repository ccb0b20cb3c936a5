"""Prefect flow for training heads: one task per (head, seed); the same call as `egoflow train`."""
from __future__ import annotations

from prefect import flow, task

from egoflow.heads.runner import train


@task(task_run_name="train-{head}-seed{seed}")
def train_head_task(head: str, store: str, feature_set: str, annotations: str, out_dir: str,
                    val_annotations: str | None, text_set: str | None, head_overrides: dict, train_overrides: dict,
                    seed: int, options: dict | None = None) -> dict:
    return train(head, store, feature_set, annotations, out_dir, val_annotations=val_annotations, text_set=text_set,
                 head_overrides=head_overrides, train_overrides={**train_overrides, "seed": seed}, **(options or {}))


@flow(name="egoflow-train", log_prints=True)
def train_flow(heads: list[str], store: str, feature_set: str, annotations: dict[str, str], out_root: str,
               val_annotations: dict[str, str] | None = None, text_set: str | None = None,
               seeds: list[int] = (0,), head_overrides: dict | None = None,
               train_overrides: dict | None = None, options: dict[str, dict] | None = None) -> dict:
    """Train every head in ``heads`` with every seed; ``annotations[head]`` is its training file.

    ``options[head]``: the head's own keyword arguments, e.g. ``{"laviti-charades": {"init": "runs/laviti",
    "classes": "Charades_v1_classes.txt"}}``.
    """
    futures = {}
    for h in heads:
        for s in seeds:
            futures[f"{h}-seed{s}"] = train_head_task.submit(
                h, store, feature_set, annotations[h], f"{out_root}/{h}-seed{s}", (val_annotations or {}).get(h),
                text_set, (head_overrides or {}).get(h, {}), train_overrides or {}, s, (options or {}).get(h))
    return {k: f.result() for k, f in futures.items()}
