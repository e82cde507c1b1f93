"""User-facing errors: anything raised as a SlamError is shown as a message, never a traceback."""

from __future__ import annotations

MAX_PROBLEMS = 50  # a file with thousands of mistakes still gets a readable answer


def short(value: object, limit: int = 80) -> str:
    """`value` as text, cut to `limit` characters with a note of how long it was, so a
    megabyte of input is never echoed back whole."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 1, 1)]}… ({len(text):,} characters)"


class SlamError(Exception):
    """An error the user can fix; the message says what was wrong and how to fix it."""

    exit_code = 2


class Interrupted(SlamError):
    """The user pressed Ctrl-C: one line, exit status 130 (128 + SIGINT)."""

    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


class ConfigError(SlamError):
    """The configuration file (or environment) is invalid; one line per problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        shown = [short(p, 500) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more")
        lines = "\n".join(f"  - {p}" for p in shown)
        super().__init__(
            f"{short(path, 200)}: {len(problems)} problem(s) in the configuration:\n{lines}"
        )


def redact_url_passwords(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host` (errors may quote a URL)."""
    import re

    return re.sub(r"(?<=://)([^:/@\s]+):([^@/\s]+)@", r"\1:***@", text)
