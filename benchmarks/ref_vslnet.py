"""The Ego4D NLQ baseline (EGO4D/episodic-memory NLQ/VSLNet) trained as its main.py trains, one epoch at a time.

Used by benchmarks/train_vs_reference.py; the reference tree is imported from ``--reference-dir`` at run time and
never copied into this repository. What runs is the reference's own code: utils/prepare_ego4d_dataset.py writes
its clip features and jsons from Ego4D-format files, utils/data_gen.py builds its dataset, utils/data_loader.py
its loaders and collate, model/VSLNet.py its model, optimiser groups and linear schedule, utils/runner_utils.py
its masks and eval_test with utils/evaluate_ego4d_nlq.py. Only main.py's loop body is written out here (main()
cannot be stopped between epochs); it does what main.py does per step, evaluates at main.py's eval_period (every
steps_per_epoch // 2 global steps and at each epoch's end) and saves the best checkpoint as main.py does.

Shims (outside the reference tree, all in this file):
- BERT: ``--predictor bert`` runs a frozen bert-base-uncased (weights: not available offline) on every batch.
  Its output is replaced by a lookup of the same cached token features egoflow reads from its text set, and the
  tokenizer by one that emits a query id per token. The reference run by a user would pay a BERT-base forward
  on every step on top, so the timings here understate the gap.
- transformers >= 4.47 has no ``AdamW``: the legacy algorithm (eps on the uncorrected sqrt(v), decoupled decay
  after the update), written per parameter as transformers 4.x ran it.
- nltk (only its GloVe branch tokenizes) and terminaltables (eval_test's printout) are not installed: stubs.
"""
from __future__ import annotations

import math
import os
import sys
import time
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

SUBDIR = "NLQ/VSLNet"


class LegacyAdamW(torch.optim.Optimizer):
    """transformers 4.x AdamW, one parameter at a time as that code ran (the reference's optimiser)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                b1, b2 = group["betas"]
                st["step"] += 1
                st["exp_avg"].mul_(b1).add_(p.grad, alpha=1.0 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
                size = group["lr"]
                if group["correct_bias"]:
                    size = size * math.sqrt(1.0 - b2 ** st["step"]) / (1.0 - b1 ** st["step"])
                p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(group["eps"]), value=-size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


def _install_stubs(table: torch.Tensor, ids: dict[str, tuple[int, int]]) -> type:
    """Module stubs and the BERT / tokenizer / AdamW shims, before the reference modules are imported."""
    import transformers

    nltk = types.ModuleType("nltk")
    nltk.tokenize = types.ModuleType("nltk.tokenize")
    nltk.tokenize.word_tokenize = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("GloVe branch not shimmed"))
    tt = types.ModuleType("terminaltables")

    class AsciiTable:
        def __init__(self, data, title=None):
            self.justify_columns = {}
            self.table = "\n".join(" | ".join(str(c).replace("\n", " ") for c in row) for row in data)

    tt.AsciiTable = AsciiTable
    sys.modules.update({"nltk": nltk, "nltk.tokenize": nltk.tokenize, "terminaltables": tt})

    class Tokenizer:  # one id per query (its row in `table`), repeated over the query's tokens
        @staticmethod
        def from_pretrained(name):
            return Tokenizer()

        def __call__(self, text):
            i, n = ids[text]
            return {"input_ids": [i] * n, "attention_mask": [1] * n, "token_type_ids": [0] * n}

    transformers.BertTokenizer = Tokenizer
    transformers.AdamW = LegacyAdamW

    class CachedBert(nn.Module):  # BertEmbedding's output: [B, L, 768] token features, frozen
        def __init__(self, text_agnostic=False):
            super().__init__()

        def forward(self, word_ids):
            ids_ = word_ids["input_ids"]
            return table[ids_[:, 0]][:, :ids_.shape[1]].to(ids_.device)

    return CachedBert


@contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class ReferenceVSLNet:
    """The baseline set up on Ego4D-format files in ``work``; ``epoch()`` trains and evaluates one epoch."""

    def __init__(self, ref_dir: Path, work: Path, nlq_json: dict, video_feats: dict, tokens: dict[str, np.ndarray],
                 video_dim: int, epochs: int, head: dict, train: dict, seed: int = 12345):
        code = Path(ref_dir) / SUBDIR
        self.work = work
        queries = sorted(tokens)
        # row 0 is the padding id (the reference's query mask is input_ids != 0)
        table = torch.zeros(len(queries) + 1, max(len(t) for t in tokens.values()), 768)
        ids = {}
        for i, q in enumerate(queries, 1):
            table[i, :len(tokens[q])] = torch.from_numpy(np.asarray(tokens[q], dtype=np.float32))
            ids[q.strip(" ").strip("?").lower() + "?"] = (i, len(tokens[q]))  # process_question + .lower()
        cached_bert = _install_stubs(table, ids)
        sys.path.insert(0, str(code))
        import model.VSLNet as ref_model  # noqa: E402  (the reference tree, from --reference-dir)
        import options
        from utils import data_gen, data_loader, data_util, prepare_ego4d_dataset, runner_utils
        ref_model.BertEmbedding = cached_bert
        self.m = types.SimpleNamespace(model=ref_model, data_loader=data_loader, data_util=data_util,
                                       runner_utils=runner_utils)
        data = work / "data"
        (data / "raw").mkdir(parents=True, exist_ok=True)
        (data / "video_features").mkdir(exist_ok=True)
        for split, obj in nlq_json.items():
            data_util.save_json(obj, str(data / "raw" / f"nlq_{split}.json"))
        data_util.save_json(nlq_json["val"], str(data / "nlq_val.json"))
        for uid, f in video_feats.items():
            torch.save(torch.from_numpy(f), data / "video_features" / f"{uid}.pt")
        task = "nlq_official_v1"
        prepare_ego4d_dataset.convert_ego4d_dataset({
            **{f"input_{s}_split": str(data / "raw" / f"nlq_{s}.json") for s in ("train", "val", "test")},
            "output_save_path": str(data / "dataset" / task), "video_feature_read_path": str(data / "video_features"),
            "clip_feature_save_path": str(data / "features" / task / "official")})
        # run_train.sh's command line, with the recipe's values (they are the baseline's)
        argv = ["main.py", "--task", task, "--predictor", "bert", "--mode", "train", "--video_feature_dim",
                str(video_dim), "--max_pos_len", str(head["max_pos_len"]), "--epochs", str(epochs), "--fv",
                "official", "--num_workers", "1", "--model_dir", "checkpoints/", "--eval_gt_json",
                "data/nlq_val.json", "--batch_size", str(train["batch_size"]), "--init_lr", str(train["lr"]),
                "--clip_norm", str(train["grad_clip"]), "--dim", str(head["dim"]), "--num_heads",
                str(head["num_heads"]), "--drop_rate", str(head["dropout"]), "--highlight_lambda",
                str(head["highlight_weight"]), "--seed", str(seed)]
        old_argv, sys.argv = sys.argv, argv
        try:
            self.configs, _ = options.read_command_line()
        finally:
            sys.argv = old_argv
        c = self.configs
        with _cwd(work):
            runner_utils.set_th_config(c.seed)
            dataset = data_gen.gen_or_load_dataset(c)
            feats = data_util.load_video_features(os.path.join("data", "features", c.task, c.fv), c.max_pos_len)
        self.train_loader = data_loader.get_train_loader(dataset["train_set"], feats, c)
        self.val_loader = data_loader.get_test_loader(dataset["val_set"], feats, c)
        c.num_train_steps = len(self.train_loader) * c.epochs
        self.device = torch.device("cpu")
        self.model = ref_model.VSLNet(configs=c, word_vectors=None).to(self.device)
        self.optimizer, self.scheduler = ref_model.build_optimizer_and_scheduler(self.model, configs=c)
        self.model_dir = work / "checkpoints" / "model"
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self.global_step, self.best = 0, -1.0
        self.num_train = len(dataset["train_set"])

    def _evaluate(self, epoch: int) -> dict:
        c, ru = self.configs, self.m.runner_utils
        self.model.eval()
        preds = self.model_dir / f"{c.model_name}_{epoch}_{self.global_step}_preds.json"
        with _cwd(self.work):
            results, miou, _ = ru.eval_test(model=self.model, data_loader=self.val_loader, device=self.device,
                                            mode="val", epoch=epoch + 1, global_step=self.global_step,
                                            gt_json_path=c.eval_gt_json, result_save_path=str(preds))
        if results[0][0] >= self.best:  # main.py keeps the best checkpoints by R@1 IoU=0.3
            self.best = results[0][0]
            torch.save(self.model.state_dict(), self.model_dir / f"{c.model_name}_{self.global_step}.t7")
            ru.filter_checkpoints(str(self.model_dir), suffix="t7", max_to_keep=3)
        self.model.train()
        # results[i][j]: IoU (0.3, 0.5, 0.01)[i], R@(1, 3, 5)[j], in percent (display_results scaled the array
        # in place; mIoU, a scalar, stays a fraction)
        return {"R@1 IoU=0.3": float(results[0][0]) / 100, "R@1 IoU=0.5": float(results[1][0]) / 100,
                "R@5 IoU=0.3": float(results[0][2]) / 100, "mIoU": float(miou)}

    def epoch(self, epoch: int) -> dict:
        """main.py's epoch ``epoch`` (0-based): returns train_s (steps only), eval_s, metrics of its last eval."""
        c, ru, dev = self.configs, self.m.runner_utils, self.device
        n = len(self.train_loader)
        eval_period = n // 2
        self.model.train()
        train_s = eval_s = 0.0
        metrics: dict = {}
        t0 = time.perf_counter()
        for data in self.train_loader:
            self.global_step += 1
            _, vfeats, vfeat_lens, word_ids, char_ids, s_labels, e_labels, h_labels = data
            vfeats, vfeat_lens = vfeats.to(dev), vfeat_lens.to(dev)
            s_labels, e_labels, h_labels = s_labels.to(dev), e_labels.to(dev), h_labels.to(dev)
            word_ids = {k: v.to(dev) for k, v in word_ids.items()}
            query_mask = (torch.zeros_like(word_ids["input_ids"]) != word_ids["input_ids"]).float().to(dev)
            video_mask = ru.convert_length_to_mask(vfeat_lens).to(dev)
            h_score, start_logits, end_logits = self.model(word_ids, char_ids, vfeats, video_mask, query_mask)
            highlight_loss = self.model.compute_highlight_loss(h_score, h_labels, video_mask)
            loc_loss = self.model.compute_loss(start_logits, end_logits, s_labels, e_labels)
            total_loss = loc_loss + c.highlight_lambda * highlight_loss
            self.optimizer.zero_grad()
            total_loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), c.clip_norm)
            self.optimizer.step()
            self.scheduler.step()
            if self.global_step % max(1, eval_period) == 0 or self.global_step % n == 0:
                t1 = time.perf_counter()
                train_s += t1 - t0
                metrics = self._evaluate(epoch)
                t0 = time.perf_counter()
                eval_s += t0 - t1
        train_s += time.perf_counter() - t0
        return {"train_s": train_s, "eval_s": eval_s, **metrics}
