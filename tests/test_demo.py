"""`egoflow demo --quick`: the whole path (videos -> features -> texts -> every head -> report) in seconds."""
import json

from egoflow.cli import main
from egoflow.heads.registry import get_spec, list_heads


def test_quick_demo_runs_every_stage(tmp_path, capsys):
    rc = main(["demo", "--quick", "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "RANDOMLY INITIALISED" in out  # never a silent random-weights result
    def no_nan(token):
        raise AssertionError(f"demo_summary.json is not strict JSON: {token}")
    summary = json.loads((tmp_path / "demo" / "demo_summary.json").read_text(), parse_constant=no_nan)
    assert summary["failed_heads"] == [] and "failed 0" in summary["extract"]
    # every head with a demo step (predict-only heads such as translate-egomcq have none) + zero-shot CLIP
    assert sorted(summary["results"]) == sorted([*(n for n in list_heads() if get_spec(n).demo is not None),
                                                  "clip-zeroshot"])
    assert "translate" in summary["results"]
    report = (tmp_path / "demo" / "report" / "report.md").read_text()
    for bench in ("nlq", "mq", "qfvs", "charades"):
        assert bench.upper() in report.upper()
    assert list((tmp_path / "demo" / "report").glob("*.png"))
    assert (tmp_path / "demo" / "report" / "search.png").is_file() and "## Moment search" in report
