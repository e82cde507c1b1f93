"""The web front: a platform adapter on the chat seam, served by the bot's HTTP server.

Routes (beside /healthz and /metrics):

- `GET /r/<token>`: a rater's invite link; sets the rater cookie and goes to `/rate`.
- `GET /rate`: the rater's next blind pair (the selection `/slam rate` uses: bot.rating.flow),
  vote buttons (keys A, B, T, X; U retracts), progress, and their last vote to change.
- `GET /rate/pair/<id>`: a pair shown to this rater before, to change or retract the vote.
- `POST /rate/vote`: a vote (a `bot.events.Vote`, bot.rating.flow.vote); through the
  dispatcher (rate limits) to the vote writer, like every adapter's. Answers 303 to `/rate`
  (a form) or JSON (`Accept: application/json`); a refused vote (not a pair shown to this
  rater, too fast, round closed) is a 4xx on both paths, the form's with a readable page.
- `GET /d/<token>`: a viewer's link; sets the viewer cookie and goes to `/dashboard`.
- `GET /dashboard`, `/dashboard/state`, `/dashboard/chart/<name>.png`: the live dashboard;
  `?feature=F` on each shows one feature (default: the first), and with several features the
  page has a switcher (plain links). The rating pages never name a feature.

Security: tokens are signed, expiring and revocable (bot.rating.invites) and kept in HttpOnly,
SameSite=Lax cookies (Secure behind https); every form carries a CSRF token bound to the
link, and a cross-site Origin or Sec-Fetch-Site is refused; every response gets a strict
Content-Security-Policy (no inline script or style), nosniff, no referrer, no framing. No
rating rule lives here; the pages never contain a model name (the masker runs on every text).
Every bad input gets a clear page or JSON error with a 4xx status, never a traceback.
"""

from __future__ import annotations

import logging
import re
import time
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from bot.dispatcher import Dispatcher
from bot.events import Posted, Reply
from bot.rating import CommentOutcome, Grant, Role, TokenError, Tokens, VoteOutcome, load_secret
from bot.rating import flow as rating
from bot.services import Capabilities
from bot.web import pages
from bot.web.dashboard import Dashboard
from core.errors import SlamError

log = logging.getLogger(__name__)
PLATFORM = "web"
COOKIES: dict[Role, str] = {"rate": "slam_rater", "view": "slam_viewer"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # same-origin: the browser still sends Origin on our own forms (no-referrer makes it "null")
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
STATIC = {"style.css": "text/css", "rate.js": "text/javascript", "dashboard.js": "text/javascript"}
WHY = {
    "malformed": ("This link is not valid", "The link is incomplete or damaged. Copy the whole "
                  "link from your invitation, or ask for a new one."),
    "forged": ("This link is not valid", "The link was not issued by this server. Ask the "
               "team that runs the evaluation for a new one."),
    "expired": ("This link has expired", "Ask the team that runs the evaluation for a new one."),
    "revoked": ("This link was revoked", "Ask the team that runs the evaluation for a new one."),
    "wrong_role": ("This link is for another page", "A rating link opens the rating page and a "
                   "viewer link the dashboard."),
    "missing": ("You need a personal link", "Open the link from your invitation first (it "
                "signs you in on this device; no password)."),
}  # fmt: skip
STATUS_HTTP = {"recorded": 200, "duplicate": 200, "ignored": 200, "closed": 409,
               "rate_limited": 429, "not_a_pair": 404, "not_a_vote": 400}  # fmt: skip
FLASH = re.compile(r"[a-z_]{1,16}")


class WebPort:
    """The web front as a ChatPort: a pair 'posted' to a rater is the page that shows it; its
    reference is derived from the pair and the rater (bot.rating.flow.message_ref)."""

    platform = PLATFORM
    unicode_emoji = True
    capabilities = Capabilities(channel=False, dms=True, ephemeral=False, uploads=False,
                                votes="buttons")  # fmt: skip

    def __init__(self, dispatcher: Dispatcher):
        self.services = dispatcher.services

    async def post(self, reply: Reply, *, channel: str | None = None,
                   dm_user: str | None = None) -> Posted:  # fmt: skip
        if dm_user is not None and reply.pair is not None:
            ref = rating.message_ref(self.services, PLATFORM, dm_user, reply.pair.pair_id)
            return Posted(ref, ref)  # the rater's pair is its own 'channel'
        if reply.score_for is not None and channel is not None:
            return Posted(channel, f"{channel}.{reply.score_for[1]}")  # beside the pair
        log.info("web: %s", reply.plain()[:300])  # notifications have no page: logged
        return Posted(PLATFORM, "log")

    async def add_reactions(self, posted: Posted, names: list[str]) -> None:
        return None

    async def send_reply(self, reply: Reply, channel: str, user: str) -> None:
        await self.post(reply, channel=channel)


class WebFront:
    """The routes, the middlewares and the per-process state (tokens, dashboard)."""

    def __init__(self, dispatcher: Dispatcher, tokens: Tokens | None = None,
                 dashboard: Dashboard | None = None, poll_ms: int = 3000):  # fmt: skip
        self.dispatcher = dispatcher
        self.services = dispatcher.services
        self.cfg = self.services.cfg
        self.tokens = tokens or Tokens(load_secret(), self.services.engine)
        self.dashboard = dashboard or Dashboard(self.services.engine, self.cfg)
        self.port = WebPort(dispatcher)
        self.poll_ms = poll_ms
        self.secure = (self.cfg.web.public_url or "").startswith("https://")

    # -- wiring ---------------------------------------------------------------------------
    def middlewares(self) -> list[Any]:
        return [self._guard]

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.home)
        r.add_get("/r/{token}", self.join_rater)
        r.add_get("/d/{token}", self.join_viewer)
        r.add_get("/rate", self.rate)
        r.add_get("/rate/pair/{pair}", self.rate_pair)
        r.add_post("/rate/vote", self.vote)
        r.add_get("/dashboard", self.dashboard_page)
        r.add_get("/dashboard/state", self.dashboard_state)
        r.add_get("/dashboard/chart/{name}", self.chart)
        r.add_get("/static/{name}", self.static)
        r.add_get("/favicon.ico", self.favicon)

    async def aclose(self) -> None:
        await self.dashboard.aclose()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Security headers on every response; every failure a clear page, never a trace."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                _secure_headers(exc, request)
                raise
            response = self._error(request, exc.status, exc.reason, _detail(exc.status))
        except Exception:
            log.exception("web request %s %s failed", request.method, request.path[:200])
            response = self._error(request, 500, "Something went wrong on our side",
                                   "The error is in the bot's log; try again in a moment.")
        _secure_headers(response, request)
        return response

    def _error(self, request: web.Request, status: int, title: str, detail: str) -> web.Response:
        if _wants_json(request):
            return web.json_response({"ok": False, "error": title, "detail": detail},
                                     status=status)  # fmt: skip
        return web.Response(status=status, text=pages.error_page(status, title, detail),
                            content_type="text/html")  # fmt: skip

    # -- sessions -------------------------------------------------------------------------
    def _grant(self, request: web.Request, role: Role) -> Grant:
        token = request.cookies.get(COOKIES[role], "")
        if not token:
            raise _Refused("missing")
        try:
            return self.tokens.verify(token, role)
        except TokenError as exc:
            raise _Refused(exc.reason) from None

    def _refused(self, request: web.Request, why: str) -> web.Response:
        title, detail = WHY.get(why, WHY["forged"])
        response = self._error(request, 403, title, detail)
        return response

    async def _join(self, request: web.Request, role: Role, target: str) -> web.StreamResponse:
        token = request.match_info.get("token", "")
        try:
            grant = self.tokens.verify(token, role)
        except TokenError as exc:
            return self._refused(request, exc.reason)
        response = web.HTTPSeeOther(target)
        response.set_cookie(COOKIES[role], token, max_age=max(1, grant.expires - int(time.time())),
                            httponly=True, samesite="Lax", path="/",
                            secure=self.secure or request.secure)  # fmt: skip
        raise response

    async def join_rater(self, request: web.Request) -> web.StreamResponse:
        return await self._join(request, "rate", "/rate")

    async def join_viewer(self, request: web.Request) -> web.StreamResponse:
        return await self._join(request, "view", "/dashboard")

    async def home(self, request: web.Request) -> web.Response:
        return _html(pages.home_page())

    # -- rating ---------------------------------------------------------------------------
    async def rate(self, request: web.Request) -> web.Response:
        try:
            grant = self._grant(request, "rate")
        except _Refused as exc:
            return self._refused(request, exc.why)
        try:
            rp = await rating.next_pair(self.services, self.port, grant.user_id)
        except SlamError as exc:
            return _html(pages.no_round_page(str(exc)))
        return self._rating_page(request, grant, rp)

    async def rate_pair(self, request: web.Request) -> web.Response:
        try:
            grant = self._grant(request, "rate")
        except _Refused as exc:
            return self._refused(request, exc.why)
        pair_id = _int(request.match_info.get("pair", ""), "pair")
        rp = await rating.shown_pair(self.services, self.port, grant.user_id, pair_id)
        if rp is None:
            raise web.HTTPNotFound(reason="That pair was not shown to you")
        return self._rating_page(request, grant, rp, change=True)

    def _rating_page(self, request: web.Request, grant: Grant, rp: rating.RaterPair,
                     change: bool = False) -> web.Response:  # fmt: skip
        """A pair's page (`change`: one shown before), with the status of the vote just cast."""
        status, kind, last = _flash(request.query)
        return _html(pages.rating_page(rp, csrf=self.tokens.csrf(grant), status=status,
                                       status_kind=kind, last=None if change else last,
                                       change=change,
                                       score_mode=self.services.reactions.score_mode))  # fmt: skip

    async def vote(self, request: web.Request) -> web.Response:
        try:
            grant = self._grant(request, "rate")
        except _Refused as exc:
            return self._refused(request, exc.why)
        if not _same_origin(request, self.cfg.web.public_url):
            return self._error(request, 403, "Cross-site request refused",
                               "Votes are only accepted from the rating page itself.")  # fmt: skip
        form = await _form(request)
        if not self.tokens.check_csrf(grant, form.get("csrf", "")):
            return self._error(request, 403, "This form has expired",
                               "Reload the rating page and vote again.")  # fmt: skip
        pair_id = _int(form.get("pair", ""), "pair")
        version = _int(form.get("v", "0") or "0", "v")
        choice = form.get("choice") or None
        target = form.get("target") or None
        user, svc = grant.user_id, self.services
        try:
            if target is not None:
                score = _int(form.get("score", ""), "score")
                vote = rating.vote(svc, PLATFORM, user, pair_id, target=target, score=score,
                                   version=version)  # fmt: skip
                shown = f"score {score} for response {target}"
            elif choice == "retract":
                current = form.get("current") or ""
                vote = rating.vote(svc, PLATFORM, user, pair_id, choice=current, added=False,
                                   version=version)  # fmt: skip
                shown = "retracted"
            else:
                vote = rating.vote(svc, PLATFORM, user, pair_id, choice=choice,
                                   version=version)  # fmt: skip
                shown = rating.LABELS.get(choice or "", "")
        except SlamError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
        outcome = await self.dispatcher.handle_vote(vote)
        if outcome.counted:
            self.dashboard.touch()
        said, noted = (form.get("comment") or "").strip(), None
        if said and target is None and choice != "retract":  # the text field under the buttons
            noted = await self.dispatcher.handle_comment(
                rating.comment(svc, PLATFORM, user, pair_id, said, version))
        retracted = choice == "retract" and outcome.counted
        message = rating.describe(VoteOutcome("retracted") if retracted else outcome,
                                  choice if choice in rating.LABELS else None)  # fmt: skip
        if _wants_json(request):
            return web.json_response(
                {"ok": outcome.status in ("recorded", "duplicate", "ignored"),
                 "status": outcome.status, "pair": pair_id, "message": message,
                 "comment": noted.status if noted else None},
                status=STATUS_HTTP.get(outcome.status, 200))  # fmt: skip
        code = STATUS_HTTP.get(outcome.status, 200)
        if code >= 400:  # refused: the form path says so with a 4xx too, on a readable page
            return await self._refused_vote(request, grant, pair_id, code, message)
        query: dict[str, str | int] = {"s": "retracted" if retracted else outcome.status,
                                       "p": pair_id}  # fmt: skip
        if outcome.status in ("recorded", "duplicate") and choice in rating.LABELS:
            query["c"] = choice or ""
        if noted is not None:
            query["m"] = noted.status
        # The next pair after a vote; the same pair after a retraction or a score, and in
        # score mode (both responses get a score, then "next pair"), as the console does.
        score_mode = self.services.reactions.score_mode
        stay = choice == "retract" or target is not None or score_mode
        back = f"/rate/pair/{pair_id}" if stay else "/rate"
        log.debug("web vote %s -> %s (%s)", vote.event_key, outcome.status, shown)
        raise web.HTTPSeeOther(f"{back}?{urlencode(query)}")

    async def _refused_vote(self, request: web.Request, grant: Grant, pair_id: int, code: int,
                            message: str) -> web.Response:  # fmt: skip
        """A vote the writer refused, on the form path: the pair's page with the reason (too
        fast, round closed), or an error page (not a pair shown to this rater), with `code`."""
        rp = await rating.shown_pair(self.services, self.port, grant.user_id, pair_id)
        if rp is None or code not in (409, 429):
            return self._error(request, code, message, _detail(code))
        response = _html(pages.rating_page(rp, csrf=self.tokens.csrf(grant), status=message,
                                           status_kind="warn", change=True,
                                           score_mode=self.services.reactions.score_mode))
        response.set_status(code)
        return response

    # -- dashboard ------------------------------------------------------------------------
    def _feature(self, request: web.Request) -> str | None:
        """The feature a dashboard request names (`?feature=`); an unknown one is a 404."""
        try:
            return self.dashboard.feature(request.query.get("feature"))
        except SlamError as exc:
            raise _NoFeature(str(exc)) from None

    async def dashboard_page(self, request: web.Request) -> web.Response:
        try:
            self._grant(request, "view")
            feature = self._feature(request)
        except _Refused as exc:
            return self._refused(request, exc.why)
        except _NoFeature as exc:
            return self._error(request, 404, "No such feature", exc.text)
        if not self.dashboard.chart_names(feature):
            await self.dashboard.draw_now(feature)
        state = await self.dashboard.state(feature)
        return _html(pages.dashboard_page(state, self.poll_ms))

    async def dashboard_state(self, request: web.Request) -> web.Response:
        try:
            self._grant(request, "view")
            feature = self._feature(request)
        except _Refused as exc:
            return self._refused(request, exc.why)
        except _NoFeature as exc:
            return self._error(request, 404, "No such feature", exc.text)
        state = await self.dashboard.state(feature)
        if request.query.get("since") == state["version"]:
            return web.Response(status=204, headers={"Cache-Control": "no-store"})
        body = {k: v for k, v in state.items() if k != "data_version"}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def chart(self, request: web.Request) -> web.Response:
        try:
            self._grant(request, "view")
            feature = self._feature(request)
        except _Refused as exc:
            return self._refused(request, exc.why)
        except _NoFeature as exc:
            return self._error(request, 404, "No such feature", exc.text)
        name = request.match_info.get("name", "").removesuffix(".png")
        png = self.dashboard.chart(name, feature)
        if png is None:
            raise web.HTTPNotFound(reason="No such chart")
        return web.Response(body=png, content_type="image/png",
                            headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip

    async def favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        if name not in STATIC:
            raise web.HTTPNotFound(reason="No such file")
        body = resources.files("bot.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300"})  # fmt: skip


class _Refused(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class _NoFeature(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _secure_headers(response: web.StreamResponse, request: web.Request) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def _detail(status: int) -> str:
    return {
        400: "The request was not understood. Reload the page and try again.",
        404: "There is nothing here. Check the address, or open your personal link again.",
        409: "Reload the rating page: what you voted on has changed.",
        405: "This address does not accept that kind of request.",
        413: "The request is too large.",
    }.get(status, "The request could not be handled.")


def _int(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]{1,12}", text or ""):
        raise web.HTTPBadRequest(reason=f"Expected a number for {what}")
    return int(text)


async def _form(request: web.Request) -> dict[str, str]:
    """The posted form as plain strings; anything else is a 400 with a reason."""
    ctype = request.content_type
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise web.HTTPBadRequest(reason="Expected a form (application/x-www-form-urlencoded)")
    try:
        data = await request.post()
    except web.HTTPException:
        raise
    except Exception:  # undecodable bytes, a broken multipart body…
        raise web.HTTPBadRequest(reason="The form could not be read") from None
    out: dict[str, str] = {}
    for k, v in data.items():
        if not isinstance(v, str) or len(v) > 200:
            raise web.HTTPBadRequest(reason=f"Unexpected value for {k[:20]!r}")
        out[k] = v
    return out


def _same_origin(request: web.Request, public_url: str | None = None) -> bool:
    """Refuse cross-site posts: Sec-Fetch-Site when the browser sends it, and Origin when it is
    there — the Host the request came to, or `[web] public_url`'s (a proxy may rewrite Host).
    Clients that send neither still need the form's CSRF token."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return site == "same-origin"
    try:
        ours = {(request.host or "").lower()}
        if public_url:
            ours.add(urlsplit(public_url).netloc.lower())
        return urlsplit(origin).netloc.lower() in ours
    except ValueError:
        return False


def _flash(query: Any) -> tuple[str, str, tuple[int, str] | None]:
    """The status line after a vote (from the redirect's query: codes only, never text)."""
    status = query.get("s", "")
    if not FLASH.fullmatch(status or ""):
        return "", "ok", None
    choice = query.get("c")
    choice = choice if choice in rating.LABELS else None
    text = rating.describe(VoteOutcome(status), choice)
    if FLASH.fullmatch(query.get("m", "") or ""):  # the comment sent with the vote
        text = f"{text} {CommentOutcome(query['m']).message()}".strip()
    kind = "ok" if status in ("recorded", "duplicate") else "warn"
    pair = query.get("p", "")
    ok = choice and re.fullmatch(r"[0-9]{1,11}", pair or "")  # ASCII: "¹" passes isdigit
    last = (int(pair), rating.LABELS[choice]) if ok and choice else None
    return text, kind, last

