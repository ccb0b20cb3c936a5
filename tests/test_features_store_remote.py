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


def _store_verbs(parser, path=()):
    """(verb path, parser) of every sub-command of the egoflow CLI, recursively."""
    import argparse

    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            for name, sub in act.choices.items():
                yield (*path, name), sub
                yield from _store_verbs(sub, (*path, name))


def test_every_verb_with_store_takes_storage_options():
    from egoflow.cli import build_parser

    with_store = {path: {o for a in p._actions for o in a.option_strings}
                  for path, p in _store_verbs(build_parser())
                  if any("--store" in a.option_strings for a in p._actions)}
    assert {("store", "pack"), ("store", "export"), ("store", "import"), ("search",), ("segment",), ("extract",),
            ("train",), ("predict",), ("encode-text",)} <= set(with_store)
    # evaluate's --store is accepted for symmetry and never opened (egoflow/evaluate/cli.py)
    lacking = [" ".join(p) for p, opts in with_store.items() if "--storage-options" not in opts and p != ("evaluate",)]
    assert not lacking, f"verbs with --store but no --storage-options: {lacking}"


@pytest.fixture(scope="module")
def s3_feats(s3, tmp_path_factory):
    """Two short videos extracted into s3://egoflow/verbs.zarr (tiny model); yields (store, set, uids, options)."""
    import fsspec

    saved = json.loads(json.dumps(fsspec.config.conf))
    d = tmp_path_factory.mktemp("verbs")
    ds = make_dataset(d / "data", num_videos=2, duration_s=12, seed=9, size=(96, 72))
    so = ["--storage-options", json.dumps({"endpoint_url": s3})]
    store = "s3://egoflow/verbs.zarr"
    assert main(["extract", *map(str, ds.videos.values()), "--store", store, "--quiet", *TINY, *so]) == 0
    fsspec.config.conf.clear()
    fsspec.config.conf.update(saved)
    return store, "clip-egoflow-tiny-ViT-none-1.875fps", sorted(ds.videos), so


def _fresh(argv):
    """One CLI call with fsspec's process-wide options cleared first: the call's own --storage-options must reach
    the store (AWS_ENDPOINT_URL is unset, so without them it would go to AWS and fail)."""
    import fsspec

    fsspec.config.conf.clear()
    return main(argv)


def test_store_verbs_on_s3_with_storage_options(s3_feats, tmp_path, capsys, fsspec_conf, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    store, fs, uids, so = s3_feats
    assert _fresh(["store", "pack", "--store", store, *so]) == 0
    assert f"packed {fs}: 2 videos" in capsys.readouterr().out
    assert _fresh(["store", "export", "--store", store, "--feature-set", fs, "--out", str(tmp_path / "pt"), *so]) == 0
    assert sorted(p.stem for p in (tmp_path / "pt").glob("*.pt")) == uids
    copy = "s3://egoflow/copy.zarr"  # import creates a new store under a new prefix
    assert _fresh(["store", "import", "--store", copy, "--feature-set", "imported", "--src", str(tmp_path / "pt"),
                   *so]) == 0
    assert _fresh(["store", "ls", "--store", copy, *so]) == 0
    assert "imported\t2 videos" in capsys.readouterr().out
    assert _fresh(["segment", uids[0], "--store", store, "--feature-set", fs, "--shot-seconds", "2", *so]) == 0
    seg = json.loads(capsys.readouterr().out)
    assert seg["video_uid"] == uids[0] and seg["segments"][0][0] == 0.0
    assert _fresh(["search", "a red kettle", "--store", store, "--feature-set", fs, "-k", "3", "--device", "cpu",
                   *so]) == 0
    assert sum(u in ln for ln in capsys.readouterr().out.splitlines()[1:4] for u in uids) == 3


def test_missing_bucket_and_prefix_are_named(s3, capsys, fsspec_conf, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    so = ["--storage-options", json.dumps({"endpoint_url": s3})]
    for verb in (["store", "ls"], ["store", "pack"], ["segment", "v", "--feature-set", "f"],
                 ["search", "q", "--feature-set", "f"]):
        assert _fresh([*verb, "--store", "s3://no-such-bucket/feats.zarr", *so]) == 2
        err = capsys.readouterr().err
        assert f"bucket 'no-such-bucket' does not exist at endpoint {s3}" in err, (verb, err)
    assert _fresh(["store", "info", "--store", "s3://egoflow/absent.zarr", *so]) == 2
    err = capsys.readouterr().err
    assert f"prefix 'absent.zarr' does not exist in bucket 'egoflow' at endpoint {s3}" in err
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)  # the endpoint from the environment is named the same way
    assert _fresh(["store", "verify", "--store", "s3://nobucket2/x.zarr"]) == 2
    assert f"bucket 'nobucket2' does not exist at endpoint {s3}" in capsys.readouterr().err
