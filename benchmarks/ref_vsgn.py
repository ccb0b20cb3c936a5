"""The Ego4D MQ baseline (EGO4D/episodic-memory MQ: VSGN with xGPN) trained as its Train.py trains, one epoch at a time.

Used by benchmarks/vsgn_vs_reference.py; the reference tree is imported from ``--reference-dir`` at run time and
never copied into this repository. What runs is the reference's own code: Utils/opts.py gives every option's
default, Utils/dataset.py (VideoDataSet) reads its clip_annotations.json and per-video ``<video_id>.pt`` feature
files written here from the planted benchmark, Models/VSGN.py is its model. Only Train.py's epoch body is written
out here (Train_VSGN cannot be stopped between epochs): Adam with its lr and weight decay, StepLR, the loss sum
``cls + reg + 0.2 (action + start + end) + bd_adjust`` and its per-epoch validation-loss pass.

Shims (outside the reference tree, all in this file):
- Train.py puts the model on ``"cuda"`` under DataParallel with 16 loader workers: here the model runs on the CPU
  (the Models code has no device calls), unwrapped, with the loader in-process (``num_workers=0``), as egoflow's.
- pandas and tensorboardX are imported by the reference modules but not used on this path: stub modules.
- VideoDataSet prints two lines per labelled moment it reads: they go to /dev/null (the time is still counted).
- Models/BoundaryAdjust.py clamps long indices with float bounds: torch 1.x kept them long, torch 2 promotes them
  to float (and indexing fails); its module sees a ``torch`` whose ``clamp`` keeps an integer tensor's dtype.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

SUBDIR = "MQ"


def _stubs() -> None:
    import torch._dynamo  # noqa: F401  (optimisers import it lazily; its module scan rejects a stub without a spec)

    for name in ("pandas", "tensorboardX"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = types.ModuleType(name)


def _clamp_keeps_int(x, min=None, max=None):
    """torch 1.x's ``clamp`` of an integer tensor with float bounds (the result stays integer)."""
    if x.is_floating_point():
        return torch.clamp(x, min=min, max=max)
    return torch.clamp(x, min=None if min is None else int(min), max=None if max is None else int(max))


def write_inputs(work: Path, clips_by_subset: dict, feats: dict[str, np.ndarray], fps: float) -> tuple[Path, Path]:
    """``clip_annotations.json`` (clip-relative seconds, the layout Convert_annotation.py writes) and one
    ``[T, D]`` float tensor file per video (VideoDataSet transposes it); returns (features dir, annotation file)."""
    fdir = work / "features"
    fdir.mkdir(parents=True, exist_ok=True)
    for uid, f in feats.items():
        torch.save(torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)), fdir / f"{uid}.pt")
    anno = {}
    for subset, clips in clips_by_subset.items():
        for c in clips:
            anno[c.clip_uid] = {"subset": subset, "video_id": c.video_uid, "fps": fps,
                                "parent_start_sec": c.clip_video_start_sec, "parent_end_sec": c.clip_video_end_sec,
                                "annotations": [{"label": i.label, "start_time": i.start_sec, "end_time": i.end_sec}
                                                for i in c.instances]}
    path = work / "clip_annotations.json"
    path.write_text(json.dumps(anno))
    return fdir, path


class ReferenceVSGN:
    """The baseline's model, optimiser, schedule and loaders on the written inputs; ``epoch(i)`` trains one epoch."""

    def __init__(self, ref_dir, work: Path, clips_by_subset: dict, feats: dict, fps: float, over: dict,
                 seed: int = 21):
        work.mkdir(parents=True, exist_ok=True)
        fdir, anno = write_inputs(work, clips_by_subset, feats, fps)
        root = str(Path(ref_dir) / SUBDIR)
        _stubs()
        sys.path.insert(0, root)
        argv, sys.argv = sys.argv, [sys.argv[0]]
        try:
            from Models import BoundaryAdjust  # noqa: E402
            from Models.VSGN import VSGN  # noqa: E402  (the reference tree, imported at run time)
            from Utils import opts  # noqa: E402
            from Utils.dataset import VideoDataSet  # noqa: E402
            self.opt = vars(opts.parse_opt())
        finally:
            sys.argv = argv
        BoundaryAdjust.torch = types.SimpleNamespace(**{**vars(torch), "clamp": _clamp_keeps_int})
        self.opt.update(feature_path=str(fdir), clip_anno=str(anno), moment_classes=str(work / "classes.json"),
                        **over)
        torch.manual_seed(seed)  # Train.py seeds 21 at import
        self.model = VSGN(self.opt)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.opt["train_lr"],
                                          weight_decay=self.opt["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=self.opt["step_size"],
                                                         gamma=self.opt["step_gamma"])
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            train, val = VideoDataSet(self.opt, subset="train"), VideoDataSet(self.opt, subset="validation")
        kw = dict(batch_size=self.opt["batch_size"], num_workers=0, drop_last=True)
        self.train_loader = torch.utils.data.DataLoader(train, shuffle=True, **kw)
        self.val_loader = torch.utils.data.DataLoader(val, shuffle=False, **kw)

    def _pass(self, loader, train: bool) -> float:
        self.model.train(train)
        total, n = 0.0, 0
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            for input_data, gt_action, gt_start, gt_end, gt_bbox, num_gt, num_frms in loader:
                with torch.set_grad_enabled(train):
                    losses, *_ = self.model(input_data, num_frms, gt_action, gt_start, gt_end, gt_bbox, num_gt)
                    m = {k: torch.mean(v) for k, v in losses.items()}
                    loss = (m["loss_cls_dec"] + m["loss_reg_dec"] + 0.2 * m["loss_action"] + 0.2 * m["loss_start"]
                            + 0.2 * m["loss_end"] + m["loss_bd_adjust"])
                if train:
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
                total, n = total + float(loss.detach()), n + 1
        return total / max(n, 1)

    def epoch(self, i: int) -> dict:
        """Train one epoch, then Train.py's validation-loss pass; seconds of each and the mean losses."""
        t0 = time.perf_counter()
        train_loss = self._pass(self.train_loader, True)
        t1 = time.perf_counter()
        val_loss = self._pass(self.val_loader, False)
        t2 = time.perf_counter()
        self.scheduler.step()
        return {"train_s": t1 - t0, "eval_s": t2 - t1, "train_loss": train_loss, "val_loss": val_loss}
