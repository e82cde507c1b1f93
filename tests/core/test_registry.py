"""core.registry: the one registry shape (decorator + lookup, lazy imports, built-ins loaded on
first lookup, nothing frozen at import)."""

from __future__ import annotations

import sys

import pytest

from core.errors import SlamError
from core.registry import Registry, UnknownEntry


def test_decorator_and_call_register_and_lookup_reads_the_registry_as_it_is_now() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("a")
    def a() -> str:
        return "a"

    assert reg.get("a") is a
    assert reg.names() == ["a"]
    reg.register("b", len)
    assert reg.names() == ["a", "b"]  # registered later: seen by every reader
    assert "b" in reg and "c" not in reg
    assert reg.find("c") is None
    reg.remove("b")
    assert reg.names() == ["a"]


def test_unknown_name_is_a_user_error_listing_the_valid_names() -> None:
    reg: Registry[int] = Registry("chart")
    reg.add("latency", 1)
    reg.add("cost", 2)
    with pytest.raises(UnknownEntry) as info:
        reg.get("lat")
    assert str(info.value) == "unknown chart 'lat'; expected one of: latency, cost"
    assert isinstance(info.value, SlamError) and isinstance(info.value, KeyError)


def test_a_lazy_entry_is_imported_on_first_lookup_only() -> None:
    reg: Registry[object] = Registry("backend")
    sys.modules.pop("colorsys", None)
    reg.add("hls", "colorsys:rgb_to_hls")
    assert "colorsys" not in sys.modules  # registering imports nothing
    fn = reg.get("hls")
    import colorsys

    assert fn is colorsys.rgb_to_hls


def test_builtins_are_imported_on_the_first_lookup(tmp_path, monkeypatch) -> None:
    (tmp_path / "reg_builtins_probe.py").write_text(
        "from tests.core.test_registry import SHARED\nSHARED.add('builtin', 42)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("reg_builtins_probe", None)
    SHARED._loaded = False
    SHARED._builtins = ("reg_builtins_probe",)
    assert "reg_builtins_probe" not in sys.modules
    assert SHARED.get("builtin") == 42
    assert SHARED.names() == ["builtin"]


def test_replace_false_refuses_a_different_second_entry() -> None:
    reg: Registry[int] = Registry("metric")
    reg.add("x", 1, replace=False)
    reg.add("x", 1, replace=False)  # the same entry again is fine (a re-import)
    with pytest.raises(ValueError, match="already registered differently"):
        reg.add("x", 2, replace=False)


SHARED: Registry[int] = Registry("probe")
