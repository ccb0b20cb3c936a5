"""s3:// stores end to end through the CLI, against a moto S3 server started here on 127.0.0.1 (no network).

extract -> store info/verify -> encode-text -> train vslnet (tiny) -> predict, all from s3://, with the endpoint
given by --storage-options and by AWS_ENDPOINT_URL; bad options and an unreachable endpoint are one-line errors.
"""
import json
import socket

import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_dataset
from egoflow.features_store.remote import parse_storage_options, protocol

TINY = ["--model", "egoflow-tiny-ViT", "--precision", "fp32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free loopback port with bucket ``egoflow``; yields its endpoint URL."""
    import os

    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    import s3fs

    s3fs.S3FileSystem(endpoint_url=url).mkdir("egoflow")
    yield url
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fsspec_conf():
    """Options applied by one CLI call live in fsspec's process-wide config: restore it after each test."""
    import fsspec

    saved = json.loads(json.dumps(fsspec.config.conf))
    yield
    fsspec.config.conf.clear()
    fsspec.config.conf.update(saved)


def test_cli_extract_train_and_verify_on_s3(s3, tmp_path, capsys, fsspec_conf):
    ds = make_dataset(tmp_path / "data", num_videos=3, duration_s=30, seed=5)
    store = "s3://egoflow/feats.zarr"
    so = ["--storage-options", json.dumps({"endpoint_url": s3})]
    assert main(["extract", *map(str, ds.videos.values()), "--store", store, "--fps", "1.875", "--quiet",
                 *TINY, *so]) == 0
    assert main(["store", "verify", "--store", store, *so]) == 0
    assert main(["store", "info", "--store", store, "--json", *so]) == 0
    out = capsys.readouterr().out
    assert "verify s3://egoflow/feats.zarr: OK" in out and '"videos_complete": 3' in out
    assert main(["encode-text", str(ds.annotations["nlq_train"]), str(ds.annotations["nlq_val"]), "--store", store,
                 *TINY, *so]) == 0
    run = tmp_path / "run"
    assert main(["train", "vslnet", "--store", store, "--feature-set", "clip-egoflow-tiny-ViT-none-1.875fps",
                 "--text-set", "clip-egoflow-tiny-ViT-none-text", "--annotations", str(ds.annotations["nlq_train"]),
                 "--out", str(run), "--epochs", "1", "--set", "dim=32", "--device", "cpu", *so]) == 0
    assert (run / "last.pt").exists()
    import s3fs

    keys = s3fs.S3FileSystem(endpoint_url=s3).ls("egoflow/feats.zarr/clip-egoflow-tiny-ViT-none-1.875fps")
    assert sum(k.rsplit("/", 1)[-1] in ds.videos for k in keys) == 3  # the features really are in the bucket


def test_endpoint_from_the_environment(s3, tmp_path, capsys, fsspec_conf, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)  # botocore's own variable: no egoflow option at all
    from egoflow.features_store.remote import open_store

    open_store("s3://egoflow/env.zarr").create_feature_set("x", {"a": 1}, dim=4)
    assert main(["store", "ls", "--store", "s3://egoflow/env.zarr"]) == 0
    assert "x\t0 videos" in capsys.readouterr().out


def test_bad_options_and_unreachable_endpoint_are_one_line_errors(tmp_path, capsys, fsspec_conf, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["store", "verify", "--store", "s3://egoflow/x.zarr", "--storage-options", "{not json"]) == 2
    assert "--storage-options must be a JSON object" in capsys.readouterr().err
    dead = json.dumps({"endpoint_url": f"http://127.0.0.1:{free_port()}",
                       "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}})
    assert main(["store", "info", "--store", "s3://egoflow/x.zarr", "--storage-options", dead]) == 2
    err = capsys.readouterr().err
    assert "s3://egoflow/x.zarr" in err and "Traceback" not in err
    assert protocol("s3://b/x") == "s3" and protocol("/data/x.zarr") is None
    assert parse_storage_options(None) == {}


def test_missing_credentials_are_named(tmp_path, capsys, fsspec_conf, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws either
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert main(["store", "info", "--store", "s3://egoflow/x.zarr", "--storage-options",
                 json.dumps({"endpoint_url": f"http://127.0.0.1:{free_port()}"})]) == 2
    assert "no credentials for s3://" in capsys.readouterr().err
