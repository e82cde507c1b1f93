"""The one registry shape: named entries with their metadata, registered by a decorator (or a
call) and looked up by name, with lazy imports.

Backends, similarity metrics, judge methods, chat commands, charts and scheduled jobs are all a
`Registry`. An entry is either the value itself or a `'module:attr'` string that is imported the
first time the entry is looked up (so a backend's SDK loads only when that backend is used), and
a registry may name `builtins`: modules whose import registers the built-in entries, imported on
the first lookup (so a reader never has to remember to import them first).

    BACKENDS: Registry[BackendFactory] = Registry("backend")
    BACKENDS.add("ollama", "hosting.backends.ollama:OllamaBackend")  # imported when first used

    @BACKENDS.register("echo")
    class EchoBackend: ...

    BACKENDS.get("ollama")    # the class; an unknown name raises UnknownEntry listing the names
    BACKENDS.names()          # every registered name, in registration order

    JOBS: Registry[JobDef] = Registry("job", builtins=("bot.ops.job_bodies",))  # bodies register
                                                                          # when first looked up

Lookups read the registry as it is now: something registered later (a plugin, a test) is seen
by every reader, nothing is frozen at import time.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from core.errors import SlamError

T = TypeVar("T")


class UnknownEntry(SlamError, KeyError):
    """A name no entry of the registry has (a user error: the message lists the valid names)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Named entries of one kind (`kind` names them in messages: 'backend', 'chart', …)."""

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builtins = builtins
        self._loaded = not builtins
        self._entries: dict[str, T | str] = {}
        self._lock = threading.RLock()

    # -- registering --------------------------------------------------------------------------
    def add(self, name: str, entry: T | str, *, replace: bool = True) -> None:
        """Register `entry` (a value, or 'module:attr' to import on first lookup) as `name`.
        With `replace=False` a second, different entry under the same name is an error."""
        with self._lock:
            old = self._entries.get(name)
            if not replace and old is not None and old != entry:
                raise ValueError(f"{self.kind} {name!r} is already registered differently")
            self._entries[name] = entry

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, entry: T | str) -> T | str: ...

    def register(self, name: str, entry: Any = None) -> Any:
        """`@registry.register(name)` over a function or class, or `register(name, entry)`."""
        if entry is not None:
            self.add(name, entry)
            return entry

        def deco(value: T) -> T:
            self.add(name, value)
            return value

        return deco

    def remove(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    # -- looking up ---------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True  # before importing: a builtin module may look entries up
            for module in self._builtins:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """The entry under `name`, imported now if it was registered as 'module:attr'."""
        self._load_builtins()
        with self._lock:
            if name not in self._entries:
                raise UnknownEntry(
                    f"unknown {self.kind} '{name}'; expected one of: {', '.join(self.names())}"
                )
            entry = self._entries[name]
            if isinstance(entry, str) and ":" in entry:
                module, _, attr = entry.partition(":")
                value: T = getattr(importlib.import_module(module), attr)
                self._entries[name] = value
                return value
            return entry  # type: ignore[return-value]

    def find(self, name: str) -> T | None:
        """The entry under `name`, or None."""
        try:
            return self.get(name)
        except UnknownEntry:
            return None

    def names(self) -> list[str]:
        """Every registered name, in registration order (built-ins first)."""
        self._load_builtins()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) for every entry, lazy ones imported."""
        return [(n, self.get(n)) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
