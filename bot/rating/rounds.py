"""Rating rounds: blind pairs built from stored generations.

A pair compares two models' responses to the same prompt (same user context and run date).
Model pairs are covered evenly, the A/B order is randomized (balanced per model pair) and
recorded, and responses that name a model are flagged and masked before anyone sees them.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import combinations

from sqlmodel import Session, col, func, select

from bot.events import PairView
from core.config import SlamConfig
from core.errors import SlamError
from storage.models import (
    Experiment,
    Generation,
    ModelRecord,
    PairMessage,
    Prompt,
    RatingPair,
    RatingRound,
    utcnow,
)

# Model families a response might name itself by, besides the configured names.
KNOWN_FAMILIES = (
    "chatgpt", "gpt", "openai", "mistral", "mixtral", "llama", "tinyllama", "gemma", "gemini",
    "qwen", "phi", "claude", "anthropic", "deepseek", "smollm", "falcon", "vicuna", "zephyr",
    "granite", "olmo", "starling", "orca", "yi",
)  # fmt: skip
_NOT_NAMES = {"builtin", "instruct", "chat", "gguf", "latest", "model", "base", "small", "mini",
              "tiny", "large", "medium", "api", "local", "cpu", "it", "hf", "the"}  # fmt: skip
# Who makes models: a response saying "As an AI made by Alibaba Cloud" names itself as
# surely as "I am Qwen". Regular expressions, longest first at the same place; words that
# are also ordinary words match only capitalized.
VENDORS = (
    r"alibaba\s+cloud", r"alibaba", r"anthropic", r"open\s?ai", r"mistral\s+ai",
    r"google\s+deepmind", r"deepmind", r"(?-i:Google)", r"(?-i:Meta)(?:\s+AI)?",
    r"microsoft(?:\s+research)?", r"nvidia", r"hugging\s?face", r"cohere", r"stability\s+ai",
    r"allen\s+institute\s+for\s+ai", r"ai2", r"01\.ai", r"zhipu(?:\s+ai)?", r"baidu",
    r"tencent", r"moonshot\s+ai", r"(?-i:xAI)", r"ibm", r"(?-i:Amazon)", r"bytedance",
    r"technology\s+innovation\s+institute",
)  # fmt: skip
# Neutral stand-ins that read as ordinary text: a visible "[name hidden]" would tell the
# rater that this response named itself.
MODEL_MASK = "the assistant"
VENDOR_MASK = "the developer"
MASK = MODEL_MASK


class Masker:
    """Finds model names (configured names, ids and known families) and the names of the
    companies that make models in text, and replaces them with neutral words."""

    def __init__(self, names: Iterable[str]):
        literal, families = set(), set(KNOWN_FAMILIES)
        for name in names:
            if not name:
                continue
            base = re.split(r"[/\\]", name)[-1].removesuffix(".gguf")
            literal.update({name.lower(), base.lower()})
            families.update(
                t for t in re.findall(r"[a-z]{2,}", base.lower()) if t not in _NOT_NAMES
            )
        lits = sorted((re.escape(x) for x in literal if len(x) >= 3), key=len, reverse=True)
        fams = sorted((re.escape(x) for x in families), key=len, reverse=True)
        # A family matches as a word, with an optional version tail: "GPT-4", "Gemma 3", "llama3.2".
        fam_re = rf"(?<![a-z])(?:{'|'.join(fams)})(?![a-z])(?:[-\s]?\d(?:[\w.]*\w)?)?"
        vendor_re = rf"(?<![\w])(?:{'|'.join(VENDORS)})(?![\w])"
        model_re = "|".join([*(rf"(?<![\w]){x}(?![\w])" for x in lits), fam_re])
        self._re = re.compile(rf"(?P<vendor>{vendor_re})|(?P<model>{model_re})", re.IGNORECASE)

    @classmethod
    def for_config(cls, cfg: SlamConfig, extra: Iterable[str] = ()) -> Masker:
        names = [n for m in cfg.models for n in (m.name, m.model)]
        return cls([*names, *extra])

    def names_model(self, text: str) -> bool:
        return self._re.search(text) is not None

    def mask(self, text: str) -> str:
        return self._re.sub(
            lambda m: VENDOR_MASK if m.lastgroup == "vendor" else MODEL_MASK, text
        )


@dataclass(frozen=True)
class Candidate:
    generation_id: int
    model_id: int
    context_id: int
    text: str


def _experiment(session: Session, cfg: SlamConfig) -> Experiment:
    exp = session.exec(select(Experiment).where(Experiment.name == cfg.experiment.name)).first()
    if exp is None or exp.id is None:
        raise SlamError(
            f"no generations for experiment '{cfg.experiment.name}' yet; run `slam generate` first"
        )
    return exp


def _candidates(session: Session, experiment_id: int, run_date: date) -> list[Candidate]:
    rows = session.exec(
        select(Generation, Prompt.user_context_id)
        .join(Prompt, col(Prompt.id) == Generation.prompt_id)
        .where(Generation.experiment_id == experiment_id, Generation.run_date == run_date)
        .where(col(Generation.error).is_(None))
        .order_by(col(Generation.sample_index), col(Generation.id))
    ).all()
    return [
        Candidate(g.id, g.model_id, ctx, g.text)
        for g, ctx in rows
        if g.id is not None and g.text.strip()
    ]


def latest_run_date(session: Session, experiment_id: int) -> date | None:
    """The newest day on which at least two models answered."""
    rows = session.exec(
        select(col(Generation.run_date), func.count(func.distinct(Generation.model_id)))
        .where(Generation.experiment_id == experiment_id, col(Generation.error).is_(None))
        .group_by(col(Generation.run_date))
        .order_by(col(Generation.run_date).desc())
    ).all()
    return next((d for d, n in rows if n >= 2), None)


def plan_pairs(
    candidates: list[Candidate], n: int, rng: random.Random, used: Counter[tuple[int, int]]
) -> list[tuple[Candidate, Candidate, bool]]:
    """Up to `n` (first, second, a_is_first) triples: model pairs round-robin, each on the
    least-used user context (`used` counts generation pairs from earlier rounds)."""
    by_ctx: dict[int, dict[int, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in candidates:
        by_ctx[c.context_id][c.model_id].append(c)
    models = sorted({c.model_id for c in candidates})
    options: dict[tuple[int, int], list[tuple[Candidate, Candidate]]] = {}
    for m1, m2 in combinations(models, 2):
        opts = [
            (g1, g2)
            for ctx in sorted(by_ctx)
            for g1 in by_ctx[ctx].get(m1, [])[:1]
            for g2 in by_ctx[ctx].get(m2, [])[:1]
        ]
        if opts:
            rng.shuffle(opts)  # ties between equally used user contexts are broken at random
            options[(m1, m2)] = opts
    order = list(options)
    rng.shuffle(order)
    picked: list[tuple[Candidate, Candidate]] = []
    ctx_use: Counter[int] = Counter()
    while len(picked) < n and any(options[mp] for mp in order):
        for mp in order:
            if len(picked) >= n or not options[mp]:
                continue
            # Least used before (earlier rounds), then the user context least used this round.
            opts = options[mp]

            def cost(i: int, opts: list[tuple[Candidate, Candidate]] = opts) -> tuple[int, int]:
                g1, g2 = opts[i]
                return used[(g1.generation_id, g2.generation_id)], ctx_use[g1.context_id]

            g1, g2 = opts.pop(min(range(len(opts)), key=cost))
            ctx_use[g1.context_id] += 1
            picked.append((g1, g2))
    return balance_ab(picked, rng)


def balance_ab(
    picked: list[tuple[Candidate, Candidate]], rng: random.Random
) -> list[tuple[Candidate, Candidate, bool]]:
    """Balanced A/B order per model pair: half A-first, the odd one decided by a coin."""
    per_mp: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (g1, g2) in enumerate(picked):
        per_mp[(g1.model_id, g2.model_id)].append(i)
    a_first = [True] * len(picked)
    for idxs in per_mp.values():
        flags = [k % 2 == 0 for k in range(len(idxs))]
        if len(flags) % 2 and rng.random() < 0.5:
            flags[-1] = False
        rng.shuffle(flags)
        for i, f in zip(idxs, flags, strict=True):
            a_first[i] = f
    return [(g1, g2, a_first[i]) for i, (g1, g2) in enumerate(picked)]


def open_round(session: Session) -> RatingRound | None:
    return session.exec(
        select(RatingRound).where(RatingRound.status == "open").order_by(col(RatingRound.id).desc())
    ).first()


Planner = Callable[
    [list[Candidate], int, random.Random, Counter[tuple[int, int]]],
    list[tuple[Candidate, Candidate, bool]],
]


def start_round(
    session: Session,
    cfg: SlamConfig,
    rng: random.Random | None = None,
    run_date: date | None = None,
    n: int | None = None,
    planner: Planner | None = None,
) -> tuple[RatingRound, list[RatingPair]]:
    """Open a round and create its pairs (not yet posted). `planner` chooses them (default:
    `plan_pairs`, round-robin; bot.rating.selection.round_planner picks informative pairs)."""
    rng = rng or random.Random()
    current = open_round(session)
    if current is not None:
        raise SlamError(f"round {current.id} is still open; close it first (`round close`)")
    exp = _experiment(session, cfg)
    assert exp.id is not None
    run_date = run_date or latest_run_date(session, exp.id)
    if run_date is None:
        raise SlamError("no day has responses from two models yet; run `slam generate` first")
    cands = _candidates(session, exp.id, run_date)
    used = Counter(
        (p.generation_a_id, p.generation_b_id) if p.a_was_first_choice
        else (p.generation_b_id, p.generation_a_id)
        for p in session.exec(select(RatingPair)).all()
    )  # fmt: skip
    plan = (planner or plan_pairs)(cands, n or cfg.chat.pairs_per_round, rng, used)
    if not plan:
        raise SlamError(f"no two models answered the same prompt on {run_date}; nothing to rate")
    extra = [m.name for m in session.exec(select(ModelRecord)).all()]
    masker = Masker.for_config(cfg, extra)
    rnd = RatingRound(experiment_id=exp.id, run_date=run_date)
    session.add(rnd)
    session.flush()
    assert rnd.id is not None
    pairs = []
    for g1, g2, a_first in plan:
        a, b = (g1, g2) if a_first else (g2, g1)
        pair = RatingPair(
            round_id=rnd.id,
            generation_a_id=a.generation_id,
            generation_b_id=b.generation_id,
            a_was_first_choice=a_first,
            masked=masker.names_model(a.text) or masker.names_model(b.text),
        )
        session.add(pair)
        pairs.append(pair)
    session.flush()
    return rnd, pairs


def close_round(session: Session) -> RatingRound:
    rnd = open_round(session)
    if rnd is None:
        raise SlamError("no round is open; start one with `round start`")
    rnd.status, rnd.closed_at = "closed", utcnow()
    session.add(rnd)
    return rnd


def round_pairs(session: Session, round_id: int) -> list[RatingPair]:
    return list(
        session.exec(
            select(RatingPair).where(RatingPair.round_id == round_id).order_by(col(RatingPair.id))
        ).all()
    )


def record_message(
    session: Session,
    pair: RatingPair,
    platform: str,
    channel: str,
    ref: str,
    target: str | None = None,
    rater_id: int | None = None,
) -> None:
    """Remember that a message shows `pair` so reactions on it become votes."""
    assert pair.id is not None
    session.add(
        PairMessage(
            pair_id=pair.id,
            platform=platform,
            channel=channel,
            message_ref=ref,
            target=target,
            rater_id=rater_id,
        )
    )
    if pair.message_ref is None and rater_id is None and target is None:
        pair.platform, pair.channel, pair.message_ref = platform, channel, ref
        session.add(pair)


def pair_view(session: Session, pair: RatingPair, masker: Masker, legend: str) -> PairView:
    """The blind view of a pair: prompt context and the two masked responses."""
    a = session.get(Generation, pair.generation_a_id)
    b = session.get(Generation, pair.generation_b_id)
    if a is None or b is None:
        raise SlamError(f"pair {pair.id} refers to a missing generation")
    text_a, text_b, asked = a.text, b.text, a
    if pair.kind == "gold" and pair.decoy_text is not None:  # the bad side shows the decoy
        if pair.gold_answer == "B":
            text_a, asked = pair.decoy_text, b
        else:
            text_b = pair.decoy_text
    prompt = session.get(Prompt, asked.prompt_id)
    context = (prompt.text if prompt else "").split("\n\nQuery:", 1)[0].removeprefix("Context: ")
    if len(context) > 700:
        context = context[:700] + "…"
    assert pair.id is not None
    return PairView(
        pair_id=pair.id,
        round_id=pair.round_id,
        context=masker.mask(context),
        response_a=masker.mask(text_a.strip()),
        response_b=masker.mask(text_b.strip()),
        legend=legend,
        masked=pair.masked,
    )
