"""LLM judges end to end: a scripted backend registered through the backend contract, real
storage, caching, honest parse failures, order consistency; and the real embedded model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.config import ModelSpec
from core.errors import SlamError
from evaluation.auto.corpus import load_corpus
from evaluation.auto.judges.parsing import parse_score
from evaluation.auto.judges.runner import run_judges
from evaluation.auto.metaeval import method_model_scores
from evaluation.auto.method_scores import order_consistency
from hosting.backends.base import Generation, GenerationRequest, register
from storage.db import session_scope
from storage.models import JudgeScore
from tests.support.eval_seed import seed_generations, seed_pair

GOOD = "Great work yesterday, Ana! Today focus on the report. Keep your walk. You are on track."
BAD = "lorem ipsum dolor sit amet"
REF = "Well done yesterday, Ana. Today, the report. Do not skip your walk. The week is yours."


class Scripted:
    """A judge whose answers are a function of the judge prompt; records every request."""

    name = "scripted"

    def __init__(self, spec: ModelSpec, answer: Callable[[str], str | Exception]):
        self.spec = spec
        self.answer = answer
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        out = self.answer(request.prompt)
        if isinstance(out, Exception):
            return Generation(text="", backend=self.name, model=self.spec.name, error=str(out))
        return Generation(text=out, backend=self.name, model=self.spec.name)

    async def aclose(self) -> None:
        return None


def _section(prompt: str, label: str) -> str:
    m = re.search(rf"\[{re.escape(label)}\]\n(.*?)(?:\n\n\[|\n\n(?:First|Reply)|\Z)", prompt, re.S)
    return m.group(1) if m else ""


def smart_answer(prompt: str) -> str | Exception:
    """Prefers GOOD, then REF, then BAD; a refusal for BAD under the scorer."""
    rank = {GOOD: 3, REF: 2, BAD: 1}
    # Either wording of the question: the JSON one ('"verdict"') or the free-text one
    if "Verdict:" in prompt or '"verdict"' in prompt:
        a, b = rank[_section(prompt, "Response A")], rank[_section(prompt, "Response B")]
        return "A is better.\nVerdict: " + ("A" if a > b else "B" if b > a else "tie")
    if "Choice:" in prompt or '"choice"' in prompt:
        shown = [_section(prompt, f"Response {i}") for i in range(1, 4)]
        best = max(range(len(shown)), key=lambda i: rank.get(shown[i], 0))
        return f"It is the most specific.\nChoice: {best + 1}"
    if "[Reference response]" in prompt:
        cand = _section(prompt, "Candidate response")
        return f"Score: {rank[cand] * 3}"
    resp = _section(prompt, "Response")
    if resp == BAD:
        return "I'm sorry, but I cannot evaluate this response."
    return f"Specific and warm.\nScore: {rank[resp] * 3}"


@pytest.fixture
def judge_backend() -> Callable[[Callable[[str], str | Exception]], list[Scripted]]:
    made: list[Scripted] = []

    def install(answer: Callable[[str], str | Exception]) -> list[Scripted]:
        register("scripted", lambda spec: made.append(Scripted(spec, answer)) or made[-1])
        return made

    return install


def judge_spec() -> ModelSpec:
    return ModelSpec(name="judge-x", backend="scripted", model="scripted-v1", concurrency=3)


def seed(engine: Engine) -> dict[tuple[str, int], int]:
    gens = seed_generations(
        engine,
        {"ref": [REF, REF], "good": [GOOD, GOOD], "bad": [BAD, BAD]},
        reference="ref",
    )
    seed_pair(engine, gens[("good", 0)], gens[("bad", 0)])
    return gens


def corpus(engine: Engine):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return load_corpus(s, "daily-pep-talk")


ALL = ["scorer", "comparer", "comparer-nr", "selector", "pairwise"]


async def test_judges_end_to_end_store_parse_and_cache(any_engine: Engine, judge_backend) -> None:  # type: ignore[no-untyped-def]
    engine = any_engine
    made = judge_backend(smart_answer)
    seed(engine)
    run = await run_judges(engine, corpus(engine), judge_spec(), ALL, max_tokens=64)
    backend = made[-1]
    assert all(r.temperature == 0.0 for r in backend.requests)
    assert {r.max_tokens for r in backend.requests} == {16, 64}  # comparer-nr answers short
    m = run.methods
    # 6 generations; 4 candidate-vs-reference pairs; 2 prompt groups; pairwise: 4 + 1 rated
    # pair (good/bad of prompt 0), both orders. Identical texts share one question.
    assert m["scorer"].tasks == 6 and m["comparer"].tasks == 4 and m["selector"].tasks == 2
    assert m["pairwise"].tasks == 10
    assert m["scorer"].calls == 6 and m["scorer"].reused == 0
    assert m["scorer"].parse_failures == 2  # the refusal, for both BAD generations
    assert run.calls == sum(x.calls for x in m.values()) == len(backend.requests)

    with session_scope(engine) as s:
        rows = s.exec(select(JudgeScore)).all()
        fails = [r for r in rows if not r.parse_ok]
        assert len(fails) == 2
        assert all(r.score is None and "cannot evaluate" in r.raw for r in fails)
        assert all(r.error == "no score found" for r in fails)
        scores = method_model_scores(s)
        consistency = order_consistency(s)
    assert scores["scorer"] == {"good": 9.0, "ref": 6.0}  # BAD was never given a number
    assert scores["comparer"]["good"] > scores["comparer"]["bad"]
    assert scores["selector"] == {"bad": 0.0, "good": 1.0, "ref": 0.0}
    assert scores["pairwise"]["good"] == 1.0 and scores["pairwise"]["bad"] == 0.0
    assert consistency[0].n_pairs == 5 and consistency[0].rate == 1.0

    # Re-running costs nothing: zero backend calls, everything cached.
    before = len(backend.requests)
    again = await run_judges(engine, corpus(engine), judge_spec(), ALL, max_tokens=64)
    assert again.calls == 0 and before > 0
    assert len(made) == 1 and len(backend.requests) == before  # no backend was even created
    assert all(x.cached == x.tasks for x in again.methods.values())


async def test_position_biased_judge_is_inconsistent(engine: Engine, judge_backend) -> None:  # type: ignore[no-untyped-def]
    judge_backend(lambda prompt: "Verdict: A")
    seed(engine)
    await run_judges(engine, corpus(engine), judge_spec(), ["pairwise"])
    with session_scope(engine) as s:
        (c,) = order_consistency(s)
        scores = method_model_scores(s)["pairwise"]
    assert c.n_pairs == 5 and c.rate == 0.0 and c.first_position_rate == 1.0
    # swapping the order cancels the bias: every model averages exactly a tie
    assert set(scores.values()) == {0.5}


async def test_identical_questions_are_asked_once(engine: Engine, judge_backend) -> None:  # type: ignore[no-untyped-def]
    made = judge_backend(smart_answer)
    seed_generations(engine, {"ref": [REF], "a": [GOOD], "b": [GOOD]}, reference="ref")
    run = await run_judges(engine, corpus(engine), judge_spec(), ["scorer"])
    assert run.methods["scorer"].tasks == 3 and len(made[-1].requests) == 2
    with session_scope(engine) as s:
        assert method_model_scores(s)["scorer"] == {"a": 9.0, "b": 9.0, "ref": 6.0}


async def test_transport_errors_are_not_cached(engine: Engine, judge_backend) -> None:  # type: ignore[no-untyped-def]
    down = {"on": True}

    def flaky(prompt: str) -> str | Exception:
        return RuntimeError("HTTP 503: overloaded") if down["on"] else "Score: 5"

    made = judge_backend(flaky)
    seed(engine)
    run = await run_judges(engine, corpus(engine), judge_spec(), ["scorer"])
    assert run.methods["scorer"].errors == 6 and "503" in (run.methods["scorer"].first_error or "")
    with session_scope(engine) as s:
        assert s.exec(select(JudgeScore)).all() == []
    down["on"] = False
    run2 = await run_judges(engine, corpus(engine), judge_spec(), ["scorer"])
    assert run2.methods["scorer"].calls == 6 and len(made[-1].requests) == 6
    with session_scope(engine) as s:
        assert len(s.exec(select(JudgeScore)).all()) == 6


async def test_unknown_method_is_a_clear_error(engine: Engine, judge_backend) -> None:  # type: ignore[no-untyped-def]
    judge_backend(lambda p: "Score: 1")
    seed(engine)
    with pytest.raises(SlamError, match=r"unknown judge method.*'scorr'.*expected any of"):
        await run_judges(engine, corpus(engine), judge_spec(), ["scorr"])


@pytest.mark.slow
async def test_real_embedded_judge_stores_answers_honestly(engine: Engine, gguf_path: Path) -> None:
    """The packaged Gemma 3 270M (a base model) as judge: under the grammar its answer is the
    schema's JSON, stored as said."""
    seed_generations(engine, {"ref": [REF]}, reference="ref")
    spec = ModelSpec(
        name="gemma-judge", backend="llamacpp", model="builtin:gemma3-270m", n_ctx=1024
    )
    run = await run_judges(engine, corpus(engine), spec, ["scorer"], max_tokens=8)
    assert run.methods["scorer"].calls == 1 and run.methods["scorer"].errors == 0
    assert run.methods["scorer"].structured == 1
    with session_scope(engine) as s:
        (row,) = s.exec(select(JudgeScore)).all()
    assert row.raw.strip(), "the model's answer is kept verbatim"
    assert list(json.loads(row.raw)) == ["score"]  # 8 tokens: no room for reasoning
    assert row.parse_ok and row.score is not None and 0 <= row.score <= 10


@pytest.mark.slow
async def test_real_instruct_judge_answers_every_method_readably(engine: Engine) -> None:
    """SmolLM2 135M Instruct (the offline default judge) on every method: all answers are
    the schema's JSON and parse; reasoning comes first where the method asks for it."""
    seed(engine)
    spec = ModelSpec(name="smol", backend="llamacpp", model="builtin:smollm2-135m", n_ctx=2048)
    run = await run_judges(engine, corpus(engine), spec, ALL, max_tokens=48)
    assert run.calls > 0 and not run.free_text
    for m in run.methods.values():
        assert m.errors == 0, m.first_error
        assert m.structured == m.calls, m.method
        assert m.parse_failures == 0, m.method
    with session_scope(engine) as s:
        rows = s.exec(select(JudgeScore)).all()
    for r in rows:
        keys = list(json.loads(r.raw, strict=False))
        assert keys[0] == ("score" if r.method == "comparer-nr" else "reasoning"), r.raw


class SchemaJudge(Scripted):
    """A judge whose server decodes under the answer schema, like the real backends do:
    every answer is the schema's JSON object (the value from `smart_answer`)."""

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if request.answer_schema is None:
            return Generation(text="Score: 5", backend=self.name, model=self.spec.name)
        schema = request.answer_schema.as_dict()
        props = schema["properties"]
        said = str(self.answer(request.prompt))
        key = list(props)[-1]
        value: object
        if key == "score":
            value = int(parse_score(said).score or 0)
        elif key == "choice":
            value = int(said.rsplit(":", 1)[1])
        else:
            value = said.rsplit(":", 1)[1].strip()
        obj = {"reasoning": "Because."} if "reasoning" in props else {}
        text = json.dumps(obj | {key: value})
        return Generation(text=text, backend=self.name, model=self.spec.name, structured=True)


def structured_answer(prompt: str) -> str | Exception:
    """smart_answer for the JSON wording of the questions (no refusals: the grammar forbids)."""
    rank = {GOOD: 3, REF: 2, BAD: 1}
    if '"verdict"' in prompt:
        a, b = rank[_section(prompt, "Response A")], rank[_section(prompt, "Response B")]
        return "Verdict: " + ("A" if a > b else "B" if b > a else "tie")
    if '"choice"' in prompt:
        shown = [_section(prompt, f"Response {i}") for i in range(1, 4)]
        return f"Choice: {max(range(len(shown)), key=lambda i: rank.get(shown[i], 0)) + 1}"
    if "[Reference response]" in prompt:
        return f"Score: {rank[_section(prompt, 'Candidate response')] * 3}"
    return f"Score: {rank[_section(prompt, 'Response')] * 3}"


async def test_judges_ask_for_each_methods_schema(engine: Engine) -> None:
    made: list[Scripted] = []
    register("schema", lambda spec: made.append(SchemaJudge(spec, structured_answer)) or made[-1])
    seed(engine)
    spec = ModelSpec(name="judge-s", backend="schema", model="s-v1", concurrency=2)
    run = await run_judges(engine, corpus(engine), spec, ALL, max_tokens=96)
    requests = made[-1].requests
    assert not run.free_text and all(r.answer_schema is not None for r in requests)
    assert sum(m.structured for m in run.methods.values()) == len(requests) == run.calls
    shapes = {}
    for r in requests:
        assert r.answer_schema is not None
        props = r.answer_schema.as_dict()["properties"]
        shapes[r.answer_schema.name] = props
        assert '"reasoning"' in r.prompt or r.answer_schema.name == "judge_comparer_nr"
    assert shapes["judge_scorer"]["score"]["enum"] == list(range(11))
    assert shapes["judge_scorer"]["reasoning"] == {"type": "string", "maxLength": 96 - 16}
    assert list(shapes["judge_comparer_nr"]) == ["score"]  # no reasoning asked
    assert shapes["judge_selector"]["choice"]["enum"] == [1, 2, 3]
    assert shapes["judge_pairwise"]["verdict"]["enum"] == ["A", "B", "tie"]
    with session_scope(engine) as s:
        rows = s.exec(select(JudgeScore)).all()
        scores = method_model_scores(s)
    assert rows and all(r.parse_ok for r in rows)
    assert {r.reasoning for r in rows if r.method != "comparer-nr"} == {"Because."}
    assert scores["scorer"] == {"bad": 3.0, "good": 9.0, "ref": 6.0}
    assert scores["pairwise"]["good"] == 1.0 and scores["selector"]["good"] == 1.0


async def test_a_judge_without_schemas_gets_the_free_text_wording(
    engine: Engine,
    judge_backend,  # type: ignore[no-untyped-def]
) -> None:
    made = judge_backend(smart_answer)  # answers free text, never structured
    seed(engine)
    spec = ModelSpec(name="judge-x", backend="scripted", model="v1", concurrency=1)
    run = await run_judges(engine, corpus(engine), spec, ["scorer"], max_tokens=64)
    first, *rest = made[-1].requests
    assert first.answer_schema is not None and '"score": <0-10>' in first.prompt
    assert rest and all(r.answer_schema is None for r in rest)  # detected once, remembered
    assert all(r.prompt.rstrip().endswith("Score: <0-10>") for r in rest)
    assert run.free_text and run.methods["scorer"].structured == 0
    assert run.methods["scorer"].parse_failures == 2  # the refusals stay honest failures
