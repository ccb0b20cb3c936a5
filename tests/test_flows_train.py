"""The train flow: one task per (head, seed), the same call as `egoflow train`, head options passed through."""
import json

from egoflow.datasets.synthetic.charades import write_narrated_charades
from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
from egoflow.features_store import FeatureStore
from egoflow.flows.train import train_flow

TINY = dict(heads=2, head_dim=8, enc_layers=1, dec_layers=1, num_queries=8, num_time_embeddings=16, kernel=3,
            dropout=0.0)


def test_train_flow_runs_every_seed_with_the_heads_options(tmp_path, prefect_harness, one_thread):
    data = make_narrated(NarratedSpec(num_videos=4, num_concepts=6, dim=16, seed=2))
    uids = sorted(data.videos)
    files = write_narrated_charades(data, {"train": uids}, tmp_path / "elsewhere")
    csv = tmp_path / "train.csv"  # no class list next to it: only the option can name it
    csv.write_text(files["train"].read_text())
    store = str(tmp_path / "s.zarr")
    fs, ts = write_to_store(data, FeatureStore(store))
    res = train_flow(["laviti-charades"], store, fs, {"laviti-charades": str(csv)}, str(tmp_path / "runs"),
                     text_set=ts, seeds=[0, 1], head_overrides={"laviti-charades": TINY},
                     train_overrides=dict(epochs=1, batch_size=2, device="cpu", progress=False),
                     options={"laviti-charades": {"classes": str(files["classes"])}})
    assert sorted(res) == ["laviti-charades-seed0", "laviti-charades-seed1"]
    for seed in (0, 1):
        cfg = json.loads((tmp_path / "runs" / f"laviti-charades-seed{seed}" / "config.json").read_text())
        assert cfg["train_config"]["seed"] == seed and cfg["classes"] == str(files["classes"])
    assert res["laviti-charades-seed0"]["train_loss"] != res["laviti-charades-seed1"]["train_loss"]
