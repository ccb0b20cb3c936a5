import pickle

import numpy as np
import pytest

from egoflow.datasets.ek100 import load_mir, load_mir_submission
from egoflow.datasets.errors import AnnotationError, PredictionError


def make(tmp_path, rel=None):
    (tmp_path / "relevancy").mkdir(exist_ok=True)
    (tmp_path / "EPIC_100_retrieval_test.csv").write_text(
        "narration_id,participant_id,video_id,narration\nP01_1_0,P01,P01_1,open door\nP01_1_1,P01,P01_1,close door\n"
        "P01_1_2,P01,P01_1,open the door\n")
    (tmp_path / "EPIC_100_retrieval_test_sentence.csv").write_text(
        "narration_id,narration\nP01_1_0,open door\nP01_1_1,close door\n")
    rel = np.array([[1, .5], [.5, 1], [1, .5]]) if rel is None else rel
    with open(tmp_path / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl", "wb") as f:
        pickle.dump(rel, f)
    return load_mir(tmp_path)


def test_reads_split_and_reorders_submission(tmp_path):
    split = make(tmp_path)
    assert split.video_ids == ["P01_1_0", "P01_1_1", "P01_1_2"] and split.texts == ["open door", "close door"]
    sub = {"version": "0.1", "challenge": "multi_instance_retrieval", "sim_mat": np.array([[.2, .1], [.9, .8]]),
           "vis_ids": np.array(["P01_1_2", "P01_1_0"]), "txt_ids": ["P01_1_1", "P01_1_0"], "sls_pt": 2}
    p = tmp_path / "test.pkl"
    p.write_bytes(pickle.dumps(sub))
    sim, miss_v, miss_t = load_mir_submission(p, split)
    assert sim[0].tolist() == [.8, .9] and sim[2].tolist() == [.1, .2] and np.isinf(sim[1]).all()
    assert (miss_v, miss_t) == (1, 0)


def test_malformed(tmp_path):
    with pytest.raises(AnnotationError, match=r"relevancy is \(2, 2\), the CSVs give \(3, 2\)"):
        make(tmp_path, rel=np.ones((2, 2)))
    split = make(tmp_path)
    p = tmp_path / "test.pkl"
    p.write_bytes(pickle.dumps({"sim_mat": np.ones((1, 2)), "vis_ids": ["X"], "txt_ids": ["P01_1_0", "P01_1_1"]}))
    with pytest.raises(PredictionError, match=r"vis_ids: 1 id\(s\) not in the split"):
        load_mir_submission(p, split)
    p.write_bytes(pickle.dumps({"sim_mat": np.ones((1, 2))}))
    with pytest.raises(PredictionError, match="vis_ids: missing key"):
        load_mir_submission(p, split)
    p.write_bytes(pickle.dumps(print))  # arbitrary callables are refused, not executed
    with pytest.raises(PredictionError, match="refusing to load builtins.print"):
        load_mir_submission(p, split)
