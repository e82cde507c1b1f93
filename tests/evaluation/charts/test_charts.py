"""Every chart renders from an empty, a one-model and a full database as a valid 1200×700 PNG,
saying "no data yet" exactly when there is nothing to draw."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.config import SlamConfig
from core.errors import SlamError
from evaluation.charts import CHART_NAMES, chart_function
from evaluation.charts._style import has_data, wrap_name
from evaluation.report import ReportResult, build_report
from storage.db import make_engine
from storage.migrate import upgrade
from tests.support.perf_seed import seed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUALITY = ["bradley_terry", "human_scores", "quality_vs_cost", "judge_vs_human", "metaeval"]
SWEEP_CHARTS = ["sweep", "replicas_pareto", "tokens_per_joule", "gpu_load"]


def _db(tmp: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp / 'slam.db'}")
    upgrade(eng)
    return eng


def _report(tmp: Path, fill: str) -> Iterator[ReportResult]:
    eng = _db(tmp)
    if fill == "one":
        # One self-hosted model with probes, generations and judge scores, but no votes.
        seed(eng, n_models=1, n_votes=0, days=2, sweeps=False)
        with eng.begin() as conn:
            conn.execute(text("UPDATE model SET hardware = 'g4dn.xlarge', is_reference = false"))
    elif fill == "full":
        seed(eng, n_models=8, n_votes=3000, n_generations=400, days=2)
    yield build_report(eng, SlamConfig(), tmp / "out")
    eng.dispose()


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportResult]:
    yield from _report(tmp_path_factory.mktemp("empty"), "empty")


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportResult]:
    yield from _report(tmp_path_factory.mktemp("one"), "one")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportResult]:
    yield from _report(tmp_path_factory.mktemp("full"), "full")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert 20_000 < len(data) < 1_500_000, (path, len(data))
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size == (1200, 700), (path, img.size)
        assert img.format == "PNG"


@pytest.mark.parametrize("name", CHART_NAMES)
def test_empty_database_every_chart_says_no_data(empty: ReportResult, name: str) -> None:
    path = empty.charts[name]
    assert path == empty.out_dir / f"{name}.png"
    assert_png(path)
    assert not has_data(path), f"{name} drew something from an empty database"


@pytest.mark.parametrize("name", CHART_NAMES)
def test_one_model_database(one: ReportResult, name: str) -> None:
    path = one.charts[name]
    assert_png(path)
    # no votes and no sweep (so no sweep energy either) in this database
    expect = name not in QUALITY and name not in SWEEP_CHARTS
    assert has_data(path) == expect, name


@pytest.mark.parametrize("name", CHART_NAMES)
def test_full_database_every_chart_has_data(full: ReportResult, name: str) -> None:
    assert_png(full.charts[name])
    assert has_data(full.charts[name]), name


def test_no_chart_failed(empty: ReportResult, one: ReportResult, full: ReportResult) -> None:
    for res in (empty, one, full):
        assert not [k for k in res.problems if k.startswith("chart ")], res.problems


def test_full_database_problems_are_only_data_notes(full: ReportResult) -> None:
    assert set(full.problems) <= {k for k in full.problems if k.startswith("ratings warning")}


def test_unknown_chart_is_a_clear_error(tmp_path: Path, engine: Engine) -> None:
    with pytest.raises(SlamError, match="unknown chart 'latnecy'; expected one of: bradley_terry"):
        build_report(engine, SlamConfig(), tmp_path / "out", only=["latnecy"])
    with pytest.raises(SlamError, match="unknown chart"):
        chart_function("nope")
    assert not (tmp_path / "out").exists()  # validated before anything was written


def test_only_one_chart(tmp_path: Path, engine: Engine) -> None:
    out = tmp_path / "out"
    res = build_report(engine, SlamConfig(), out, only=["latency", "latency"])
    assert list(res.charts) == ["latency"]
    assert sorted(p.name for p in out.iterdir()) == ["latency.png", "report.html", "report.md"]


def test_long_model_names_wrap_at_separators() -> None:
    assert wrap_name("gpt-4") == "gpt-4"
    wrapped = wrap_name("llama3-8b-instruct-q5_k_m-finetuned-pep-talk")
    assert all(len(line) <= 28 for line in wrapped.split("\n"))
    assert wrapped.replace("\n", "") == "llama3-8b-instruct-q5_k_m-finetuned-pep-talk"
    assert "\n" in wrap_name("x" * 40) and len(wrap_name("x" * 200).split("\n")) == 3


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = (
        "import sys, evaluation.report as r; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; print(len(r.CHART_NAMES))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False,
        cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(CHART_NAMES))


@pytest.mark.postgres
def test_full_report_on_postgres(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine, n_models=5, n_votes=1500, n_generations=200, days=1)
    res = build_report(pg_engine, SlamConfig(), tmp_path / "out")
    assert not [k for k in res.problems if k.startswith("chart ")], res.problems
    assert all(has_data(p) for p in res.charts.values())
    assert len(res.leaderboard) == 5 and res.leaderboard[0].quality is not None
