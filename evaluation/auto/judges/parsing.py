"""Robust parsing of judge answers: scores, multi-choice picks and pairwise verdicts.

A judge asked with an answer schema (constrained decoding) answers one JSON object of the
method's shape (`parse_answer` reads it exactly). Free text is the fallback for servers that
reject a schema, and judges answer it in many shapes ("Score: 7.5", "8/10", "eight out of
ten", JSON, "[[A]]", "Response B is better"). Anything we cannot read with confidence is a
parse failure that keeps the raw text: never silently a number, a choice or a tie.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Literal

Shape = Literal["score", "verdict", "index"]
# The JSON keys of a structured answer, per shape (evaluation.auto.judges.answers builds the
# schema).
REASONING_KEY = "reasoning"
ANSWER_KEYS: dict[str, str] = {"score": "score", "verdict": "verdict", "index": "choice"}
VERDICTS = ("A", "B", "tie")

WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_WORD = r"zero|one|two|three|four|five|six|seven|eight|nine|ten"
# A number that is not the start of a longer number or a range ("7-8", "7 to 8").
NUM = rf"(\d+(?:\.\d+)?|(?i:{_WORD})\b)(?!\d|\.\d)"
_NOT_RANGE = r"(?!\s*(?:-|–|to)\s*\d)"
_DENOM = r"(?:\s*(?:/|out\s+of)\s*(10|100|ten)\b)?"
_SEP = r"[^\S\n]*(?:is|of|=|:|-|was)?[^\S\n]*(?:a[^\S\n]+)?"

_SCORE_LABEL = re.compile(
    r"(?i:\b(?:final\s+|overall\s+)?(?:score|rating|closeness|similarity|grade))"
    + _SEP
    + NUM
    + _DENOM
    + _NOT_RANGE
    + r"(?!\s*/\s*\d)"
)
_SCORE_FRACTION = re.compile(NUM + r"\s*(?:/|(?i:out\s+of))\s*(10|100|ten)\b")
_DOUBLE_BRACKET = re.compile(r"\[\[\s*([^\[\]]{1,12}?)\s*\]\]")
_SCORE_KEYS = ("score", "rating", "closeness", "similarity", "grade", "final_score")
_REASON_KEYS = ("reasoning", "explanation", "reason", "rationale", "justification")
_CHOICE_KEYS = ("choice", "best", "answer", "selection", "winner", "verdict", "better")

_CHOICE_LABEL = re.compile(
    r"(?i:\b(?:final\s+)?(?:choice|best\s+response|best|answer|selection|pick))"
    + _SEP
    + r"(?i:(?:response|option|candidate|number|no\.?)\s*)?#?\s*"
    + NUM
    + _NOT_RANGE
)
_CHOICE_PROSE = re.compile(
    r"(?i:\b(?:response|option|candidate))\s*#?\s*"
    + NUM
    + r"\s+(?i:is\s+(?:clearly\s+|by\s+far\s+)?the\s+(?:best|strongest|most))"
)

_TIE = r"tie|equal|equally\s+good|draw|neither|both"
_VERDICT_LABEL = re.compile(
    r"(?i:\b(?:final\s+)?(?:verdict|winner|choice|answer|decision|better\s+response|preferred))"
    + _SEP
    + r"(?i:(?:response|assistant|option)\s+)?[\(\[]?\s*"
    + rf"(?:(A|B)\b|(?i:({_TIE}))\b)"
)
_VERDICT_PROSE = re.compile(
    r"(?i:\b(?:response|assistant|option))\s+(A|B)\s+(?i:is\s+(?:clearly\s+|slightly\s+|much\s+|"
    r"far\s+|significantly\s+)?(?:better|superior|stronger|preferable|the\s+better))"
)


@dataclass(frozen=True)
class Parsed:
    """What a judge said: a score or a choice, its reasoning, or why it could not be read."""

    ok: bool
    score: float | None = None
    choice: str | None = None
    reasoning: str | None = None
    problem: str | None = None


def _clean(text: str) -> str:
    # Markdown emphasis and headings get in the way of "**Score:** 8".
    return re.sub(r"[*`#]+", "", text).strip()


def _to_number(token: str) -> float:
    t = token.strip().lower()
    if t in WORDS:
        return float(WORDS[t])
    try:
        return float(t)
    except (ValueError, OverflowError):
        return math.nan  # e.g. an unusual Unicode digit string: reported as out of range


def _scaled(value: float, denom: str | None) -> float:
    return value / 10.0 if denom == "100" else value


def _finite(value: float) -> float:
    """A JSON number as float; an integer too large for a float becomes inf (out of range)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _json_objects(text: str) -> list[dict[str, object]]:
    out = []
    for m in re.finditer(r"\{[^{}]*\}", text, re.S):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append({str(k).lower(): v for k, v in obj.items()})
    return out


def _json_field(text: str, keys: tuple[str, ...]) -> tuple[object, str | None] | None:
    """The last JSON object's value for the first of `keys`, with its reasoning if any."""
    for obj in reversed(_json_objects(text)):
        for key in keys:
            if key in obj and obj[key] not in (None, ""):
                reason = next((str(obj[k]) for k in _REASON_KEYS if obj.get(k)), None)
                return obj[key], reason
    return None


def _reasoning(text: str, span: tuple[int, int] | None) -> str | None:
    body = text if span is None else text[: span[0]] + text[span[1] :]
    body = re.sub(r"(?i)^\s*(reasoning|explanation)\s*:\s*", "", body.strip())
    return body.strip() or None


def _fail(problem: str, text: str) -> Parsed:
    return Parsed(ok=False, problem=problem, reasoning=_reasoning(text, None))


_EMPTY = Parsed(ok=False, problem="empty answer")


def _read(text: str, keys: tuple[str, ...]) -> tuple[str, object, str | None]:
    """The cleaned answer, and the last JSON object's value for the first of `keys` (None when
    there is none) with its reasoning."""
    t = _clean(text)
    found = _json_field(t, keys) if t else None
    return (t, *found) if found is not None else (t, None, None)


_BARE_SCORE = NUM + r"\s*\.?"  # the whole answer is a number: "7", "7."
_BARE_CHOICE = r"(?i:response\s*)?#?\s*" + NUM + r"\s*\.?"  # "2", "#2", "Response 2"


def _last(t: str, patterns: tuple[re.Pattern[str], ...]) -> re.Match[str] | None:
    """The last match of the first pattern that matches at all (the last labelled answer)."""
    for pattern in patterns:
        matches = list(pattern.finditer(t))
        if matches:
            return matches[-1]
    return None


def _bracketed_number(t: str, bare: str) -> tuple[float, tuple[int, int]] | None:
    """A number in [[…]], or the whole answer as a bare number (`bare`: its pattern), with its
    span."""
    m2 = _DOUBLE_BRACKET.search(t)
    whole = re.fullmatch(bare, t)
    hit = m2.group(1) if m2 else (whole.group(1) if whole else None)
    if hit is None or not re.fullmatch(NUM, hit):
        return None
    return _to_number(hit), (m2.span() if m2 else (0, len(t)))


def parse_score(text: str, max_score: float = 10.0) -> Parsed:
    """A 0..max_score score from a judge answer (last labelled score wins)."""
    t, raw, reason = _read(text, _SCORE_KEYS)
    if not t:
        return _EMPTY
    value: float | None = None
    span = None
    if raw is not None:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = _finite(raw)
        elif isinstance(raw, str):
            inner = parse_score(raw, max_score)
            if inner.ok:
                value = inner.score
    if value is None:
        m = _last(t, (_SCORE_LABEL, _SCORE_FRACTION))
        if m is not None:
            value, span = _scaled(_to_number(m.group(1)), m.group(2)), m.span()
    if value is None:
        value, span = _bracketed_number(t, _BARE_SCORE) or (None, None)
    if value is None:
        return _fail("no score found", t)
    if not 0.0 <= value <= max_score:
        return _fail(f"score {value:g} is outside 0–{max_score:g}", t)
    return Parsed(ok=True, score=value, reasoning=reason or _reasoning(t, span))


def parse_choice(text: str, n: int) -> Parsed:
    """The number (1..n) of the response a multi-choice judge picked."""
    t, raw, reason = _read(text, _CHOICE_KEYS)
    if not t:
        return _EMPTY
    pick: float | None = None
    span = None
    if raw is not None:
        if isinstance(raw, int) and not isinstance(raw, bool):
            pick = _finite(raw)
        elif isinstance(raw, str):
            m0 = re.search(NUM, raw)
            pick = _to_number(m0.group(1)) if m0 else None
    if pick is None:
        m = _last(t, (_CHOICE_LABEL, _CHOICE_PROSE))
        if m is not None:
            pick, span = _to_number(m.group(1)), m.span()
    if pick is None:
        pick, span = _bracketed_number(t, _BARE_CHOICE) or (None, None)
    if pick is None:
        return _fail("no choice found", t)
    if not 1 <= pick <= n or pick != int(pick):
        return _fail(f"choice {pick:g} is not one of 1..{n}", t)
    return Parsed(ok=True, choice=str(int(pick)), reasoning=reason or _reasoning(t, span))


def _verdict_token(token: str) -> str | None:
    tok = token.strip().strip(".!\"'()[]").lower()
    tok = re.sub(r"^(response|assistant|option)\s+", "", tok)
    if tok in ("a", "b"):
        return tok.upper()
    if re.fullmatch(_TIE, tok) or tok in ("c", "equally good", "tied"):
        return "tie"
    return None


def parse_pairwise(text: str) -> Parsed:
    """A / B / tie from a pairwise judge answer (in the order the responses were shown)."""
    t, raw, reason = _read(text, _CHOICE_KEYS)
    if not t:
        return _EMPTY
    verdict: str | None = None
    span = None
    if raw is not None:
        verdict = _verdict_token(str(raw))
    if verdict is None:
        m = _last(t, (_VERDICT_LABEL,))
        if m is not None:
            verdict, span = ("tie" if m.group(2) else m.group(1)), m.span()
    if verdict is None:
        m2 = _DOUBLE_BRACKET.search(t)
        if m2:
            verdict, span = _verdict_token(m2.group(1)), m2.span()
    if verdict is None:
        prose = {m.group(1) for m in _VERDICT_PROSE.finditer(t)}
        if len(prose) > 1:
            return _fail("contradictory verdicts (both A and B called better)", t)
        if prose:
            verdict = prose.pop()
    if verdict is None and len(t) <= 12:
        verdict, span = _verdict_token(t), (0, len(t))
    if verdict is None:
        return _fail("no verdict found", t)
    return Parsed(ok=True, choice=verdict, reasoning=reason or _reasoning(t, span))


def parse_answer(text: str, shape: Shape, n: int | None = None) -> Parsed:
    """A judge answer of the given shape: the schema's JSON object when the text is exactly
    that (constrained decoding), else the free-text readers. A JSON object cut off before
    its end (the token budget ran out) is a failure that says so."""
    structured = parse_structured(text, shape, n)
    if structured is not None:
        return structured
    if shape == "score":
        p = parse_score(text)
    elif shape == "index":
        p = parse_choice(text, n or 0)
    else:
        p = parse_pairwise(text)
    if not p.ok and text.lstrip().startswith("{") and not _json_objects(text):
        return Parsed(
            ok=False,
            problem="incomplete JSON answer (cut off at the token budget?)",
            reasoning=p.reasoning,
        )
    return p


def parse_structured(text: str, shape: Shape, n: int | None = None) -> Parsed | None:
    """Read an answer that is exactly one JSON object with the shape's key; None when the
    text is not such an object (then the free-text readers apply). A present key with a
    value outside the shape (score 11, choice 0, verdict 'C') is a failure."""
    try:
        obj = json.loads(text.strip(), strict=False)  # raw newlines inside strings are fine
    except (ValueError, RecursionError):
        return None
    key = ANSWER_KEYS[shape]
    if not isinstance(obj, dict) or key not in obj:
        return None
    value = obj[key]
    why = obj.get(REASONING_KEY)
    reasoning = why.strip() or None if isinstance(why, str) else None
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if shape == "score":
        if number is None:
            return Parsed(ok=False, problem=f"score {value!r} is not a number", reasoning=reasoning)
        score = _finite(number)
        if not 0.0 <= score <= 10.0:
            return Parsed(ok=False, problem=f"score {score:g} is outside 0–10", reasoning=reasoning)
        return Parsed(ok=True, score=score, reasoning=reasoning)
    if shape == "index":
        top = n or 0
        if number is None or not 1 <= _finite(number) <= top or number != int(number):
            return Parsed(
                ok=False, problem=f"choice {value!r} is not one of 1..{top}", reasoning=reasoning
            )
        return Parsed(ok=True, choice=str(int(number)), reasoning=reasoning)
    if value not in VERDICTS:
        return Parsed(
            ok=False, problem=f"verdict {value!r} is not one of A, B, tie", reasoning=reasoning
        )
    return Parsed(ok=True, choice=str(value), reasoning=reasoning)
