import numpy as np
import pytest

from egoflow.evaluate.retrieval import egomcq_accuracy, mir_map, mir_metrics, mir_ndcg, pr_curve

SIM = np.array([[.1, .9, .5], [.2, .8, .3]])  # [videos, texts]
REL = np.array([[1, 0, .5], [0, 1, 0]])


def test_mir_hand_worked():
    m = mir_metrics(SIM, REL)
    # V2T row 0 ranks texts 1, 2, 0 -> relevancies 0, .5, 1: the official precision at the relevant item (rank 3)
    # is the relevancy mass 1.5 / 3 = .5 ; row 1 -> its relevant text first: 1
    assert m["mAP V2T"] == pytest.approx(0.75)
    # T2V: texts 0 and 1 find their relevant video second (AP .5); text 2 has no item with relevancy 1
    assert m["mAP T2V"] == pytest.approx(0.5) and m["num_queries_without_relevant T2V"] == 1
    g = 0.5 / np.log2(3)
    assert m["nDCG V2T"] == pytest.approx((g / (1 + g) + 1) / 2)  # row 0: k=2, DCG .5/log2 3, IDCG 1 + that
    assert m["nDCG T2V"] == pytest.approx(1 / 3)  # k=1 each: misses, misses, hit
    assert m["mAP"] == pytest.approx(0.625) and m["nDCG"] == pytest.approx(((g / (1 + g) + 1) / 2 + 1 / 3) / 2)


def test_mir_binary_is_usual_ap_and_degenerate():
    sim = np.array([[.9, .8, .7, .6]])
    rel = np.array([[0, 1, 0, 1]])
    assert mir_map(sim, rel)[0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert mir_ndcg(np.array([[.5, .5]]), np.array([[1, 1]]))[0] == pytest.approx(1.0)  # ties among equals
    with pytest.raises(ValueError, match="no query has a relevant item"):
        mir_map(sim, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="must both be"):
        mir_metrics(sim, rel.T)


def test_pr_curve():
    c = pr_curve(np.array([[.9, .8, .7, .6]]), np.array([[0, 1, 0, 1]], bool))
    assert c["rank"] == [1, 2, 3, 4]
    assert c["precision"] == pytest.approx([0, .5, 1 / 3, .5]) and c["recall"] == pytest.approx([0, .5, .5, 1])


def test_egomcq_labels_the_right_way_round():
    scores = np.array([[.9, .1, 0, 0, 0], [.1, .9, 0, 0, 0], [0, 0, .2, .8, 0], [.5, .5, 0, 0, 0]])
    answers = [0, 0, 3, 1]
    # type 1 = inter: rows 0 (right) and 3 (tie -> argmax picks 0: wrong); type 2 = intra: rows 1 (wrong), 2 (right)
    r = egomcq_accuracy(scores, answers, [1, 2, 2, 1])
    assert (r["Inter-video"], r["Intra-video"], r["num_inter"], r["num_intra"]) == (0.5, 0.5, 2, 2)
    only_intra = egomcq_accuracy(scores[2:3], [3], [2])
    assert only_intra["Intra-video"] == 1.0 and "Inter-video" not in only_intra  # not relabelled as inter
    r = egomcq_accuracy(scores[:1], [0], [1], missing=[True])
    assert r["Inter-video"] == 0.0 and r["num_missing"] == 1
    with pytest.raises(ValueError, match="types must be 1"):
        egomcq_accuracy(scores[:1], [0], [0])
