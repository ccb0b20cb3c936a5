"""Benchmark metrics equal to the official scripts, and reports (see docs/evaluate.md)."""
from egoflow.evaluate.classification import charades_map, pnr_abs_error, topk_accuracy
from egoflow.evaluate.mq import evaluate_mq, evaluate_mq_files
from egoflow.evaluate.nlq import evaluate_nlq, evaluate_nlq_files
from egoflow.evaluate.qfvs import evaluate_qfvs, qfvs_scores
from egoflow.evaluate.retrieval import egomcq_accuracy, mir_metrics

__all__ = ["charades_map", "pnr_abs_error", "topk_accuracy", "evaluate_mq", "evaluate_mq_files", "evaluate_nlq",
           "evaluate_nlq_files", "evaluate_qfvs", "qfvs_scores", "egomcq_accuracy", "mir_metrics"]
