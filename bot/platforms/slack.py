"""Slack adapter (slack-bolt, asyncio): Socket Mode or HTTP mode with signature checks.

Reactions are recorded (committed) before Bolt answers Slack, so an HTTP 200 means the vote is
stored; a retry of the same event id is recognised by its event key. Slash commands that take
longer than Slack's 3 s (the specs flagged `slow` in bot.commands) are acknowledged at once and
finished by a lazy listener that posts the answer and uploads charts in a thread. The adapter
runs inside bot.ops.runtime's lifecycle (ops endpoints, web front, scheduler, shutdown).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from bot.commands import COMMANDS
from bot.dispatcher import Dispatcher
from bot.events import Command, Comment, PairView, Posted, Reaction, Reply
from bot.services import Capabilities
from core.env import environment
from core.errors import SlamError

log = logging.getLogger(__name__)
MAX_TEXT = 2900  # Block Kit section text limit is 3000


def require_env(name: str, why: str, env: Mapping[str, str] | None = None) -> str:
    """A secret from the environment (`os.environ`, or `env`), or a SlamError naming the
    variable (one of core.env's)."""
    return environment(env).require(name.lower(), why)


def api_base_url(env: Mapping[str, str] | None = None) -> str:
    url = environment(env).slack_api_url or "https://slack.com/api/"
    return url if url.endswith("/") else url + "/"


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pair_blocks(view: PairView) -> list[dict[str, Any]]:
    """Block Kit for a blind pair: neutral labels only."""

    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text)}}

    return [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": f"Pair {view.pair_id} · round {view.round_id}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(view.context)}]},
        {"type": "divider"},
        section(f"*Response A*\n{view.response_a}"),
        section(f"*Response B*\n{view.response_b}"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": view.legend}]},
    ]  # fmt: skip


def reply_blocks(reply: Reply) -> list[dict[str, Any]]:
    if reply.pair is not None:
        return pair_blocks(reply.pair)
    blocks: list[dict[str, Any]] = []
    if reply.title:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": reply.title}})
    if reply.text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(reply.text)}})
    if reply.fields:
        for i in range(0, len(reply.fields), 10):  # a section holds at most 10 fields
            blocks.append({"type": "section", "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", 1900)}
                for k, v in reply.fields[i : i + 10]]})  # fmt: skip
    return blocks


def fallback_text(reply: Reply) -> str:
    if reply.pair is not None:
        return f"Pair {reply.pair.pair_id}: which response is better?"
    return _cut(reply.title or reply.text or "SLaM bot", 3000)


class SlackPort:
    """Posting and reacting through the Slack Web API."""

    platform = "slack"
    unicode_emoji = False
    capabilities = Capabilities(channel=True, dms=True, ephemeral=True, uploads=True,
                                votes="reactions")  # fmt: skip

    def __init__(self, client: Any):
        self.client = client

    async def post(
        self, reply: Reply, *, channel: str | None = None, dm_user: str | None = None,
        thread_ts: str | None = None,
    ) -> Posted:  # fmt: skip
        target = dm_user or channel
        if not target:
            raise SlamError("no Slack channel to post to; set [chat].channel")
        resp = await self.client.chat_postMessage(
            channel=target, text=fallback_text(reply), blocks=reply_blocks(reply),
            thread_ts=thread_ts, unfurl_links=False,
        )  # fmt: skip
        return Posted(channel=resp["channel"], ref=resp["ts"])

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        from slack_sdk.errors import SlackApiError

        for name in names:
            try:
                await self.client.reactions_add(
                    channel=posted.channel, timestamp=posted.ref, name=name
                )
            except SlackApiError as exc:  # already_reacted etc.: seeds are a convenience
                log.info("seed reaction %s not added: %s", name, exc.response.get("error"))

    async def send_reply(self, reply: Reply, channel: str, user: str) -> None:
        """Answer a command in its channel; charts go into a thread under the answer."""
        if reply.ephemeral and not reply.files:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=fallback_text(reply), blocks=reply_blocks(reply)
            )
            return
        posted = await self.post(reply, channel=channel)
        if reply.files:
            uploads = [{"file": str(p), "filename": p.name, "title": name}
                       for name, p in reply.files.items()]  # fmt: skip
            await self.client.files_upload_v2(
                file_uploads=uploads, channel=posted.channel, thread_ts=posted.ref
            )


def ack_payload(reply: Reply) -> dict[str, Any]:
    return {
        "text": fallback_text(reply),
        "blocks": reply_blocks(reply),
        "response_type": "ephemeral" if reply.ephemeral or not reply.ok else "in_channel",
    }


async def build_app(
    dispatcher: Dispatcher,
    env: Mapping[str, str] | None = None,
    *,
    socket_mode: bool = False,
) -> Any:
    """The Bolt AsyncApp with the `/slam` command and reaction listeners.

    Calls auth.test once to learn the bot's own user id (so its seed reactions are ignored);
    the `authorize` function then answers from that, with no per-request auth.test.
    """
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    token = require_env("SLACK_BOT_TOKEN", "create a Slack app from slack_manifest.yml and "
                        "export its Bot User OAuth Token (xoxb-…)", env)  # fmt: skip
    secret = None
    if not socket_mode:
        secret = require_env("SLACK_SIGNING_SECRET", "HTTP mode verifies every request with the "
                             "app's Signing Secret (Basic Information page)", env)  # fmt: skip
    client = AsyncWebClient(token=token, base_url=api_base_url(env))
    try:
        me = await client.auth_test()
    except SlackApiError as exc:
        raise SlamError(f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}); "
                        "check the token and the app's installation") from None  # fmt: skip
    except Exception as exc:
        raise SlamError(f"cannot reach the Slack API at {api_base_url(env)}: {exc}") from None
    result = AuthorizeResult(
        enterprise_id=me.get("enterprise_id"), team_id=me.get("team_id"),
        bot_user_id=me.get("user_id"), bot_id=me.get("bot_id"), bot_token=token,
    )  # fmt: skip
    dispatcher.ignore_self.self_ids.update(x for x in (me.get("user_id"), me.get("bot_id")) if x)

    async def authorize(**_: Any) -> AuthorizeResult:
        return result

    app = AsyncApp(
        client=client,
        signing_secret=secret or "socket-mode-unused",
        authorize=authorize,
        process_before_response=True,  # listeners finish (votes commit) before the 200
        request_verification_enabled=not socket_mode,
    )
    port = SlackPort(client)
    register_listeners(app, dispatcher, port)
    return app


def register_listeners(app: Any, dispatcher: Dispatcher, port: SlackPort) -> None:
    def command_of(body: dict[str, Any]) -> Command:
        return Command("slack", body.get("user_id", ""), body.get("channel_id", ""),
                       body.get("text", "") or "")  # fmt: skip

    def deferred(cmd: Command) -> bool:
        """Slow commands are acknowledged now and answered later, except when the answer is
        a refusal that needs no work (an admin command from someone who is not an admin, or
        a user over the command rate limit): that is the acknowledgement itself, not a
        "Working on…" followed by a refusal."""
        auth = dispatcher.auth
        refused = (
            (cmd.name in auth.commands and not auth.is_admin(cmd.platform, cmd.user_id))
            or not dispatcher.rate_limit.would_allow("cmd", cmd.platform, cmd.user_id)
        )  # fmt: skip
        spec = COMMANDS.find(cmd.name)
        return spec is not None and spec.slow and not refused

    # What the acknowledgement decided, for the lazy worker of the same request: the rate
    # limit may change in between, and the two must agree (answered once, never twice).
    decided: dict[str, bool] = {}

    def request_key(body: dict[str, Any]) -> str:
        return str(body.get("trigger_id") or id(body))

    async def slam_ack(body: dict[str, Any], ack: Any) -> None:
        cmd = command_of(body)
        later = decided[request_key(body)] = deferred(cmd)
        if len(decided) > 10_000:  # requests whose worker never ran (it always does)
            decided.pop(next(iter(decided)))
        if later:
            await ack(response_type="ephemeral", text=f"Working on `{cmd.name}`…")
            return
        reply = await dispatcher.handle_command(cmd, port)
        if reply is None:
            await ack()
        else:
            await ack(**ack_payload(reply))

    async def slam_work(body: dict[str, Any]) -> None:
        cmd = command_of(body)
        later = decided.pop(request_key(body), None)
        if not (deferred(cmd) if later is None else later):
            return
        reply = await dispatcher.handle_command(cmd, port)
        if reply is not None:
            await port.send_reply(reply, cmd.channel, cmd.user_id)

    app.command("/slam")(ack=slam_ack, lazy=[slam_work])

    async def on_reaction(body: dict[str, Any], event: dict[str, Any], added: bool) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        reaction = Reaction(
            platform="slack", user_id=event.get("user", ""), channel=item.get("channel", ""),
            message_ref=item.get("ts", ""), reaction=event.get("reaction", ""), added=added,
            event_key=f"slack:{body.get('event_id') or event.get('event_ts')}",
        )  # fmt: skip
        outcome = await dispatcher.handle_reaction(reaction)
        log.debug("reaction %s -> %s", reaction.event_key, outcome.status)

    @app.event("reaction_added")
    async def reaction_added(body: dict[str, Any], event: dict[str, Any]) -> None:
        await on_reaction(body, event, True)

    @app.event("reaction_removed")
    async def reaction_removed(body: dict[str, Any], event: dict[str, Any]) -> None:
        await on_reaction(body, event, False)

    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        """A thread reply under a pair's message (or its edit) is the rater's comment on the
        pair; every other message is left alone (threads are the team's conversation)."""
        msg = event.get("message") if event.get("subtype") == "message_changed" else event
        if not isinstance(msg, dict) or msg.get("bot_id") or event.get("bot_id"):
            return
        if event.get("subtype") not in (None, "message_changed", "thread_broadcast"):
            return
        thread, text = msg.get("thread_ts"), msg.get("text")
        if not thread or thread == msg.get("ts") or not isinstance(text, str):
            return
        channel, key = event.get("channel", ""), body.get("event_id") or event.get("event_ts")
        comment = Comment(platform="slack", user_id=msg.get("user", ""), channel=channel,
                          message_ref=thread, text=text, event_key=f"slack:{key}")  # fmt: skip
        outcome = await dispatcher.handle_comment(comment)
        log.debug("comment %s -> %s", comment.event_key, outcome.status)
        if outcome.status in ("recorded", "closed", "rate_limited", "empty"):
            await port.client.chat_postEphemeral(
                channel=channel, user=comment.user_id, text=outcome.message(), thread_ts=thread
            )


# What Slack sends: a Unix time in ASCII digits and "v0=" + a lowercase hex HMAC-SHA256.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def malformed_signature(headers: Mapping[str, str]) -> str | None:
    """Why the signature headers cannot be Slack's ('missing', 'malformed'), or None.
    Checked before Bolt, whose verifier raises on a non-numeric timestamp or a non-ASCII
    signature instead of refusing the request."""
    ts = headers.get("X-Slack-Request-Timestamp")
    sig = headers.get("X-Slack-Signature")
    if not ts or not sig:
        return "missing"
    if not _TIMESTAMP.fullmatch(ts) or not _SIGNATURE.fullmatch(sig):
        return "malformed"
    return None


def slack_routes(bolt_app: Any, path: str = "/slack/events") -> Any:
    """A function adding the Bolt endpoint at `path` to an aiohttp application.

    Its request handler is the Slack HTTP adapter's error boundary: a request whose
    signature headers are missing or malformed gets a 401 like any forged request (counted
    in slam_rejected_requests_total, not as an error); an unexpected failure is logged
    once and answered 500 (Slack retries it), never with a traceback in the response."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

    from bot.ops import ERRORS, REJECTED

    async def events(request: web.Request) -> web.Response:
        why = malformed_signature(request.headers)
        if why is not None:
            REJECTED.labels(reason=f"{why}_signature").inc()
            log.info("refused a Slack request with %s signature headers", why)
            return web.Response(status=401, text="invalid request signature")
        try:
            bolt_resp = await bolt_app.async_dispatch(await to_bolt_request(request))
            if bolt_resp.status == 401:
                REJECTED.labels(reason="bad_signature").inc()
            return await to_aiohttp_response(bolt_resp)
        except Exception:
            ERRORS.labels(component="slack").inc()
            log.exception("Slack request to %s failed", path)
            return web.Response(status=500, text="internal error")

    def add(app: web.Application) -> None:
        app.router.add_post(path, events)

    return add


def web_app(bolt_app: Any, path: str = "/slack/events", health: Any = None) -> Any:
    """An aiohttp application serving Bolt at `path`, plus `/healthz` and `/metrics` (the
    bot itself serves these through bot.ops.runtime, with the web front beside them)."""
    from aiohttp import web

    from bot.ops import add_routes

    web_application = web.Application()
    slack_routes(bolt_app, path)(web_application)
    add_routes(web_application, health)
    return web_application


async def serve_http(
    bolt_app: Any, host: str, port: int, path: str = "/slack/events", health: Any = None
) -> Any:
    """Start serving; returns the aiohttp runner (call `await runner.cleanup()` to stop)."""
    from aiohttp import web

    runner = web.AppRunner(web_app(bolt_app, path, health))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def socket_handler(dispatcher: Dispatcher, env: Mapping[str, str] | None = None) -> Any:
    """A Socket Mode handler (not yet connected): `await h.connect_async()` / `close_async()`."""
    app_token = require_env("SLACK_APP_TOKEN", "Socket Mode needs an app-level token "
                            "(xapp-…) with the connections:write scope", env)  # fmt: skip
    app = await build_app(dispatcher, env, socket_mode=True)
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    return AsyncSocketModeHandler(app, app_token)


async def run_slack(
    dispatcher: Dispatcher,
    *,
    socket_mode: bool,
    host: str = "127.0.0.1",
    port: int = 3000,
    scheduler: bool = True,
) -> None:
    """Run until cancelled: Socket Mode (SLACK_APP_TOKEN) or an HTTP endpoint. Both serve
    `/healthz`, `/metrics` and the web front on host:port and run the scheduled jobs (unless
    `scheduler` is False), in bot.ops.runtime's lifecycle."""
    import asyncio

    from bot.ops import AdapterRuntime

    async with AdapterRuntime(dispatcher, host=host, port=port, scheduler=scheduler) as rt:
        if socket_mode:
            handler = await socket_handler(dispatcher)
            await rt.start_jobs(SlackPort(handler.app.client))
            await rt.serve()
            print("slam bot: connected to Slack in Socket Mode", flush=True)
            await handler.start_async()
            return
        app = await build_app(dispatcher)
        await rt.start_jobs(SlackPort(app.client))
        await rt.serve(slack_routes(app))
        print(f"slam bot: Slack events at http://{host}:{port}/slack/events", flush=True)
        await asyncio.Event().wait()
