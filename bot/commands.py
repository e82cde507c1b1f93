"""The `/slam` subcommands. Each takes the bot's services, the command and the adapter's port
and returns a platform-neutral `Reply`; database work runs in a worker thread. They are the
`COMMANDS` registry, registered with `@command(name, usage, help, **flags)`."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from bot.events import Command, PairView, Reply
from bot.rating import db as _db
from bot.rating import features, lock_rater, rounds, selection
from bot.rating import legend as _legend
from bot.rating import masker as _masker
from bot.rating import post_pair as _post_pair
from bot.services import ChatPort, Services
from core.config import CommandLimits
from core.errors import SlamError, short
from core.features import Feature
from core.features import features as feature_list
from core.registry import Registry
from evaluation.human import VotePolicy, all_effective_votes, load_comments
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


FEATURE_PARAM = Param("feature", "the feature (default: every feature; the first for results)",
                      required=False)  # fmt: skip


def _take_feature(d: Services, args: list[str],
                  reserved: Collection[str] = ()) -> tuple[Feature | None, list[str]]:  # fmt: skip
    """A leading feature name off a command's arguments (not a `reserved` word on its own)."""
    if args and not (len(args) == 1 and args[0].lower() in reserved):
        feat = features.find(d.cfg, args[0])
        if feat is not None:
            return feat, args[1:]
    return None, args


@command("round", "round start|close [FEATURE]",
         "open a rating round per feature (or FEATURE's) and post its pairs, or close it",
         admin=True, slow=True,
         params=(Param("action", "start or close", choices=("start", "close")),
                 FEATURE_PARAM))  # fmt: skip
async def cmd_round(d: Services, cmd: Command, port: ChatPort) -> Reply:
    action = cmd.args[0].lower() if cmd.args else ""
    feat, rest = _take_feature(d, cmd.args[1:])
    if len(rest) > 1 or (rest and features.several(d.cfg)):
        return Reply(features.unknown(d.cfg, rest[0]), ok=False, ephemeral=True)
    if action == "close":
        if rest:
            return _bad_args("round", "Expected `start` or `close`")

        def close(s: Session) -> list[tuple[int, int, int]]:
            ids: list[int | None]
            if feat is None:  # every feature's open round
                ids = [r.experiment_id for r in rounds.open_rounds(s)] or [None]
            else:
                ids = [rounds.experiment_id(s, feat.name)]
                if ids[0] is None:
                    raise SlamError(f"Feature {feat.name} has no rounds yet.")
            closing = [rounds.close_round(s, exp_id) for exp_id in ids]
            out = []
            for rnd in closing:
                assert rnd.id is not None
                votes = all_effective_votes(s, _policy(d), round_id=rnd.id)
                out.append((rnd.id, len(votes), len({v.rater_id for v in votes})))
            return out

        closed = await _db(d, close)
        return Reply("\n".join(f"Round {rid} closed: {n_votes} vote(s) from {n_raters} rater(s)."
                               for rid, n_votes, n_raters in closed))  # fmt: skip
    if action != "start" or rest:
        return _bad_args("round", "Expected `start` or `close`")

    def start(s: Session) -> tuple[list[tuple[rounds.Opened, list[PairView]]], list[str]]:
        opened, problems = rounds.start_rounds(
            s, d.cfg, [feat.name] if feat is not None else None, d.rng,
            planner=lambda f: selection.round_planner(d.engine, d.cfg, feature=f))
        masker = _masker(d, s)
        return [(o, [rounds.pair_view(s, p, masker, _legend(d, port)) for p in o.pairs])
                for o in opened], problems  # fmt: skip

    opened, problems = await _db(d, start)
    lines = []
    hint = "Use `/slam rate` to get your next pair."
    for o, views in opened:
        channel = features.channel(d.cfg, o.feature)
        for view in views:
            await _post_pair(d, port, view, channel=channel)
        await _announce(d, port, None, o.feature)
        masked = sum(v.masked for v in views)
        note = f" {masked} response(s) named a model and were masked." if masked else ""
        of = f" ({o.feature.name})" if features.several(d.cfg) else ""
        posted = f"Round {o.round.id}{of} is open: {len(views)} pair(s) posted in {channel}."
        lines.append(f"{posted} {hint}{note}" if len(opened) == 1 else posted + note)
    if len(opened) > 1:
        lines.append(hint)
    return Reply("\n".join([*lines, *(f"Not opened: {p}" for p in problems)]))


@command("rate", "rate", "get your next unrated pair in a direct message", slow=True,
         ephemeral=True)  # fmt: skip
async def cmd_rate(d: Services, cmd: Command, port: ChatPort) -> Reply:
    user_hash = d.rater(cmd.platform, cmd.user_id)

    def pick(s: Session) -> tuple[selection.NextPair, PairView | None]:
        # The pair most useful for this rater (bot.rating.selection, evaluation.human.active);
        # one rater's requests one at a time (two `/slam rate` at once: no error).
        lock_rater(s, cmd.platform, user_hash)
        nxt = selection.next_pair(s, d.cfg, cmd.platform, user_hash, rng=d.rng)
        if nxt.pair is None:
            return nxt, None
        return nxt, rounds.pair_view(s, nxt.pair, _masker(d, s), _legend(d, port))

    nxt, view = await _db(d, pick)
    if nxt.decision is not None:
        await _announce(d, port, nxt.decision,
                        features.find(d.cfg, nxt.feature) if nxt.feature else None)  # fmt: skip
    if view is None:
        return Reply(nxt.finished, ephemeral=True)
    await _post_pair(d, port, view, rater_id=nxt.rater_id, dm_user=cmd.user_id)
    return Reply(f"Sent you pair {view.pair_id} in a direct message "
                 f"({nxt.done} of {nxt.quota} rated).", ephemeral=True)  # fmt: skip


async def _announce(d: Services, port: ChatPort, decision: Any,
                    feature: Feature | None = None) -> None:  # fmt: skip
    """The stopping rule's message, posted once in the feature's ratings channel when it
    settles (`decision`: the feature's, None: read it now; `feature`: None, the first)."""
    several = features.several(d.cfg)
    name = features.results_feature(d.cfg, feature.name if feature is not None else None)

    def check() -> str | None:
        got = decision
        if got is None:
            got = selection.snapshot(d.engine, d.cfg, feature=name).decision
        return selection.announce(d.engine, got, name if several else None)

    text = await asyncio.to_thread(check)
    if text is not None:
        await port.post(Reply(text, title="Decision settled"),
                        channel=features.channel(d.cfg, feature))  # fmt: skip


@command("status", "status", "round progress: pairs, votes, raters (per feature)")
async def cmd_status(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if features.several(d.cfg):
        return await _status_per_feature(d, port)

    def status(s: Session) -> Reply:
        rnd = (
            rounds.open_round(s)
            or s.exec(select(RatingRound).order_by(col(RatingRound.id).desc())).first()
        )
        if rnd is None or rnd.id is None:
            return Reply("No rating round yet; an admin can `round start` one.")
        day = f", responses of {rnd.run_date}" if rnd.run_date else ""
        return Reply(f"Round {rnd.id} is {rnd.status}{day}.", title="Rating status",
                     fields=_round_fields(d, s, rnd))  # fmt: skip

    result: Reply = await _db(d, status)
    # the decision and what the open comparisons still need (bot.rating.selection)
    if result.fields:
        snap = await asyncio.to_thread(selection.snapshot, d.engine, d.cfg)
        result.fields += selection.status_fields(snap)
        await _announce(d, port, snap.decision)
    return result


def _round_fields(d: Services, s: Session, rnd: RatingRound) -> list[tuple[str, str]]:
    """A round's pairs, votes, raters, votes per pair and choices."""
    assert rnd.id is not None
    pairs = rounds.round_pairs(s, rnd.id)
    votes = all_effective_votes(s, _policy(d), round_id=rnd.id)
    pairwise = [v for v in votes if v.kind == "pairwise"]
    per_pair = Counter(v.pair_id for v in pairwise)
    per_rater = Counter(v.rater_id for v in pairwise)
    finished = sum(1 for n in per_rater.values() if n >= len(pairs))
    choices = Counter(v.choice for v in pairwise)
    counts = [per_pair.get(p.id or 0, 0) for p in pairs]
    return [
        ("Pairs", str(len(pairs))),
        ("Votes", f"{len(pairwise)} pairwise" + (
            f", {len(votes) - len(pairwise)} scores" if len(votes) > len(pairwise) else "")),
        ("Raters", f"{len(per_rater)} ({finished} finished their set)"),
        ("Votes per pair", f"min {min(counts, default=0)}, "
                           f"median {statistics.median(counts) if counts else 0:g}"),
        ("Choices", ", ".join(f"{c} {choices.get(c, 0)}" for c in ("A", "B", "tie", "both_bad"))),
    ]  # fmt: skip


async def _status_per_feature(d: Services, port: ChatPort) -> Reply:
    """`/slam status` with several features: each feature's round (open, else its latest)
    in one line, then its decision and open comparisons."""
    every = feature_list(d.cfg)

    def status(s: Session) -> list[tuple[Feature, str]]:
        out = []
        for feat in every:
            exp_id = rounds.experiment_id(s, feat.name)
            rnd = None
            if exp_id is not None:
                rnd = rounds.open_round(s, exp_id) or s.exec(
                    select(RatingRound).where(RatingRound.experiment_id == exp_id)
                    .order_by(col(RatingRound.id).desc())).first()  # fmt: skip
            if rnd is None or rnd.id is None:
                out.append((feat, "no rating round yet"))
                continue
            day = f", responses of {rnd.run_date}" if rnd.run_date else ""
            got = dict(_round_fields(d, s, rnd))
            out.append((feat, f"round {rnd.id} is {rnd.status}{day}: {got['Pairs']} pair(s), "
                              f"{got['Votes']} vote(s), raters {got['Raters']}; votes per "
                              f"pair {got['Votes per pair']}"))  # fmt: skip
        return out

    lines = await _db(d, status)
    fields: list[tuple[str, str]] = []
    for feat, line in lines:
        fields.append((feat.name, line))
        snap = await asyncio.to_thread(selection.snapshot, d.engine, d.cfg,
                                       feature=feat.name)  # fmt: skip
        fields += [(f"{feat.name} · {k}", v) for k, v in selection.status_fields(snap)]
        await _announce(d, port, snap.decision, feat)
    return Reply(f"{len(lines)} features.", title="Rating status", fields=fields)


@command("reveal", "reveal PAIR_ID", "show which models a pair compared (round closed)",
         admin=True, ephemeral=True, params=(Param("pair", "the pair's number", int),))  # fmt: skip
async def cmd_reveal(d: Services, cmd: Command, port: ChatPort) -> Reply:
    # ASCII digits only: "¹" or "٣" pass str.isdigit, and a 30-digit id overflows the database.
    if len(cmd.args) != 1 or not re.fullmatch(r"#?[0-9]{1,12}", cmd.args[0]):
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
        fields = [("Votes", f"A {c['A']}, B {c['B']}, tie {c['tie']}, both bad {c['both_bad']}")]
        said = load_comments(s, pair_ids=[pair_id])  # what raters said, now it is revealed
        if said:
            choice = {"A": "voted A", "B": "voted B", "tie": "a tie", "both_bad": "both bad"}
            fields.append((f"Comments ({len(said)})", "\n".join(
                f"“{short(x.text, 200)}” ({choice.get(x.choice or '', 'no vote')})"
                for x in said[:10])))  # fmt: skip
        return Reply(f"Pair {pair_id}: A was *{names[0]}*, B was *{names[1]}*.", fields=fields,
                     ephemeral=True)  # fmt: skip

    result: Reply = await _db(d, reveal)
    return result


@command("report", "report [FEATURE] [all|CHART]",
         "the decision, leaderboard and a summary card (of FEATURE; default the first); "
         "`all` or a chart for more", slow=True, dashboard=True,
         params=(FEATURE_PARAM,
                 Param("chart", "all, or one chart's name", required=False)))  # fmt: skip
async def cmd_report(d: Services, cmd: Command, port: ChatPort) -> Reply:
    from evaluation.charts import ALL_CHARTS, CHART_NAMES
    from evaluation.report import build_report
    from evaluation.results import Results, summary_text

    several = features.several(d.cfg)
    feat, args = _take_feature(d, cmd.args, {"all", *ALL_CHARTS})
    if len(args) > 1:
        if several and feat is None:
            return Reply(features.unknown(d.cfg, args[0]), ok=False, ephemeral=True)
        return _bad_args("report", "Give `all` or one chart name")
    arg = args[0].lower() if args else ""
    if arg and arg != "all" and arg not in ALL_CHARTS:
        shown = re.sub(r"[^A-Za-z0-9_.-]", "", arg)[:24] or "?"
        if several and feat is None:
            return Reply(f"`{shown}` is neither a feature nor a chart; features: "
                         f"{features.names_text(d.cfg)}; charts: all, {', '.join(ALL_CHARTS)}",
                         ok=False, ephemeral=True)  # fmt: skip
        return _bad_args("report", f"Unknown chart `{shown}`; charts: all, {', '.join(ALL_CHARTS)}")
    only = ["summary"] if not arg else list(CHART_NAMES) if arg == "all" else [arg]
    out = d.report_dir / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    name = features.results_feature(d.cfg, feat.name if feat is not None else None)
    title = f"SLaM report · {name}" if name is not None else "SLaM report"

    def build() -> Reply:
        if d.report_builder is not None:  # tests and embedders may swap the builder
            extra = {"feature": name} if name is not None else {}
            res = d.report_builder(d.engine, d.cfg, out, only, **extra)
            files = {k: Path(v) for k, v in res.charts.items() if Path(v).exists()}
            return Reply(res.summary_text or "Report built.", title=title, files=files)
        results = Results(d.engine, d.cfg, feature=name)
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
        return Reply(text + _other_features(d, name, "report"), title=title,
                     files=res.with_data)  # fmt: skip

    return await asyncio.to_thread(build)


def _other_features(d: Services, name: str | None, what: str) -> str:
    """With several features: which one this was and how to ask for another."""
    if name is None:
        return ""
    others = [f.name for f in feature_list(d.cfg) if f.name != name]
    return (f"\nFeature: {name}. Others: {', '.join(others)} "
            f"(`/slam {what} FEATURE`).")  # fmt: skip


@command("leaderboard", "leaderboard [FEATURE]",
         "Bradley–Terry ratings, intervals and the decision (of FEATURE; default the first)",
         slow=True, dashboard=True, params=(FEATURE_PARAM,))  # fmt: skip
async def cmd_leaderboard(d: Services, cmd: Command, port: ChatPort) -> Reply:
    from evaluation.results import Results

    feat, args = _take_feature(d, cmd.args)
    if args:
        if features.several(d.cfg) or feat is not None:
            return Reply(features.unknown(d.cfg, args[0]), ok=False, ephemeral=True)
        return _bad_args("leaderboard", "Give no argument")
    name = features.results_feature(d.cfg, feat.name if feat is not None else None)

    def board() -> Reply:
        reply = format_leaderboard(Results(d.engine, d.cfg, feature=name))
        if name is not None:
            reply.title = f"Leaderboard · {name}"
            reply.text += _other_features(d, name, "leaderboard")
        return reply

    return await asyncio.to_thread(board)


def format_leaderboard(results: Any) -> Reply:
    """The results service's ratings (evaluation.results.leaderboard's formatting) and decision."""
    from evaluation.human import STATUS_LABEL, style_cell
    from evaluation.results import PRIOR_NOTE, rank_text, rating_text, ratings_caption

    bt, decision = results.ratings, results.decision
    # which version of each model the ratings are based on (evaluation.results.versions)
    versions = results.version_lines() if hasattr(results, "version_lines") else []
    if bt is None:
        return Reply("\n".join(["No pairwise votes yet; rate some pairs first (`/slam rate`).",
                                *versions]), title="Leaderboard")  # fmt: skip
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
            line += f" · length-controlled {style_cell(style.ratings[r.model], r)}"
        fields.append((f"{r.rank}. {r.model}", line))
    for model, why in bt.unrated.items():
        fields.append((f"– {model}", f"not rated: {why}"))
    notes = list(bt.warnings)
    if any(r.bound for r in bt.ratings.values()):
        notes.append(PRIOR_NOTE)
    text = "\n".join([decision.headline, ratings_caption(bt), *notes, *versions])
    return Reply(text, title="Leaderboard", fields=fields)


def _le(field: Any) -> int:
    """The upper bound (`le`) of an int field."""
    return int(next(m.le for m in field.metadata if hasattr(m, "le")))


@command("probe", "probe [MEASURE]", "probe every model's latency now", admin=True, slow=True,
         params=(Param("measure", "requests per model", int, required=False),))  # fmt: skip
async def cmd_probe(d: Services, cmd: Command, port: ChatPort) -> Reply:
    if len(cmd.args) > 1 or (cmd.args and not re.fullmatch(r"[0-9]{1,9}", cmd.args[0])):
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



@command("alerts", "alerts", "the open alerts (availability, latency, hosts, versions, drift…)")
async def cmd_alerts(d: Services, cmd: Command, port: ChatPort) -> Reply:
    from bot.incidents import listing

    if cmd.args:
        return _bad_args("alerts", "It takes no arguments")
    lines = await asyncio.to_thread(listing, d.engine)
    if not lines:
        off = "" if d.cfg.alerts.enabled else " (alerts are off: [alerts] enabled = false)"
        return Reply(f"No open alerts{off}.", title="Alerts")
    return Reply("\n".join(lines), title=f"Open alerts ({len(lines)})")

ADMIN_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.admin)
SLOW_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.slow)
EPHEMERAL_COMMANDS = frozenset(n for n, s in COMMANDS.items() if s.ephemeral)
