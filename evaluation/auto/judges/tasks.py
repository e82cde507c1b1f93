"""Judge tasks: what to ask the judge about which generations, and how an answer is stored.

Each judge method is a `JudgeMethod` in the `JUDGE_METHODS` registry: its metadata (the
methods registry's `MethodInfo`), the two wordings of its answer instruction, the questions
it asks of a corpus, how one answer becomes stored rows and how stored rows read as pairwise
verdicts (evaluation.auto.verdicts). Adding a judge method is one `register_judge` call.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from core.registry import Registry
from evaluation.auto.corpus import Corpus, GenRow
from evaluation.auto.judges.parsing import Parsed, Shape, parse_answer
from evaluation.auto.registry import MethodInfo, get, register
from evaluation.auto.verdicts import Reader, order_verdicts, pick_verdicts, score_verdicts
from storage.models import JudgeScore


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
        return JUDGE_METHODS.get(self.method).reasoning

    def row_keys(self) -> list[str]:
        """Cache keys of the rows an answer becomes (selector: one per shown response)."""
        if JUDGE_METHODS.get(self.method).row_per_response:
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

        return JUDGE_METHODS.get(self.method).store(self, p, row)


class Questions:
    """What a method's question builder needs: the corpus, the judge, the keys and wordings."""

    def __init__(self, corpus: Corpus, judge: str, judge_model: str) -> None:
        self.corpus, self.judge, self.judge_model = corpus, judge, judge_model

    def prompt_of(self, g: GenRow) -> str:
        return self.corpus.prompts.get(g.prompt_id, "")

    def key(self, method: str, order: str | None, g: GenRow, responses: list[str]) -> str:
        tpl = [template(method).template, *JUDGE_METHODS.get(method).instructions]
        return _key(self.judge, self.judge_model, method, order, self.prompt_of(g), responses,
                    tpl)  # fmt: skip

    def both(self, method: str, **fields: object) -> tuple[str, str]:
        """The question asking for the JSON answer, and asking for the free-text line."""
        return _render(method, True, **fields), _render(method, False, **fields)


Row = Callable[..., JudgeScore]  # the row of one answer, given its own fields


@dataclass(frozen=True)
class JudgeMethod:
    """One judge method: what it is, what it asks and how its answers are stored and read."""

    info: MethodInfo  # kind 'judge', with the answer shape
    instructions: tuple[str, str]  # (JSON, free-text) answer instruction; $n: responses shown
    questions: Callable[[Questions, str], list[JudgeTask]]  # (corpus, method) -> its tasks
    store: Callable[[JudgeTask, Parsed, Row], list[JudgeScore]]  # an answer -> stored rows
    read: Reader  # its stored rows -> pairwise verdicts (evaluation.auto.verdicts)
    reasoning: bool = True  # the answer starts with the judge's reasoning
    row_per_response: bool = False  # one stored row per response shown (selector)

    @property
    def name(self) -> str:
        return self.info.name


JUDGE_METHODS: Registry[JudgeMethod] = Registry("judge method")


def register_judge(method: JudgeMethod) -> JudgeMethod:
    """Register a judge method and its metadata (a second, different entry is an error)."""
    register(method.info)
    JUDGE_METHODS.add(method.name, method, replace=False)
    return method


def judge_methods() -> tuple[str, ...]:
    """Every registered judge method, in registration order (read now, never frozen)."""
    return tuple(JUDGE_METHODS.names())


def judge_method(method: str) -> JudgeMethod:
    """The registered judge method `method`; unknown: a ValueError naming the methods."""
    entry = JUDGE_METHODS.find(method)
    if entry is None:
        raise ValueError(f"unknown judge method {method!r}; expected one of {judge_methods()}")
    return entry


@cache
def template(method: str) -> Template:
    """The prompt template of a judge method (evaluation/auto/judges/templates/<method>.txt)."""
    name = method.replace("-", "_") + ".txt"
    text = resources.files("evaluation.auto.judges.templates").joinpath(name).read_text("utf-8")
    return Template(text)


def _render(method: str, structured: bool, **fields: object) -> str:
    json_text, free_text = JUDGE_METHODS.get(method).instructions
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


def build_tasks(
    corpus: Corpus, methods: list[str], judge: str, judge_model: str
) -> list[JudgeTask]:
    """Every judge question the corpus asks for, for the given methods."""
    q = Questions(corpus, judge, judge_model)
    return [task for method in methods for task in judge_method(method).questions(q, method)]


# -- the built-in methods: their questions, stored rows and instructions ----------------------


def _scored(q: Questions, method: str) -> list[JudgeTask]:
    """scorer: every generation on its own."""
    tasks = []
    for g in sorted(q.corpus.generations.values(), key=lambda g: g.id):
        text, free = q.both(method, prompt=q.prompt_of(g), response=g.text)
        k = q.key(method, None, g, [g.text])
        tasks.append(JudgeTask(method, k, text, (g.id,), free_prompt=free))
    return tasks


def _compared(q: Questions, method: str) -> list[JudgeTask]:
    """comparer, comparer-nr: every candidate beside the reference's response."""
    tasks = []
    for cand, ref in q.corpus.candidate_pairs():
        text, free = q.both(
            method, prompt=q.prompt_of(cand), reference=ref.text, response=cand.text
        )
        k = q.key(method, None, cand, [ref.text, cand.text])
        tasks.append(JudgeTask(method, k, text, (cand.id,), ref.id, free_prompt=free))
    return tasks


def _selected(q: Questions, method: str) -> list[JudgeTask]:
    """selector: every prompt slot with two or more responses, shuffled."""
    tasks = []
    for group in q.corpus.slots().values():
        if len(group) < 2:
            continue
        shown = list(group)
        # Anonymized and shuffled, reproducibly: position must not reveal the model.
        random.Random(_key([g.id for g in group])).shuffle(shown)
        blocks = "\n\n".join(f"[Response {i + 1}]\n{g.text}" for i, g in enumerate(shown))
        text, free = q.both(method, prompt=q.prompt_of(group[0]), responses=blocks, n=len(shown))
        k = q.key(method, None, group[0], [g.text for g in shown])
        members = tuple(g.id for g in shown)
        tasks.append(JudgeTask(method, k, text, members, free_prompt=free))
    return tasks


def _paired(q: Questions, method: str) -> list[JudgeTask]:
    """pairwise: every candidate–reference pair and every rated pair, in both orders."""
    tasks = []
    gens = q.corpus.generations
    pairs = {tuple(sorted((c.id, r.id))) for c, r in q.corpus.candidate_pairs()}
    pairs |= {tuple(sorted(p)) for p in q.corpus.rating_pairs if p[0] != p[1]}
    for x, y in sorted(pairs):
        gx, gy = gens[x], gens[y]
        for order, (a, b) in (("AB", (gx, gy)), ("BA", (gy, gx))):
            text, free = q.both(method, prompt=q.prompt_of(gx), response_a=a.text,
                                response_b=b.text)  # fmt: skip
            k = q.key(method, order, gx, [a.text, b.text])
            tasks.append(JudgeTask(method, k, text, (a.id, b.id), order=order, free_prompt=free))
    return tasks


def _score_row(task: JudgeTask, p: Parsed, row: Row) -> list[JudgeScore]:
    return [row(generation_id=task.members[0], other_generation_id=task.other, score=p.score,
                cache_key=task.row_keys()[0])]  # fmt: skip


def _pick_rows(task: JudgeTask, p: Parsed, row: Row) -> list[JudgeScore]:
    """One row per response shown: 1 for the pick, 0 for the rest, its position kept."""
    picked = int(p.choice) - 1 if p.ok and p.choice else None
    n = len(task.members)
    return [
        row(
            generation_id=g,
            order=f"{pos + 1}/{n}",
            choice=p.choice,
            score=None if picked is None else float(pos == picked),
            cache_key=key,
        )
        for pos, (g, key) in enumerate(zip(task.members, task.row_keys(), strict=True))
    ]


def _verdict_row(task: JudgeTask, p: Parsed, row: Row) -> list[JudgeScore]:
    x, y = sorted(task.members)
    score = None
    if p.ok and p.choice:
        first_is_x = task.order == "AB"
        score = {"tie": 0.5, "A": float(first_is_x), "B": float(not first_is_x)}[p.choice]
    return [
        row(
            generation_id=x,
            other_generation_id=y,
            order=task.order,
            choice=p.choice,
            score=score,  # points of generation_id (the lower id): 1 win, ½ tie, 0 loss
            cache_key=task.row_keys()[0],
        )
    ]


_REASON = "First explain your reasoning in two or three sentences"
_JSON = "Answer with one JSON object and nothing else, in exactly this shape:"
_SCORE_SHAPE = '{"reasoning": "<two or three sentences>", "score": <0-10>}'

for _method in (
    JudgeMethod(
        MethodInfo("scorer", "judge", "the judge scores each response on its own, 0–10", 0, 10,
                   answer="score", unit="points"),
        (f"{_REASON}, then rate the response as an integer from 0 (useless) to 10 (perfect). "
         f"{_JSON}\n{_SCORE_SHAPE}",
         f"{_REASON}. Then, on the last line, give your\nrating as an integer from 0 (useless) "
         "to 10 (perfect) in exactly this format:\nScore: <0-10>"),
        _scored, _score_row, score_verdicts,
    ),
    JudgeMethod(
        MethodInfo("comparer", "judge", "the judge rates a response's closeness to the "
                   "reference's, 0–10, reasoning first", 0, 10, needs_reference=True,
                   answer="score", unit="points"),
        (f"{_REASON}, then give the closeness as an integer from 0 (nothing alike) to 10 "
         f"(equivalent). {_JSON}\n{_SCORE_SHAPE}",
         f"{_REASON}. Then, on the last line, give the\ncloseness as an integer from 0 (nothing "
         "alike) to 10 (equivalent) in exactly this format:\nScore: <0-10>"),
        _compared, _score_row, score_verdicts,
    ),
    JudgeMethod(  # answers the score only: no reasoning
        MethodInfo("comparer-nr", "judge", "comparer without the reasoning step", 0, 10,
                   needs_reference=True, answer="score", unit="points"),
        (f'Reply with the score only. {_JSON}\n{{"score": <0-10>}}',
         "Reply with the score only, in exactly this format and nothing else:\nScore: <0-10>"),
        _compared, _score_row, score_verdicts, reasoning=False,
    ),
    JudgeMethod(
        MethodInfo("selector", "judge", "the judge picks the best of every model's response to "
                   "one prompt; the value is the share of prompts a model was picked", 0, 1,
                   answer="index", unit="share picked"),
        (f"{_REASON}, then give the number of the best response (1 to $n). "
         f'{_JSON}\n{{"reasoning": "<two or three sentences>", "choice": <1-$n>}}',
         f"{_REASON}. Then, on the last line, give the number\nof the best response (1 to $n) "
         "in exactly this format:\nChoice: <1-$n>"),
        _selected, _pick_rows, pick_verdicts, row_per_response=True,
    ),
    JudgeMethod(
        MethodInfo("pairwise", "judge", "the judge picks the better of two responses, both "
                   "orders; the value is the points won (1 win, ½ tie)", 0, 1, answer="verdict",
                   unit="points per comparison"),
        (f"{_REASON}, then give your verdict, where tie means they are equally good. "
         f'{_JSON}\n{{"reasoning": "<two or three sentences>", "verdict": "<A|B|tie>"}}',
         f"{_REASON}. Then, on the last line, give your\nverdict in exactly this format, where "
         "tie means they are equally good:\nVerdict: <A|B|tie>"),
        _paired, _verdict_row, order_verdicts,
    ),
):  # fmt: skip
    register_judge(_method)
