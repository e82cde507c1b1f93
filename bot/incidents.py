"""Alert incidents: what needs the team's attention now, and the ledger of incidents posted
and cleared (what `/slam alerts` lists). bot.ops.alerts runs the check on the schedule, posts
each change once and keeps the `slam_alert` gauges of /metrics.

What is checked (thresholds in `[alerts]`, core.config.AlertsConfig), after every probe run:

- `availability`: a model answered less than `min_availability` of its last
  `availability_probes` measure probes;
- `latency`: the p95 latency of those probes is above `p95_slo_s`;
- `host`: a g4dn host the bot launched is past its TTL (or within `host_ttl_warning_min` of
  it), or every model it serves failed all its recent probes (unreachable);
- `version`: a model is answered by a new version whose votes are still below
  `min_version_votes` (its ratings started over);
- `decision`: a feature's decision changed (e.g. switch -> undecided), for `event_hours`;
- `drift`: a model's two latest versions differ beyond the drift margin
  (evaluation.results.versions.Drift);
- `agreement`: an LLM judge agrees with the crowd on fewer than `min_judge_agreement` of at
  least `min_agreement_pairs` pairs.

An incident is claimed like the other once-only messages (bot.rating.selection.claim_notice:
a unique `notice` key), so with several replicas exactly one posts it: its opening is
`alert:<kind>:<subject>:<n>:open`, its clearing `...:<n>:clear`; the n-th incident of the same
alert has its own keys. The decision's last seen state is kept the same way
(`alert-state:decision:<feature>:<n>`, its kind as the text).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.config import SlamConfig
from storage.models import HostRecord, Notice

KINDS = ("availability", "latency", "host", "version", "decision", "drift", "agreement")
PREFIX = "alert:"
STATE = "alert-state:decision:"
_KEY_MAX = 200


@dataclass(frozen=True)
class Condition:
    """Something wrong now: its kind, what it is about and what to tell the team."""

    kind: str
    subject: str
    text: str


@dataclass(frozen=True)
class OpenAlert:
    """An incident posted and not cleared yet."""

    kind: str
    subject: str
    seq: int
    text: str
    since: datetime


@dataclass(frozen=True)
class Change:
    """An incident this replica claimed: opened or cleared, with the message to post."""

    kind: str
    subject: str
    phase: str  # "open" | "clear"
    text: str


def _key(kind: str, subject: str, seq: int, phase: str) -> str:
    head = f"{PREFIX}{kind}:"
    tail = f":{seq}:{phase}"
    return head + subject[: _KEY_MAX - len(head) - len(tail)] + tail


def _parse(key: str) -> tuple[str, str, int, str] | None:
    if not key.startswith(PREFIX):
        return None
    kind, _, rest = key[len(PREFIX):].partition(":")
    subject, seq, phase = [*rest.rsplit(":", 2), "", ""][:3]
    if kind not in KINDS or phase not in ("open", "clear") or not seq.isdigit():
        return None
    return kind, subject, int(seq), phase


def _notices(engine: Engine, prefix: str) -> list[Notice]:
    with Session(engine) as s:
        q = select(Notice).where(col(Notice.key).startswith(prefix)).order_by(col(Notice.id))
        return list(s.exec(q).all())


def incidents(engine: Engine) -> dict[tuple[str, str], tuple[int, OpenAlert | None]]:
    """(kind, subject) -> (its latest incident number, that incident if still open)."""
    opened: dict[tuple[str, str, int], Notice] = {}
    cleared: set[tuple[str, str, int]] = set()
    for n in _notices(engine, PREFIX):
        parsed = _parse(n.key)
        if parsed is None:
            continue
        kind, subject, seq, phase = parsed
        (opened.__setitem__((kind, subject, seq), n) if phase == "open"
         else cleared.add((kind, subject, seq)))  # fmt: skip
    out: dict[tuple[str, str], tuple[int, OpenAlert | None]] = {}
    for (kind, subject, seq), n in sorted(opened.items(), key=lambda kv: kv[0][2]):
        alert = None
        if (kind, subject, seq) not in cleared:
            alert = OpenAlert(kind, subject, seq, n.text, _aware(n.created_at))
        out[(kind, subject)] = (seq, alert)
    return out


def open_alerts(engine: Engine) -> list[OpenAlert]:
    """Every incident posted and not cleared, oldest first."""
    found = [a for _, a in incidents(engine).values() if a is not None]
    return sorted(found, key=lambda a: (a.since, a.kind, a.subject))


def reconcile(engine: Engine, now_wrong: Iterable[Condition]) -> list[Change]:
    """Open an incident for each condition without an open one, clear each open incident
    whose condition is gone; return the changes this caller claimed (to post)."""
    from bot.rating import selection

    known = incidents(engine)
    wrong = {(c.kind, c.subject): c for c in now_wrong}
    changes = []
    for (kind, subject), c in sorted(wrong.items()):
        seq, alert = known.get((kind, subject), (0, None))
        key = _key(kind, subject, seq + 1, "open")
        if alert is None and selection.claim_notice(engine, key, c.text):
            changes.append(Change(kind, subject, "open", c.text))
    for (kind, subject), (seq, alert) in sorted(known.items()):
        if alert is None or (kind, subject) in wrong:
            continue
        text = f"Cleared: {alert.text}"
        if selection.claim_notice(engine, _key(kind, subject, seq, "clear"), text):
            changes.append(Change(kind, subject, "clear", text))
    return changes


# -- the conditions -------------------------------------------------------------------------------
def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def health_conditions(cfg: SlamConfig, results: Any) -> list[Condition]:
    """Availability and p95 latency over each model's last N probes."""
    a = cfg.alerts
    configured = {m.name for m in cfg.models}  # a model no longer probed cannot recover
    out = []
    for name, h in sorted(results.recent_health.items()):
        if name not in configured:
            continue
        if h.n and h.availability < a.min_availability:
            out.append(Condition("availability", name, (
                f"{name} answered {h.ok} of its last {h.n} probes ({h.availability:.0%}, "
                f"below {a.min_availability:.0%})")))  # fmt: skip
        if h.p95_s is not None and h.p95_s > a.p95_slo_s:
            out.append(Condition("latency", name, (
                f"{name}'s p95 latency over its last {h.n} probes is {h.p95_s:.2f} s "
                f"(SLO {a.p95_slo_s:g} s)")))  # fmt: skip
    return out


def host_conditions(engine: Engine, cfg: SlamConfig, results: Any,
                    now: datetime) -> list[Condition]:  # fmt: skip
    """g4dn hosts past (or near) their TTL, or serving models that all fail their probes."""
    with Session(engine) as s:
        q = select(HostRecord).where(col(HostRecord.terminated_at).is_(None))
        hosts = [h for h in s.exec(q).all() if h.state not in ("terminated", "failed")]
    warn = timedelta(minutes=cfg.alerts.host_ttl_warning_min)
    health = results.recent_health
    out = []
    for h in hosts:
        if h.expires_at is not None:
            expires = _aware(h.expires_at)
            if expires <= now:
                out.append(Condition("host", h.instance_id, (
                    f"host {h.instance_id} ({h.instance_type}) is past its TTL "
                    f"({expires:%Y-%m-%d %H:%M} UTC): stop it with `slam host down`")))
                continue  # fmt: skip
            if expires - now <= warn:
                out.append(Condition("host", h.instance_id, (
                    f"host {h.instance_id} ({h.instance_type}) reaches its TTL at "
                    f"{expires:%H:%M} UTC")))
                continue  # fmt: skip
        served = [m.name for m in cfg.models
                  if h.endpoint and m.host and m.host.rstrip("/") == h.endpoint.rstrip("/")]
        probed = [health[m] for m in served if m in health and health[m].n]
        if probed and all(p.ok == 0 for p in probed):
            out.append(Condition("host", h.instance_id, (
                f"host {h.instance_id} at {h.endpoint} is unreachable: "
                f"{', '.join(p.model for p in probed)} failed every recent probe")))  # fmt: skip
    return out


def quality_conditions(engine: Engine, cfg: SlamConfig, results: Any, label: str | None,
                       now: datetime) -> list[Condition]:  # fmt: skip
    """A feature's (`label`; None with one feature) new versions, drift, the decision's
    change and judges that no longer agree with the crowd."""
    a = cfg.alerts
    of = f" ({label})" if label else ""
    out = []
    for model, v in sorted(results.warming_up().items()):
        out.append(Condition("version", f"{model} {v.label}", (
            f"{model} is answered by a new version {v.label} since {v.day}: its rating "
            f"starts over ({v.votes} of {a.min_version_votes} votes)")))  # fmt: skip
    for d in results.drift:
        if d.beyond_margin:
            out.append(Condition("drift", f"{d.model}{of}", d.line() + of))
    trust, _ = results.judge_trust
    for t in trust:
        if t.agreement is not None and t.n >= a.min_agreement_pairs \
                and t.agreement < a.min_judge_agreement:  # fmt: skip
            out.append(Condition("agreement", f"{t.judge}/{t.method}{of}", (
                f"judge {t.judge} ({t.method}) agrees with the crowd on {t.agreement:.0%} of "
                f"{t.n} pairs{of} (below {a.min_judge_agreement:.0%})")))  # fmt: skip
    changed = decision_change(engine, results.decision, label or "", now,
                              timedelta(hours=a.event_hours))  # fmt: skip
    if changed is not None:
        out.append(Condition("decision", label or "all", changed + of))
    return out


def decision_change(engine: Engine, decision: Any, feature: str, now: datetime,
                    lasts: timedelta) -> str | None:  # fmt: skip
    """Record the decision's kind when it differs from the last one recorded; the text of a
    change recorded less than `lasts` ago, else None (the first record is no change)."""
    from bot.rating import selection

    prefix = f"{STATE}{feature}:"
    states = _notices(engine, prefix)
    kind = getattr(decision, "kind", None)
    if kind is None:
        return None
    if not states or states[-1].text != kind:
        selection.claim_notice(engine, f"{prefix}{len(states) + 1}"[:_KEY_MAX], kind)
        states = _notices(engine, prefix)
    if len(states) < 2 or states[-1].text != kind:
        return None
    if now - _aware(states[-1].created_at) > lasts:
        return None
    headline = getattr(decision, "headline", kind)
    return f"the decision changed from {states[-2].text} to {kind}: {headline}"


def conditions(engine: Engine, cfg: SlamConfig, now: datetime | None = None) -> list[Condition]:
    """Everything wrong now, over every feature."""
    from bot.rating import features
    from core.features import features as every
    from evaluation.results import Results

    now = now or datetime.now(UTC)
    results = Results(engine, cfg, now=now)
    out = health_conditions(cfg, results) + host_conditions(engine, cfg, results, now)
    several = features.several(cfg)
    for f in every(cfg):
        name = features.results_feature(cfg, f.name)
        per = Results(engine, cfg, feature=name, now=now) if name is not None else results
        out += quality_conditions(engine, cfg, per, name if several else None, now)
    unique = {(c.kind, c.subject): c for c in out}
    return list(unique.values())


def change_text(changes: list[Change]) -> str:
    """The message for what changed: one line per alert raised or cleared."""
    return "\n".join(("🔴 " if c.phase == "open" else "✅ ") + c.text for c in changes)


def listing(engine: Engine) -> list[str]:
    """One line per open alert (what `/slam alerts` shows)."""
    return [f"[{a.kind}] {a.text} (since {a.since:%Y-%m-%d %H:%M} UTC)"
            for a in open_alerts(engine)]  # fmt: skip
