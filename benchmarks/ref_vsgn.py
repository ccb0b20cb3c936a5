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
- tensorboardX is imported by the reference modules but not used on this path: a stub module. pandas is the
  reference evaluation's own (``pip install pandas``); without it only training can be timed (``evaluate`` needs it).
- ``evaluate`` is Infer.py + Eval.py's detection stage on the validation clips, on the CPU: the model's outputs go
  through Infer.py's own ``infer_v_asis`` (its NMS, one CSV per clip), Evaluation/ego4d's ``gen_detection_multicore``
  (Soft-NMS, top 200) and ``ANETdetection`` (mAP over tIoU 0.1..0.5). Their joblib pools (16 processes, one per
  class) run with one job, in this process, as the loaders do; ANETdetection's ``activity_idx.json`` and
  ``ap.npy`` land in the work directory, not the caller's.
- Evaluation/ego4d/eval_detection.py casts with ``np.float``, an alias numpy 1.24 removed: its module sees a ``np``
  that has it back (``float``, what the alias always was).
- VideoDataSet prints two lines per labelled moment it reads: they go to /dev/null (the time is still counted).
- Models/BoundaryAdjust.py clamps long indices with float bounds: torch 1.x kept them long, torch 2 promotes them
  to float (and indexing fails); its module sees a ``torch`` whose ``clamp`` keeps an integer tensor's dtype.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import types
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch

SUBDIR = "MQ"


def _stubs() -> None:
    import torch._dynamo  # noqa: F401  (optimisers import it lazily; its module scan rejects a stub without a spec)

    for name in ("tensorboardX",):
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


def _numpy_with_float():
    """numpy as eval_detection.py was written for: ``np.float`` (removed in numpy 1.24) is ``float`` again."""
    return types.SimpleNamespace(**{**vars(np), "float": float})


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
            anno[c.clip_uid] = {"subset": subset, "video_id": c.video_uid, "clip_id": c.clip_uid, "fps": fps,
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
        self.work = work
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
                        output_path=str(work / "output"), infer_datasplit="validation", **over)
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
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            infer = VideoDataSet(self.opt, subset="validation", mode="inference")
        self.infer_loader = torch.utils.data.DataLoader(infer, batch_size=self.opt["batch_size"], shuffle=False,
                                                        num_workers=0, drop_last=False)

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

    def epoch(self, i: int, with_map: bool = True) -> dict:
        """Train one epoch, then Train.py's validation-loss pass, then (``with_map``) Infer.py + Eval.py's mAP;
        seconds of each, the mean losses and the mAP."""
        t0 = time.perf_counter()
        train_loss = self._pass(self.train_loader, True)
        t1 = time.perf_counter()
        val_loss = self._pass(self.val_loader, False)
        t2 = time.perf_counter()
        self.scheduler.step()
        row = {"train_s": t1 - t0, "eval_s": t2 - t1, "train_loss": train_loss, "val_loss": val_loss}
        if with_map:
            t3 = time.perf_counter()  # the mAP alone, apart from the scheduler step
            row["mAP"] = self.evaluate()
            row["map_s"] = time.perf_counter() - t3
        return row

    def evaluate(self) -> float:
        """The reference's validation mAP (mean over its tIoU thresholds) as Infer.py then Eval.py compute it."""
        import Infer  # noqa: E402  (the reference tree; needs pandas)
        from Evaluation.ego4d import eval_detection, generate_detection  # noqa: E402

        def serial(*a, **kw):
            return joblib.Parallel(n_jobs=1)

        for mod in (Infer, eval_detection, generate_detection):
            mod.Parallel = serial
        eval_detection.np = _numpy_with_float()
        Infer.opt = self.opt  # infer_v_asis reads Infer.py's module-level options
        prop = Path(self.opt["output_path"], self.opt["prop_path"])
        shutil.rmtree(prop, ignore_errors=True)
        prop.mkdir(parents=True)
        data = self.infer_loader.dataset
        self.model.eval()
        self.model.is_train = "false"  # Infer.py's model: built with --is_train false (only forward() reads it)
        # warnings: the reference's NMS and Soft-NMS IoU divide 0 by 0 for a pair of zero-length proposals at
        # one point (nan, which their comparisons treat as overlap): its behaviour, kept; only the message goes.
        with torch.no_grad(), open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for index, input_data, num_frms in self.infer_loader:
                _, score, loc, _, start, end = (x.numpy() for x in self.model(input_data, num_frms))
                for b, i in enumerate(index.tolist()):
                    Infer.infer_v_asis(self.opt, video=data.clip_dict[data.clip_list[i]], score_dec_v=score[b],
                                       loc_dec_v=loc[b], pred_action_v=None, pred_start_v=start[b],
                                       pred_end_v=end[b], proposal_path=str(prop), num_frms_v=num_frms.numpy()[b])
            generate_detection.gen_detection_multicore(self.opt)
            cwd = os.getcwd()
            os.chdir(self.work)
            try:
                _, average_map = eval_detection.ANETdetection(
                    self.opt["clip_anno"], str(Path(self.opt["output_path"], self.opt["detect_result_file"])),
                    subset="validation", tiou_thresholds=self.opt["tIoU_thr"]).evaluate()
            finally:
                os.chdir(cwd)
                self.model.is_train = "true"
        return float(average_map)
