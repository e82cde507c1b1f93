"""Alerts on the schedule, through the real probe job against fake Ollama servers on 127.0.0.1:
a model whose host goes down raises one alert (not one per probe or per run), which clears
when the host answers again, with its `slam_alert` gauge; a re-pulled tag raises a new-version
alert; `[alerts] enabled = false` posts nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.events import Reply
from bot.incidents import open_alerts
from bot.ops.jobs import JobRun, run_job
from bot.services import BotServices
from core.config import SlamConfig, parse_config
from storage.models import ModelVersion, Probe
from tests.support.fake_ollama import DIGEST, FakeOllama
from tests.support.ports import free_port


class Inbox:
    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def __call__(self, reply: Reply) -> None:
        self.replies.append(reply)

    def alerts(self) -> list[str]:
        return [r.text for r in self.replies if r.title == "SLaM alerts"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 10, 0, 1, tzinfo=UTC)

    def next_hour(self) -> None:
        self.now += timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


def make_cfg(url: str, flaky_host: str, **alerts: object) -> SlamConfig:
    return parse_config({
        "models": [
            {"name": "gemma-o", "backend": "ollama", "model": "gemma3:270m", "host": url},
            {"name": "qwen-o", "backend": "ollama", "model": "qwen2.5:0.5b", "host": flaky_host,
             "max_retries": 0, "timeout_s": 5},
        ],
        "alerts": {"availability_probes": 3, **alerts},
    })  # fmt: skip


def gauge(kind: str, subject: str) -> float | None:
    return REGISTRY.get_sample_value("slam_alert", {"kind": kind, "subject": subject})


async def test_a_host_going_down_is_one_alert_that_clears(
    engine: Engine, ollama: FakeOllama
) -> None:
    port = free_port()
    cfg = make_cfg(ollama.url, f"http://127.0.0.1:{port}")
    inbox, clock = Inbox(), Clock()
    run = JobRun(BotServices.create(engine, cfg), Inbox(), publish=inbox, clock=clock,
                 probe_warmup=1, probe_measure=3)  # fmt: skip
    assert await run_job("probe", run) == "ok"
    (raised,) = inbox.alerts()
    assert raised == "🔴 qwen-o answered 0 of its last 3 probes (0%, below 90%)"
    assert gauge("availability", "qwen-o") == 1
    for _ in range(2):  # still down: the alert is not posted again
        clock.next_hour()
        assert await run_job("probe", run) == "ok"
    assert len(inbox.alerts()) == 1
    assert [a.kind for a in open_alerts(engine)] == ["availability"]
    with FakeOllama().start(port):  # the host is back
        clock.next_hour()
        assert await run_job("probe", run) == "ok"
    assert inbox.alerts()[1:] == [
        "✅ Cleared: qwen-o answered 0 of its last 3 probes (0%, below 90%)"
    ]
    assert gauge("availability", "qwen-o") == 0 and open_alerts(engine) == []


async def test_a_repulled_tag_raises_a_new_version_alert(
    engine: Engine, ollama: FakeOllama
) -> None:
    cfg = make_cfg(ollama.url, ollama.url)
    inbox, clock = Inbox(), Clock()
    run = JobRun(BotServices.create(engine, cfg), Inbox(), alerts=inbox, clock=clock,
                 probe_warmup=0, probe_measure=1)  # fmt: skip
    assert await run_job("probe", run) == "ok"
    assert inbox.alerts() == []  # one version each: nothing to say
    ollama.digests["gemma3:270m"] = "c0ffee" + "0" * 58
    clock.next_hour()
    assert await run_job("probe", run) == "ok"
    (raised,) = inbox.alerts()
    assert raised == ("🔴 gemma-o is answered by a new version c0ffee000000 since 2026-12-07: "
                      "its rating starts over (0 of 20 votes)")  # fmt: skip
    assert gauge("version", "gemma-o c0ffee000000") == 1
    with Session(engine) as s:  # each probe row points at the version that answered it
        rows = s.exec(select(Probe).order_by(col(Probe.id))).all()
        labels = {p.model_version_id: s.get(ModelVersion, p.model_version_id).label  # type: ignore[union-attr]
                  for p in rows if p.model_version_id is not None}  # fmt: skip
    # gemma-o's two versions and qwen-o's one (the fake lists both under the same digest)
    assert sorted(labels.values()) == [DIGEST[7:19], DIGEST[7:19], "c0ffee000000"]
    assert all(p.model_version_id is not None for p in rows)


async def test_alerts_off_posts_nothing(engine: Engine, ollama: FakeOllama) -> None:
    cfg = make_cfg(ollama.url, f"http://127.0.0.1:{free_port()}", enabled=False)
    inbox = Inbox()
    run = JobRun(BotServices.create(engine, cfg), Inbox(), publish=inbox, clock=Clock(),
                 probe_warmup=0, probe_measure=1)  # fmt: skip
    assert await run_job("probe", run) == "ok"
    assert inbox.alerts() == [] and open_alerts(engine) == []


async def test_a_failing_check_leaves_the_probe_job_ok_and_alerts_open(
    engine: Engine, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ops import alerts

    def broken(*args: object) -> list[object]:
        raise RuntimeError("results unavailable")

    monkeypatch.setattr(alerts, "conditions", broken)
    cfg = make_cfg(ollama.url, ollama.url)
    inbox = Inbox()
    run = JobRun(BotServices.create(engine, cfg), Inbox(), publish=inbox, clock=Clock(),
                 probe_warmup=0, probe_measure=1)  # fmt: skip
    errors = REGISTRY.get_sample_value("slam_errors_total", {"component": "alerts"}) or 0.0
    assert await run_job("probe", run) == "ok"
    assert inbox.alerts() == []
    assert REGISTRY.get_sample_value("slam_errors_total", {"component": "alerts"}) == errors + 1


async def test_every_replicas_metrics_show_the_ledgers_alerts(engine: Engine) -> None:
    """Another replica posted and later cleared an alert: this one's /metrics shows both."""
    import httpx

    from bot.dispatcher import Dispatcher
    from bot.incidents import Condition, reconcile
    from bot.ops.runtime import AdapterRuntime

    cfg = parse_config({})
    down = Condition("host", "i-0replica", "host i-0replica is past its TTL")
    slow = Condition("latency", "m-replica", "m-replica is slow")
    reconcile(engine, [down, slow])
    reconcile(engine, [down])  # the latency alert cleared
    port = free_port()
    rt = AdapterRuntime(Dispatcher(engine, cfg, salt=b"s"), port=port, scheduler=False, web=False)
    await rt.serve()
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await rt.aclose()
    assert 'slam_alert{kind="host",subject="i-0replica"} 1.0' in text
    assert 'slam_alert{kind="latency",subject="m-replica"} 0.0' in text
