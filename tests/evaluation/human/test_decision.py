"""evaluation.human.decision.rule: one sentence per state, never naming a state the comparisons
are not in (no priced candidate, all unpriced acceptable, one priced ruled out and one unpriced
open, dearer ones, ...)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from evaluation.human.decision import STATUS_LABEL, Comparison, Decision, Status, rule
from evaluation.perf import ModelCost

REF_PRICE = 0.01
REF = ModelCost("gpt-4", "api", True, None, None, "pricing table", 0.03, REF_PRICE, 300.0, None,
                None)  # fmt: skip
BOUNDS: dict[str, tuple[float, float, float]] = {
    "acceptable": (-5.0, -20.0, 10.0), "ruled_out": (-120.0, -160.0, -80.0),
    "too_close": (-50.0, -65.0, -35.0), "open": (-40.0, -140.0, 60.0),
}  # fmt: skip


def cmp(model: str, status: Status, price: float | None) -> Comparison:
    diff, lo, hi = BOUNDS.get(status, (None, None, None))
    n = 0 if status == "unrated" else 40
    return Comparison(model, status, diff, lo, hi, n, False, price,
                      "unknown" if price is None else f"${price}", 30 if status == "open" else None,
                      "why", None)  # fmt: skip


STATUSES: list[Status] = ["acceptable", "ruled_out", "too_close", "open", "unrated"]
PRICES = st.one_of(st.none(), st.sampled_from([0.0001, 0.001, 0.005, 0.02]))  # 0.02: dearer


@st.composite
def states(draw: st.DrawFn) -> list[Comparison]:
    n = draw(st.integers(1, 5))
    return [cmp(f"cand{i}-7b", draw(st.sampled_from(STATUSES)), draw(PRICES)) for i in range(n)]


def decide_on(comps: list[Comparison]) -> Decision:
    return rule(comps, REF, "gpt-4 (the API)", "gpt-4", margin=50, confidence=0.95)


def _check(comps: list[Comparison], d: Decision) -> None:
    text = d.text()
    by = {c.model: c for c in comps}
    cheaper = [c for c in comps if c.priced and (c.cost_per_request or 0) <= REF_PRICE]
    unpriced = [c for c in comps if not c.priced]
    has = {s: any(c.status == s for c in comps) for s in STATUSES}
    plain = text.replace("not ruled out", "")
    if "ruled out" in plain:
        assert has["ruled_out"], text
    if "every priced candidate" in text:
        assert len(cheaper) > 1 and all(c.status == "ruled_out" for c in cheaper), text
    if m := re.search(r"the priced candidate (\S+) is ruled out", text):
        assert by[m.group(1)] in cheaper and by[m.group(1)].status == "ruled_out", text
    if "no candidate is priced" in text:
        assert not any(c.priced for c in comps), text
    if "no priced candidate is cheaper" in text:
        assert not cheaper and any(c.priced for c in comps), text
    if "unpriced" in text.lower():
        assert unpriced, text
    if "acceptable" in text:
        assert has["acceptable"], text
    if "too close" in text.lower():
        assert has["too_close"], text
    if re.search(r"\bopen\b", text):
        assert has["open"] or has["unrated"], text
    if "no votes" in text:
        assert has["unrated"], text
    if "every candidate is more than" in text:
        assert all(c.status == "ruled_out" for c in comps), text
    if "dearer" in text or "not cheaper" in text.lower():
        assert any(c.priced for c in comps), text
    # "x is <state>" / "x, y are <state>": each named model is in that state.
    for label in STATUS_LABEL.values():
        for m in re.finditer(rf"((?:cand\d-7b, )*cand\d-7b) (?:is|are|has|have) {label}\b", text):
            for name in m.group(1).split(", "):
                assert STATUS_LABEL[by[name].status] == label, (name, text)
    if d.kind == "switch":
        pick = by[d.model or ""]
        assert pick.status == "acceptable" and pick in cheaper, text
        assert all(c.status == "ruled_out" for c in cheaper
                   if (c.cost_per_request or 0) < (pick.cost_per_request or 0)), text  # fmt: skip
    if d.kind == "keep":
        assert all(c.status == "ruled_out" for c in cheaper + unpriced), text


@settings(max_examples=400, deadline=None)
@given(states())
@example([cmp("cand0-7b", "acceptable", None), cmp("cand1-7b", "acceptable", None)])
@example([cmp("cand0-7b", "ruled_out", 0.001), cmp("cand1-7b", "open", None)])
@example([cmp("cand0-7b", "acceptable", 0.02), cmp("cand1-7b", "ruled_out", 0.001)])
@example([cmp("cand0-7b", "open", 0.02), cmp("cand1-7b", "unrated", None)])
def test_the_sentence_never_names_a_state_absent_from_the_table(comps: list[Comparison]) -> None:
    d = decide_on(comps)
    _check(comps, d)
    short = d.short()
    assert "ruled out" not in short or d.kind == "keep", short
    if "every candidate ruled out" in short:
        assert all(c.status == "ruled_out" for c in comps), short
    assert "unpriced" not in short or any(not c.priced for c in comps), short


def test_the_sentences_of_issue_24() -> None:
    # Two acceptable but unpriced candidates, none priced: nothing priced to rule out.
    d = decide_on([cmp("cand0-7b", "acceptable", None), cmp("cand1-7b", "acceptable", None)])
    assert d.kind == "undecided"
    assert d.headline == ("Undecided: no candidate is priced yet (no throughput measured), but "
                          "cand0-7b, cand1-7b are acceptable: run `slam probe` to price them.")
    assert d.short() == "Decision: undecided (cand0-7b, cand1-7b unpriced: run `slam probe`)"
    d = decide_on([cmp("cand0-7b", "ruled_out", 0.001), cmp("cand1-7b", "open", None)])
    assert d.headline == ("Undecided: the priced candidate cand0-7b is ruled out against gpt-4 "
                          "(the API), but cand1-7b is open and unpriced: run `slam probe` to "
                          "price it.")  # fmt: skip
    d = decide_on([cmp("cand0-7b", "ruled_out", 0.001), cmp("cand1-7b", "acceptable", 0.02)])
    assert d.kind == "keep" and "cand1-7b is acceptable but is not cheaper" in d.headline
    d = decide_on([cmp("cand0-7b", "ruled_out", 0.001), cmp("cand1-7b", "ruled_out", None)])
    assert d.kind == "keep" and d.headline.startswith("Keep gpt-4 (the API): every candidate")
