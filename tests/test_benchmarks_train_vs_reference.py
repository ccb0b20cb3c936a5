"""benchmarks/train_vs_reference.py without the reference tree (it is never in this repository): the refusal
line, egoflow's side of the measurement, the random-state isolation of the alternating runs, time-to-metric."""
import importlib.util
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_vs_reference.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_vs_reference", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_refuses_in_one_line_without_the_reference_tree(bench, tmp_path, capsys):
    (tmp_path / "NLQ").mkdir()  # a folder that is not the reference
    with pytest.raises(SystemExit) as e:
        bench.main(["--reference-dir", str(tmp_path), "--quick"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path) in err and "NLQ/VSLNet/main.py" in err


def test_egoflow_side_measures_every_epoch_and_runs_the_other_side_between(bench, tmp_path):
    store, data = bench.planted_nlq(tmp_path, quick=True, num_videos=4)
    calls = []
    res = bench.egoflow_side(store, data, tmp_path / "run", epochs=2, between=calls.append)
    assert calls == [1, 2]  # the reference's epoch after each of egoflow's
    assert [r["epoch"] for r in res["epochs"]] == [1, 2]
    for r in res["epochs"]:
        assert r["train_s"] > 0 and r["eval_s"] > 0
        assert all(0.0 <= r[k] <= 1.0 for k in bench.METRICS)
    assert set(res["final"]) == set(bench.METRICS) and res["best_epoch"] in (1, 2)
    assert (tmp_path / "run" / "predictions.json").is_file()  # what `egoflow train` writes


def test_lr_option_sets_egoflow_sides_lr_and_leaves_the_rest_of_the_recipe(bench, tmp_path):
    import json

    store, data = bench.planted_nlq(tmp_path, quick=True, num_videos=4)
    bench.egoflow_side(store, data, tmp_path / "run", epochs=1, lr=5e-3)
    tc = json.loads((tmp_path / "run" / "config.json").read_text())["train_config"]
    assert tc["lr"] == 5e-3
    assert {k: tc[k] for k in ("optimizer", "schedule", "batch_size")} == \
        {k: bench.BASELINE_TRAIN[k] for k in ("optimizer", "schedule", "batch_size")}


def test_the_reference_side_draws_from_its_own_random_state(bench):
    torch.manual_seed(3)
    alone = [torch.rand(2) for _ in range(3)]
    torch.manual_seed(3)
    other = bench._Swapped(lambda: torch.rand(5))  # captures the state it starts from
    inner1, first = other(), torch.rand(2)
    inner2, second = other(), torch.rand(2)
    assert torch.equal(first, alone[0]) and torch.equal(second, alone[1])
    torch.manual_seed(3)
    assert torch.equal(inner1, torch.rand(5)) and torch.equal(inner2, torch.rand(5))


def test_time_to_metric_counts_training_and_evaluation_until_the_first_epoch_that_reaches_it(bench):
    rows = [{"train_s": 2.0, "eval_s": 0.5, "m": 0.1}, {"train_s": 2.0, "eval_s": 0.5, "m": 0.3},
            {"train_s": 2.0, "eval_s": 0.5, "m": 0.2}]
    assert bench.time_to(rows, "m", 0.3) == pytest.approx(5.0)
    assert bench.time_to(rows, "m", 0.05) == pytest.approx(2.5)
    assert bench.time_to(rows, "m", 0.31) is None


def test_speed_ratio_pairs_each_egoflow_epoch_with_the_reference_epoch_next_to_it(bench):
    ref = [{"train_s": 4.0}, {"train_s": 30.0}, {"train_s": 6.0}]
    ego = [{"train_s": 2.0}, {"train_s": 10.0}, {"train_s": 4.0}]
    assert bench.paired(ref, ego, lambda r: r["train_s"]) == pytest.approx(2.0)  # ratios 2, 3, 1.5
