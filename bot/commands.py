"""The `/slam` subcommands. Each takes the bot's services, the command and the adapter's port
and returns a platform-neutral `Reply`; database work runs in a worker thread. They are the
`COMMANDS` registry, registered with `@command(name, usage, help, **flags)`."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from bot.events import Command, PairView, Reply
from bot.rating import db as _db
from bot.rating import legend as _legend
from bot.rating import masker as _masker
from bot.rating import post_pair as _post_pair
from bot.rating import rounds, selection
from bot.services import ChatPort, Services
from core.config import CommandLimits
from core.errors import SlamError
from core.registry import Registry
from evaluation.human import VotePolicy, all_effective_votes
from storage.models import Generation, ModelRecord, RatingPair, RatingRound

CommandFn = Callable[[Services, Command, ChatPort], Awaitable[Reply]]


@dataclass(frozen=True)
class Param:
    """An argument of a subcommand, for adapters that ask for arguments one by one (Discord's
    application commands): a word (`str`) or a number (`int`), optionally one of `choices`."""

    name: str
    description: str
    kind: type = str
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A subcommand and the flags every adapter derives its behaviour from: `admin` (only
    `[chat].admins` may run it), `slow` (acknowledge at once, answer when done: Slack's
    3-second limit, Discord's deferral), `ephemeral` (answer only the asker, where the
    platform can), `dashboard` (add the web dashboard's link when `[web] public_url` is set)."""

    fn: CommandFn
    usage: str
    help: str
    admin: bool = False
    slow: bool = False
    ephemeral: bool = False
    params: tuple[Param, ...] = ()
    dashboard: bool = False


COMMANDS: Registry[Spec] = Registry("command")


def command(
    name: str, usage: str, help: str, admin: bool = False, **flags: Any
) -> Callable[[CommandFn], CommandFn]:
    """Register the decorated function as `/slam <name>` (the flags are `Spec`'s)."""

    def deco(fn: CommandFn) -> CommandFn:
        COMMANDS.add(name, Spec(fn, usage, help, admin, **flags))
        return fn

    return deco


def usage_text() -> str:
    lines = [f"`/slam {s.usage}` — {s.help}" + (" (admin)" if s.admin else "")
             for _, s in COMMANDS.items()]  # fmt: skip
    return "\n".join(lines)


async def run_command(d: Services, cmd: Command, port: ChatPort) -> Reply:
    spec = COMMANDS.find(cmd.name)
    if spec is None:
        # Echo at most a short, plain prefix: never the whole input, never markup or mentions.
        shown = re.sub(r"[^A-Za-z0-9_.-]", "", cmd.name)[:24] or "?"
        return Reply(f"Unknown subcommand `{shown}`. Usage:\n{usage_text()}", ok=False,
                     ephemeral=True)  # fmt: skip
    reply = await spec.fn(d, cmd, port)
    if spec.ephemeral:
        reply.ephemeral = True
    url = d.cfg.web.public_url
    if spec.dashboard and url and d.cfg.web.enabled and reply.ok:
        reply.text += f"\nLive dashboard: {url}/dashboard"
    return reply


def _policy(d: Services) -> VotePolicy:
    """The configured vote policy ([evaluation]): the commands count what the report counts."""
    return VotePolicy.from_config(d.cfg.evaluation)


def _bad_args(spec_name: str, why: str) -> Reply:
    return Reply(f"{why}. Usage: `/slam {COMMANDS.get(spec_name).usage}`", ok=False, ephemeral=True)


@command("help", "help", "this list", ephemeral=True)
async def cmd_help(d: Services, cmd: Command, port: ChatPort) -> Reply:
    return Reply(usage_text(), title="SLaM bot commands", ephemeral=True)


@command("models", "models", "the models under test")
async def cmd_models(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if not d.cfg.models:
        return Reply("No models are configured; add [[models]] to slam.toml.", ephemeral=True)
    fields = [
        (m.name + (" (reference)" if m.reference else ""),
         f"{m.backend} · {m.quantization} · {m.hardware}")
        for m in d.cfg.models
    ]  # fmt: skip
    return Reply(f"{len(fields)} model(s) configured.", title="Models", fields=fields)


@command("round", "round start|close", "open a rating round and post its pairs, or close it",
         admin=True, slow=True,
         params=(Param("action", "start or close", choices=("start", "close")),))  # fmt: skip
async def cmd_round(d: Services, cmd: Command, port: ChatPort) -> Reply:
    action = cmd.args[0].lower() if cmd.args else ""
    if action == "close":

        def close(s: Session) -> tuple[int | None, int, int]:
            rnd = rounds.close_round(s)
            assert rnd.id is not None
            votes = all_effective_votes(s, _policy(d), round_id=rnd.id)
            return rnd.id, len(votes), len({v.rater_id for v in votes})

        rid, n_votes, n_raters = await _db(d, close)
        return Reply(f"Round {rid} closed: {n_votes} vote(s) from {n_raters} rater(s).")
    if action != "start" or len(cmd.args) > 1:
        return _bad_args("round", "Expected `start` or `close`")

    def start(s: Session) -> tuple[int, list[PairView]]:
        planner = selection.round_planner(d.engine, d.cfg)
        rnd, pairs = rounds.start_round(s, d.cfg, d.rng, planner=planner)
        masker = _masker(d, s)
        assert rnd.id is not None
        return rnd.id, [rounds.pair_view(s, p, masker, _legend(d, port)) for p in pairs]

    rid, views = await _db(d, start)
    for view in views:
        await _post_pair(d, port, view, channel=d.cfg.chat.channel)
    snap = await asyncio.to_thread(selection.snapshot, d.engine, d.cfg)
    await _announce(d, port, snap.decision)
    masked = sum(v.masked for v in views)
    note = f" {masked} response(s) named a model and were masked." if masked else ""
    return Reply(f"Round {rid} is open: {len(views)} pair(s) posted in {d.cfg.chat.channel}. "
                 f"Use `/slam rate` to get your next pair.{note}")  # fmt: skip


@command("rate", "rate", "get your next unrated pair in a direct message", slow=True,
         ephemeral=True)  # fmt: skip
async def cmd_rate(d: Services, cmd: Command, port: ChatPort) -> Reply:
    user_hash = d.rater(cmd.platform, cmd.user_id)

    def pick(s: Session) -> tuple[selection.NextPair, PairView | None]:
        # The pair most useful for this rater (bot.rating.selection, evaluation.human.active).
        nxt = selection.next_pair(s, d.cfg, cmd.platform, user_hash, rng=d.rng)
        if nxt.pair is None:
            return nxt, None
        return nxt, rounds.pair_view(s, nxt.pair, _masker(d, s), _legend(d, port))

    nxt, view = await _db(d, pick)
    await _announce(d, port, nxt.decision)
    if view is None:
        if nxt.why == "settled":
            return Reply(f"The decision is settled, so round {nxt.round_id} needs no more votes "
                         "from you for now. Thank you!", ephemeral=True)  # fmt: skip
        return Reply(f"You have rated all {nxt.quota} pair(s) of round {nxt.round_id}. Thank you!",
                     ephemeral=True)  # fmt: skip
    await _post_pair(d, port, view, rater_id=nxt.rater_id, dm_user=cmd.user_id)
    return Reply(f"Sent you pair {view.pair_id} in a direct message "
                 f"({nxt.done} of {nxt.quota} rated).", ephemeral=True)  # fmt: skip


async def _announce(d: Services, port: ChatPort, decision: Any) -> None:
    """The stopping rule's message, posted once in the ratings channel when it settles."""
    text = await asyncio.to_thread(selection.announce, d.engine, decision)
    if text is not None:
        await port.post(Reply(text, title="Decision settled"), channel=d.cfg.chat.channel)


@command("status", "status", "round progress: pairs, votes, raters")
async def cmd_status(d: Services, cmd: Command, port: ChatPort) -> Reply:
    def status(s: Session) -> Reply:
        rnd = (
            rounds.open_round(s)
            or s.exec(select(RatingRound).order_by(col(RatingRound.id).desc())).first()
        )
        if rnd is None or rnd.id is None:
            return Reply("No rating round yet; an admin can `round start` one.")
        pairs = rounds.round_pairs(s, rnd.id)
        votes = all_effective_votes(s, _policy(d), round_id=rnd.id)
        pairwise = [v for v in votes if v.kind == "pairwise"]
        per_pair = Counter(v.pair_id for v in pairwise)
        per_rater = Counter(v.rater_id for v in pairwise)
        finished = sum(1 for n in per_rater.values() if n >= len(pairs))
        choices = Counter(v.choice for v in pairwise)
        counts = [per_pair.get(p.id or 0, 0) for p in pairs]
        fields = [
            ("Pairs", str(len(pairs))),
            ("Votes", f"{len(pairwise)} pairwise" + (
                f", {len(votes) - len(pairwise)} scores" if len(votes) > len(pairwise) else "")),
            ("Raters", f"{len(per_rater)} ({finished} finished their set)"),
            ("Votes per pair", f"min {min(counts, default=0)}, "
                               f"median {statistics.median(counts) if counts else 0:g}"),
            ("Choices", ", ".join(f"{c} {choices.get(c, 0)}"
                                  for c in ("A", "B", "tie", "both_bad"))),
        ]  # fmt: skip
        day = f", responses of {rnd.run_date}" if rnd.run_date else ""
        return Reply(f"Round {rnd.id} is {rnd.status}{day}.", title="Rating status", fields=fields)

    result: Reply = await _db(d, status)
    # the decision and what the open comparisons still need (bot.rating.selection)
    if result.fields:
        snap = await asyncio.to_thread(selection.snapshot, d.engine, d.cfg)
        result.fields += selection.status_fields(snap)
        await _announce(d, port, snap.decision)
    return result


@command("reveal", "reveal PAIR_ID", "show which models a pair compared (round closed)",
         admin=True, ephemeral=True, params=(Param("pair", "the pair's number", int),))  # fmt: skip
async def cmd_reveal(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if len(cmd.args) != 1 or not cmd.args[0].lstrip("#").isdigit():
        return _bad_args("reveal", "Give one pair number")
    pair_id = int(cmd.args[0].lstrip("#"))

    def reveal(s: Session) -> Reply:
        pair = s.get(RatingPair, pair_id)
        if pair is None:
            raise SlamError(f"There is no pair {pair_id}.")
        rnd = s.get(RatingRound, pair.round_id)
        if rnd is not None and rnd.status == "open":
            raise SlamError(f"Pair {pair_id} is in round {rnd.id}, which is still open; "
                            "close the round before revealing (keeps votes blind).")  # fmt: skip
        if pair.kind == "gold":
            # A rater check, not a model comparison: naming the model that wrote both sides
            # would mislead, and saying what the decoy was teaches raters to spot checks.
            return Reply(f"Pair {pair_id} was a quality check (one response deliberately "
                         "bad), not a model comparison: its votes check raters and are never "
                         "counted in the ratings.", ephemeral=True)  # fmt: skip
        names = []
        for gid in (pair.generation_a_id, pair.generation_b_id):
            gen = s.get(Generation, gid)
            model = s.get(ModelRecord, gen.model_id) if gen else None
            names.append(model.name if model else "?")
        pair.revealed = True
        s.add(pair)
        votes = [v for v in all_effective_votes(s, _policy(d), round_id=pair.round_id)
                 if v.pair_id == pair_id and v.kind == "pairwise"]  # fmt: skip
        c = Counter(v.choice for v in votes)
        return Reply(
            f"Pair {pair_id}: A was *{names[0]}*, B was *{names[1]}*.",
            fields=[("Votes", f"A {c['A']}, B {c['B']}, tie {c['tie']}, "
                              f"both bad {c['both_bad']}")],
            ephemeral=True,
        )  # fmt: skip

    result: Reply = await _db(d, reveal)
    return result


@command("report", "report [all|CHART]",
         "the decision, leaderboard and a summary card; `all` or a chart for more", slow=True,
         dashboard=True,
         params=(Param("chart", "all, or one chart's name", required=False),))  # fmt: skip
async def cmd_report(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if len(cmd.args) > 1:
        return _bad_args("report", "Give `all` or one chart name")
    from evaluation.charts import ALL_CHARTS, CHART_NAMES
    from evaluation.report import build_report
    from evaluation.results import Results, summary_text

    arg = cmd.args[0].lower() if cmd.args else ""
    if arg and arg != "all" and arg not in ALL_CHARTS:
        shown = re.sub(r"[^A-Za-z0-9_.-]", "", arg)[:24] or "?"
        return _bad_args("report", f"Unknown chart `{shown}`; charts: all, {', '.join(ALL_CHARTS)}")
    only = ["summary"] if not arg else list(CHART_NAMES) if arg == "all" else [arg]
    out = d.report_dir / datetime.now().strftime("%Y%m%d-%H%M%S-%f")

    def build() -> Reply:
        if d.report_builder is not None:  # tests and embedders may swap the builder
            res = d.report_builder(d.engine, d.cfg, out, only)
            files = {k: Path(v) for k, v in res.charts.items() if Path(v).exists()}
            return Reply(res.summary_text or "Report built.", title="SLaM report", files=files)
        results = Results(d.engine, d.cfg)
        res = build_report(d.engine, d.cfg, out, only, results=results, write_pages=False)
        text = summary_text(results.leaderboard, results.decision)
        empty = res.empty
        if arg and empty:
            text += "\nNo data yet: " + "; ".join(f"{c.name} ({c.fills})" for c in empty) + "."
        elif not arg:
            gaps = results.gaps()
            if gaps:
                text += "\nNot measured yet: " + "; ".join(f"{w} ({how})" for w, how in gaps)
                text += "."
            text += "\nMore: `/slam report all`, or `/slam report CHART` for one chart."
        return Reply(text, title="SLaM report", files=res.with_data)

    return await asyncio.to_thread(build)


@command("leaderboard", "leaderboard", "Bradley–Terry ratings, intervals and the decision",
         slow=True, dashboard=True)  # fmt: skip
async def cmd_leaderboard(d: Services, cmd: Command, port: ChatPort) -> Reply:
    from evaluation.results import Results

    def board() -> Reply:
        return format_leaderboard(Results(d.engine, d.cfg))

    return await asyncio.to_thread(board)


def format_leaderboard(results: Any) -> Reply:
    """The results service's ratings (evaluation.results.leaderboard's formatting) and decision."""
    from evaluation.human import STATUS_LABEL
    from evaluation.results import PRIOR_NOTE, rank_text, rating_text, ratings_caption

    bt, decision = results.ratings, results.decision
    if bt is None:
        return Reply("No pairwise votes yet; rate some pairs first (`/slam rate`).",
                     title="Leaderboard")  # fmt: skip
    fields = []
    style = getattr(results, "style_ratings", None)  # evaluation.human.style: length-controlled
    for r in bt.ranked():
        status = (
            "reference"
            if r.model == bt.reference
            else STATUS_LABEL.get(decision.status(r.model) or "", "")
        )
        line = f"{rating_text(r)}, {rank_text(r)}, {r.n_votes} votes · {status}"
        if style is not None and r.model in style.ratings:
            line += f" · length-controlled {style.text(r.model)}"
        fields.append((f"{r.rank}. {r.model}", line))
    for model, why in bt.unrated.items():
        fields.append((f"– {model}", f"not rated: {why}"))
    notes = list(bt.warnings)
    if any(r.bound for r in bt.ratings.values()):
        notes.append(PRIOR_NOTE)
    text = "\n".join([decision.headline, ratings_caption(bt), *notes])
    return Reply(text, title="Leaderboard", fields=fields)


def _le(field: Any) -> int:
    """The upper bound (`le`) of an int field."""
    return int(next(m.le for m in field.metadata if hasattr(m, "le")))


@command("probe", "probe [MEASURE]", "probe every model's latency now", admin=True, slow=True,
         params=(Param("measure", "requests per model", int, required=False),))  # fmt: skip
async def cmd_probe(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if len(cmd.args) > 1 or (cmd.args and not cmd.args[0].isdigit()):
        return _bad_args("probe", "MEASURE is a number of requests")
    limit = CommandLimits.model_fields["chat_probe_measure"]
    measure = int(cmd.args[0]) if cmd.args else int(limit.default)
    if not 1 <= measure <= _le(limit):
        return _bad_args("probe", f"MEASURE must be between 1 and {_le(limit)}")
    try:
        from evaluation.perf import run_probes
    except ImportError:
        return Reply("Probes are not available in this installation (evaluation.perf.probes).",
                     ok=False, ephemeral=True)  # fmt: skip
    summaries = await run_probes(d.engine, d.cfg, models=None, warmup=1, measure=measure,
                                 progress=False)  # fmt: skip
    lines = [getattr(x, "line", lambda x=x: str(x))() for x in summaries]
    return Reply("\n".join(lines) or "No models to probe.", title="Latency probe")


@command("invite", "invite NAME [viewer]",
         "a private link to the web rating page for NAME (`viewer`: to the live dashboard)",
         admin=True, ephemeral=True,
         params=(Param("name", "who the link is for, e.g. alice or student-07"),
                 Param("role", "rater (default) or viewer", required=False,
                       choices=("rater", "viewer"))))  # fmt: skip
async def cmd_invite(d: Services, cmd: Command, port: ChatPort) -> Reply:
    from bot.rating import ROLES, Tokens, check_name, link, load_secret

    if not 1 <= len(cmd.args) <= 2 or (len(cmd.args) == 2 and cmd.args[1].lower() not in ROLES):
        return _bad_args("invite", "Give a name, then optionally `viewer`")
    if not d.cfg.web.enabled:
        raise SlamError("The web front is off ([web] enabled = false in slam.toml).")
    name = check_name(cmd.args[0])
    role = ROLES[cmd.args[1].lower()] if len(cmd.args) == 2 else "rate"
    days = d.cfg.web.invite_days if role == "rate" else d.cfg.web.viewer_days
    token, grant = Tokens(await asyncio.to_thread(load_secret)).issue(role, name, days)
    url = link(d.cfg.web.public_url, role, token)
    until = datetime.fromtimestamp(grant.expires).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    what = "rate blind pairs" if role == "rate" else "see the live dashboard"
    note = "" if d.cfg.web.public_url else (
        "\nThis is the path on the bot's HTTP server: set [web] public_url for a full link.")
    return Reply(f"A private link for {name} to {what}, valid until {until}:\n{url}\n"
                 f"Send it to {name} only; `slam web revoke {name}` ends it.{note}",
                 ephemeral=True)  # fmt: skip


ADMIN_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.admin)
SLOW_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.slow)
EPHEMERAL_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.ephemeral)
