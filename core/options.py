"""CLI options shared by every area's commands."""

from __future__ import annotations

import typer

ConfigOpt = typer.Option(None, "--config", "-c", help="Path to slam.toml (default: ./slam.toml).")
