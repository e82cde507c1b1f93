"""`slam score` through the real CLI entry point, and `score()` awaited from async code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import load_config
from core.errors import SlamError
from evaluation.score import parse_list, score
from hosting.backends.base import register
from slam.cli import main
from storage.db import session_scope
from storage.models import JudgeScore, SimilarityScore
from tests.evaluation.auto.judges.test_runner import BAD, GOOD, REF, Scripted, smart_answer
from tests.support.eval_seed import rater, seed_generations, seed_pair, seed_round, vote

CONFIG = """
[[models]]
name = "ref"
backend = "llamacpp"
model = "builtin:gemma3-270m"
reference = true

[[models]]
name = "good"
backend = "llamacpp"
model = "builtin:gemma3-270m"

[[models]]
name = "bad"
backend = "llamacpp"
model = "builtin:gemma3-270m"

[[models]]
name = "judge-x"
backend = "scripted"
model = "scripted-v1"
hardware = "api"

[judge]
model = "judge-x"

[database]
url = "{url}"
"""


@pytest.fixture
def cfg_path(tmp_path: Path, sqlite_url: str) -> Path:
    made: list[Scripted] = []
    register("scripted", lambda spec: made.append(Scripted(spec, smart_answer)) or made[-1])
    p = tmp_path / "slam.toml"
    p.write_text(CONFIG.format(url=sqlite_url), encoding="utf-8")
    return p


def seed_world(engine: Engine) -> None:
    gens = seed_generations(
        engine, {"ref": [REF, REF], "good": [GOOD, GOOD], "bad": [BAD, BAD]}, reference="ref"
    )
    rnd = seed_round(engine)
    raters = [rater(engine, n) for n in ("ann", "bo")]
    for i in range(2):
        p1 = seed_pair(engine, gens[("good", i)], gens[("ref", i)], rnd)
        p2 = seed_pair(engine, gens[("ref", i)], gens[("bad", i)], rnd)
        p3 = seed_pair(engine, gens[("bad", i)], gens[("good", i)], rnd)
        for r in raters:
            vote(engine, p1, r, "A")
            vote(engine, p2, r, "A")
            vote(engine, p3, r, "B")


def test_slam_score_cli(engine: Engine, cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_world(engine)
    code = main(["score", "--judges", "scorer,pairwise", "--similarity", "bleu,tfidf",
                 "--config", str(cfg_path), "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "LLM judge: judge-x" in out and "pairwise order consistency (judge-x): 1.00" in out
    assert "Agreement with humans (Bradley–Terry rating" in out
    assert "judge judge-x vs crowd majority: agreement 1.00" in out
    with session_scope(engine) as s:
        assert {r.method for r in s.exec(select(JudgeScore)).all()} == {"scorer", "pairwise"}
        assert {r.metric for r in s.exec(select(SimilarityScore)).all()} == {"bleu", "tfidf"}
    # second run: everything cached
    assert (
        main(["score", "-j", "scorer,pairwise", "-s", "bleu,tfidf", "-c", str(cfg_path), "-q"]) == 0
    )
    out2 = capsys.readouterr().out
    assert "similarity:" not in out2 or "+0" in out2


def test_slam_score_bad_input(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--judges", "scorer,vibes", "-c", str(cfg_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown judge method(s) ['vibes']" in err and "Traceback" not in err
    assert main(["score", "--similarity", "rouge", "-c", str(cfg_path)]) == 2
    assert "unknown similarity metric(s) ['rouge']" in capsys.readouterr().err
    # nothing generated yet
    assert main(["score", "-c", str(cfg_path), "-q"]) == 2
    assert "has no generations in this database yet" in capsys.readouterr().err


def test_parse_list() -> None:
    assert parse_list("all", ("a", "b"), "x") == ["a", "b"]
    assert parse_list("none", ("a", "b"), "x") == [] and parse_list("", ("a",), "x") == []
    assert parse_list(" b , a", ("a", "b"), "x") == ["b", "a"]


async def test_score_is_awaitable(engine: Engine, cfg_path: Path) -> None:
    seed_world(engine)
    cfg = load_config(cfg_path)
    res = await score(engine, cfg, ["selector"], ["bleu"], progress=False)
    assert res.judge == "judge-x" and res.judge_run is not None
    assert res.method_scores["selector"]["good"] == 1.0
    assert res.human_label == "Bradley–Terry rating"
    assert res.human_scores["good"] > res.human_scores["ref"] > res.human_scores["bad"]
    meta = {m.method: m for m in res.meta}
    assert meta["bleu"].n_models == 2  # the reference has no similarity to itself
    assert meta["selector"].spearman == pytest.approx(0.866, abs=0.01)  # ref/bad tie at 0


async def test_score_without_judge_model(engine: Engine, tmp_path: Path, sqlite_url: str) -> None:
    seed_world(engine)
    p = tmp_path / "nojudge.toml"
    p.write_text(
        '[[models]]\nname = "x"\nbackend = "llamacpp"\nmodel = "builtin:gemma3-270m"\n'
        f'[database]\nurl = "{sqlite_url}"\n',
        encoding="utf-8",
    )
    with pytest.raises(SlamError, match=r"no judge model: set \[judge\] model"):
        await score(engine, load_config(p), ["scorer"], [], progress=False)


def test_a_base_model_judge_is_named_as_weak() -> None:
    """The offline default judges with the reference, Gemma 3 270M, a base model: `slam score`
    says so and names the packaged instruct model; an instruct judge gets no such note."""
    from core.config import default_config, parse_config
    from evaluation.score import judge_note

    base = default_config().judge_model
    assert base is not None
    note = judge_note(base)
    assert note is not None and "base model" in note and "builtin:smollm2-135m" in note
    instruct = parse_config({"models": [{"name": "s", "backend": "llamacpp",
                                         "model": "builtin:smollm2-135m"}]}).models[0]  # fmt: skip
    assert judge_note(instruct) is None
