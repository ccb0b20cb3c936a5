"""Linear-head files derived from an MQ pair (egoflow.datasets.synthetic.linear.files_from_mq)."""
from egoflow.datasets.egotaskqa import answer_indices, answer_vocabulary, load_egotaskqa
from egoflow.datasets.records import MQClip, MQInstance
from egoflow.datasets.synthetic.linear import files_from_mq
from egoflow.datasets.synthetic.mq import write_mq_json


def _clip(uid: str, labels: list[str]) -> MQClip:
    return MQClip(f"v-{uid}", uid, 0.0, 60.0, [MQInstance(lab, 10.0 * k + 1, 10.0 * k + 6)
                                                 for k, lab in enumerate(labels)])


def test_egotaskqa_answer_set_covers_both_splits(tmp_path):
    # "pour" is only in val: the answer vocabulary beside the QA files (EgoTaskQA's answer_set.txt) still has it
    tr = write_mq_json([_clip("a", ["cut", "wash"])], tmp_path / "mq_train.json")
    va = write_mq_json([_clip("b", ["pour", "cut"])], tmp_path / "mq_val.json")
    files = files_from_mq(tr, va, ["what is done?"], tmp_path / "out")
    train, val = (load_egotaskqa(files[f"egotaskqa_{s}"], 30.0) for s in ("train", "val"))
    vocab = answer_vocabulary(train, files["egotaskqa_train"].parent / "answer_set.txt")
    assert vocab == ["cut", "pour", "wash"]
    assert answer_indices(val, vocab, files["egotaskqa_val"]) == [1, 0]
    assert answer_vocabulary(train) == ["cut", "wash"]  # without the file: the training answers only
