"""The digest's cost lines carry the GPU energy per 1K output tokens where it was measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from bot.ops.digest import build_digest, render
from core.config import parse_config
from tests.support.energy_seed import TOKENS, level_figures, seed_energy_sweeps


def test_the_digest_shows_joules_per_1k_tokens(engine: Engine) -> None:
    cfg = parse_config({"models": [
        {"name": "gpt", "backend": "openai", "model": "gpt-4", "hardware": "api",
         "reference": True},
        {"name": "gemma3-1b", "backend": "ollama", "model": "gemma3:1b",
         "hardware": "g4dn.xlarge"},
    ]})  # fmt: skip
    now = datetime.now(UTC)
    seed_energy_sweeps(engine, cfg.models[1], replicas=(1,), concurrencies=(1, 4),
                       when=now - timedelta(hours=1))  # fmt: skip
    d = build_digest(engine, cfg, now.date())
    [line] = [c for c in d.costs if c.model == "gemma3-1b"]
    # best level: x1 c=4 (more tokens/s, SLO met); J/token = watts × 2 × latency / (8 × 40)
    latency, _, watts, _ = level_figures(1, 4)
    expected = watts * 2 * latency / (8 * TOKENS) * 1000
    assert line.energy == f"{expected:,.0f} J"
    shown = "\n".join(value for _, value in render(d).fields)
    assert f"{expected:,.0f} J GPU energy" in shown
    assert all(c.energy is None for c in d.costs if c.model != "gemma3-1b")  # nothing measured
