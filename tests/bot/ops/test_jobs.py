"""The real job bodies through the job runner, against a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.dispatcher import Dispatcher
from bot.events import Reply
from bot.ops.jobs import JobRun, round_poster, run_job
from bot.platforms.console import ConsolePort
from bot.services import BotServices
from core.config import SlamConfig, parse_config
from slam.cli import main
from storage.models import Generation, JobLease, PairMessage, Probe, RatingPair, RatingRound
from tests.support.fake_ollama import FakeOllama
from tests.support.ports import free_port

BERLIN = ZoneInfo("Europe/Berlin")


class Inbox:
    def __init__(self, fail: bool = False):
        self.replies: list[Reply] = []
        self.fail = fail

    async def __call__(self, reply: Reply) -> None:
        self.replies.append(reply)
        if self.fail:
            raise ConnectionError("chat is down")


class Clock:
    def __init__(self, now: str):
        self.now = datetime.fromisoformat(now).replace(tzinfo=BERLIN)

    def set(self, now: str) -> None:
        self.now = datetime.fromisoformat(now).replace(tzinfo=BERLIN)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def make_cfg(url: str, second_host: str | None = None) -> SlamConfig:
    return parse_config(
        {
            "models": [
                {"name": "gemma-o", "backend": "ollama", "model": "gemma3:270m", "host": url},
                {
                    "name": "qwen-o",
                    "backend": "ollama",
                    "model": "qwen2.5:0.5b",
                    "host": second_host or url,
                    "max_retries": 0,
                    "timeout_s": 5,
                },
            ],
            "schedule": {"timezone": "Europe/Berlin"},
            "chat": {"channel": "C-RATINGS"},
        }
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_generation_job_opens_a_daily_round_and_posts_its_pairs(
    engine: Engine, ollama: FakeOllama
) -> None:
    cfg = make_cfg(ollama.url)
    dispatcher = Dispatcher(engine, cfg, salt=b"test")
    out = io.StringIO()
    inbox, clock = Inbox(), Clock("2024-03-11T06:00:05")
    run = JobRun(
        dispatcher.services,
        inbox,
        post_round=round_poster(dispatcher.services, ConsolePort(out)),
        owner="bot-1",
        clock=clock,
    )
    ok_before = sample("slam_generations_total", model="qwen-o", outcome="ok")
    try:
        assert await run_job("generate", run) == "ok"
        with Session(engine) as s:
            gens = s.exec(select(Generation)).all()
            assert len(gens) == 12 and {g.run_date for g in gens} == {date(2024, 3, 11)}
            assert all(g.error is None for g in gens)
            (rnd,) = s.exec(select(RatingRound)).all()
            assert (rnd.id, rnd.status, rnd.run_date) == (1, "open", date(2024, 3, 11))
            pairs = s.exec(select(RatingPair)).all()
            posted = s.exec(select(PairMessage)).all()
            assert len(pairs) == 6  # one model pair x 6 sample users
            assert sorted(m.pair_id for m in posted) == sorted(p.id or 0 for p in pairs)
            assert {m.channel for m in posted} == {"C-RATINGS"}
        assert out.getvalue().count("posted to #C-RATINGS") == 6
        assert sample("slam_generations_total", model="qwen-o", outcome="ok") - ok_before == 6
        (reply,) = inbox.replies
        assert reply.title == "Daily generation" and reply.ok
        assert reply.text == (
            "Generated 12 response(s) for 2024-03-11 (0 failed, 0 already stored). "
            "Round 1 is open with 6 pair(s): rate them with `/slam rate`."
        )

        clock.set("2024-03-11T06:30:00")  # same slot (a second replica, or a re-run)
        assert await run_job("generate", run) == "skipped"

        clock.set("2024-03-12T06:00:02")  # next day: yesterday's round closes
        assert await run_job("generate", run) == "ok"
        assert inbox.replies[-1].text.endswith("Round 1 was closed.")
        with Session(engine) as s:
            rounds = s.exec(select(RatingRound).order_by(col(RatingRound.id))).all()
            assert [(r.status, r.run_date) for r in rounds] == [
                ("closed", date(2024, 3, 11)),
                ("open", date(2024, 3, 12)),
            ]
            leases = s.exec(select(JobLease).order_by(col(JobLease.id))).all()
            assert [(x.slot, x.owner, x.error) for x in leases] == [
                ("2024-03-11T05:00:00+00:00", "bot-1", None),
                ("2024-03-12T05:00:00+00:00", "bot-1", None),
            ]
    finally:
        await dispatcher.aclose()


async def test_failed_generation_keeps_the_open_round_and_tells_the_admins(
    engine: Engine, ollama: FakeOllama
) -> None:
    cfg = make_cfg(ollama.url)
    inbox, clock = Inbox(), Clock("2024-03-11T06:00:05")
    run = JobRun(BotServices.create(engine, cfg), inbox, owner="bot-1", clock=clock)
    assert await run_job("generate", run) == "ok"
    ollama.models = ["gemma3:270m"]  # qwen2.5 was removed from the host: 404s
    clock.set("2024-03-12T06:00:05")
    assert await run_job("generate", run) == "error"
    failure = inbox.replies[-1]
    assert not failure.ok and failure.title == "Scheduled job failed: generate"
    assert "no two models answered the same prompt on 2024-03-12" in failure.text
    with Session(engine) as s:
        assert [(r.id, r.status) for r in s.exec(select(RatingRound)).all()] == [(1, "open")]
        errors = s.exec(select(Generation).where(col(Generation.error).is_not(None))).all()
        assert len(errors) == 6 and all(g.run_date == date(2024, 3, 12) for g in errors)
        lease = s.exec(select(JobLease).where(JobLease.slot == "2024-03-12T05:00:00+00:00")).one()
        assert lease.error is not None and "no two models answered" in lease.error


async def test_probe_job_stores_probes_and_feeds_the_latency_histogram(
    engine: Engine, ollama: FakeOllama
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: qwen-o is unavailable
    cfg = make_cfg(ollama.url, second_host=down)
    run = JobRun(
        BotServices.create(engine, cfg),
        Inbox(),
        clock=Clock("2024-03-11T14:00:01"),
        probe_warmup=1,
        probe_measure=3,
    )
    count_before = sample("slam_probe_latency_seconds_count", model="gemma-o")
    failed_before = sample("slam_probes_total", model="qwen-o", outcome="error")
    assert await run_job("probe", run) == "ok"
    with Session(engine) as s:
        probes = s.exec(select(Probe)).all()
    assert len(probes) == 8  # 2 models x (1 warmup + 3 measured)
    measured = [p for p in probes if p.phase == "measure"]
    assert sorted(p.ok for p in measured) == [False] * 3 + [True] * 3
    assert sample("slam_probe_latency_seconds_count", model="gemma-o") - count_before == 3
    assert sample("slam_probes_total", model="qwen-o", outcome="error") - failed_before == 3


async def test_digest_job_posts_yesterdays_digest_to_the_team(engine: Engine) -> None:
    cfg = make_cfg("http://127.0.0.1:9")
    team, admins = Inbox(), Inbox()
    services = BotServices.create(engine, cfg)

    def at(now: str, publish: Inbox) -> JobRun:
        return JobRun(services, admins, publish=publish, clock=Clock(now), digest_charts=())

    assert await run_job("digest", at("2024-03-11T09:00:00", team)) == "ok"
    (digest,) = team.replies
    assert digest.title == "SLaM daily digest · 2024-03-10" and admins.replies == []

    broken_team = Inbox(fail=True)
    assert await run_job("digest", at("2024-03-12T09:00:00", broken_team)) == "error"
    (failure,) = admins.replies
    assert "the digest for 2024-03-11 was built but could not be posted" in failure.text


def test_schedule_run_digest_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slam.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "ops.db"}"\n[schedule]\ntimezone = "UTC"\n'
    )
    code = main(["schedule", "run", "digest"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "*SLaM daily digest · " in out and "Votes: 0 pairwise from 0 rater(s)" in out
    assert out.rstrip().endswith("digest: done")
    charts = sorted(p.name for p in (tmp_path / ".slam" / "digests").glob("*/*.png"))
    assert charts == ["bradley_terry.png", "cost_per_1k.png", "latency.png"]


def test_schedule_list_shows_each_jobs_last_run(
    engine: Engine, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.ops import leases

    leases.claim(engine, "slam:probe", "2024-03-11T13:00:00+00:00", "host-a:1:abc")
    leases.finish(engine, "slam:probe", "2024-03-11T13:00:00+00:00", "host-a:1:abc")
    leases.claim(engine, "slam:digest", "2024-03-11T08:00:00+00:00", "host-b:2:def")
    leases.finish(
        engine,
        "slam:digest",
        "2024-03-11T08:00:00+00:00",
        "host-b:2:def",
        "RuntimeError: boom\nmore detail",
    )
    leases.claim(engine, "slam:generate", "manual:2024-03-11T10:15:30.123456+00:00", "cli")
    toml = tmp_path / "slam.toml"
    toml.write_text(f'[database]\nurl = "{sqlite_url}"\n[schedule]\ntimezone = "Europe/Berlin"\n')
    code = main(
        ["schedule", "list", "-c", str(toml), "--last", "-n", "1", "--from", "2024-03-11T15:00"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "  2024-03-11 16:00 CET\n  last run: 2024-03-11 14:00 CET on host-a:1:abc: ok" in out
    assert "  last run: 2024-03-11 09:00 CET on host-b:2:def: failed: RuntimeError: boom\n" in out
    assert "  last run: 2024-03-11 11:15 CET (manual) on cli: running" in out
