"""Load: 200 raters re-posting votes to one pair each through the web front's endpoint
concurrently (`slam bot web` in its own process, SQLite, 127.0.0.1), with 10% double submits.
It measures the vote path alone (POST /rate/vote), never the next page: the real loop (load a
pair, vote, load the next) is benchmarks/bench_rating_loop.py.

Each rater opens their invite link and their first pair (not timed: page loads run the
selection of `/slam rate`), then votes on it again and again, changing their mind each time
(A, B, tie, both bad, …), as fast as the server answers; each vote is `POST /rate/vote` with
the page's CSRF token, its version and `Accept: application/json`. A double submit repeats a
vote's exact form. Checks that every distinct vote is stored exactly once, no double submit is
stored, and each rater's effective vote is their last one; prints the sustained votes/s
(target ≥ 300/s). usage: python benchmarks/bench_web_repost.py [--raters N] [--votes K] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from bot.rating.invites import Tokens  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Vote  # noqa: E402
from tests.support.bot_seed import MODELS, effective_votes, make_config, seed  # noqa: E402
from tests.support.slack_helpers import write_config  # noqa: E402
from tests.support.web_helpers import open_round  # noqa: E402

SECRET = "bench-web-secret-0123456789abcdef"
CHOICES = ["A", "B", "tie", "both_bad"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bot(work: Path, config: Path, port: int, timeout: float = 90) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLAM_WEB_SECRET": SECRET, "SLAM_RATER_SALT": "bench-salt",
           "SLAM_LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("SLAM_DATABASE_URL", None)
    log = open(work / "bot.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "slam.cli", "bot", "web", "--host", "127.0.0.1",
                             "--port", str(port), "--no-scheduler", "--config", str(config)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bot exited: {(work / 'bot.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("bot did not become healthy")


Outcome = tuple[float, dict[str, int], list[tuple[int, str]], int]


async def run(url: str, links: list[str], votes: int, concurrency: int,
              rng: random.Random) -> Outcome:  # fmt: skip
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    sessions = [aiohttp.ClientSession(connector=connector, connector_owner=False, timeout=timeout,
                                      cookie_jar=aiohttp.CookieJar(unsafe=True))
                for _ in links]  # fmt: skip
    forms: list[dict[str, str]] = []
    try:
        async def open_page(s: aiohttp.ClientSession, link: str) -> dict[str, str]:
            async with s.get(link) as r:
                html = await r.text()
                assert r.status == 200, html[:300]
            form = html[html.index('<form class="vote"'):]
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                                   form[: form.index("</form>")]))  # fmt: skip

        t0 = time.perf_counter()
        pages = [open_page(s, link) for s, link in zip(sessions, links, strict=True)]
        forms = await asyncio.gather(*pages)
        pages_s = time.perf_counter() - t0
        codes: dict[str, int] = {}
        last: list[tuple[int, str]] = []
        headers = {"Accept": "application/json", "Origin": url}

        async def rater(i: int) -> None:
            s, form = sessions[i], forms[i]
            choice = ""
            for n in range(votes):
                choice = CHOICES[(i + n) % len(CHOICES)]
                data = {**form, "v": str(n), "choice": choice}
                repeats = 2 if rng.random() < 0.1 else 1  # a double submit: the same form
                for _ in range(repeats):
                    async with s.post(f"{url}/rate/vote", data=data, headers=headers) as r:
                        status = (await r.json())["status"]
                        codes[status] = codes.get(status, 0) + 1
            last.append((int(form["pair"]), choice))

        t0 = time.perf_counter()
        await asyncio.gather(*(rater(i) for i in range(len(links))))
        elapsed = time.perf_counter() - t0
        print(f"first pages:        {len(links)} raters opened their link and pair in "
              f"{pages_s:.1f} s")  # fmt: skip
        return elapsed, codes, last, sum(codes.values())
    finally:
        for s in sessions:
            await s.close()
        await connector.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raters", type=int, default=200)
    ap.add_argument("--votes", type=int, default=10, help="votes per rater")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="a few seconds: 40 raters, 5 votes each")
    args = ap.parse_args()
    if args.quick:
        args.raters, args.votes = 40, 5
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'slam.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        cfg = make_config(pairs_per_round=10)
        seed(engine, cfg, users=[f"User{i}" for i in range(6)])
        open_round(engine, cfg)
        config = write_config(work / "slam.toml", db_url, MODELS, channel="C0RATINGS",
                              pairs_per_round=10, votes_per_rater_per_hour=10_000)  # fmt: skip
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        tokens = Tokens(SECRET.encode())
        links = [f"{url}/r/{tokens.issue('rate', f'rater{i:03d}', 1)[0]}"
                 for i in range(args.raters)]  # fmt: skip
        proc = start_bot(work, config, port)
        try:
            elapsed, codes, last, sent = asyncio.run(
                run(url, links, args.votes, args.concurrency, rng))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        distinct = args.raters * args.votes
        with Session(engine) as s:
            stored = int(s.exec(select(func.count()).select_from(Vote)).one())
            eff = effective_votes(s)
        # The rater's effective vote on their pair is their last choice (gold pairs aside).
        from storage.models import RatingPair

        with Session(engine) as s:
            gold = {p.id for p in s.exec(select(RatingPair)).all() if p.kind == "gold"}
        final = sorted((pair, str(v.choice)) for (pair, _r, kind, _t), v in eff.items()
                       if kind == "pairwise")  # fmt: skip
        expected = sorted((p, c) for p, c in last if p not in gold)
        rate = distinct / elapsed
        print(f"votes sent:         {sent} ({distinct} distinct + {sent - distinct} double "
              f"submits) from {args.raters} raters, {args.concurrency} connections")  # fmt: skip
        print(f"outcomes:           {dict(sorted(codes.items()))}")
        print(f"votes stored:       {stored} (expected {distinct})")
        print(f"elapsed:            {elapsed:.2f} s")
        good = (stored == distinct and codes.get("recorded") == distinct
                and codes.get("duplicate", 0) == sent - distinct and final == expected)  # fmt: skip
        print("exactly once:       " + ("yes" if good else "NO"))
        print(f"summary: {rate:.0f} votes/s re-posted through POST /rate/vote, "
              f"{args.raters} raters, {stored}/{distinct} stored exactly once: "
              f"{'yes' if good else 'NO'} (target ≥ 300/s, every vote once: "
              f"{'OK' if good and rate >= 300 else 'OVER'})")  # fmt: skip
        return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
