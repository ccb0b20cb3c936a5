"""VideoTranslate classification options that fail early (egoflow.heads.translate.classify / common): fusion
without the linear layers, a size contradicting the shape fields or a T5 folder. Nothing is trained here."""
import re

import pytest

from egoflow.datasets.synthetic.charades import write_narrated_charades
from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_to_store
from egoflow.features_store import FeatureStore
from egoflow.heads import runner
from egoflow.heads.translate.classify import RankEvaluation
from egoflow.heads.translate.model import Config, build
from egoflow.heads.translate.text import TranslateInputError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("vtc")
    d = make_narrated(NarratedSpec(num_videos=4, num_concepts=6, dim=16, seed=0))
    uids = sorted(d.videos)
    ch = write_narrated_charades(d, {"train": uids[:3], "test": uids[3:]}, root / "ch")
    store = FeatureStore(str(root / "s.zarr"))
    fs, _ = write_to_store(d, store)
    return dict(root=root, store=store, fs=fs, ch=ch)


@pytest.mark.parametrize("fusion", ["gen+disc", "disc"])
def test_fusion_with_the_layers_needs_the_discriminative_mode(world, fusion):
    with pytest.raises(TranslateInputError, match=re.escape(f"fusion={fusion} scores with the linear layers")):
        runner.train("translate-charades", world["store"], world["fs"], world["ch"]["train"], world["root"] / "x",
                     head_overrides={"fusion": fusion})


def test_scoring_a_generative_run_with_its_missing_layers_is_an_error():
    model, _, _ = build(Config(video_dim=16, vocab_size=30, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                               num_decoder_layers=1, num_heads=4))
    ev = RankEvaluation({}, {}, None, [], [], "mAP", fusion="gen+disc")
    with pytest.raises(TranslateInputError, match="needs a run trained with mode=discriminative"):
        ev.scores(model)


def test_size_contradicting_a_shape_field_or_a_t5_folder(world, tmp_path):
    from transformers import T5Config
    args = (world["store"], world["fs"], world["ch"]["train"])
    with pytest.raises(TranslateInputError, match="size=t5-small has d_model=512, but the config sets d_model=32"):
        runner.train("translate-charades", *args, tmp_path / "a", head_overrides={"size": "t5-small", "d_model": 32})
    folder = tmp_path / "t5tiny"
    T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4).save_pretrained(folder)
    with pytest.raises(TranslateInputError, match=r"t5tiny/config.json: d_model is 32, but the config sets "
                                                  r"d_model=512"):
        runner.train("translate-charades", *args, tmp_path / "b", head_overrides={"size": "t5-small"},
                     init=str(folder))
