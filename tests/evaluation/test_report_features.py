"""The report and the digest per feature (issue 19), on the two-feature database of
tests/evaluation/results/test_features.py: each feature's report carries its name, its own
decision and, with a slice_field, a decision per slice; `slam report` with several features
writes one report per feature and an index."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from evaluation.digest import digest_numbers
from evaluation.report import build_report, build_reports
from evaluation.results import ResultCache, Results
from tests.evaluation.results.test_features import Seeded, make_cfg, seed

CHART = ["bradley_terry"]


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> Seeded:
    return seed(engine, make_cfg(tmp_path))


def test_a_features_report_has_its_name_decision_and_slices(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "support"
    res = build_report(seeded.engine, seeded.cfg, out, only=CHART, feature="support",
                       cache=ResultCache())  # fmt: skip
    md = res.md_path.read_text()
    assert md.startswith("# SLaM report: support\n")
    assert "Feature: support; reference: api." in md
    assert res.feature == "support"
    assert res.decision == Results(seeded.engine, seeded.cfg, feature="support",
                                   cache=ResultCache()).decision  # fmt: skip
    assert [s.slice for s in res.slices] == ["billing", "hr", "legal"]
    assert "## Slices" in md
    assert "- billing: switch to small (120 votes)." in md
    assert "- legal: keep api" in md
    assert "- hr: too few votes to decide (5 counted" in md
    assert "tiny" not in md.split("## Slices")[0]  # the other feature's model is not here
    page = res.html_path.read_text()
    assert "<h1>SLaM report: support</h1>" in page and "<h2>Slices</h2>" in page


def test_a_feature_without_slices_has_no_slice_section(seeded: Seeded, tmp_path: Path) -> None:
    res = build_report(seeded.engine, seeded.cfg, tmp_path / "m", only=CHART,
                       feature="summaries", cache=ResultCache())  # fmt: skip
    md = res.md_path.read_text()
    assert md.startswith("# SLaM report: summaries\n") and "## Slices" not in md
    assert res.slices == [] and "80 Elo margin" in md


def test_several_features_give_one_report_each_and_an_index(
    seeded: Seeded, tmp_path: Path
) -> None:
    index = build_reports(seeded.engine, seeded.cfg, tmp_path / "all", only=CHART,
                          cache=ResultCache())  # fmt: skip
    assert list(index.reports) == ["support", "summaries"]
    for name in index.reports:
        assert (tmp_path / "all" / name / "report.md").read_text().startswith(
            f"# SLaM report: {name}\n")  # fmt: skip
    md = index.md_path.read_text()
    assert "- [support](support/report.md): Decision:" in md
    assert "- [summaries](summaries/report.md): Decision:" in md
    assert "href='support/report.html'" in index.html_path.read_text()


def test_slam_report_feature_option(
    seeded: Seeded,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from evaluation.cli import perf

    monkeypatch.setattr(perf, "_open", lambda _config: (seeded.cfg, seeded.engine))

    def run(out: Path, feature: str | None) -> str:
        perf.report(out=out, chart=CHART, config=None, requests_per_day=1000, days=30,
                    list_charts=False, no_cache=True, feature=feature)  # fmt: skip
        return capsys.readouterr().out

    one = run(tmp_path / "one", "summaries")
    assert (tmp_path / "one" / "report.md").read_text().startswith("# SLaM report: summaries")
    assert "report.md" in one
    every = run(tmp_path / "every", None)
    assert "support: Decision:" in every and "summaries: Decision:" in every
    assert (tmp_path / "every" / "index.md").exists()
    assert (tmp_path / "every" / "support" / "report.md").exists()


def test_the_digest_has_a_section_per_feature(seeded: Seeded) -> None:
    day = datetime.now(ZoneInfo(seeded.cfg.schedule.timezone)).date()
    digests = digest_numbers(seeded.engine, seeded.cfg, day)
    assert [d.feature for d in digests] == ["support", "summaries"]
    support, summaries = digests
    assert (support.total_votes, summaries.total_votes) == (165, 30)
    assert (support.votes, summaries.votes) == (165, 30)  # all cast today
    assert {m.model for m in support.leaderboard} == {"api", "small"}
    assert {m.model for m in summaries.leaderboard} == {"api", "tiny"}
    # probes belong to the model: every feature's digest has every probed model's latency
    assert {x.model for x in support.latency} == {x.model for x in summaries.latency} == {
        "small", "tiny"}  # fmt: skip
    assert [s.slice for s in support.slices] == ["billing", "hr", "legal"]
    assert summaries.slices == []
    assert [d.feature for d in digest_numbers(seeded.engine, seeded.cfg, day,
                                              feature="summaries")] == ["summaries"]  # fmt: skip
