"""The shared runner: train config, seeded build, run directories, text sets, device on load."""
import json

import numpy as np
import pytest
import torch

from egoflow.heads import runner
from egoflow.heads.registry import create_head, get_spec, head_config


def test_train_config_defaults_overrides_and_warmup():
    cfg = runner.train_config({"epochs": 4, "batch_size": 8, "lr": 1e-3}, {"lr": 5e-4}, num_samples=20,
                              warmup_fraction=0.25, head="h")
    assert cfg.lr == 5e-4 and cfg.epochs == 4
    assert cfg.warmup_steps == 3  # 25% of 4 epochs x ceil(20 / 8) steps
    assert runner.train_config({}, {"warmup_steps": 7}, 20, 0.25).warmup_steps == 7  # an explicit value wins
    with pytest.raises(ValueError, match="unknown train config keys \\['lrr'\\]"):
        runner.train_config({}, {"lrr": 1.0}, head="h")


def test_build_seeded_fixes_initial_weights():
    build = get_spec("vslnet").build
    cfg = head_config("vslnet")
    a, _, _ = runner.build_seeded(build, cfg, 3)
    torch.manual_seed(999)  # whatever ran before must not matter
    b, _, _ = runner.build_seeded(build, cfg, 3)
    c, _, _ = runner.build_seeded(build, cfg, 4)
    for (k, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), k
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values()))


def test_load_run_checks_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished vslnet run"):
        runner.load_run(tmp_path, "vslnet")
    (tmp_path / "config.json").write_text(json.dumps({"head": "vsgn", "head_config": {}}))
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="'vsgn' run, not vslnet"):
        runner.load_run(tmp_path, "vslnet")


def test_load_run_auto_device_ignores_the_training_device(tmp_path):
    """A run trained with --device cuda loads for prediction wherever it is used (CUDA if here, else CPU)."""
    import dataclasses

    from egoflow.device import resolve_device

    model, _, _ = create_head("vslnet", dim=16, num_heads=2)
    torch.save({"model": model.state_dict()}, tmp_path / "best.pt")
    cfg = {"head": "vslnet", "head_config": dataclasses.asdict(model.cfg), "train_config": {"device": "cuda:7"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded, _, loaded_cfg, _ = runner.load_run(tmp_path, "vslnet", "auto")
    assert next(loaded.parameters()).device.type == resolve_device("auto").type
    assert loaded_cfg == model.cfg
    assert all(torch.equal(a.cpu(), b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_resolve_text_set(tmp_path):
    from egoflow.features_store import FeatureStore

    s = FeatureStore(str(tmp_path / "s.zarr"))
    with pytest.raises(ValueError, match="none"):
        runner.resolve_text_set(s, None)
    s.write_texts("t1", ["a"], np.ones((1, 4)))
    assert runner.resolve_text_set(s, None) == "t1"
    with pytest.raises(ValueError, match="'t2' not in store"):
        runner.resolve_text_set(s, "t2")


def test_options_a_head_does_not_take_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="head 'vslnet' does not take --init"):
        runner.train("vslnet", str(tmp_path / "s.zarr"), "f", [], tmp_path / "run", init="runs/x")
    assert not (tmp_path / "run").exists()
