import json
import math

import pytest
import torch
from torch.utils.data import TensorDataset

from egoflow.heads.train import TrainConfig, _lr_lambda, fit, load_checkpoint


class Reg(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                       torch.nn.Linear(16, 1))

    def forward(self, batch):
        return {"y": self.net(batch[0]).squeeze(-1)}


def crit(out, batch):
    return {"loss": torch.nn.functional.mse_loss(out["y"], batch[1])}


def data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0]))


def evaluate_fn(ds):
    def ev(model):
        x, y = ds.tensors
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(model((x, y))["y"], y))}
    return ev


class Killed(Exception):
    pass


def run(tmp, epochs=6, seed=0, kill_after=None):
    torch.manual_seed(seed)
    model = Reg()
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=5e-2, warmup_steps=4, schedule="cosine", seed=seed,
                      device="cpu", progress=False)
    ds = data()
    calls = []

    def ev(m):
        if kill_after is not None and len(calls) == kill_after:
            raise Killed  # dies during epoch kill_after + 1, before its checkpoint
        calls.append(1)
        return evaluate_fn(ds)(m)

    res = fit(model, crit, ds, None, cfg, evaluate=ev, metric="mse", mode="min", out_dir=tmp)
    return model, res


def test_loss_decreases_and_best_is_kept(tmp_path):
    model, res = run(tmp_path / "a")
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0]
    best = min(h["mse"] for h in res.history)
    assert res.best_metric == pytest.approx(best)
    ck = load_checkpoint(res.best_path)
    assert ck["value"] == pytest.approx(best) and ck["metric"] == "mse"
    assert ck["train_config"]["seed"] == 0
    # the returned model holds the best weights
    assert evaluate_fn(data())(model.eval())["mse"] == pytest.approx(best, rel=1e-5)
    assert len(json.loads((tmp_path / "a" / "history.json").read_text())) == 6


def test_same_seed_same_result_different_seed_differs(tmp_path):
    _, a = run(tmp_path / "a")
    _, b = run(tmp_path / "b")
    _, c = run(tmp_path / "c", seed=1)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in c.history]


def test_resume_matches_uninterrupted(tmp_path):
    _, full = run(tmp_path / "full", epochs=6)
    with pytest.raises(Killed):
        run(tmp_path / "part", kill_after=3)  # killed in epoch 4 ...
    _, resumed = run(tmp_path / "part")  # ... and started again
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history])
    assert resumed.best_metric == pytest.approx(full.best_metric)


def test_warmup_then_step_schedule(tmp_path):
    model = Reg()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=1.0, warmup_steps=2, schedule="step", step_milestones=(2,),
                      step_gamma=0.1, optimizer="adam", device="cpu", progress=False)
    res = fit(model, crit, data(), None, cfg, out_dir=None)
    lrs = [h["lr"] for h in res.history]  # lr after each epoch's last step (4 steps per epoch)
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        fit(Reg(), crit, TensorDataset(torch.zeros(0, 4), torch.zeros(0)), None, TrainConfig(progress=False))
    with pytest.raises(ValueError, match="metric"):
        fit(Reg(), crit, data(), None, TrainConfig(progress=False), evaluate=lambda m: {})


def test_inverse_sqrt_schedule_values():
    from egoflow.heads.train import _lr_lambda
    f = _lr_lambda(TrainConfig(epochs=10, schedule="inverse-sqrt", warmup_steps=4), steps_per_epoch=10)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up to lr
    assert [f(s) for s in (4, 15, 99)] == pytest.approx([(4 / 5) ** 0.5, (4 / 16) ** 0.5, (4 / 100) ** 0.5])
    g = _lr_lambda(TrainConfig(schedule="inverse-sqrt"), steps_per_epoch=10)  # no warm-up: 1 / sqrt(step + 1)
    assert [g(s) for s in (0, 3, 8)] == pytest.approx([1.0, 0.5, 1 / 3])
    with pytest.raises(ValueError, match="inverse-sqrt"):
        _lr_lambda(TrainConfig(schedule="rsqrt"), 10)


def test_warmup_fraction_is_a_share_of_all_steps():
    """``warmup_fraction``: int(fraction x epochs x steps per epoch) warm-up steps (transformers'
    get_cosine_schedule_with_warmup as EgoVLPv2's EgoTaskQA calls it), then the cosine from the peak."""
    f = _lr_lambda(TrainConfig(epochs=36, schedule="cosine", warmup_fraction=0.1), 7)  # 252 steps, 25 warm
    assert [f(s) for s in (0, 24)] == [1 / 25, 1.0] and f(25) == 1.0
    assert f(25 + 227 // 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * (227 // 2) / 227)))
    assert _lr_lambda(TrainConfig(epochs=36, schedule="cosine"), 7)(0) == 1.0  # default: no warm-up
