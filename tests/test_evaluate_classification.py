import numpy as np
import pytest

from egoflow.evaluate.classification import charades_map, charades_map_report, pnr_abs_error, topk_accuracy

SCORES = np.array([[.9, .1, .3], [.8, .7, .2], [.2, .6, .1], [.5, .5, .9]])
LABELS = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_charades_map_hand_worked():
    # row 3 has no label -> -inf scores (the official script never finds its id), so it ranks last
    # class 0: .9(+) .8(-) .2(+) -> (1 + 2/3) / 2 ; class 1: .7(+) first -> 1 ; class 2: no positive -> left out
    r = charades_map_report(SCORES, LABELS)
    assert r["mAP"] == pytest.approx((5 / 6 + 1) / 2) and charades_map(SCORES, LABELS) == r["mAP"]
    assert r["num_classes_evaluated"] == 2 and np.isnan(r["per_class_AP"][2])
    assert r["wAP"] == pytest.approx((5 / 6 * 2 + 1 * 1) / 3)
    # without the -inf rule row 3 (.5) would outrank row 2 in class 0 and give (1 + 2/4) / 2
    assert r["per_class_AP"][0] == pytest.approx(5 / 6)


def test_charades_ties_stable_and_degenerate():
    # class 0 ties (.5, .5): file order is kept (MATLAB's stable sort), its positive comes second -> AP 1/2
    r = charades_map_report(np.array([[.5, .9], [.5, .1]]), np.array([[0, 1], [1, 0]]))
    assert r["per_class_AP"] == pytest.approx([0.5, 1.0])
    with pytest.raises(ValueError, match="no class has a positive"):
        charades_map(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[videos, classes\]"):
        charades_map(np.zeros((2, 2)), np.zeros((2, 3)))


def test_topk_accuracy_with_ties():
    scores = np.array([[.1, .5, .4], [.3, .3, .3], [.0, .0, .9]])
    r = topk_accuracy(scores, [2, 1, 2], ks=(1, 2))
    # row 0: .5 beats .4 -> rank 2 ; row 1: tie, class 0 goes first -> rank 2 ; row 2: rank 1
    assert r == {"top1": pytest.approx(1 / 3), "top2": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="targets must lie"):
        topk_accuracy(scores, [0, 1, 3])


def test_pnr_abs_error():
    assert pnr_abs_error([1.0, 2.5, 9.0], [1.5, 2.0, 0.0], [1, 1, 0]) == pytest.approx(0.5)
    assert pnr_abs_error([1.0], [3.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no clip with a state change"):
        pnr_abs_error([1.0], [2.0], [0])


def test_ek100_action_accuracy_hand_worked():
    """Verb/noun logits -> the challenge file (action = softmax(verb) x softmax(noun), top-100) -> top-k."""
    from egoflow.datasets.ek100_actions import EK100Action
    from egoflow.evaluate.recognition import ek100_actions_metrics
    from egoflow.formats import ek100_actions_submission
    verb = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    noun = np.array([[0.0, 5.0], [1.0, 0.0]])
    gt = [EK100Action("a", "v", 0.0, 1.0, "", 0, 1), EK100Action("b", "v", 1.0, 2.0, "", 1, 1)]
    recs = {a.narration_id: {"verb": verb[i], "noun": noun[i]} for i, a in enumerate(gt)}
    # clip 0: verb 0 right, noun 1 right -> action right; clip 1: verb 1 right, noun 1 wrong (noun 0 top)
    m = ek100_actions_metrics(gt, ek100_actions_submission(recs))
    assert m["verb top1"] == 1.0 and m["noun top1"] == 0.5 and m["action top1"] == 0.5
    assert m["noun top5"] == 1.0 and m["action top5"] == 1.0  # (1, 1) is the second-best pair of clip 1
