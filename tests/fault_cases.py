"""Generated bad inputs for every annotation reader (issue 22), used by ``test_faults_matrix.py``.

A ``Reader`` holds a valid file and, per fault kind, a mutation of it (wrong type, negative, reversed window,
window past its clip, non-finite/1e308, a 400-digit and a 5000-digit integer, a non-UTF-8 byte, a key given
twice, an unknown id) with the key path or row and the words the error line must contain.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SENTINEL = 987654321012  # replaced by a 5000-digit integer in the written text (json.dumps cannot write one)
HUGE = 10 ** 400


@dataclass
class Fault:
    where: str  # substring of the message: key path or row
    message: str  # substring of the message: what is wrong
    set: dict = field(default_factory=dict)  # JSON: key path tuple -> value; CSV/text: "row" -> replacement
    raw: Callable[[bytes], bytes] | None = None  # a byte-level change after writing (UTF-8, duplicate keys)


@dataclass
class Reader:
    name: str
    filename: str
    base: Callable[[], object]  # the valid content (JSON data, or text)
    load: Callable[[Path], object]  # the reader under test
    faults: dict[str, Fault]
    extra: Callable[[Path], None] | None = None  # files beside it (class lists)

    def write(self, folder: Path, fault: Fault | None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename
        data = copy.deepcopy(self.base())
        for key, value in (fault.set if fault else {}).items():
            if isinstance(data, str):
                data = data.replace(key, value, 1)
            else:
                obj = data
                for k in key[:-1]:
                    obj = obj[k]
                obj[key[-1]] = value
        text = data if isinstance(data, str) else json.dumps(data)
        raw = text.replace(str(SENTINEL), "9" * 5000).encode()
        if fault and fault.raw:
            raw = fault.raw(raw)
        path.write_bytes(raw)
        if self.extra:
            self.extra(folder)
        return path


def _non_utf8(word: str) -> Callable[[bytes], bytes]:
    return lambda raw: raw.replace(word.encode(), word.encode()[:-1] + b"\xe9", 1)


def _dup_key(key: str) -> Callable[[bytes], bytes]:
    return lambda raw: raw.replace(f'"{key}": '.encode(), f'"{key}": 0, "{key}": '.encode(), 1)


def _json_faults(num: tuple, num_where: str, start: tuple, end: tuple, window_where: str, clip_end: float | None,
                 text_word: str, dup: str, start_key: str, end_key: str) -> dict[str, Fault]:
    """The JSON fault kinds on one number field, one window and one string of a reader."""
    w = window_where
    out = {
        "type": Fault(num_where, "expected", {num: "3"}),
        "negative": Fault(f"{w}.{start_key}", "negative", {start: -3}),
        "non-finite": Fault(f"{w}.{end_key}", "plausible", {end: 1e308}),
        "400-digit int": Fault(f"{w}.{end_key}", "out of range", {end: HUGE}),
        "5000-digit int": Fault("line 1", "5000 digits", {end: SENTINEL}),
        "reversed": Fault(w, "ends before it starts", {start: 5, end: 1}),
        "non-UTF-8": Fault("line 1 (byte", "not UTF-8", raw=_non_utf8(text_word)),
        "duplicate key": Fault(f"key '{dup}'", "appears twice", raw=_dup_key(dup)),
    }
    if clip_end is not None:
        out["beyond clip"] = Fault(w, "past the end", {end: clip_end + 50})
    return out


# ---- Ego4D NLQ / MQ / narrations ------------------------------------------------------------------------------
def _ego4d(annotation: dict) -> dict:
    return {"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c", "video_start_sec": 0, "video_end_sec": 30,
                                                     "annotations": [annotation]}]}]}


CLIP = ("videos", 0, "clips", 0, "annotations", 0)
NLQ_Q, NLQ_W = CLIP + ("language_queries", 0), "videos[0].clips[0].annotations[0].language_queries[0]"
MQ_L, MQ_W = CLIP + ("labels", 0), "videos[0].clips[0].annotations[0].labels[0]"


def _nlq_base():
    return _ego4d({"annotation_uid": "a", "language_queries": [
        {"clip_start_sec": 2, "clip_end_sec": 6, "query": "where is the kettle"}]})


def _mq_base():
    return _ego4d({"labels": [{"label": "pour_water", "start_time": 2, "end_time": 6, "primary": True}]})


def _narr_base():
    return {"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1.5, "narration_text": "#C C opens a jar"}]}}}


def _load_nlq(p):
    from egoflow.datasets.ego4d import load_nlq_report
    return load_nlq_report(p)


def _load_mq(p):
    from egoflow.datasets.ego4d import load_mq
    return load_mq(p)


def _load_narr(p):
    from egoflow.datasets.ego4d import load_narrations
    return load_narrations(p)


NARR_T, NARR_W = ("v", "narration_pass_1", "narrations", 0, "timestamp_sec"), "v.narration_pass_1.narrations[0]"
NARR_FAULTS = {
    "type": Fault(f"{NARR_W}.timestamp_sec", "expected a number", {NARR_T: "1.5"}),
    "negative": Fault(f"{NARR_W}.timestamp_sec", "negative", {NARR_T: -2}),
    "non-finite": Fault(f"{NARR_W}.timestamp_sec", "plausible", {NARR_T: 1e308}),
    "400-digit int": Fault(f"{NARR_W}.timestamp_sec", "out of range", {NARR_T: HUGE}),
    "5000-digit int": Fault("line 1", "5000 digits", {NARR_T: SENTINEL}),
    "non-UTF-8": Fault("line 1 (byte", "not UTF-8", raw=_non_utf8("opens")),
    "duplicate key": Fault("key 'timestamp_sec'", "appears twice", raw=_dup_key("timestamp_sec")),
}

# ---- FHO OSCC / PNR ---------------------------------------------------------------------------------------------
FHO_W = "clips[0] (u0)"


def _fho_base():
    return {"clips": [{"unique_id": "u0", "video_uid": "v", "parent_start_sec": 1.0, "parent_end_sec": 9.0,
                       "parent_start_frame": 30, "parent_end_frame": 270, "state_change": True,
                       "parent_pnr_frame": 100}]}


def _load_fho(p):
    from egoflow.datasets.fho import load_fho_oscc_pnr
    return load_fho_oscc_pnr(p, task="pnr")


def _fk(k):
    return ("clips", 0, k)


FHO_FAULTS = {
    "type": Fault(f"{FHO_W}.parent_end_sec", "expected a number", {_fk("parent_end_sec"): "9"}),
    "negative": Fault(f"{FHO_W}.parent_start_sec", "negative", {_fk("parent_start_sec"): -1.0}),
    "non-finite": Fault(f"{FHO_W}.parent_end_sec", "plausible", {_fk("parent_end_sec"): 1e308}),
    "400-digit int": Fault(f"{FHO_W}.parent_end_frame", "out of range", {_fk("parent_end_frame"): HUGE}),
    "5000-digit int": Fault("line 1", "5000 digits", {_fk("parent_end_frame"): SENTINEL}),
    "reversed": Fault(FHO_W, "empty clip", {_fk("parent_end_sec"): 0.5}),
    "beyond clip": Fault(f"{FHO_W}.parent_pnr_frame", "outside the clip", {_fk("parent_pnr_frame"): 900}),
    "non-UTF-8": Fault("line 1 (byte", "not UTF-8", raw=_non_utf8("u0")),
    "duplicate key": Fault("key 'unique_id'", "appears twice", raw=_dup_key("unique_id")),
}

# ---- EgoMCQ -----------------------------------------------------------------------------------------------------


def _mcq_clip(s, e, text=""):
    return {"video_uid": "v", "clip_start": s, "clip_end": e, "clip_text": text}


def _mcq_base():
    return {"0": {"query": _mcq_clip(1, 2, "#C C cuts an onion"), "choices": {"0": _mcq_clip(1, 2), "1": _mcq_clip(
        3, 4)}, "answer": 0, "types": 1}}


def _load_mcq(p):
    from egoflow.datasets.egomcq import load_egomcq
    return load_egomcq(p)


MCQ_C = ("0", "choices", "1")
MCQ_FAULTS = {
    **_json_faults(("0", "answer"), "0.answer", MCQ_C + ("clip_start",), MCQ_C + ("clip_end",), "0.choices.1",
                   None, "onion", "answer", "clip_start", "clip_end"),
    "type": Fault("0.choices.1.clip_start", "expected a time", {MCQ_C + ("clip_start",): "three"}),
    "400-digit answer": Fault("0.answer", "out of range", {("0", "answer"): HUGE}),
    "1e308 as text": Fault("0.choices.1.clip_end", "plausible", {MCQ_C + ("clip_end",): "1e308"}),
}

# ---- EgoTaskQA --------------------------------------------------------------------------------------------------


def _qa_base():
    return [{"question": "what did the person open?", "answer": "fridge", "interval": "v|fpv1|0|30",
             "type": ["descriptive"]}]


def _load_qa(p):
    from egoflow.datasets.egotaskqa import load_egotaskqa
    return load_egotaskqa(p)


QA_FAULTS = {
    "type": Fault("[0].answer", "expected str", {(0, "answer"): 7}),
    "negative": Fault("[0].interval start", "negative", {(0, "interval"): "v|fpv1|-3|30"}),
    "reversed": Fault("[0].interval", "empty frame range", {(0, "interval"): "v|fpv1|30|2"}),
    "400-digit int": Fault("[0].interval end", "out of range", {(0, "interval"): f"v|fpv1|0|{HUGE}"}),
    "5000-digit int": Fault("line 1", "5000 digits", {(0, "answer"): SENTINEL}),
    "non-UTF-8": Fault("line 1 (byte", "not UTF-8", raw=_non_utf8("fridge")),
    "duplicate key": Fault("key 'answer'", "appears twice", raw=_dup_key("answer")),
}

# ---- CharadesEgo ------------------------------------------------------------------------------------------------
CH_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length,egocentric\n"


def _ch_base():
    return CH_HEADER + "V001,s,kitchen,5,5,Yes,a script,cup,d,c001 1.0 4.0;c000 2.0 3.0,20.0,Yes\n"


def _ch_classes(folder: Path):
    (folder / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")


def _load_ch(p):
    from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
    return load_charades_ego(p, len(load_charades_classes(p.parent / "Charades_v1_classes.txt")))


CH_ROW = "line 2 (id 'V001')"
CH_FAULTS = {
    "type": Fault(CH_ROW, "expected a time", {"c001 1.0 4.0": "c001 a 4.0"}),
    "negative": Fault(CH_ROW, "negative", {"c001 1.0 4.0": "c001 -3 4.0"}),
    "non-finite": Fault(CH_ROW, "plausible", {"c001 1.0 4.0": "c001 1.0 1e308"}),
    "reversed": Fault(CH_ROW, "ends before it starts", {"c001 1.0 4.0": "c001 13.0 2.0"}),
    "400-digit int": Fault(CH_ROW, "bad class id", {"c001 1.0": "c" + "9" * 400 + " 1.0"}),
    "unknown id": Fault("video V001", "not in the class list", {"c001 1.0": "c150 1.0"}),
    "non-UTF-8": Fault("line 2 (byte", "not UTF-8", raw=_non_utf8("kitchen")),
    "duplicate key": Fault("line 3 (id 'V001')", "appears twice",
                           raw=lambda raw: raw + raw.split(b"\n")[1] + b"\n"),
    "bad length": Fault(CH_ROW + " length", "plausible", {",20.0,": ",inf,"}),
}

# ---- EPIC-KITCHENS-100 actions ----------------------------------------------------------------------------------
EK_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
             "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")


def _ek_base():
    return EK_HEADER + ("P01_01_0,P01,P01_01,00:00:01.00,00:00:01.00,00:00:03.50,50,175,open door,open,1,door,0,"
                        "['door'],[0]\n")


def _ek_classes(folder: Path):
    (folder / "EPIC_100_verb_classes.csv").write_text("id,key\n0,take\n1,open\n")
    (folder / "EPIC_100_noun_classes.csv").write_text("id,key\n0,door\n1,tap\n")


def _load_ek(p):
    from egoflow.datasets.ek100_actions import load_ek100_actions
    return load_ek100_actions(p)


EK_ROW = "row 2 ('P01_01_0')"
EK_FAULTS = {
    "type": Fault(f"{EK_ROW}.verb_class", "expected an integer class index", {",open,1,": ",open,one,"}),
    "negative": Fault(f"{EK_ROW}.start_timestamp", "not HH:MM:SS", {",00:00:01.00,00:00:03.50": ",-00:00:01.00,"
                                                                                                "00:00:03.50"}),
    "non-finite": Fault(f"{EK_ROW}.stop_timestamp", "not HH:MM:SS", {"00:00:03.50": "inf"}),
    "reversed": Fault(EK_ROW, "before start", {"00:00:03.50": "00:00:00.50"}),
    "400-digit int": Fault(f"{EK_ROW}.verb_class", "out of range", {",open,1,": f",open,{HUGE},"}),
    "unknown id": Fault(f"{EK_ROW}.verb_class", "not in the class list", {",open,1,": ",open,7,"}),
    "non-UTF-8": Fault("line 2 (byte", "not UTF-8", raw=_non_utf8("door")),
    "duplicate key": Fault("row 3 ('P01_01_0')", "appears twice",
                           raw=lambda raw: raw + raw.split(b"\n")[1] + b"\n"),
}

READERS = [
    Reader("nlq", "nlq_train.json", _nlq_base, _load_nlq, _json_faults(
        NLQ_Q + ("clip_end_sec",), f"{NLQ_W}.clip_end_sec", NLQ_Q + ("clip_start_sec",), NLQ_Q + ("clip_end_sec",),
        NLQ_W, 30, "kettle", "clip_start_sec", "clip_start_sec", "clip_end_sec")),
    Reader("mq", "moments_train.json", _mq_base, _load_mq, _json_faults(
        MQ_L + ("end_time",), f"{MQ_W}.end_time", MQ_L + ("start_time",), MQ_L + ("end_time",), MQ_W, 30,
        "water", "start_time", "start_time", "end_time")),
    Reader("narrations", "narration.json", _narr_base, _load_narr, NARR_FAULTS),
    Reader("fho", "fho_oscc-pnr_train.json", _fho_base, _load_fho, FHO_FAULTS),
    Reader("egomcq", "egomcq.json", _mcq_base, _load_mcq, MCQ_FAULTS),
    Reader("egotaskqa", "train_qas.json", _qa_base, _load_qa, QA_FAULTS),
    Reader("charades", "CharadesEgo_v1_train.csv", _ch_base, _load_ch, CH_FAULTS, _ch_classes),
    Reader("ek100", "EPIC_100_train.csv", _ek_base, _load_ek, EK_FAULTS, _ek_classes),
]
BY_NAME = {r.name: r for r in READERS}
CASES = [(r.name, f) for r in READERS for f in r.faults]
