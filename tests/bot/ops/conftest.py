"""Fixtures of the ops tests: `use_body` swaps a registered job's body for the test's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from bot.ops.jobs import JOBS, Body, JobDef

UseBody = Callable[[str, Body], None]


@pytest.fixture
def use_body() -> Iterator[UseBody]:
    """`use_body(name, body)`: the job `name` runs `body` until the test ends, then its own."""
    saved: dict[str, JobDef] = {}

    def use(name: str, body: Body) -> None:
        saved.setdefault(name, JOBS.get(name))
        JOBS.add(name, replace(JOBS.get(name), body=body))

    yield use
    for name, job in saved.items():
        JOBS.add(name, job)
