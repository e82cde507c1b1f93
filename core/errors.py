"""User-facing errors: anything raised as a SlamError is shown as a message, never a traceback."""

from __future__ import annotations


class SlamError(Exception):
    """An error the user can fix; the message says what was wrong and how to fix it."""

    exit_code = 2


class ConfigError(SlamError):
    """The configuration file (or environment) is invalid; one line per problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the configuration:\n{lines}")
