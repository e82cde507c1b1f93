"""A feature with its own `schedule` gets its own generation job, `generate:<feature>`: the
daily `generate` job leaves it out, its job generates and opens a round for it alone at its
cron, `slam schedule` lists it, and a bad cron names the feature's key. Real job bodies through
the job runner, against a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dispatcher import Dispatcher
from bot.events import Reply
from bot.ops.jobs import JobRun, planned, run_job
from bot.ops.scheduler import planned_jobs
from core.config import SlamConfig, parse_config
from core.errors import SlamError
from storage.models import Experiment, Generation, JobLease, RatingRound
from tests.support.bot_seed import SUPPORT, SUPPORT_TEMPLATE, write_tickets
from tests.support.fake_ollama import FakeOllama

BERLIN = ZoneInfo("Europe/Berlin")
PEP = "daily-pep-talk"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def config(url: str, tmp_path: Path, schedule: str = "30 9 * * *") -> SlamConfig:
    return parse_config({
        "models": [{"name": "gemma-o", "backend": "ollama", "model": "gemma3:270m", "host": url},
                   {"name": "qwen-o", "backend": "ollama", "model": "qwen2.5:0.5b",
                    "host": url}],
        "schedule": {"timezone": "Europe/Berlin", "generate_cron": "0 6 * * *"},
        "chat": {"channel": "C-RATINGS"}, "experiment": {},
        "features": [{"name": SUPPORT, "prompt_template": SUPPORT_TEMPLATE,
                      "inputs": str(write_tickets(tmp_path / "tickets.jsonl")),
                      "schedule": schedule}],
    }, "<test>")  # fmt: skip


def per_experiment(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        names = {e.id: e.name for e in s.exec(select(Experiment)).all()}
        out: dict[str, int] = {}
        for g in s.exec(select(Generation)).all():
            out[names[g.experiment_id]] = out.get(names[g.experiment_id], 0) + 1
        return out


def open_rounds(engine: Engine) -> list[str]:
    with Session(engine) as s:
        names = {e.id: e.name for e in s.exec(select(Experiment)).all()}
        return sorted(names[r.experiment_id] for r in s.exec(select(RatingRound)).all()
                      if r.status == "open")  # fmt: skip


def test_a_features_own_schedule_is_a_job_of_its_own(ollama: FakeOllama, tmp_path: Path) -> None:
    cfg = config(ollama.url, tmp_path)
    plans = {p.name: p for p in planned(cfg)}
    assert set(plans) == {"probe", "generate", "digest", f"generate:{SUPPORT}"}
    own = plans[f"generate:{SUPPORT}"]
    assert (own.cron, own.key, own.feature) == ("30 9 * * *", f"features.{SUPPORT}.schedule",
                                                SUPPORT)  # fmt: skip
    assert own.description.endswith(f"feature {SUPPORT} only")
    fire = {p.name: p.trigger.get_next_fire_time(None, datetime(2024, 3, 11, tzinfo=BERLIN))
            for p in planned_jobs(cfg)}  # fmt: skip
    assert fire[f"generate:{SUPPORT}"] == datetime(2024, 3, 11, 9, 30, tzinfo=BERLIN)
    assert fire["generate"] == datetime(2024, 3, 11, 6, 0, tzinfo=BERLIN)
    with pytest.raises(SlamError, match=rf"features\.{SUPPORT}\.schedule"):
        planned_jobs(config(ollama.url, tmp_path, schedule="61 * * * *"))


async def test_the_daily_job_leaves_a_scheduled_feature_to_its_own_job(
        engine: Engine, ollama: FakeOllama, tmp_path: Path) -> None:  # fmt: skip
    cfg = config(ollama.url, tmp_path)
    dispatcher = Dispatcher(engine, cfg, salt=b"test")
    inbox: list[Reply] = []

    async def notify(reply: Reply) -> None:
        inbox.append(reply)

    now = [datetime(2024, 3, 11, 6, 0, 5, tzinfo=BERLIN)]
    run = JobRun(dispatcher.services, notify, owner="bot-1", clock=lambda: now[0])
    try:
        assert await run_job("generate", run) == "ok"
        assert per_experiment(engine) == {PEP: 12}  # 6 sample users x 2 models; no tickets
        assert open_rounds(engine) == [PEP]
        assert inbox[-1].text.startswith(f"Generated 12 response(s) of {PEP} for 2024-03-11")

        now[0] = datetime(2024, 3, 11, 9, 30, 1, tzinfo=BERLIN)
        assert await run_job(f"generate:{SUPPORT}", run) == "ok"
        tickets = per_experiment(engine)[SUPPORT]
        assert tickets == 2 * len(write_tickets(tmp_path / "t.jsonl").read_text().splitlines())
        assert per_experiment(engine)[PEP] == 12 and open_rounds(engine) == sorted([PEP, SUPPORT])
        assert f"of {SUPPORT} for 2024-03-11" in inbox[-1].text
        assert await run_job(f"generate:{SUPPORT}", run) == "skipped"  # its slot is taken
        with Session(engine) as s:
            leases = {(x.job_id, x.slot) for x in s.exec(select(JobLease)).all()}
        assert leases == {("slam:generate", "2024-03-11T05:00:00+00:00"),
                          (f"slam:generate:{SUPPORT}", "2024-03-11T08:30:00+00:00")}
        assert await run_job("generate:nope", run) == "error"
    finally:
        await dispatcher.aclose()
