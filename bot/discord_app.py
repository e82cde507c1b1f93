"""Discord adapter (discord.py): `/slam` application commands, pair embeds, and votes from raw
reaction events, so reactions on messages the client never cached (after a restart) count."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import discord
from discord import app_commands

from bot.dispatcher import Dispatcher
from bot.events import Command, PairView, Posted, Reaction, Reply
from bot.reactions import to_unicode
from core.errors import SlamError

log = logging.getLogger(__name__)
EPHEMERAL = frozenset({"help", "rate", "reveal"})


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pair_embed(view: PairView) -> discord.Embed:
    """A blind pair as an embed: neutral labels, no model names."""
    embed = discord.Embed(title=f"Pair {view.pair_id} · round {view.round_id}",
                          description=_cut(view.context, 4000))  # fmt: skip
    embed.add_field(name="Response A", value=_cut(view.response_a or "(empty)", 1024), inline=False)
    embed.add_field(name="Response B", value=_cut(view.response_b or "(empty)", 1024), inline=False)
    embed.set_footer(text=_cut(view.legend, 2000))
    return embed


def reply_embed(reply: Reply) -> discord.Embed | None:
    if reply.pair is not None:
        return pair_embed(reply.pair)
    if not reply.title and not reply.fields:
        return None
    embed = discord.Embed(title=reply.title, description=_cut(reply.text, 4000) or None)
    for name, value in reply.fields[:25]:
        embed.add_field(name=_cut(name, 256), value=_cut(value, 1024), inline=False)
    return embed


def reply_content(reply: Reply) -> str | None:
    return None if reply_embed(reply) is not None else _cut(reply.text or "Done.", 2000)


def reply_files(reply: Reply) -> list[discord.File]:
    return [discord.File(str(p), filename=p.name) for p in reply.files.values()][:10]


class DiscordPort:
    """Posting and seeding reactions through the discord.py client."""

    platform = "discord"
    unicode_emoji = True

    def __init__(self, client: discord.Client):
        self.client = client

    async def _channel(self, channel: str) -> Any:
        if channel.isdigit():
            ch = self.client.get_channel(int(channel))
            return ch or await self.client.fetch_channel(int(channel))
        for guild in self.client.guilds:
            for ch in guild.text_channels:
                if ch.name == channel.lstrip("#"):
                    return ch
        raise SlamError(f"no Discord text channel named '{channel}'; set [chat].channel to a "
                        "channel name or id the bot can see")  # fmt: skip

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None
    ) -> Posted:
        if dm_user:
            user = self.client.get_user(int(dm_user)) or await self.client.fetch_user(int(dm_user))
            target: Any = user.dm_channel or await user.create_dm()
        elif channel:
            target = await self._channel(channel)
        else:
            raise SlamError("no Discord channel to post to; set [chat].channel")
        embed = reply_embed(reply)
        kwargs: dict[str, Any] = {"content": reply_content(reply), "files": reply_files(reply)}
        if embed is not None:
            kwargs["embed"] = embed
        msg = await target.send(**kwargs)
        return Posted(channel=str(msg.channel.id), ref=str(msg.id))

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        channel = await self._channel(posted.channel)
        message = channel.get_partial_message(int(posted.ref))
        for name in names:
            try:
                await message.add_reaction(to_unicode(name))
            except discord.HTTPException as exc:  # seeds are a convenience
                log.info("seed reaction %s not added: %s", name, exc)


class SlamDiscordClient(discord.Client):
    """The bot: `/slam` commands, optional `!slam` text commands, raw reaction votes."""

    def __init__(self, dispatcher: Dispatcher, *, text_commands: bool = False, **kwargs: Any):
        intents = kwargs.pop("intents", None) or discord.Intents.default()
        intents.message_content = text_commands or intents.message_content
        super().__init__(intents=intents, **kwargs)
        self.dispatcher = dispatcher
        self.text_commands = text_commands
        self.port = DiscordPort(self)
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(build_group(self))
        self.sync_commands = True

    async def setup_hook(self) -> None:
        if self.sync_commands:
            await self.tree.sync()

    async def on_ready(self) -> None:
        if self.user is not None:
            self.dispatcher.ignore_self.self_ids.add(str(self.user.id))
        log.info("discord: logged in as %s", self.user)

    async def run_command(self, text: str, user_id: int, channel_id: int | None) -> Reply | None:
        cmd = Command("discord", str(user_id), str(channel_id or ""), text)
        return await self.dispatcher.handle_command(cmd, self.port)

    async def on_message(self, message: discord.Message) -> None:
        if not self.text_commands or message.author.bot:
            return
        if not message.content.startswith("!slam"):
            return
        reply = await self.run_command(message.content[5:].strip(), message.author.id,
                                       message.channel.id)  # fmt: skip
        if reply is None:
            return
        kwargs: dict[str, Any] = {"content": reply_content(reply), "files": reply_files(reply)}
        embed = reply_embed(reply)
        if embed is not None:
            kwargs["embed"] = embed
        await message.channel.send(**kwargs)

    async def _reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        if self.user is not None and payload.user_id == self.user.id:
            return  # the bot's own seed reactions
        reaction = Reaction(
            platform="discord", user_id=str(payload.user_id), channel=str(payload.channel_id),
            message_ref=str(payload.message_id), reaction=str(payload.emoji.name or ""),
            added=added, event_key=f"discord:{uuid.uuid4().hex}",
        )  # fmt: skip
        outcome = await self.dispatcher.handle_reaction(reaction)
        log.debug("discord reaction -> %s", outcome.status)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, False)


def build_group(client: SlamDiscordClient) -> app_commands.Group:
    """`/slam <subcommand>` as a Discord command group mirroring the Slack subcommands."""
    group = app_commands.Group(name="slam", description="SLaM bot: blind ratings and reports")

    async def run(interaction: discord.Interaction, text: str) -> None:
        name = text.split()[0]
        await interaction.response.defer(thinking=True, ephemeral=name in EPHEMERAL)
        reply = await client.run_command(text, interaction.user.id, interaction.channel_id)
        if reply is None:
            return
        kwargs: dict[str, Any] = {"content": reply_content(reply), "files": reply_files(reply),
                                  "ephemeral": reply.ephemeral or name in EPHEMERAL}  # fmt: skip
        embed = reply_embed(reply)
        if embed is not None:
            kwargs["embed"] = embed
        await interaction.followup.send(**kwargs)

    @group.command(name="help", description="List the commands")
    async def help_(interaction: discord.Interaction) -> None:
        await run(interaction, "help")

    @group.command(name="rate", description="Get your next unrated pair in a DM")
    async def rate(interaction: discord.Interaction) -> None:
        await run(interaction, "rate")

    @group.command(name="report", description="The evaluation report, or one chart")
    async def report(interaction: discord.Interaction, chart: str | None = None) -> None:
        await run(interaction, f"report {chart}" if chart else "report")

    @group.command(name="status", description="Round progress: pairs, votes, raters")
    async def status(interaction: discord.Interaction) -> None:
        await run(interaction, "status")

    @group.command(name="models", description="The models under test")
    async def models(interaction: discord.Interaction) -> None:
        await run(interaction, "models")

    @group.command(name="leaderboard", description="Bradley–Terry ratings from the votes")
    async def leaderboard(interaction: discord.Interaction) -> None:
        await run(interaction, "leaderboard")

    @group.command(name="round", description="Open or close a rating round (admin)")
    @app_commands.choices(action=[app_commands.Choice(name=a, value=a) for a in ("start", "close")])
    async def round_(interaction: discord.Interaction, action: str) -> None:
        await run(interaction, f"round {action}")

    @group.command(name="reveal", description="Which models a pair compared (admin, closed round)")
    async def reveal(interaction: discord.Interaction, pair: int) -> None:
        await run(interaction, f"reveal {pair}")

    @group.command(name="probe", description="Probe every model's latency now (admin)")
    async def probe(interaction: discord.Interaction, measure: int | None = None) -> None:
        await run(interaction, f"probe {measure}" if measure else "probe")

    return group


async def run_discord(
    engine: Any,
    cfg: Any,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    scheduler: bool = True,
) -> None:
    """Run until cancelled; with `port`, serve /healthz and /metrics there. The scheduled
    jobs start once the gateway session is ready (their messages need the client)."""
    import asyncio

    from bot.observability import Health, database_check, instrument, serve_ops
    from bot.scheduler import SlamScheduler, start_for_bot

    dispatcher = instrument(Dispatcher(engine, cfg))
    client = SlamDiscordClient(dispatcher)
    health = Health().add("database", database_check(engine))
    runner = await serve_ops(host, port, health) if port else None
    sched: SlamScheduler | None = None

    async def start_jobs() -> None:
        nonlocal sched
        await client.wait_until_ready()
        sched = await start_for_bot(dispatcher, client.port, health=health)

    jobs: asyncio.Task[None] | None = None
    try:
        async with client:
            if scheduler:
                jobs = asyncio.create_task(start_jobs())
            await client.start(token)
    except discord.LoginFailure:
        raise SlamError("Discord rejected DISCORD_TOKEN; check the bot token") from None
    finally:
        if jobs is not None:
            jobs.cancel()
        if sched is not None:
            await sched.aclose()
        if runner is not None:
            await runner.cleanup()
        await dispatcher.aclose()
