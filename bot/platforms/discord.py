"""Discord adapter (discord.py): `/slam` application commands, pair embeds, and votes from raw
reaction events, so reactions on messages the client never cached (after a restart) count.

The `/slam` group is built from the command specs (bot.commands.COMMANDS): one subcommand per
spec with its parameters, deferred at once, answered ephemerally when the spec says so. The
adapter runs inside bot.ops.runtime's lifecycle (ops endpoints, web front, scheduler, shutdown)."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import discord
from discord import app_commands

from bot.commands import COMMANDS, EPHEMERAL_COMMANDS, Spec
from bot.dispatcher import Dispatcher
from bot.events import Command, Comment, PairView, Posted, Reaction, Reply
from bot.reactions import to_unicode
from bot.services import Capabilities
from core.errors import SlamError, short

log = logging.getLogger(__name__)
EPHEMERAL = EPHEMERAL_COMMANDS


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


def _why(exc: discord.HTTPException) -> str:
    return short(f"{exc.status} {exc.text or ''}".strip(), 160)


async def deliver(send: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
    """Send an answer; if Discord refuses it (attachments too large, missing permission,
    …), send it again without the attachments and with a note saying why, so the user gets
    an answer and the log one line instead of a traceback. None when nothing could be sent."""
    try:
        return await send(**kwargs)
    except discord.HTTPException as exc:
        files = kwargs.get("files") or []
        if not files:
            log.warning("discord: the answer could not be posted (%s)", _why(exc))
            return None
        log.warning("discord: %d attachment(s) refused (%s); answering without them",
                    len(files), _why(exc))  # fmt: skip
        note = f"({len(files)} chart(s) could not be attached: {_why(exc)})"
        retry = {**kwargs, "files": []}
        retry["content"] = _cut(f"{retry.get('content') or ''}\n{note}".strip(), 2000)
        try:
            return await send(**retry)
        except discord.HTTPException as again:
            log.warning("discord: the answer could not be posted (%s)", _why(again))
            return None


class DiscordPort:
    """Posting and seeding reactions through the discord.py client."""

    platform = "discord"
    unicode_emoji = True
    # Ephemeral answers exist only for interactions (handled in build_group), not for posts.
    capabilities = Capabilities(channel=True, dms=True, ephemeral=False, uploads=True,
                                votes="reactions")  # fmt: skip

    def __init__(self, client: discord.Client):
        self.client = client

    async def send_reply(self, reply: Reply, channel: str, user: str) -> None:
        """Answer in `channel`, charts attached."""
        await self.post(reply, channel=channel)

    async def _channel(self, channel: str) -> Any:
        if channel.isascii() and channel.isdigit():
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
        msg = await deliver(target.send, kwargs)
        if msg is None:
            raise SlamError("Discord refused the message; the bot's log says why")
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
        if message.author.bot:
            return
        ref = message.reference
        if ref is not None and ref.message_id and not message.content.startswith("!slam"):
            await self._comment(message, ref.message_id)
            return
        if not self.text_commands:
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
        await deliver(message.channel.send, kwargs)

    async def _comment(self, message: discord.Message, replied_to: int) -> None:
        """A reply to a pair's message is the rater's comment on the pair (reading its text
        needs the Message Content intent, which `text_commands` turns on); a 📝 reaction says
        it was saved, a reply says why not. Replies to other messages are left alone."""
        comment = Comment(platform="discord", user_id=str(message.author.id),
                          channel=str(message.channel.id), message_ref=str(replied_to),
                          text=message.content, event_key=f"discord:{message.id}")  # fmt: skip
        outcome = await self.dispatcher.handle_comment(comment)
        log.debug("discord comment -> %s", outcome.status)
        try:
            if outcome.counted:
                await message.add_reaction("📝")
            elif outcome.status in ("closed", "rate_limited"):
                await message.reply(outcome.message(), mention_author=False)
        except discord.HTTPException as exc:  # the comment is stored; the receipt is a nicety
            log.info("discord: comment receipt not sent: %s", _why(exc))

    async def _reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        if self.user is not None and payload.user_id == self.user.id:
            return  # the bot's own seed reactions
        reaction = Reaction(
            platform="discord", user_id=str(payload.user_id), channel=str(payload.channel_id),
            message_ref=str(payload.message_id), reaction=str(payload.emoji.name or ""),
            added=added, event_key=f"discord:{uuid.uuid4().hex}",
        )  # fmt: skip
        try:
            outcome = await self.dispatcher.handle_reaction(reaction)
        except Exception as exc:  # Discord does not redeliver: say so in one log line
            log.error("discord: a reaction by user %s on message %s was NOT recorded: %s",
                      payload.user_id, payload.message_id, short(str(exc), 200),
                      exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
            return
        log.debug("discord reaction -> %s", outcome.status)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, False)


def _subcommand(
    client: SlamDiscordClient, name: str, spec: Spec
) -> app_commands.Command[Any, Any, Any]:
    """One `/slam NAME` subcommand from its spec: its parameters (a word, a number, or one of
    the choices), deferred at once, answered ephemerally when the spec or the reply says so."""

    async def callback(interaction: discord.Interaction, **kwargs: Any) -> None:
        given = [str(kwargs[p.name]) for p in spec.params if kwargs.get(p.name) is not None]
        text = " ".join([name, *given])
        await interaction.response.defer(thinking=True, ephemeral=spec.ephemeral)
        reply = await client.run_command(text, interaction.user.id, interaction.channel_id)
        if reply is None:
            return
        kwargs_: dict[str, Any] = {"content": reply_content(reply), "files": reply_files(reply),
                                   "ephemeral": reply.ephemeral or spec.ephemeral}  # fmt: skip
        embed = reply_embed(reply)
        if embed is not None:
            kwargs_["embed"] = embed
        await deliver(interaction.followup.send, kwargs_)

    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=discord.Interaction)]  # fmt: skip
    described = {}
    for p in spec.params:
        kind: Any = Literal[p.choices] if p.choices else p.kind
        params.append(inspect.Parameter(
            p.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind if p.required else kind | None,
            default=inspect.Parameter.empty if p.required else None))  # fmt: skip
        described[p.name] = p.description[:100]
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = described  # type: ignore[attr-defined]
    help_ = spec.help + (" (admin)" if spec.admin else "")
    return app_commands.Command(name=name, description=help_[:100], callback=callback)


def build_group(client: SlamDiscordClient) -> app_commands.Group:
    """`/slam <subcommand>` as a Discord command group, one subcommand per command spec."""
    group = app_commands.Group(name="slam", description="SLaM bot: blind ratings and reports")
    for name, spec in COMMANDS.items():
        group.add_command(_subcommand(client, name, spec))
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
    """Run until cancelled; with `port`, serve /healthz, /metrics and the web front there. The
    scheduled jobs start once the gateway session is ready (their messages need the client)."""
    import asyncio

    from bot.ops import AdapterRuntime

    dispatcher = Dispatcher(engine, cfg)
    async with AdapterRuntime(dispatcher, host=host, port=port, scheduler=scheduler) as rt:
        client = SlamDiscordClient(dispatcher)
        await rt.serve()

        async def start_jobs() -> None:
            await client.wait_until_ready()
            await rt.start_jobs(client.port)

        jobs = asyncio.create_task(start_jobs())
        try:
            async with client:
                await client.start(token)
        except discord.LoginFailure:
            raise SlamError("Discord rejected DISCORD_TOKEN; check the bot token") from None
        finally:
            jobs.cancel()
