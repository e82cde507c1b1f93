"""The decision: which is the cheapest self-hosted model that is not worse than the reference
by more than the margin? A non-inferiority test per candidate, then a rule over cost order.

Per candidate, on the bootstrap interval [lo, hi] of its rating minus the reference's (Elo,
at `[evaluation] confidence`, 95% two-sided by default, i.e. a one-sided 2.5% test):

- **acceptable** when lo > −margin: it is at most `margin` worse, at that confidence;
- **ruled out** when hi < −margin: it is worse by more than the margin;
- **too close to call** when the interval is narrower than the margin yet still contains
  −margin: more votes would barely move it; the answer is "about the margin";
- **open** otherwise, with a rough count of the votes that would settle it (interval widths
  shrink like 1/√votes); also when the prior, not the votes, sets its gap to the reference
  (it never lost, or never won, against the reference's group: see evaluation.human.ratings) and
  when it has no votes at all.

The rule: walk the priced candidates from cheapest to dearest (those dearer than the
reference are not candidates). The first that is not ruled out decides: acceptable → **switch**
to it (every cheaper one is ruled out); open → **undecided**; too close → **too close to
call**. All ruled out → **keep** the reference. Candidates without a price (no throughput
measured) are listed as unpriced with the command that prices them, never dropped; when one
is not ruled out, the decision says it might be cheaper.

What the margin means in preference terms: a gap of d Elo means the candidate wins a vote
against the reference with probability 1 / (1 + 10^(d/400)); a 50 Elo margin = the candidate
is preferred in at least 43% of votes. Ties, "both bad" votes counted as ties, and careless
votes pull every fitted gap toward 0, so with noisy raters a gap passes the margin more
easily than the raters' true preferences would: keep rater quality up (gold pairs) rather
than widening the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from evaluation.human.ratings import BTResult
from evaluation.perf import ModelCost, format_usd

Status = Literal["acceptable", "ruled_out", "too_close", "open", "unrated"]
Kind = Literal["switch", "keep", "undecided", "too_close", "no_data"]
MAX_ESTIMATE = 100_000  # beyond this many more votes we say "many"


def preference(diff_elo: float) -> float:
    """P(candidate preferred over the reference) for a rating gap of diff_elo."""
    return 1.0 / (1.0 + 10.0 ** (-diff_elo / 400.0))


@dataclass(frozen=True)
class Comparison:
    """One candidate against the reference."""

    model: str
    status: Status
    diff: float | None  # rating − reference's rating (Elo)
    lo: float | None
    hi: float | None
    n_votes: int
    prior_set: bool
    cost_per_request: float | None  # None: unpriced
    cost_label: str
    votes_needed: int | None  # rough more votes to settle an open comparison
    why: str
    cost: ModelCost | None = None

    @property
    def priced(self) -> bool:
        return self.cost_per_request is not None

    def interval(self) -> str:
        if self.diff is None or self.lo is None or self.hi is None:
            return "no rating"
        lo = "−∞" if self.prior_set and self.status == "open" and self.lo < 0 else f"{self.lo:+.0f}"
        return f"{self.diff:+.0f} [{lo}, {self.hi:+.0f}]"


@dataclass(frozen=True)
class Decision:
    kind: Kind
    model: str | None  # the model to switch to
    reference: str | None
    reference_label: str  # "gpt-4 (the API)" or the reference model's name
    margin: float
    confidence: float
    headline: str
    comparisons: list[Comparison] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def status(self, model: str) -> Status | None:
        return next((c.status for c in self.comparisons if c.model == model), None)

    def comparison(self, model: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.model == model), None)

    @property
    def open(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status in ("open", "unrated")]

    def text(self) -> str:
        return " ".join([self.headline, *self.details])

    def short(self) -> str:
        """One line for a chart footnote or a notification."""
        if self.kind == "switch":
            return (
                f"Decision: switch to {self.model} "
                f"(cheapest acceptable, margin {self.margin:.0f} Elo)"
            )
        if self.kind == "keep":
            every = all(c.status == "ruled_out" for c in self.comparisons)
            which = "every candidate" if every else "every cheaper candidate"
            return f"Decision: keep {self.reference_label} ({which} ruled out)"
        if self.kind == "too_close":
            first = next((c.model for c in self.comparisons if c.status == "too_close"), "")
            return f"Decision: too close to call ({first})"
        if self.kind == "undecided" and not self.open:  # open only for want of a price
            loose = [c.model for c in self.comparisons if not c.priced and c.status != "ruled_out"]
            return f"Decision: undecided ({', '.join(loose[:4])} unpriced: run `slam probe`)"
        if self.kind == "undecided":
            names = ", ".join(c.model for c in self.open[:4])
            more = f" +{len(self.open) - 4}" if len(self.open) > 4 else ""
            return f"Decision: undecided ({names}{more} open)" if names else "Decision: undecided"
        return "Decision: not enough data yet"


STATUS_LABEL: dict[str, str] = {
    "acceptable": "acceptable",
    "ruled_out": "ruled out",
    "too_close": "too close to call",
    "open": "open",
    "unrated": "no votes",
}


def _votes_needed(n: int, diff: float, lo: float, hi: float, margin: float) -> int | None:
    """More votes for the interval to clear −margin on the side its point estimate is on,
    assuming its half-width shrinks like 1/√votes: n·(half-width / distance)² − n."""
    distance = abs(diff + margin)
    half = (hi - lo) / 2
    if n <= 0 or half <= 0:
        return None
    if distance < 1e-9:
        return None
    need = n * (half / distance) ** 2 - n
    return int(min(MAX_ESTIMATE, max(1, math.ceil(need))))


def compare(
    model: str,
    bt: BTResult | None,
    cost: ModelCost | None,
    margin: float,
) -> Comparison:
    cost_per_request = cost.cost_per_request if cost is not None else None
    label = cost.label() if cost is not None else "unknown (not measured)"
    d = bt.diff(model) if bt is not None else None
    if d is None or bt is None:
        why = "no votes yet" if bt is None or model not in bt.unrated else bt.unrated[model]
        return Comparison(model, "unrated", None, None, None, 0, False, cost_per_request, label,
                          None, why, cost)  # fmt: skip
    n = bt.ratings[model].n_votes
    if d.prior_set:
        bound = bt.ratings[model].bound
        side = {"lower": "never lost against", "upper": "never won against"}.get(
            bound or "", "has no chain of votes to"
        )
        why = f"it {side} the reference's group: the prior, not the votes, sets its gap"
        return Comparison(model, "open", d.point, d.lo, d.hi, n, True, cost_per_request, label,
                          None, why, cost)  # fmt: skip
    if d.lo > -margin:
        status: Status = "acceptable"
        why = f"at most {max(0.0, -d.lo):.0f} Elo below the reference (margin {margin:.0f})"
    elif d.hi < -margin:
        status = "ruled_out"
        why = f"at least {-d.hi:.0f} Elo below the reference (margin {margin:.0f})"
    elif d.hi - d.lo <= margin:
        status = "too_close"
        why = (
            f"its interval [{d.lo:+.0f}, {d.hi:+.0f}] is narrower than the margin yet contains "
            f"−{margin:.0f}: it is {abs(d.point + margin):.0f} Elo from the margin"
        )
    else:
        status = "open"
        why = f"its interval [{d.lo:+.0f}, {d.hi:+.0f}] contains −{margin:.0f}"
    needed = _votes_needed(n, d.point, d.lo, d.hi, margin) if status == "open" else None
    return Comparison(model, status, d.point, d.lo, d.hi, n, False, cost_per_request, label,
                      needed, why, cost)  # fmt: skip


def _money(c: Comparison, ref: ModelCost | None, ref_label: str) -> str:
    cost = c.cost
    if cost is None or cost.cost_per_request is None:
        return "its cost is unknown"
    if cost.free:
        return f"it is {cost.label()}"
    text = f"it costs {format_usd(cost.cost_per_request)} per request ({cost.label()})"
    if ref is not None and ref.is_api and ref.cost_per_request:
        text += f", {cost.reduction_label()} cheaper than {ref_label}"
        if cost.monthly_usd is not None and ref.monthly_usd is not None:
            text += (
                f": ≈ {format_usd(cost.monthly_usd)}/month vs {format_usd(ref.monthly_usd)}/month"
            )
    return text


def _names(cs: Sequence[Comparison]) -> str:
    return ", ".join(c.model for c in cs)


def _more(cs: Sequence[Comparison]) -> str:
    known = [c.votes_needed for c in cs if c.votes_needed is not None]
    if not known:
        return "more votes involving them"
    total = sum(known)
    return f"roughly {total:,} more votes" if total < MAX_ESTIMATE else "many more votes"


def decide(
    bt: BTResult | None,
    costs: Mapping[str, ModelCost],
    reference: str | None,
    candidates: Sequence[str],
    *,
    margin: float,
    confidence: float,
    api_name: str = "the API",
) -> Decision:
    """Apply the rule to every candidate (every model but the reference)."""
    ref_cost = costs.get(reference) if reference else None
    if ref_cost is not None and ref_cost.is_api:
        ref_label = f"{reference} (the API, {api_name})" if reference != api_name else api_name
    else:
        ref_label = reference or "the reference"

    def done(kind: Kind, headline: str, model: str | None = None, details: list[str] | None = None,
             comparisons: list[Comparison] | None = None) -> Decision:  # fmt: skip
        return Decision(kind, model, reference, ref_label, margin, confidence, headline,
                        comparisons or [], details or [])  # fmt: skip

    if reference is None:
        return done("no_data", "No decision: no reference model is configured "
                    "(mark one [[models]] entry reference = true).")  # fmt: skip
    comps = sorted((compare(m, bt, costs.get(m), margin) for m in candidates if m != reference),
                   key=lambda c: (not c.priced, c.cost_per_request or 0.0, c.model))  # fmt: skip
    if bt is None or reference not in bt.ratings:
        why = "no pairwise votes yet" if bt is None else f"{reference} has no votes yet"
        return done("no_data", f"No decision yet: {why}. Rate pairs (`/slam rate`) to start.",
                    comparisons=comps)  # fmt: skip
    if not comps:
        return done("no_data", "No decision: there are no candidate models besides the "
                    "reference.", comparisons=comps)  # fmt: skip
    return rule(comps, ref_cost, ref_label, reference, margin=margin, confidence=confidence)


def _are(cs: Sequence[Comparison]) -> str:
    return "is" if len(cs) == 1 else "are"


def _by_status(cs: Sequence[Comparison]) -> str:
    """'a, b are acceptable and c is open': each status group named with its models."""
    groups: dict[str, list[Comparison]] = {}
    for c in cs:
        groups.setdefault(STATUS_LABEL.get(c.status, c.status), []).append(c)
    parts = []
    for label, group in groups.items():
        word = "have" if label == "no votes" and len(group) > 1 else "has"
        verb = word if label == "no votes" else _are(group)
        parts.append(f"{_names(group)} {verb} {label}")
    return " and ".join(parts) if len(parts) <= 2 else "; ".join(parts)


def rule(
    comps: Sequence[Comparison],
    ref_cost: ModelCost | None,
    ref_label: str,
    reference: str | None,
    *,
    margin: float,
    confidence: float,
) -> Decision:
    """The rule over cost order, from the comparisons alone (every candidate has its status):
    one sentence per state, naming only states the comparisons are in."""

    def done(kind: Kind, headline: str, model: str | None = None, details: list[str] | None = None,
             comparisons: list[Comparison] | None = None) -> Decision:  # fmt: skip
        return Decision(kind, model, reference, ref_label, margin, confidence, headline,
                        comparisons or [], details or [])  # fmt: skip

    ref_price = ref_cost.cost_per_request if ref_cost is not None else None

    def order(c: Comparison) -> tuple[bool, float, str]:
        return (not c.priced, c.cost_per_request or 0.0, c.model)

    comps = sorted(comps, key=order)
    dearer = [c for c in comps if c.priced and ref_price is not None
              and (c.cost_per_request or 0.0) > ref_price]  # fmt: skip
    priced = [c for c in comps if c.priced and c not in dearer]
    unpriced = [c for c in comps if not c.priced]
    details: list[str] = []
    loose_unpriced = [c for c in unpriced if c.status != "ruled_out"]
    if unpriced:
        details.append(
            f"Unpriced (no throughput measured; run `slam probe`): {_names(unpriced)}"
            + (" — not ruled out, so possibly cheaper." if loose_unpriced else ".")
        )
    if dearer:
        details.append(f"Not cheaper than {ref_label}: {_names(dearer)}.")
    m = f"{margin:.0f} Elo"
    blocking: list[Comparison] = []
    for c in priced:
        if c.status == "ruled_out":
            continue
        if c.status == "acceptable":
            if blocking:
                break
            cheaper = [x for x in priced if order(x) < order(c)]
            money = _money(c, ref_cost, ref_label)
            head = (
                f"Switch to {c.model}: it is at most {max(0.0, -(c.lo or 0.0)):.0f} Elo below "
                f"{ref_label} at {confidence:.0%} confidence (margin {m}, {c.n_votes} votes), "
                f"and {money}"
                + (f"; every cheaper candidate ({_names(cheaper)}) is ruled out." if cheaper
                   else "; it is the cheapest candidate.")
            )  # fmt: skip
            return done("switch", head, c.model, details, comps)
        blocking.append(c)
    if not blocking:
        return _nothing_open(done, priced, dearer, loose_unpriced, details, comps, ref_label,
                             m, confidence)  # fmt: skip
    cleared = next((c for c in priced if c.status == "acceptable"), None)
    then = f" {cleared.model} is acceptable but dearer." if cleared else ""
    opened = [c for c in blocking if c.status in ("open", "unrated")]
    if blocking[0].status == "too_close":
        c = blocking[0]
        also = f" Also open: {_names(opened)}." if opened else ""
        return done(
            "too_close",
            f"Too close to call: {c.model} is {abs((c.diff or 0.0) + margin):.0f} Elo from the "
            f"margin (−{m}) after {c.n_votes} votes, interval {c.interval()}; more votes will "
            f"barely move it. Decide on cost and latency, or revisit the margin.{then}{also}",
            None, details, comps,
        )  # fmt: skip
    return done(
        "undecided",
        f"Undecided: {_names(opened)} {'is' if len(opened) == 1 else 'are'} still open against "
        f"{ref_label} (margin {m}); {_more(opened)} would settle "
        f"{'it' if len(opened) == 1 else 'them'}.{then}",
        None, details, comps,
    )  # fmt: skip


def _nothing_open(done: Callable[..., Decision], priced: list[Comparison],
                  dearer: list[Comparison], loose_unpriced: list[Comparison],
                  details: list[str], comps: list[Comparison], ref_label: str, m: str,
                  confidence: float) -> Decision:  # fmt: skip
    """No priced candidate cheaper than the reference is left standing: every one is ruled
    out, or there is none. Unpriced ones not ruled out keep the decision open; else keep."""
    loose_dearer = [c for c in dearer if c.status != "ruled_out"]
    if priced:
        out = (f"every priced candidate ({_names(priced)}) is ruled out" if len(priced) > 1
               else f"the priced candidate {priced[0].model} is ruled out")  # fmt: skip
    elif dearer:
        out = f"no priced candidate is cheaper than {ref_label}"
    else:
        out = "no candidate is priced yet (no throughput measured)"
    if loose_unpriced:
        state = _by_status(loose_unpriced)
        against = "" if not priced else f" against {ref_label}"
        if priced or dearer:
            state += " and unpriced" if len(loose_unpriced) == 1 else ", all unpriced"
        return done(
            "undecided",
            f"Undecided: {out}{against}, but {state}: run `slam probe` to price "
            f"{'it' if len(loose_unpriced) == 1 else 'them'}.",
            None, details, comps,
        )  # fmt: skip
    if loose_dearer:
        head = (f"Keep {ref_label}: every candidate cheaper than it is more than {m} below it at "
                f"{confidence:.0%} confidence; {_by_status(loose_dearer)} but "
                f"{_are(loose_dearer)} not cheaper.")  # fmt: skip
        return done("keep", head, None, details, comps)
    return done(
        "keep",
        f"Keep {ref_label}: every candidate is more than {m} below it at "
        f"{confidence:.0%} confidence.",
        None, details, comps,
    )  # fmt: skip
