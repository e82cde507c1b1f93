"""Judge tasks: what to ask the judge about which generations, and how an answer is stored.

A task's question key hashes (judge, judge model, method, order, prompt, responses, template
and its answer instructions): an identical question is asked once (stored as
JudgeScore.group_key) and a changed template is asked again. Each stored row's unique
cache_key adds the generation ids, so two generations with identical text each get their own
row from one answer.

Every question exists in two wordings that differ only in the closing instruction: one asks
for the method's JSON answer (sent with the answer schema, for constrained decoding), the other
for the free-text line the parser reads ("Score: 7"), for servers that reject a schema.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from evaluation.auto.corpus import Corpus, GenRow
from evaluation.auto.judges.parsing import Parsed, Shape, parse_answer
from evaluation.auto.registry import MethodInfo, get, register
from storage.models import JudgeScore

for _info in (
    MethodInfo("scorer", "judge", "the judge scores each response on its own, 0–10", 0, 10,
               answer="score", unit="points"),
    MethodInfo("comparer", "judge", "the judge rates a response's closeness to the reference's, "
               "0–10, reasoning first", 0, 10, needs_reference=True, answer="score",
               unit="points"),
    MethodInfo("comparer-nr", "judge", "comparer without the reasoning step", 0, 10,
               needs_reference=True, answer="score", unit="points"),
    MethodInfo("selector", "judge", "the judge picks the best of every model's response to one "
               "prompt; the value is the share of prompts a model was picked", 0, 1,
               answer="index", unit="share picked"),
    MethodInfo("pairwise", "judge", "the judge picks the better of two responses, both orders; "
               "the value is the points won (1 win, ½ tie)", 0, 1, answer="verdict",
               unit="points per comparison"),
):  # fmt: skip
    register(_info)
METHODS = ("scorer", "comparer", "comparer-nr", "selector", "pairwise")
# Methods whose answer starts with the judge's reasoning (comparer-nr answers the score only).
REASONING_METHODS = frozenset({"scorer", "comparer", "selector", "pairwise"})

_REASON = "First explain your reasoning in two or three sentences"
_JSON = "Answer with one JSON object and nothing else, in exactly this shape:"
# method -> (JSON instruction, free-text instruction); $n is the number of responses shown.
INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "scorer": (
        f"{_REASON}, then rate the response as an integer from 0 (useless) to 10 (perfect). "
        f'{_JSON}\n{{"reasoning": "<two or three sentences>", "score": <0-10>}}',
        f"{_REASON}. Then, on the last line, give your\nrating as an integer from 0 (useless) "
        "to 10 (perfect) in exactly this format:\nScore: <0-10>",
    ),
    "comparer": (
        f"{_REASON}, then give the closeness as an integer from 0 (nothing alike) to 10 "
        f'(equivalent). {_JSON}\n{{"reasoning": "<two or three sentences>", "score": <0-10>}}',
        f"{_REASON}. Then, on the last line, give the\ncloseness as an integer from 0 (nothing "
        "alike) to 10 (equivalent) in exactly this format:\nScore: <0-10>",
    ),
    "comparer-nr": (
        f'Reply with the score only. {_JSON}\n{{"score": <0-10>}}',
        "Reply with the score only, in exactly this format and nothing else:\nScore: <0-10>",
    ),
    "selector": (
        f"{_REASON}, then give the number of the best response (1 to $n). "
        f'{_JSON}\n{{"reasoning": "<two or three sentences>", "choice": <1-$n>}}',
        f"{_REASON}. Then, on the last line, give the number\nof the best response (1 to $n) "
        "in exactly this format:\nChoice: <1-$n>",
    ),
    "pairwise": (
        f"{_REASON}, then give your verdict, where tie means they are equally good. "
        f'{_JSON}\n{{"reasoning": "<two or three sentences>", "verdict": "<A|B|tie>"}}',
        f"{_REASON}. Then, on the last line, give your\nverdict in exactly this format, where "
        "tie means they are equally good:\nVerdict: <A|B|tie>",
    ),
}


@cache
def template(method: str) -> Template:
    """The prompt template of a judge method (evaluation/auto/judges/templates/<method>.txt)."""
    name = method.replace("-", "_") + ".txt"
    text = resources.files("evaluation.auto.judges.templates").joinpath(name).read_text("utf-8")
    return Template(text)


def _render(method: str, structured: bool, **fields: object) -> str:
    json_text, free_text = INSTRUCTIONS[method]
    instructions = Template(json_text if structured else free_text).safe_substitute(fields)
    return template(method).substitute(fields, instructions=instructions)


def shape_of(method: str) -> Shape:
    """The answer shape the method registered (score, verdict or index)."""
    shape = get(method).answer
    if shape is None:
        raise ValueError(f"{method!r} is not a judge method")
    return shape


def _key(*parts: object) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JudgeTask:
    """One judge request and the rows its answer becomes."""

    method: str
    question_key: str
    prompt: str  # the rendered judge prompt, asking for the JSON answer
    members: tuple[int, ...]  # generation ids, in the order they were shown
    other: int | None = None  # comparer: the reference generation
    order: str | None = None  # pairwise: 'AB' (lower id shown first) or 'BA'
    free_prompt: str = ""  # the same question asking for a free-text answer line

    @property
    def shape(self) -> Shape:
        return shape_of(self.method)

    @property
    def asks_reasoning(self) -> bool:
        return self.method in REASONING_METHODS

    def row_keys(self) -> list[str]:
        """Cache keys of the rows an answer becomes (selector: one per shown response)."""
        if self.method == "selector":
            return [_key(self.question_key, g) for g in self.members]
        return [_key(self.question_key, self.members, self.other, self.order)]

    def parse(self, raw: str) -> Parsed:
        """The answer's JSON object when it is one, else the free-text reading."""
        return parse_answer(raw, self.shape, len(self.members))

    def rows(self, judge: str, raw: str) -> list[JudgeScore]:
        """Immutable JudgeScore rows for an answer; a parse failure keeps the raw text."""
        p = self.parse(raw)

        def row(**extra: Any) -> JudgeScore:
            return JudgeScore(
                judge=judge,
                method=self.method,
                raw=raw,
                parse_ok=p.ok,
                reasoning=p.reasoning,
                error=None if p.ok else p.problem,
                group_key=self.question_key,
                **extra,
            )

        if self.method == "selector":
            picked = int(p.choice) - 1 if p.ok and p.choice else None
            n = len(self.members)
            return [
                row(
                    generation_id=g,
                    order=f"{pos + 1}/{n}",
                    choice=p.choice,
                    score=None if picked is None else float(pos == picked),
                    cache_key=key,
                )
                for pos, (g, key) in enumerate(zip(self.members, self.row_keys(), strict=True))
            ]
        if self.method == "pairwise":
            x, y = sorted(self.members)
            score = None
            if p.ok and p.choice:
                first_is_x = self.order == "AB"
                score = {"tie": 0.5, "A": float(first_is_x), "B": float(not first_is_x)}[p.choice]
            return [
                row(
                    generation_id=x,
                    other_generation_id=y,
                    order=self.order,
                    choice=p.choice,
                    score=score,  # points of generation_id (the lower id): 1 win, ½ tie, 0 loss
                    cache_key=self.row_keys()[0],
                )
            ]
        return [
            row(
                generation_id=self.members[0],
                other_generation_id=self.other,
                score=p.score,
                cache_key=self.row_keys()[0],
            )
        ]


def build_tasks(
    corpus: Corpus, methods: list[str], judge: str, judge_model: str
) -> list[JudgeTask]:
    """Every judge question the corpus asks for, for the given methods."""
    tasks: list[JudgeTask] = []
    gens = corpus.generations

    def prompt_of(g: GenRow) -> str:
        return corpus.prompts.get(g.prompt_id, "")

    def key(method: str, order: str | None, g: GenRow, responses: list[str]) -> str:
        tpl = [template(method).template, *INSTRUCTIONS[method]]
        return _key(judge, judge_model, method, order, prompt_of(g), responses, tpl)

    def both(method: str, **fields: object) -> tuple[str, str]:
        """The question asking for the JSON answer, and asking for the free-text line."""
        return _render(method, True, **fields), _render(method, False, **fields)

    for method in methods:
        if method == "scorer":
            for g in sorted(gens.values(), key=lambda g: g.id):
                text, free = both(method, prompt=prompt_of(g), response=g.text)
                k = key(method, None, g, [g.text])
                tasks.append(JudgeTask(method, k, text, (g.id,), free_prompt=free))
        elif method in ("comparer", "comparer-nr"):
            for cand, ref in corpus.candidate_pairs():
                text, free = both(
                    method, prompt=prompt_of(cand), reference=ref.text, response=cand.text
                )
                k = key(method, None, cand, [ref.text, cand.text])
                tasks.append(JudgeTask(method, k, text, (cand.id,), ref.id, free_prompt=free))
        elif method == "selector":
            for group in corpus.slots().values():
                if len(group) < 2:
                    continue
                shown = list(group)
                # Anonymized and shuffled, reproducibly: position must not reveal the model.
                random.Random(_key([g.id for g in group])).shuffle(shown)
                blocks = "\n\n".join(f"[Response {i + 1}]\n{g.text}" for i, g in enumerate(shown))
                text, free = both(
                    method, prompt=prompt_of(group[0]), responses=blocks, n=len(shown)
                )
                k = key(method, None, group[0], [g.text for g in shown])
                members = tuple(g.id for g in shown)
                tasks.append(JudgeTask(method, k, text, members, free_prompt=free))
        elif method == "pairwise":
            pairs = {tuple(sorted((c.id, r.id))) for c, r in corpus.candidate_pairs()}
            pairs |= {tuple(sorted(p)) for p in corpus.rating_pairs if p[0] != p[1]}
            for x, y in sorted(pairs):
                gx, gy = gens[x], gens[y]
                for order, (a, b) in (("AB", (gx, gy)), ("BA", (gy, gx))):
                    text, free = both(
                        method, prompt=prompt_of(gx), response_a=a.text, response_b=b.text
                    )
                    k = key(method, order, gx, [a.text, b.text])
                    tasks.append(
                        JudgeTask(method, k, text, (a.id, b.id), order=order, free_prompt=free)
                    )
        else:
            raise ValueError(f"unknown judge method {method!r}; expected one of {METHODS}")
    return tasks
