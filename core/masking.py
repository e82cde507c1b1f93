"""Model names in text: find them, replace them with neutral words, and tell when a text still
names a model after that (so a blind pair showing it is never posted).

Names come from three sources, merged by whoever builds the `Masker`: the configured model names
and ids; what the backends report about a model (Ollama's `details.family`/`families`, the
OpenAI response's `model`, kept in `generation.meta_json`: `reported_names`); and the
maintained table `core/data/model_names.json` of families, product names, aliases and makers
in the languages models answer in (Qwen / Tongyi Qianwen / 通义千问 / 阿里云, Le Chat, 深度求索…).

Matching is on a folded copy of the text (NFKC: full-width letters are letters; lookalike
Cyrillic and Greek letters read as the Latin ones; zero-width characters vanish), mapped back to
the original so only the name is replaced. A Latin or Cyrillic name matches between letter
boundaries (Unicode-aware: "philosophy" is not Phi) but next to CJK, kana or Hangul too ("我是
Qwen"); a CJK name matches anywhere (those scripts have no spaces). Separators inside a name are
optional ("Deep-Seek", "Tongyi·Qianwen", "Open AI"); a family takes a version tail ("GPT-4o",
"Qwen2.5-7B"). Words that are also ordinary words (Meta, Google, Le Chat, Yi) match only as
written. The stand-ins read as ordinary text ("the assistant", "the developer"; 助手/开发者 in
CJK text, ассистент/разработчик in Cyrillic), never a visible "[hidden]" that would tell the
rater that this response named itself.

`leaks` looks harder than `mask` replaces: after masking, a name spelled out ("Q w e n",
"L.L.A.M.A") or cut by markup ("Q**wen**") still names a model.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import SlamConfig

MODEL_MASK = "the assistant"
VENDOR_MASK = "the developer"
# Stand-ins by the script around a name: (model, developer).
_LOCAL_MASKS = {
    "cjk": ("助手", "开发者"),
    "kana": ("アシスタント", "開発者"),
    "hangul": ("어시스턴트", "개발사"),
    "cyrillic": ("ассистент", "разработчик"),
}
# Tokens of configured names that are not names ("mistral-7b-instruct" names mistral, not instruct).
NOT_NAMES = frozenset({
    "builtin", "instruct", "chat", "gguf", "latest", "model", "base", "small", "mini", "tiny",
    "large", "medium", "api", "local", "cpu", "it", "hf", "the", "ollama", "openai_compat",
    "preview", "turbo", "vision", "coder", "code", "text", "embed", "fp", "awq", "gptq", "exl",
})  # fmt: skip
# Letters that are not CJK, kana or Hangul: the ones a Latin or Cyrillic name must not touch.
_EAST = "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff" \
        "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"  # fmt: skip
# Case-sensitive on purpose: the classes are closed under case (checked on every code point in
# tests/core/test_masking.py), and under IGNORECASE the compiler case-folds each code point of
# the CJK ranges, in every alternative: a masker took 0.4 s to compile.
_LETTER = rf"(?-i:[^\W\d_{_EAST}])"
_ALNUM = rf"(?-i:[^\W_{_EAST}])"
_EAST_RE = re.compile(f"[{_EAST}]")
_SEP = r"[\s\-_.·・'’]?"
_TAIL = r"(?:[-\s]?\d(?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)?"
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"), "")
# Lookalikes that read as Latin letters (Cyrillic, Greek): folded so "Qwеn" with a Cyrillic е
# is Qwen. Names in the table are folded the same way, so Cyrillic names still match.
_LOOKALIKE_UPPER = ("АВЕКМНОРСТХУІЈЅԚԜΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEKMHOPCTXYIJSQWABEZHIKMNOPTYX")
# Both cases map, to the matching case, so folding keeps "case-insensitive" meaningful.
_LOOKALIKE = str.maketrans(
    _LOOKALIKE_UPPER[0] + _LOOKALIKE_UPPER[0].lower(),
    _LOOKALIKE_UPPER[1] + _LOOKALIKE_UPPER[1].lower(),
)
_CAMEL = re.compile(r"(?<=[a-z]{2})(?=[A-Z])")
_SPLIT = re.compile(r"[\s\-_.·・'’]+")


def fold(text: str) -> tuple[str, list[int]]:
    """The text as matched (NFKC, lookalikes read as Latin, zero-width characters gone) and,
    per folded character, the index of the original character it came from."""
    if text.isascii():  # NFKC, the zero-width and the lookalike tables leave ASCII as it is
        return text, list(range(len(text)))
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch).translate(_ZERO_WIDTH).translate(_LOOKALIKE)
        out.append(folded)
        origin.extend([i] * len(folded))
    return "".join(out), origin


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """The maintained table of names (core/data/model_names.json)."""
    raw = resources.files("core.data").joinpath("model_names.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def _pattern(name: str, *, tail: bool) -> tuple[str, str]:
    """A name as a regular expression over folded text: its parts (words, camel-case humps)
    with optional separators between them, Latin names between letter boundaries. As (the
    name's pattern, the end boundary after it): Masker writes one boundary after a run of
    names that share it."""
    name = fold(name)[0].strip()
    parts = [p for w in _SPLIT.split(name) for p in _CAMEL.split(w) if p]
    body = _SEP.join(re.escape(p) for p in parts)
    if _EAST_RE.search(name):
        return body, ""
    end = _TAIL if tail else ""
    return rf"{body}{end}", rf"(?!{_LETTER})"  # the start boundary is shared: Masker


def _literal(name: str) -> tuple[str, str]:
    """A configured name or id as written ("mistral-7b-q4"), between letter-or-digit boundaries."""
    return re.escape(fold(name)[0]), rf"(?!{_ALNUM})"  # the start boundary: Masker


def name_tokens(name: str) -> set[str]:
    """The family-like words of a configured or reported name: 'ollama:qwen2.5:7b-instruct'
    gives {'qwen'}; paths and '.gguf' are dropped."""
    base = re.split(r"[/\\]", name)[-1].removesuffix(".gguf").lower()
    return {t for t in re.findall(r"[a-z]{2,}", base) if t not in NOT_NAMES}


def reported_names(meta: Any) -> list[str]:
    """What a source said a model is, from a generation's `meta_json` (parsed or not): the
    values of `model`, `family`, `families`, `parent_model`, `model_name`, at any depth (Ollama
    `details`, an `identity` block); nothing when there is no such key or the JSON is bad."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return []
    keys = {"model", "family", "families", "parent_model", "model_name", "served_model"}
    out: list[str] = []

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, str(k).lower())
        elif isinstance(node, list | tuple):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in keys and 0 < len(node) <= 120:
            out.append(node)

    walk(meta, None)
    return out


class Masker:
    """Finds model names (`names`: configured and reported ones, plus the table) and makers'
    names in text, and replaces them with neutral words."""

    def __init__(self, names: Iterable[str] = (), *, shared_ends: bool = True):
        data = table()
        cased = set(data.get("cased", []))
        models: set[str] = set()
        makers: set[str] = set()
        literal: set[str] = set()
        for entry in data.get("families", {}).values():
            models.update(entry.get("names", []))
            makers.update(entry.get("makers", []))
        for name in names:
            if not name or not name.strip():
                continue
            base = re.split(r"[/\\]", name)[-1].removesuffix(".gguf")
            literal.update(x for x in (name, base) if len(x) >= 3)
            models.update(name_tokens(name))

        # One alternation, longest name first, so "智谱清言" (a product) wins over "智谱" (its
        # maker) at the same place; each alternative is a group, and its kind is looked up.
        alts = [(x, *_literal(x), "model") for x in literal]
        alts += [(n, *_pattern(n, tail=True), "model") for n in models]
        alts += [(n, *_pattern(n, tail=False), "vendor") for n in makers - set(models)]
        alts.sort(key=lambda a: (-len(a[0]), a[0], a[3]))
        cjk = [a for a in alts if _EAST_RE.match(a[0])]  # by the script they start in
        west = [a for a in alts if not _EAST_RE.match(a[0])]
        self._kinds: list[str] = []

        def alternation(items: list[tuple[str, str, str, str]]) -> str:
            """Alternatives grouped by first character, each group tried only where it
            stands (a name is a group: `_kinds` says what it is, in group order).

            Consecutive names with the same end boundary share one: `(?:(a)|(b))(?!x)` tries
            what `(a)(?!x)|(b)(?!x)` tries, in the same order (the engine backtracks into
            the group when the boundary fails), so it finds the same match and group; but
            each boundary is a large character class, and compiling it once per run instead
            of once per name makes a masker compile several times faster (`shared_ends=False`:
            one boundary per name, the reference the tests compare with)."""
            by_first: dict[str, list[tuple[str, str, str, str]]] = {}
            for a in items:
                by_first.setdefault(fold(a[0])[0].strip()[:1].lower(), []).append(a)
            out = []
            for first, group in by_first.items():
                pats: list[tuple[str, str]] = []
                for n, p, end, kind in group:
                    if kind == "model" and n in literal:  # no digit before a literal either
                        p = rf"(?<![0-9]){p}"
                    if not shared_ends:
                        p, end = p + end, ""
                    pats.append((f"((?-i:{p}))" if n in cased else f"({p})", end))
                    self._kinds.append(kind)
                runs = []
                for end, run in groupby(pats, key=itemgetter(1)):
                    texts = [t for t, _ in run]
                    one = texts[0] if len(texts) == 1 else f"(?:{'|'.join(texts)})"
                    runs.append(f"{one}{end}")
                out.append(rf"(?={re.escape(first)})(?:{'|'.join(runs)})")
            return "|".join(out)

        # Latin and Cyrillic names share one start boundary (checked once per place).
        west_re, east_re = alternation(west), alternation(cjk)
        body = "|".join(x for x in (f"(?<!{_LETTER})(?:{west_re})" if west_re else "",
                                    f"(?=[{_EAST}])(?:{east_re})" if east_re else "") if x)
        self._re = re.compile(body or "(?!)", re.IGNORECASE)
        self._leaks: dict[bytes, bool] = {}

    @classmethod
    def of(cls, names: Iterable[str]) -> Masker:
        """A masker for these names, shared with every caller asking for the same ones."""
        return _cached(tuple(sorted({n for n in names if n})))

    @classmethod
    def for_config(cls, cfg: SlamConfig, extra: Iterable[str] = ()) -> Masker:
        """The configured models' names and ids, plus `extra` (stored and reported names)."""
        return cls.of([*(n for m in cfg.models for n in (m.name, m.model)), *extra])

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        folded, origin = fold(text)
        spans = []
        for m in self._re.finditer(folded):
            if m.end() > m.start():
                kind = self._kinds[(m.lastindex or 1) - 1]
                spans.append((origin[m.start()], origin[m.end() - 1] + 1, kind))
        return spans

    def names_model(self, text: str) -> bool:
        return self._re.search(fold(text)[0]) is not None

    def mask(self, text: str) -> str:
        out, last = [], 0
        for start, end, group in self._spans(text):
            if start < last:
                continue
            out.append(text[last:start])
            out.append(_stand_in(text, start, end, group))
            last = end
        out.append(text[last:])
        return "".join(out)

    def leaks(self, text: str) -> bool:
        """Whether `text` still names a model once masked: a name spelled out letter by letter
        or cut by markup, which `mask` does not replace. Remembered per text."""
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        hit = self._leaks.get(key)
        if hit is None:
            folded = fold(self.mask(text))[0]
            squeezed = _MARKUP.sub("", folded)
            joined = _SPELLED.sub(lambda m: re.sub(r"[\W_]", "", m.group(0)), squeezed)
            hit = self._re.search(squeezed) is not None or self._re.search(joined) is not None
            if len(self._leaks) < 200_000:  # 16-byte keys: a few MB at most
                self._leaks[key] = hit
        return hit


# Markup that can cut a name ("Q**wen**"); single letters separated by one or two separators.
_MARKUP = re.compile(r"[*_~`|]+")
_SPELLED = re.compile(rf"(?<!{_ALNUM})(?:{_ALNUM}[\s.\-·,/]{{1,2}}){{2,}}{_ALNUM}(?!{_ALNUM})")


@lru_cache(maxsize=32)
def _cached(names: tuple[str, ...]) -> Masker:
    return Masker(names)


def _script(ch: str) -> str | None:
    if not ch:
        return None
    o = ord(ch)
    if 0x3040 <= o <= 0x30FF or 0xFF66 <= o <= 0xFF9F:
        return "kana"
    if 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0xAC00 <= o <= 0xD7AF:
        return "hangul"
    if _EAST_RE.match(ch):
        return "cjk"
    if 0x0400 <= o <= 0x04FF:
        return "cyrillic"
    return None


def _near(text: str, start: int, step: int) -> str:
    """The nearest letter from text[start] on in direction `step`, within a few characters."""
    i = start
    for _ in range(4):
        if not 0 <= i < len(text):
            return ""
        if text[i].isalpha():
            return text[i]
        i += step
    return ""


def _stand_in(text: str, start: int, end: int, kind: str) -> str:
    """The neutral words for a name at text[start:end], in the script around it: the nearest
    letters either side, and the name itself when it is written in CJK, kana or Hangul."""
    near = _near(text, start - 1, -1) + _near(text, end, 1)
    scripts = [s for ch in near if (s := _script(ch))]
    scripts += [s for ch in text[start:end] if (s := _script(ch)) and s != "cyrillic"]
    model, vendor = MODEL_MASK, VENDOR_MASK
    if scripts:
        pick = "kana" if "kana" in scripts else scripts[0]
        model, vendor = _LOCAL_MASKS[pick]
    return vendor if kind == "vendor" else model
