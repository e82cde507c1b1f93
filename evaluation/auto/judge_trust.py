"""How far to trust each LLM judge method: agreement with the crowd, position and length bias.

Every judge method is read as a pairwise verdict on two responses to the same prompt, from
the newest answer per question (evaluation.auto.verdicts, the method's registered reader):

- scorer, comparer, comparer-nr: the higher score wins, equal scores tie;
- selector: the picked response wins over each other response of its set (two responses the
  judge did not pick tie);
- pairwise: the verdicts of both orders averaged (a verdict that flips with the order ties).

Per (judge, method), on the blind pairs the crowd rated (the plurality of the effective
pairwise votes, `evaluation.human.votes`; 'both bad' is a tie, pairs whose top verdicts tie in
count are left out):

- **Cohen's κ** between the crowd's verdict (A / B / tie) and the method's, with a 95%
  percentile-bootstrap interval over the rated pairs, and n, the number of pairs both decided;
- **position bias** where the method shows responses in an order: the share of decided
  pairwise answers (A or B) that chose the response shown first (unbiased: ½), and of selector
  picks that were the first response shown (unbiased: 1/N on average), with order
  consistency for pairwise (the same winner in both orders);
- **length bias**: of all the method's decided comparisons between responses of different
  length (in words), the share the longer response won (½ when length does not matter), set
  beside the crowd's own share on its rated pairs.

`judge_trust_summary` returns the rows and one sentence naming the method that matches the
raters best, or saying that n is still too small to tell.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from evaluation.auto.judges.tasks import JUDGE_METHODS
from evaluation.auto.verdicts import TIE, Slot, X, newest, ordered, per_pair, selector_sets
from evaluation.human import (
    EVERYTHING,
    Scope,
    VotePolicy,
    cohen_kappa,
    crowd_majority,
    effective_votes,
    majority_of_counts,
)
from storage.models import Generation, JudgeScore, RatingPair

if TYPE_CHECKING:
    from core.config import SlamConfig

MIN_PAIRS = 20  # rated pairs a method needs before its κ is compared with the others'
CONFIDENCE = 0.95


@dataclass(frozen=True)
class JudgeTrust:
    """How far one judge method agrees with the crowd, and its position and length bias."""

    judge: str
    method: str
    answers: int  # questions this method answered (stored)
    parse_failures: int  # of those, answers that could not be read
    n: int  # rated pairs that both the crowd and this method decided (κ's sample)
    agreement: float | None  # share of those pairs with the same verdict
    kappa: float | None
    kappa_lo: float | None  # 95% percentile-bootstrap interval of κ
    kappa_hi: float | None
    position_n: int  # decided answers (pairwise) or picks (selector) that the share counts
    first_shown: float | None  # share for the response shown first
    first_expected: float | None  # that share for an unbiased judge (½, or mean 1/N)
    order_consistency: float | None  # pairwise: same winner in both orders
    length_n: int  # decided comparisons of responses of different length
    longer_wins: float | None  # share of those the longer response won (½: no length bias)

    @property
    def enough(self) -> bool:
        """Enough rated pairs to compare this method's κ with another's."""
        return self.n >= MIN_PAIRS and self.kappa is not None


# -- κ with a bootstrap interval --------------------------------------------------------------


def kappa_interval(
    a: Sequence[str],
    b: Sequence[str],
    rounds: int = 1000,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float | None, float | None, float | None]:
    """Cohen's κ of two label sequences and its percentile-bootstrap interval (the pairs are
    resampled with replacement). κ is None when undefined; the interval is None when fewer
    than two pairs or no resample has a defined κ."""
    kappa = cohen_kappa(a, b)
    n = len(a)
    if kappa is None or n < 2 or rounds < 1:
        return kappa, None, None
    # κ depends on the pairs only through their k×k table of (a, b) labels, and resampling n
    # pairs with replacement draws that table from a multinomial(n, observed cell shares):
    # the same bootstrap distribution, drawn in O(rounds·k²) instead of O(rounds·n).
    codes = {label: i for i, label in enumerate(sorted(set(a) | set(b)))}
    k = len(codes)
    cells = np.zeros(k * k)
    np.add.at(cells, [codes[x] * k + codes[y] for x, y in zip(a, b, strict=True)], 1.0)
    rng = np.random.default_rng(seed)
    tables = rng.multinomial(n, cells / n, size=rounds).reshape(rounds, k, k) / n
    observed = np.trace(tables, axis1=1, axis2=2)
    expected = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappas = (observed - expected) / (1.0 - expected)
    samples = kappas[expected < 1.0 - 1e-12]
    if samples.size == 0:
        return kappa, None, None
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return kappa, float(lo), float(hi)


# -- reading the stored verdicts --------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: int
    judge: str
    method: str
    generation_id: int | None
    other_generation_id: int | None
    group_key: str | None
    order: str | None
    score: float | None
    choice: str | None
    parse_ok: bool


def _rows(session: Session) -> list[_Row]:
    j = JudgeScore.__table__.c  # type: ignore[attr-defined]
    q = select(
        j.id, j.judge, j.method, j.generation_id, j.other_generation_id, j.group_key, j.order,
        j.score, j.choice, j.parse_ok,
    ).order_by(j.id)  # fmt: skip
    return [_Row(*r) for r in session.connection().execute(q).all()]  # type: ignore[call-arg]


@dataclass
class _MethodData:
    answers: int = 0
    parse_failures: int = 0
    verdicts: dict[tuple[int, int], str] | None = None  # (x, y) -> x / y / tie
    position: list[float] | None = None  # 1 when the first shown was chosen, else 0
    expected: list[float] | None = None  # per counted answer: the unbiased share
    consistency: tuple[int, int] | None = None  # (consistent, pairs in both orders)
    length: tuple[int, float | None] = (0, None)  # (decided comparisons, longer-wins share)


def _pick_position(rows: list[_Row], data: _MethodData, slot: dict[int, Slot]) -> None:
    """Selector: how often the pick was the response shown first ('1/N'), beside 1/N."""
    position, expected = [], []
    for _ids, pick in selector_sets(rows, slot):
        pos, _, total = (pick.order or "").partition("/")
        if pos.isascii() and total.isascii() and pos.isdigit() and total.isdigit() \
                and int(total) > 0:
            position.append(float(pos == "1"))
            expected.append(1.0 / int(total))
    data.position, data.expected = position, expected


def _order_position(rows: list[_Row], data: _MethodData) -> None:
    """Pairwise: how often a decided answer chose the response shown first (A), beside ½, and
    how often both orders of a pair got the same verdict."""
    by_pair: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    position: list[float] = []
    for r in rows:
        if r.score is None or r.generation_id is None or r.other_generation_id is None:
            continue
        if r.order in ("AB", "BA"):
            by_pair[(r.generation_id, r.other_generation_id)][r.order] = r.score
        if r.choice in ("A", "B"):
            position.append(float(r.choice == "A"))
    both = [orders for orders in by_pair.values() if len(orders) == 2]
    data.position, data.expected = position, [0.5] * len(position)
    data.consistency = (sum(o["AB"] == o["BA"] for o in both), len(both))


MethodData = tuple[dict[tuple[str, str], _MethodData], dict[int, int]]


def method_data(session: Session, scope: Scope = EVERYTHING) -> MethodData:
    """(judge, method) -> its verdicts and bias counts; generation id -> length in words.

    Reads judge answers and generations only (not votes): the results service keeps it
    while only votes change. `scope`: only the answers about one feature's (and slice's)
    generations."""
    g = Generation.__table__.c  # type: ignore[attr-defined]
    slot: dict[int, Slot] = {}
    words: dict[int, int] = {}
    q = select(g.id, g.prompt_id, g.run_date, g.sample_index, g.text).where(g.error.is_(None))
    q = q.where(*scope.generation_conditions(g))
    for gid, prompt_id, day, sample, text in session.connection().execute(q).all():
        slot[gid] = (prompt_id, day, sample)
        words[gid] = len((text or "").split())
    all_rows = _rows(session)
    if not scope.everything:
        all_rows = [r for r in all_rows if r.generation_id in slot]
    # Answers are questions answered: a selector answer is stored as one row per response shown
    asked: dict[tuple[str, str], dict[object, bool]] = defaultdict(dict)
    for r in all_rows:
        question = (r.group_key, slot.get(r.generation_id or -1)) if r.group_key else r.id
        asked[(r.judge, r.method)][question] = r.parse_ok
    counts = {
        key: (len(answers), sum(not ok for ok in answers.values()))
        for key, answers in asked.items()
    }
    good: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for r in newest(x for x in all_rows if x.parse_ok):
        good[(r.judge, r.method)].append(r)
    out: dict[tuple[str, str], _MethodData] = {}
    for key, (answers, failures) in counts.items():
        data = _MethodData(answers=answers, parse_failures=failures)
        rows = good.get(key, [])
        entry = JUDGE_METHODS.find(key[1])
        if entry is not None:  # a method no longer registered: its answers are only counted
            data.verdicts = per_pair(entry.read(rows, slot))
            if entry.info.answer == "index":
                _pick_position(rows, data, slot)
            elif entry.info.answer == "verdict":
                _order_position(rows, data)
        data.length = _longer_share(data.verdicts or {}, words)
        out[key] = data
    return out, words


def _longer_share(
    verdicts: dict[tuple[int, int], str], words: dict[int, int]
) -> tuple[int, float | None]:
    won = n = 0
    for (x, y), v in verdicts.items():
        if v == TIE or x not in words or y not in words or words[x] == words[y]:
            continue
        n += 1
        winner = x if v == X else y
        won += words[winner] == max(words[x], words[y])
    return n, (won / n if n else None)


Crowd = dict[tuple[int, int], tuple[str, int, int]]


def crowd_verdicts(
    session: Session,
    policy: VotePolicy | None = None,
    counts: Mapping[tuple[int, str], int] | None = None,
    pairs: Mapping[int, tuple[int, int]] | None = None,
) -> Crowd:
    """(x, y) -> (crowd verdict in x/y/tie, generation shown as A, as B) for rated pairs.

    From the effective pairwise votes under `policy`, or from per-pair counts of them
    ((pair id, choice) -> votes, as `VoteTally.pair_counts` gives) when `counts` is given;
    `pairs` (pair id -> generations shown as A and B) saves reading the pairs."""
    if counts is not None:
        majority = majority_of_counts(counts)
    else:
        majority = crowd_majority(effective_votes(session, "pairwise", policy or VotePolicy()))
    if not majority:
        return {}
    if pairs is None:
        p = RatingPair.__table__.c  # type: ignore[attr-defined]
        q = select(p.id, p.generation_a_id, p.generation_b_id).where(p.id.in_(list(majority)))
        pairs = {pid: (a, b) for pid, a, b in session.connection().execute(q).all()}
    out: dict[tuple[int, int], tuple[str, int, int]] = {}
    for pid in sorted(majority):
        if pid not in pairs:
            continue
        a, b = pairs[pid]
        if a == b:
            continue
        label = majority[pid]
        winner = {"A": a, "B": b}.get(label)
        key, v = ordered(a, b, winner)
        out[key] = (v, a, b)  # a pair rated twice (two rounds): the later round's verdict
    return out


def judge_trust(
    session: Session,
    policy: VotePolicy | None = None,
    rounds: int = 1000,
    seed: int = 0,
    *,
    verdicts: MethodData | None = None,
    crowd: Crowd | None = None,
    with_crowd_length: bool = True,
) -> tuple[list[JudgeTrust], tuple[int, float | None]]:
    """Rows per (judge, method), and the crowd's own (n, longer-wins share) on its pairs.

    `verdicts` (from `method_data`) and `crowd` (from `crowd_verdicts`) may be given when the
    caller already holds them; they are read from the session otherwise."""
    crowd = crowd if crowd is not None else crowd_verdicts(session, policy)
    scope = policy.scope if policy is not None else EVERYTHING
    data, words = verdicts if verdicts is not None else method_data(session, scope)
    rows = []
    rated = sorted(crowd.items())
    for (judge, method), d in sorted(data.items()):
        theirs = d.verdicts or {}
        human, model = [], []
        for key, (v, a, _b) in rated:
            mine = theirs.get(key)
            if mine is None:
                continue
            # Back to the pair as shown (A / B): the crowd's labels are in that frame.
            human.append(_as_shown(v, key, a))
            model.append(_as_shown(mine, key, a))
        kappa, lo, hi = kappa_interval(human, model, rounds=rounds, seed=seed)
        n = len(human)
        agree = sum(h == m for h, m in zip(human, model, strict=True)) / n if n else None
        length_n, longer = d.length
        pos = d.position or []
        consistent = d.consistency
        rows.append(
            JudgeTrust(
                judge=judge,
                method=method,
                answers=d.answers,
                parse_failures=d.parse_failures,
                n=n,
                agreement=agree,
                kappa=kappa,
                kappa_lo=lo,
                kappa_hi=hi,
                position_n=len(pos),
                first_shown=sum(pos) / len(pos) if pos else None,
                first_expected=(sum(d.expected or []) / len(pos)) if pos else None,
                order_consistency=(
                    consistent[0] / consistent[1] if consistent and consistent[1] else None
                ),
                length_n=length_n,
                longer_wins=longer,
            )
        )
    if not with_crowd_length:
        return rows, (0, None)
    crowd_length = _longer_share({k: v for k, (v, _a, _b) in crowd.items()}, words)
    return rows, crowd_length


def _as_shown(v: str, key: tuple[int, int], shown_a: int) -> str:
    if v == TIE:
        return "tie"
    winner = key[0] if v == X else key[1]
    return "A" if winner == shown_a else "B"


# -- the summary and its text -----------------------------------------------------------------


def _k(row: JudgeTrust) -> str:
    ci = (
        f" [{row.kappa_lo:.2f}, {row.kappa_hi:.2f}]"
        if row.kappa_lo is not None and row.kappa_hi is not None
        else ""
    )
    return f"κ {row.kappa:.2f}{ci}, n={row.n}" if row.kappa is not None else f"κ —, n={row.n}"


def best_match_sentence(rows: Sequence[JudgeTrust]) -> str:
    """One sentence: which judge method matches the human raters best, or why that cannot be
    told yet (too few rated pairs, or intervals that overlap)."""
    if not rows:
        return "No stored judgements yet: run `slam score` to see how far each judge agrees."
    ready = sorted((r for r in rows if r.enough), key=lambda r: -(r.kappa or 0.0))
    if not ready:
        largest = max(r.n for r in rows)
        return (
            f"Too few rated pairs to tell which judge method matches the human raters best: "
            f"the most any method shares with the crowd is n={largest} "
            f"(at least {MIN_PAIRS} are needed)."
        )
    best = ready[0]
    name = f"{best.method} ({best.judge})" if len({r.judge for r in rows}) > 1 else best.method
    head = f"{name} matches the human raters best ({_k(best)})"
    if best.kappa_lo is not None and best.kappa_lo <= 0.0:
        return head + ", but its interval includes 0: no better than chance so far."
    if len(ready) > 1:
        second = ready[1]
        if (
            best.kappa_lo is not None
            and second.kappa_hi is not None
            and best.kappa_lo <= second.kappa_hi
        ):
            return (
                head + f", but its interval overlaps {second.method}'s ({_k(second)}): "
                "more rated pairs are needed to tell them apart."
            )
    return head + "."


def judge_trust_summary(
    session: Session,
    cfg: SlamConfig | None = None,
    *,
    verdicts: MethodData | None = None,
    crowd: Crowd | None = None,
    policy: VotePolicy | None = None,
) -> tuple[list[JudgeTrust], str]:
    """The rows of every judge method and the sentence naming the best match with the crowd.

    Uses the config's vote policy (completion filter, per-rater cap; `policy` instead, e.g.
    with a feature's scope) and bootstrap rounds."""
    if policy is None:
        policy = VotePolicy.from_config(cfg.evaluation) if cfg is not None else VotePolicy()
    rounds = cfg.evaluation.bootstrap_rounds if cfg is not None else 1000
    rows, _ = judge_trust(session, policy, rounds=rounds, verdicts=verdicts, crowd=crowd,
                          with_crowd_length=False)
    return rows, best_match_sentence(rows)


def _f(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def render_text(
    rows: Sequence[JudgeTrust],
    sentence: str,
    crowd_length: tuple[int, float | None] | None = None,
) -> str:
    """A plain-text table (one line per method) and the sentence, for a terminal or a report;
    with `crowd_length` (from `judge_trust`), the crowd's own preference for longer answers."""
    if not rows:
        return sentence
    several = len({r.judge for r in rows}) > 1
    head = ["method", "answers", "parse fail", "n", "κ", "95% CI", "agree", "first shown",
            "consistent", "longer wins"]  # fmt: skip
    lines = []
    for r in rows:
        ci = (
            f"[{_f(r.kappa_lo)}, {_f(r.kappa_hi)}]"
            if r.kappa_lo is not None and r.kappa_hi is not None
            else "—"
        )
        first = (
            f"{_f(r.first_shown)} (fair {_f(r.first_expected)}, n={r.position_n})"
            if r.first_shown is not None
            else "—"
        )
        longer = f"{_f(r.longer_wins)} (n={r.length_n})" if r.longer_wins is not None else "—"
        lines.append(
            [
                f"{r.method}@{r.judge}" if several else r.method,
                str(r.answers),
                str(r.parse_failures),
                str(r.n),
                _f(r.kappa),
                ci,
                _f(r.agreement),
                first,
                _f(r.order_consistency),
                longer,
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(head)]

    def fmt(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    judge = "" if several else f" (judge {rows[0].judge})"
    out = [
        f"How far to trust each judge method{judge}: Cohen's κ with the crowd's verdict on "
        "rated pairs (n pairs, 95% bootstrap CI); share for the response shown first; share "
        "won by the longer response",
        fmt(head),
        *(fmt(row) for row in lines),
    ]
    if crowd_length is not None and crowd_length[1] is not None:
        out.append(
            f"The crowd itself chose the longer response in {crowd_length[1]:.0%} of "
            f"{crowd_length[0]} decided pairs of different length."
        )
    out.append(sentence)
    return "\n".join(out)


__all__ = [
    "MIN_PAIRS",
    "JudgeTrust",
    "best_match_sentence",
    "judge_trust",
    "judge_trust_summary",
    "kappa_interval",
    "render_text",
]
