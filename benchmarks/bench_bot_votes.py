"""Load: 5,000 signed reaction events from 200 raters (+10% Slack retries) fired concurrently
at the bot's HTTP endpoint (`slam bot slack --http` in its own process) on SQLite.

Checks every distinct vote is stored exactly once and prints the sustained events/s
(target ≥ 300/s).
usage: python benchmarks/bench_bot_votes.py [--events N] [--concurrency C] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, func, select  # noqa: E402

from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Vote  # noqa: E402
from tests.support.bot_seed import MODELS, make_config, seed  # noqa: E402
from tests.support.fake_slack_api import FakeSlack  # noqa: E402
from tests.support.slack_helpers import (  # noqa: E402
    JSON,
    BotProcess,
    prepare_round,
    reaction_body,
    signed,
    write_config,
)

CHOICES = ["a", "b", "handshake", "-1"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fire(url: str, requests: list[tuple[str, dict[str, str]]], concurrency: int) -> list[int]:
    # aiohttp rather than httpx: httpx's pool costs O(pending) per request and would be the
    # bottleneck at this concurrency, measuring the client instead of the bot.
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as client:

        async def one(body: str, headers: dict[str, str]) -> int:
            async with sem, client.post(url, data=body.encode(), headers=headers) as r:
                await r.read()
                return r.status

        return await asyncio.gather(*(one(b, h) for b, h in requests))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--raters", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="a few seconds: 400 events, 40 raters")
    args = ap.parse_args()
    if args.quick:
        args.events, args.raters = 400, 40
    pairs_n = args.events // args.raters
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'slam.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        cfg = make_config(pairs_per_round=pairs_n)
        users = [f"User{i}" for i in range(max(4, pairs_n // 3 + 1))]
        seed(engine, cfg, users=users)
        refs = prepare_round(engine, cfg, pairs_n)
        assert len(refs) == pairs_n, f"only {len(refs)} pairs"
        fake = FakeSlack().start()
        config = write_config(work / "slam.toml", db_url, MODELS, channel="C0RATINGS",
                              votes_per_rater_per_hour=10_000)  # fmt: skip
        bot = BotProcess(work, config, free_port(), fake.api_url).start()
        try:
            # One vote per rater per pair: every event is a distinct vote. Bodies are signed
            # before the clock starts: signing is Slack's cost, not the bot's.
            events = []
            for r in range(args.raters):
                for channel, ts in refs:
                    eid = f"Ev{r:04d}{ts[-6:]}"
                    events.append(reaction_body(eid, f"U{r:05d}", channel, ts, rng.choice(CHOICES)))
            retries = rng.sample(events, len(events) // 10)
            requests = [(b, {**JSON, **signed(b)}) for b in events]
            requests += [(b, {**JSON, **signed(b), "X-Slack-Retry-Num": "1"}) for b in retries]
            rng.shuffle(requests)
            t0 = time.perf_counter()
            codes = asyncio.run(fire(bot.url, requests, args.concurrency))
            elapsed = time.perf_counter() - t0
        finally:
            bot.stop()
            fake.stop()
        with Session(engine) as s:
            stored = s.exec(select(func.count()).select_from(Vote)).one()
            distinct = s.exec(
                select(func.count(func.distinct(Vote.pair_id * 100000 + Vote.rater_id)))
            ).one()
        ok = sum(c == 200 for c in codes)
        rate = len(requests) / elapsed
        print(f"events sent:        {len(requests)} ({len(events)} distinct + "
              f"{len(retries)} retries), concurrency {args.concurrency}")  # fmt: skip
        print(f"HTTP 200:           {ok}/{len(requests)}")
        print(f"votes stored:       {stored} (distinct rater×pair {distinct}; expected "
              f"{len(events)})")  # fmt: skip
        print(f"elapsed:            {elapsed:.2f} s")
        print(f"sustained:          {rate:.0f} events/s (target >= 300)")
        good = ok == len(requests) and stored == len(events) == distinct
        print("exactly once:       " + ("yes" if good else "NO"))
        print(f"summary: {rate:.0f} events/s through the Slack HTTP endpoint, {stored}/"
              f"{len(events)} votes stored exactly once: {'yes' if good else 'NO'} "
              f"(target ≥ 300/s, every vote once: {'OK' if good and rate >= 300 else 'OVER'})")
        return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
