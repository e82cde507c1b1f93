"""The alert ledger and conditions: an incident opens once, stays open while its condition
holds (however often it is checked, by however many replicas), clears once, and a later
recurrence is a new incident; `/slam alerts` on the console lists what is open."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from bot.dispatcher import Dispatcher
from bot.events import Command
from bot.incidents import (
    KINDS,
    Condition,
    _key,
    _parse,
    conditions,
    decision_change,
    health_conditions,
    listing,
    open_alerts,
    quality_conditions,
    reconcile,
)
from bot.platforms.console import ConsolePort
from core.config import SlamConfig, parse_config
from evaluation.results import ProbeHealth
from storage.db import session_scope
from storage.models import HostRecord

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DOWN = Condition("availability", "gemma3:1b", "gemma3:1b answered 2 of its last 20 probes")


def cfg(**alerts: object) -> SlamConfig:
    return parse_config({"models": [{"name": "gemma3:1b", "backend": "ollama",
                                     "model": "gemma3:1b", "host": "http://10.0.0.5:11434"}],
                         "alerts": alerts})  # fmt: skip


def test_an_incident_opens_once_clears_once_and_recurs_as_a_new_one(any_engine: Engine) -> None:
    engine = any_engine
    first = reconcile(engine, [DOWN])
    assert [(c.kind, c.subject, c.phase) for c in first] == [("availability", "gemma3:1b", "open")]
    assert reconcile(engine, [DOWN]) == []  # still down: nothing new to post
    assert reconcile(engine, [DOWN]) == []
    (alert,) = open_alerts(engine)
    assert (alert.seq, alert.text) == (1, DOWN.text)
    cleared = reconcile(engine, [])
    assert [(c.phase, c.text) for c in cleared] == [("clear", f"Cleared: {DOWN.text}")]
    assert reconcile(engine, []) == [] and open_alerts(engine) == []
    again = reconcile(engine, [DOWN])
    assert [c.phase for c in again] == ["open"] and open_alerts(engine)[0].seq == 2


def test_two_replicas_checking_at_once_post_each_change_once(engine: Engine) -> None:
    # the second replica sees the incident the first one claimed
    assert len(reconcile(engine, [DOWN])) == 1
    assert reconcile(engine, [DOWN]) == []
    assert len(reconcile(engine, [])) == 1
    assert reconcile(engine, []) == []


@given(kind=st.sampled_from(KINDS), subject=st.text(min_size=1, max_size=80),
       seq=st.integers(1, 10_000), phase=st.sampled_from(["open", "clear"]))  # fmt: skip
def test_incident_keys_round_trip(kind: str, subject: str, seq: int, phase: str) -> None:
    assert _parse(_key(kind, subject, seq, phase)) == (kind, subject, seq, phase)


def test_other_notice_keys_are_not_incidents() -> None:
    assert _parse("settled:abc") is None and _parse("alert:bogus:x:1:open") is None
    assert _parse("alert:host:x:one:open") is None


def test_availability_and_latency_thresholds() -> None:
    results = SimpleNamespace(recent_health={
        "a": ProbeHealth("a", 20, 17, 1.0), "b": ProbeHealth("b", 20, 18, 12.5),
        "c": ProbeHealth("c", 0, 0, None),
        "gone": ProbeHealth("gone", 20, 0, None)})  # no longer configured: never probed again
    abc = parse_config({"models": [{"name": n, "backend": "ollama", "model": n}
                                   for n in "abc"]})  # fmt: skip
    got = {(c.kind, c.subject): c.text for c in health_conditions(abc, results)}
    assert got == {
        ("availability", "a"): "a answered 17 of its last 20 probes (85%, below 90%)",
        ("latency", "b"): "b's p95 latency over its last 20 probes is 12.50 s (SLO 10 s)",
    }


def _host(engine: Engine, expires: datetime, state: str = "ready") -> None:
    with session_scope(engine) as s:
        s.add(HostRecord(instance_id="i-0abc", instance_type="g4dn.xlarge", region="us-east-1",
                         state=state, endpoint="http://10.0.0.5:11434",
                         expires_at=expires))  # fmt: skip


def test_a_host_past_its_ttl_and_near_it(engine: Engine) -> None:
    _host(engine, NOW - timedelta(minutes=5))
    (c,) = [c for c in conditions(engine, cfg(), NOW) if c.kind == "host"]
    assert c.subject == "i-0abc" and "past its TTL (2026-12-07 11:55 UTC)" in c.text
    (near,) = [c for c in conditions(engine, cfg(), NOW - timedelta(minutes=20))
               if c.kind == "host"]  # fmt: skip
    assert "reaches its TTL at 11:55 UTC" in near.text
    assert not [c for c in conditions(engine, cfg(), NOW - timedelta(hours=2)) if c.kind == "host"]


def test_a_decision_change_is_an_incident_for_event_hours(engine: Engine) -> None:
    switch = SimpleNamespace(kind="switch", headline="Switch to gemma3:1b")
    undecided = SimpleNamespace(kind="undecided", headline="Undecided")
    lasts = timedelta(hours=24)
    assert decision_change(engine, switch, "", NOW, lasts) is None  # the first record
    assert decision_change(engine, switch, "", NOW, lasts) is None  # unchanged
    text = decision_change(engine, undecided, "", NOW, lasts)
    assert text == "the decision changed from switch to undecided: Undecided"
    assert decision_change(engine, undecided, "", NOW + timedelta(hours=1), lasts) == text
    assert decision_change(engine, undecided, "", NOW + timedelta(days=2), lasts) is None


async def test_slam_alerts_on_the_console(engine: Engine) -> None:
    d = Dispatcher(engine, cfg(), salt=b"test")
    port = ConsolePort(io.StringIO())
    try:
        none = await d.handle_command(Command("console", "U1", "console", "alerts"), port)
        assert none is not None and none.text == "No open alerts."
        reconcile(engine, [DOWN])
        reply = await d.handle_command(Command("console", "U1", "console", "alerts"), port)
        assert reply is not None and reply.title == "Open alerts (1)"
        assert reply.text == listing(engine)[0]
        assert reply.text.startswith(f"[availability] {DOWN.text} (since ")
        bad = await d.handle_command(Command("console", "U1", "console", "alerts x"), port)
        assert bad is not None and not bad.ok and "takes no arguments" in bad.text
    finally:
        await d.aclose()


def test_quality_conditions_name_the_version_drift_and_disagreeing_judge(engine: Engine) -> None:
    from evaluation.results import Drift, VersionInfo

    old = VersionInfo(1, "m", "aaaa", NOW - timedelta(days=3), 40)
    new = VersionInfo(2, "m", "bbbb", NOW - timedelta(days=1), 5)
    judges = [SimpleNamespace(judge="gpt-4", method="pairwise", n=40, agreement=0.4),
              SimpleNamespace(judge="gpt-4", method="scorer", n=10, agreement=0.1),
              SimpleNamespace(judge="gpt-4", method="comparer", n=40, agreement=0.8)]
    results = SimpleNamespace(
        warming_up=lambda: {"m": new},
        drift=[Drift("m", old, new, -120.0, -200.0, -60.0, 50.0),
               Drift("n", old, new, -20.0, -90.0, 40.0, 50.0)],
        judge_trust=(judges, ""),
        decision=SimpleNamespace(kind="switch", headline="Switch"),
    )  # fmt: skip
    got = {(c.kind, c.subject): c.text for c in quality_conditions(engine, cfg(), results,
                                                                    None, NOW)}  # fmt: skip
    assert got == {
        ("version", "m bbbb"): ("m is answered by a new version bbbb since 2026-12-06: its "
                                "rating starts over (5 of 20 votes)"),
        ("drift", "m"): ("m: version bbbb (from 2026-12-06) is 120 Elo worse than aaaa (from "
                         "2026-12-04), [-200, -60], margin ±50 — beyond the margin"),
        ("agreement", "gpt-4/pairwise"): ("judge gpt-4 (pairwise) agrees with the crowd on 40% "
                                          "of 40 pairs (below 50%)"),
    }  # the scorer has too few pairs, the comparer agrees, n's drift is within the margin
