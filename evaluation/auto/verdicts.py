"""How stored judge answers are read: the newest answer per question, and every answer as
pairwise verdicts on two responses to the same prompt. The per-model means
(evaluation.auto.method_scores), judge trust (evaluation.auto.judge_trust) and each judge's
length bias (evaluation.auto.judge_style) all read answers through this module.

**The newest answer.** One row per (judge, method, generation, other generation, order), the
newest (highest id): a question re-asked after a template change replaces the old answer.
A selector row is one response of one set's pick, so its key adds the question
(`group_key`): every stored selector row is kept, each a separate pick among its set.

**Pairwise verdicts** are on (x, y), x the lower generation id: X (x wins), Y or TIE. Each
judge method registers its reader (evaluation.auto.judges.tasks):

- scorer, comparer, comparer-nr (`score_verdicts`): within one prompt slot (prompt, day,
  sample), the higher score wins, equal scores tie;
- selector (`pick_verdicts`): the picked response wins over each other response of its set,
  two responses the judge did not pick tie;
- pairwise (`order_verdicts`): each answered order is one verdict, from the points of the
  lower id (1 win, ½ tie, 0 loss); `per_pair` averages both orders (a verdict that flips
  with the order ties).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

X, Y, TIE = "x", "y", "tie"
Slot = Hashable  # a generation's prompt slot: (prompt id, run date, sample index)


class Answer(Protocol):
    """The columns of a stored JudgeScore row the readers use."""

    @property
    def id(self) -> int | None: ...
    @property
    def judge(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def generation_id(self) -> int | None: ...
    @property
    def other_generation_id(self) -> int | None: ...
    @property
    def group_key(self) -> str | None: ...
    @property
    def order(self) -> str | None: ...
    @property
    def score(self) -> float | None: ...


A = TypeVar("A", bound=Answer)


def newest_key(r: Answer) -> tuple[object, ...]:
    """The question an answer row answers (the selector's adds its set, `group_key`)."""
    key = (r.judge, r.method, r.generation_id, r.other_generation_id, r.order)
    return (*key, r.group_key) if r.method == "selector" else key


def newest(rows: Iterable[A]) -> list[A]:
    """One row per question (`newest_key`): the newest, by id."""
    keep: dict[tuple[object, ...], A] = {}
    for r in sorted(rows, key=lambda r: r.id or 0):
        keep[newest_key(r)] = r
    return list(keep.values())


class Verdict(NamedTuple):
    """One judge answer read as a verdict on the pair (x, y), x < y."""

    x: int
    y: int
    verdict: str  # X, Y or TIE
    # pairwise: the order the question was asked in ('AB' or 'BA'; '' when not stored);
    # None: a question asked once
    order: str | None = None


Reader = Callable[[Sequence[Answer], Mapping[int, Slot]], list[Verdict]]


def points_verdict(points: float) -> str:
    """Points of the lower-id generation (1, ½, 0) -> X / Y / TIE."""
    return X if points > 0.5 else Y if points < 0.5 else TIE


def _points(verdict: str) -> float:
    return 1.0 if verdict == X else 0.0 if verdict == Y else 0.5


def ordered(g1: int, g2: int, winner: int | None) -> tuple[tuple[int, int], str]:
    """The pair (x, y) of two generations and the verdict on it (`winner` None: a tie)."""
    x, y = sorted((g1, g2))
    return (x, y), TIE if winner is None else X if winner == x else Y


def score_verdicts(rows: Sequence[Answer], slot: Mapping[int, Slot]) -> list[Verdict]:
    """Every pair of scored responses to the same prompt slot: the higher score wins (a
    generation scored more than once counts with its last row)."""
    by_slot: dict[Slot, dict[int, float]] = defaultdict(dict)
    for r in rows:
        g = r.generation_id
        if r.score is not None and g is not None and g in slot:
            by_slot[slot[g]][g] = r.score
    out = []
    make = tuple.__new__  # Verdict(x, y, v) without the keyword machinery: 100,000s of them
    for scores in by_slot.values():
        ids = sorted(scores)
        for i, x in enumerate(ids):
            sx = scores[x]
            for y in ids[i + 1 :]:
                sy = scores[y]
                out.append(make(Verdict, (x, y, X if sx > sy else Y if sy > sx else TIE, None)))
    return out


def selector_sets(rows: Sequence[A], slot: Mapping[int, Slot]) -> list[tuple[list[int], A]]:
    """Each selector answer as (the generations of its set, the row of the pick), for the
    sets with exactly one pick. One question may have been reused for another set with
    identical texts: the prompt slot keeps the sets apart."""
    groups: dict[tuple[object, ...], list[A]] = defaultdict(list)
    for r in rows:
        if r.generation_id is not None and r.generation_id in slot:
            groups[(r.group_key, slot[r.generation_id])].append(r)
    out = []
    for members in groups.values():
        picked = [r for r in members if r.score == 1.0 and r.generation_id is not None]
        if len(picked) == 1:
            out.append(([r.generation_id for r in members if r.generation_id is not None],
                        picked[0]))  # fmt: skip
    return out


def pick_verdicts(rows: Sequence[Answer], slot: Mapping[int, Slot]) -> list[Verdict]:
    """The pick of each set beats every other response of it; two unpicked responses tie."""
    out = []
    for ids, pick in selector_sets(rows, slot):
        won = pick.generation_id
        assert won is not None
        for g in ids:
            if g != won:
                (x, y), v = ordered(g, won, won)
                out.append(Verdict(x, y, v))
        for i, g in enumerate(ids):
            out += [Verdict(min(g, h), max(g, h), TIE) for h in ids[i + 1 :] if won not in (g, h)]
    return out


def order_verdicts(rows: Sequence[Answer], slot: Mapping[int, Slot]) -> list[Verdict]:
    """Each answered order of a pairwise question: the points of the lower id as a verdict."""
    return [
        Verdict(r.generation_id, r.other_generation_id, points_verdict(r.score), r.order or "")
        for r in rows
        if r.score is not None and r.generation_id is not None
        and r.other_generation_id is not None
    ]  # fmt: skip


def per_pair(verdicts: Iterable[Verdict]) -> dict[tuple[int, int], str]:
    """One verdict per pair (x, y). Answers asked in an order (pairwise) count once both
    orders, 'AB' and 'BA', are answered, as the mean of their points (a verdict that flips
    with the order ties). Otherwise a decided verdict replaces an earlier one and a tie fills
    only a pair nothing decided (a selector's unpicked responses)."""
    out: dict[tuple[int, int], str] = {}
    orders: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for v in verdicts:
        if v.order is not None:
            orders[(v.x, v.y)][v.order] = v.verdict
        elif v.verdict == TIE:
            out.setdefault((v.x, v.y), TIE)
        else:
            out[(v.x, v.y)] = v.verdict
    for key, by_order in orders.items():
        if "AB" in by_order and "BA" in by_order:
            out[key] = points_verdict((_points(by_order["AB"]) + _points(by_order["BA"])) / 2)
    return out
