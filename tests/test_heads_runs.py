import json

import pytest
import torch

from egoflow.heads import runs
from egoflow.heads.registry import create_head, get_head, head_config, list_heads


def test_train_config_defaults_overrides_and_warmup():
    cfg = runs.train_config({"epochs": 4, "batch_size": 8, "lr": 1e-3}, {"lr": 5e-4}, num_samples=20,
                            warmup_fraction=0.25, head="h")
    assert cfg.lr == 5e-4 and cfg.epochs == 4
    assert cfg.warmup_steps == 3  # 25% of 4 epochs x ceil(20 / 8) steps
    assert runs.train_config({}, {"warmup_steps": 7}, 20, 0.25).warmup_steps == 7  # an explicit value wins
    with pytest.raises(ValueError, match="unknown train config keys \\['lrr'\\]"):
        runs.train_config({}, {"lrr": 1.0}, head="h")


def test_build_seeded_fixes_initial_weights():
    build = get_head("vslnet").build
    cfg = head_config("vslnet")
    a, _, _ = runs.build_seeded(build, cfg, 3)
    torch.manual_seed(999)  # whatever ran before must not matter
    b, _, _ = runs.build_seeded(build, cfg, 3)
    c, _, _ = runs.build_seeded(build, cfg, 4)
    for (k, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), k
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values()))


def test_load_run_checks_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished vslnet run"):
        runs.load_run(tmp_path, "vslnet", None, None)
    (tmp_path / "config.json").write_text(json.dumps({"head": "vsgn", "head_config": {}}))
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="'vsgn' run, not vslnet"):
        runs.load_run(tmp_path, "vslnet", None, None)


def test_load_run_auto_device_ignores_the_training_device(tmp_path):
    """A run trained with --device cuda loads for prediction wherever it is used (CUDA if here, else CPU)."""
    from egoflow.device import resolve_device

    mod = get_head("vslnet")
    model, _, _ = create_head("vslnet", dim=16, num_heads=2)
    torch.save({"model": model.state_dict()}, tmp_path / "best.pt")
    cfg = {"head": "vslnet", "head_config": model.cfg.to_dict(), "train_config": {"device": "cuda:7"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded, _, _ = runs.load_run(tmp_path, "vslnet", mod.build, mod.Config.from_dict, "auto")
    assert next(loaded.parameters()).device.type == resolve_device("auto").type
    assert all(torch.equal(a.cpu(), b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_resolve_text_set(tmp_path):
    import numpy as np

    from egoflow.features_store import FeatureStore

    s = FeatureStore(str(tmp_path / "s.zarr"))
    with pytest.raises(ValueError, match="none"):
        runs.resolve_text_set(s, None)
    s.write_texts("t1", ["a"], np.ones((1, 4)))
    assert runs.resolve_text_set(s, None) == "t1"
    with pytest.raises(ValueError, match="'t2' not in store"):
        runs.resolve_text_set(s, "t2")


def test_registry_and_lazy_entry_points():
    assert list_heads() == ["laviti", "laviti-charades", "summarizer", "vsgn", "vslnet"]
    for name in list_heads():
        mod = get_head(name)
        for fn in ("train_from_store", "predict_from_store", "demo_step"):
            assert callable(getattr(mod, fn)), (name, fn)
    model, criterion, decode = create_head("vslnet", dim=32, num_heads=4)
    assert model.cfg.dim == 32
    with pytest.raises(TypeError, match="no config field"):
        head_config("vslnet", nope=1)
