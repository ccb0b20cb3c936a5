"""`egoflow demo --quick`: the whole path (videos -> features -> texts -> every head, the fused path and every
recipe's quick form -> one report) in seconds."""
import json

from egoflow.cli import main
from egoflow.heads.registry import get_spec, list_heads
from egoflow.recipes import get_recipe, list_recipes
from egoflow.recipes.quick import quick_form


def test_quick_demo_runs_every_stage(tmp_path, capsys):
    rc = main(["demo", "--quick", "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "RANDOMLY INITIALISED" in out  # never a silent random-weights result
    def no_nan(token):
        raise AssertionError(f"demo_summary.json is not strict JSON: {token}")
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text(), parse_constant=no_nan)
    assert summary["failed_heads"] == [] and "failed 0" in summary["extract"]
    results = summary["results"]
    # every head with a demo step (predict-only heads such as translate-egomcq have none) + zero-shot CLIP
    heads = [n for n in list_heads() if get_spec(n).demo is not None]
    fused = [k for k in results if k.startswith("fused ")]
    recipes = {k.split("@")[0]: v for k, v in results.items() if "(quick form, random init" in k}
    assert sorted(set(results) - set(fused) - {k for k in results if "(quick form" in k}) == sorted(
        [*heads, "clip-zeroshot"])
    assert "translate" in results
    # the fused path: zero-shot NLQ (untuned and tuned fusion) and zero-shot EgoMCQ, scored by `egoflow evaluate`
    assert sorted(next(iter(results[k])) for k in fused) == ["egomcq", "nlq", "nlq"]
    mcq = results[next(k for k in fused if "EgoMCQ" in k)]["egomcq"]
    assert mcq["num_missing"] == 0 and mcq["num_intra"] + mcq["num_inter"] > 0
    # a row per registered recipe, of its quick form's benchmark (train and predict verbs both covered)
    assert sorted(recipes) == list_recipes()
    verbs = set()
    for name, row in recipes.items():
        qf = quick_form(get_recipe(name))
        verbs.add(qf.verb)
        assert list(row) == [get_spec(qf.head).benchmark]
    assert verbs == {"train", "predict"}
    # the recipe reached the run as `egoflow train vslnet --recipe egovlpv2-nlq` puts it (recipes.apply), at the
    # tiny model's widths: its optimiser and head options, the feature widths of the tiny store, 1 epoch (--quick)
    cfg = json.loads((tmp_path / "demo" / "recipes" / "egovlpv2-nlq" / "config.json").read_text())
    head, tr = cfg["head_config"], cfg["train_config"]
    assert (head["conditioned"], head["mask_conv_padding"], head["max_pos_len"]) == (True, False, 256)
    assert head["video_dim"] != 768 and (tr["optimizer"], tr["epochs"], tr["lr"]) == ("adamw-hf", 1, 0.001)
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    for bench in ("nlq", "mq", "qfvs", "charades", "egomcq", "ek100-mir"):
        assert bench.upper() in report.upper()
    assert "| fused clip-fused-egoflow-tiny-ViT, tuned fusion: zero-shot EgoMCQ" in report
    assert "| egovlpv2-nlq@2 (quick form, random init, not comparable to the paper's EgoVLPv2 + VSLNet" in report
    assert "## Demo stage times" in report and "| recipes (quick forms) |" in report
    assert list((tmp_path / "demo" / "report").glob("*.png"))
    assert (tmp_path / "demo" / "report" / "search.png").is_file() and "## Moment search" in report
    # extraction is shared between recipes with equal encoder settings (egovlp-nlq and egovlp-mq: one set)
    from egoflow.features_store import FeatureStore

    sets = FeatureStore(str(tmp_path / "demo" / "recipes" / "store.zarr"), mode="r").feature_sets()
    extracting = {quick_form(get_recipe(n)).extract_key(get_recipe(n)) for n in list_recipes()
                  if quick_form(get_recipe(n)).extract}
    assert len(sets) == len(extracting) < sum(quick_form(get_recipe(n)).extract for n in list_recipes())

