"""Chatbot Arena's battle format, both ways.

**Out** (`slam export votes --format arena`): one record per counted pairwise vote, with the
fields of Arena's public battle data (FastChat's `clean_battle` output): `model_a`, `model_b`,
`winner` (`model_a`, `model_b`, `tie`, `tie (bothbad)`), `judge` (the rater's pseudonym),
`tstamp` (Unix seconds), `anony` (true: our pairs are blind), `question_id` (the input's id),
`conversation_a` / `conversation_b` (the prompt and each answer as `{"role", "content"}`
messages) and `turn` (1). "Counted" is under the configured vote policy, so a Bradley–Terry
fit of the file is our ratings' fit: FastChat's `compute_mle_elo` runs on it unchanged.

**In** (`slam import votes FILE --format arena --feature F`): a JSON array or JSON Lines of such
records. Each battle becomes, in feature F, an input (`question_id`), its prompt (the user
turns), one imported generation per side (`source = 'imported'`, the same answer text of the
same model is one generation), a pair (kind `import`, in one closed round per import, revealed)
and one vote by the judge (a rater of platform `arena`, stored under the judge's name).
All or nothing: every bad record is named with its line and nothing is stored; idempotent:
a battle already imported (same feature, question, models, judge, time, winner and
conversations) is not stored again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from core.config import SlamConfig
from core.errors import SlamError, short
from core.features import Feature
from core.paths import read_import_file
from core.prompts import text_hash
from evaluation.exchange.pseudonyms import IMPORTED, Pseudonyms
from evaluation.exchange.tables import Window, generation_info, utc
from evaluation.human import VotePolicy, effective_votes
from storage import models as t
from storage.db import session_scope
from storage.repo import ensure_experiment, ensure_prompt

REQUIRED = ("model_a", "model_b", "winner", "conversation_a", "conversation_b")
# The fields of Arena's public battle files; anything else is a mistake in the file.
OPTIONAL = ("judge", "tstamp", "anony", "question_id", "turn", "language", "conv_metadata",
            "category_tag", "dedup_tag", "is_code", "judge_hash", "openai_moderation",
            "toxic_chat_tag", "arena_hard_auto_v0.1", "conversation_tag")  # fmt: skip
ARENA_FIELDS = REQUIRED + OPTIONAL
WINNERS = {"model_a": "A", "model_b": "B", "tie": "tie", "tie (bothbad)": "both_bad"}
CHOICE_WINNER = {v: k for k, v in WINNERS.items()}
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MAX_NAME = 200
MAX_PROBLEMS = 20
ROLES = ("user", "assistant", "system")


# -- out ---------------------------------------------------------------------------------------
def _conversation(prompt: str, answer: str, meta: Any) -> list[dict[str, str]]:
    if isinstance(meta, dict) and isinstance(meta.get("conversation"), list):
        return list(meta["conversation"])  # an imported multi-turn conversation, as it came
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def arena_battles(
    session: Session, cfg: SlamConfig, window: Window, names: Pseudonyms
) -> list[dict[str, Any]]:
    """The counted pairwise votes in `window` as Arena battles, oldest first."""
    policy = VotePolicy.from_config(cfg.evaluation, scope=window.scope)
    votes = [v for v in effective_votes(session, "pairwise", policy) if window.keeps(v.created_at)]
    pairs = {
        p.id or 0: p
        for p in session.exec(orm_select(t.RatingPair).where(
            col(t.RatingPair.id).in_(sorted({v.pair_id for v in votes}))))
    }  # fmt: skip
    gen_ids = [g for p in pairs.values() for g in (p.generation_a_id, p.generation_b_id)]
    gens = generation_info(session, gen_ids)
    metas = {
        (i or 0): json.loads(m) if m else None
        for i, m in session.exec(
            orm_select(t.Generation.id, t.Generation.meta_json).where(
                col(t.Generation.id).in_(sorted(set(gen_ids)))))
    }  # fmt: skip
    raters = {
        r.id or 0: names.of(r.platform, r.user_hash)
        for r in session.exec(orm_select(t.Rater).where(
            col(t.Rater.id).in_(sorted({v.rater_id for v in votes}))))
    }  # fmt: skip
    out = []
    for v in votes:
        pair = pairs[v.pair_id]
        ga, gb = gens[pair.generation_a_id], gens[pair.generation_b_id]
        when = utc(v.created_at)
        assert when is not None
        out.append({
            "question_id": ga.input_id,
            "model_a": ga.model,
            "model_b": gb.model,
            "winner": CHOICE_WINNER[v.choice or ""],
            "judge": raters[v.rater_id],
            "conversation_a": _conversation(ga.prompt, ga.text, metas.get(pair.generation_a_id)),
            "conversation_b": _conversation(gb.prompt, gb.text, metas.get(pair.generation_b_id)),
            "turn": 1,
            "anony": True,
            "tstamp": when.timestamp(),
        })
    out.sort(key=lambda b: (b["tstamp"], b["question_id"], b["model_a"], b["model_b"]))
    return out


# -- in: reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Battle:
    line: int
    question_id: str
    model_a: str
    model_b: str
    choice: str
    judge: str
    tstamp: float | None
    prompt: str
    answer_a: str
    answer_b: str
    conversation_a: list[dict[str, str]]
    conversation_b: list[dict[str, str]]

    @property
    def multi_turn(self) -> bool:
        return len(self.conversation_a) != 2 or len(self.conversation_b) != 2

    def key(self, feature: str) -> str:
        blob = json.dumps([feature, self.question_id, self.model_a, self.model_b, self.judge,
                           self.tstamp, self.choice, self.conversation_a, self.conversation_b],
                          sort_keys=True, ensure_ascii=False)  # fmt: skip
        return hashlib.sha256(blob.encode()).hexdigest()[:40]


def _records(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line, record, problem) of a JSON array or JSON Lines."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        dec = json.JSONDecoder()
        pos = len(text) - len(stripped) + 1
        n = len(text)
        while True:
            while pos < n and text[pos] in " \t\r\n":
                pos += 1
            if pos < n and text[pos] == "]":
                rest = text[pos + 1:].strip()
                if rest:
                    line = text.count("\n", 0, pos) + 1
                    yield line, None, "text after the end of the JSON array"
                return
            line = text.count("\n", 0, pos) + 1
            try:
                obj, pos = dec.raw_decode(text, pos)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield line, None, (f"not valid JSON ({short(str(exc), 80)}; a truncated "
                                   "file?)")  # fmt: skip
                return
            yield line, obj, None
            while pos < n and text[pos] in " \t\r\n":
                pos += 1
            if pos < n and text[pos] == ",":
                pos += 1
            elif pos < n and text[pos] == "]":
                continue
            else:
                line = text.count("\n", 0, min(pos, n)) + 1
                yield line, None, "the JSON array is not closed (a truncated file?)"
                return
    # Only "\n" ends a JSON line: str.splitlines would also split inside a string holding
    # U+2028 or U+0085, which JSON writes unescaped (ensure_ascii=False).
    for n_line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield n_line, None, f"not valid JSON ({short(str(exc), 80)}; a truncated line?)"
            continue
        yield n_line, obj, None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string (got {short(repr(value), 40)})")
    if len(value) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    return value.strip()


def _messages(value: Any, what: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) < 2:
        raise ValueError(f"{what} must be a list of at least two messages (the user's turn "
                         "and the answer), each {\"role\": …, \"content\": …}")  # fmt: skip
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or set(m) - {"role", "content"} or "role" not in m:
            raise ValueError(f"{what}[{i}] must be {{\"role\": …, \"content\": …}}")
        if m["role"] not in ROLES:
            raise ValueError(f"{what}[{i}].role must be one of {', '.join(ROLES)} "
                             f"(got {short(repr(m['role']), 30)})")  # fmt: skip
        content = m.get("content")
        if not isinstance(content, str):
            raise ValueError(f"{what}[{i}].content must be text")
        if len(content) > MAX_TEXT_CHARS:
            raise ValueError(f"{what}[{i}].content is longer than {MAX_TEXT_CHARS:,} characters")
        out.append({"role": m["role"], "content": content})
    if out[-1]["role"] != "assistant":
        raise ValueError(f"{what} must end with the model's answer (role 'assistant')")
    if not any(m["role"] == "user" for m in out):
        raise ValueError(f"{what} has no user turn")
    return out


def _asked(conv: list[dict[str, str]]) -> list[dict[str, str]]:
    return [m for m in conv if m["role"] != "assistant"]


def _battle(obj: Any, line: int) -> Battle:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object (got {type(obj).__name__})")
    unknown = sorted(set(obj) - set(ARENA_FIELDS))
    if unknown:
        shown = ", ".join(short(repr(k), 30) for k in unknown[:5])
        raise ValueError(f"unknown field(s) {shown}; Arena battles have "
                         f"{', '.join(ARENA_FIELDS[:10])}, …")  # fmt: skip
    missing = [f for f in REQUIRED if f not in obj]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    winner = obj["winner"]
    if winner not in WINNERS:
        raise ValueError(f"winner must be one of {', '.join(repr(w) for w in WINNERS)} "
                         f"(got {short(repr(winner), 40)})")  # fmt: skip
    a, b = _name(obj["model_a"], "model_a"), _name(obj["model_b"], "model_b")
    if a == b:
        raise ValueError(f"model_a and model_b are the same model ({short(a, 60)})")
    conv_a = _messages(obj["conversation_a"], "conversation_a")
    conv_b = _messages(obj["conversation_b"], "conversation_b")
    if _asked(conv_a) != _asked(conv_b):
        raise ValueError("conversation_a and conversation_b ask different questions (their "
                         "user turns differ)")  # fmt: skip
    tstamp = obj.get("tstamp")
    if tstamp is not None and (isinstance(tstamp, bool) or not isinstance(tstamp, int | float)
                               or not 0 < tstamp < 1e11):
        raise ValueError(f"tstamp must be a Unix time in seconds (got {short(repr(tstamp), 40)})")
    if "anony" in obj and not isinstance(obj["anony"], bool):
        raise ValueError("anony must be true or false")
    judge = _name(obj["judge"], "judge") if obj.get("judge") is not None else "anonymous"
    prompt = "\n\n".join(m["content"] for m in conv_a[:-1] if m["role"] == "user")
    if len(conv_a) == 2 and conv_a[0]["role"] == "user":
        prompt = conv_a[0]["content"]
    raw_q = obj.get("question_id")
    question = (_name(str(raw_q), "question_id") if raw_q is not None and not isinstance(
        raw_q, dict | list | bool) else "q-" + text_hash(prompt)[:16])  # fmt: skip
    return Battle(line, question, a, b, WINNERS[winner], judge,
                  float(tstamp) if tstamp is not None else None, prompt,
                  conv_a[-1]["content"], conv_b[-1]["content"], conv_a, conv_b)  # fmt: skip


def read_battles(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[Battle]:
    """Every battle of a file; a SlamError naming each bad record's line (nothing read)."""
    from hosting.imports import ImportError_

    shown = short(str(path), 200)
    text = read_import_file(path, "battles", max_bytes)
    problems: list[str] = []
    battles: list[Battle] = []
    for line, obj, problem in _records(text):
        if len(problems) >= MAX_PROBLEMS:
            problems.append("… (stopped after the first problems)")
            break
        if problem is not None:
            problems.append(f"line {line}: {problem}")
            continue
        try:
            battles.append(_battle(obj, line))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        raise ImportError_(shown, problems)
    if not battles:
        raise SlamError(f"{shown}: no battles in the file")
    return battles


# -- in: storing -------------------------------------------------------------------------------
@dataclass
class ArenaImport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    generations: int = 0
    models: set[str] = field(default_factory=set)

    def summary(self, dry_run: bool = False) -> str:
        verb = "would store" if dry_run else "stored"
        parts = [f"{self.read} battle(s) read (arena format)",
                 f"{verb} {self.stored} vote(s) and {self.generations} new answer(s)"]
        if self.duplicates:
            parts.append(f"{self.duplicates} already imported (not stored again)")
        if self.models:
            parts.append(f"models: {', '.join(sorted(self.models))}")
        return "; ".join(parts)


def _model(session: Session, cfg: SlamConfig, name: str) -> t.ModelRecord:
    rec = session.exec(orm_select(t.ModelRecord).where(t.ModelRecord.name == name)).first()
    if rec is None:
        spec = next((m for m in cfg.models if m.name == name), None)
        rec = t.ModelRecord(name=name, backend=spec.backend if spec else "imported",
                            model_id=spec.model if spec else name)  # fmt: skip
        session.add(rec)
        session.flush()
    return rec


def _input(s: Session, experiment_id: int, question_id: str) -> t.UserContext:
    """The feature's input of that id (left as it is), else a new one for the question."""
    q = orm_select(t.UserContext).where(t.UserContext.experiment_id == experiment_id,
                                        t.UserContext.key == question_id)  # fmt: skip
    uc = s.exec(q).first()
    if uc is None:
        uc = t.UserContext(experiment_id=experiment_id, key=question_id, name=question_id[:200],
                           data_json=json.dumps({"question_id": question_id}))  # fmt: skip
        s.add(uc)
        s.flush()
    return uc


def import_battles(
    engine: Engine,
    cfg: SlamConfig,
    feature: Feature,
    path: Path,
    *,
    dry_run: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> ArenaImport:
    """Store a file's battles as votes in `feature` (all or nothing, idempotent)."""
    battles = read_battles(path, max_bytes)
    result = ArenaImport(read=len(battles))
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        exp = ensure_experiment(s, feature.name, feature.prompt_template)
        assert exp.id is not None
        known = set(s.exec(orm_select(t.Vote.event_key).where(
            col(t.Vote.event_key).startswith("arena:"))))  # fmt: skip
        inputs: dict[str, t.UserContext] = {}
        models: dict[str, t.ModelRecord] = {}
        raters: dict[str, t.Rater] = {}
        G = t.Generation
        # What this feature holds already, read once: its answers (prompt, model, text) and
        # the sample indexes taken per (prompt, model, day); its prompts by text hash.
        gens: dict[tuple[int, int, str], t.Generation] = {
            (g.prompt_id, g.model_id, g.text): g
            for g in s.exec(orm_select(G).where(G.experiment_id == exp.id).order_by(
                col(G.id).desc()))
        }  # fmt: skip
        taken: dict[tuple[int, int, date], set[int]] = {}
        for g in gens.values():
            taken.setdefault((g.prompt_id, g.model_id, g.run_date), set()).add(g.sample_index)
        prompts: dict[tuple[int, str], t.Prompt] = {
            (p.user_context_id, p.text_hash): p
            for p in s.exec(orm_select(t.Prompt).where(t.Prompt.experiment_id == exp.id))
        }  # fmt: skip
        # Each battle's answers first (one flush for all), then its pair and rater (another),
        # then its vote: inserts in batches, not a round trip per row.
        todo: list[tuple[Battle, str, datetime, t.Generation, t.Generation]] = []
        with s.no_autoflush:
            for b in battles:
                key = b.key(feature.name)
                if f"arena:{key}" in known:
                    result.duplicates += 1
                    continue
                known.add(f"arena:{key}")
                when = datetime.fromtimestamp(b.tstamp, UTC) if b.tstamp is not None else now
                uc = inputs.get(b.question_id) or _input(s, exp.id, b.question_id)
                inputs[b.question_id] = uc
                assert uc.id is not None
                digest = text_hash(b.prompt)
                prompt = prompts.get((uc.id, digest)) or ensure_prompt(
                    s, exp.id, uc.id, b.prompt, digest)  # fmt: skip
                prompts[(uc.id, digest)] = prompt
                assert prompt.id is not None
                sides = []
                for name, text, conv in ((b.model_a, b.answer_a, b.conversation_a),
                                         (b.model_b, b.answer_b, b.conversation_b)):  # fmt: skip
                    if name not in models:
                        models[name] = _model(s, cfg, name)
                    result.models.add(name)
                    sides.append(_generation(s, gens, taken, prompt, models[name], text, conv, b,
                                             when, path, result))  # fmt: skip
                todo.append((b, key, when, sides[0], sides[1]))
        if not todo:
            if dry_run:
                s.rollback()
            return result
        s.flush()
        round_ = t.RatingRound(experiment_id=exp.id, status="closed",
                               run_date=min(w for _, _, w, _, _ in todo).date(), closed_at=now)
        s.add(round_)
        s.flush()
        assert round_.id is not None
        pairs = []
        for b, key, when, ga, gb in todo:
            assert ga.id is not None and gb.id is not None
            pairs.append(t.RatingPair(round_id=round_.id, generation_a_id=ga.id,
                                      generation_b_id=gb.id, platform=IMPORTED,
                                      channel=feature.name[:200], message_ref=key, revealed=True,
                                      kind="import", created_at=when))  # fmt: skip
            if b.judge not in raters:
                q = orm_select(t.Rater).where(t.Rater.platform == IMPORTED,
                                              t.Rater.user_hash == b.judge)  # fmt: skip
                raters[b.judge] = s.exec(q).first() or t.Rater(platform=IMPORTED,
                                                               user_hash=b.judge)  # fmt: skip
        s.add_all(pairs)
        s.add_all(raters.values())
        s.flush()
        for (b, key, when, _, _), pair in zip(todo, pairs, strict=True):
            rater = raters[b.judge]
            assert pair.id is not None and rater.id is not None
            s.add(t.Vote(pair_id=pair.id, rater_id=rater.id, kind="pairwise", action="add",
                         choice=b.choice, event_key=f"arena:{key}", created_at=when))  # fmt: skip
        result.stored = len(todo)
        if dry_run:
            s.rollback()
    return result


def _generation(
    s: Session,
    cache: dict[tuple[int, int, str], t.Generation],
    taken: dict[tuple[int, int, date], set[int]],
    prompt: t.Prompt,
    rec: t.ModelRecord,
    text: str,
    conv: list[dict[str, str]],
    b: Battle,
    when: datetime,
    path: Path,
    result: ArenaImport,
) -> t.Generation:
    """The model's generation of this answer to this prompt: the one stored, else a new one
    (at the next free sample index of its day)."""
    assert rec.id is not None and prompt.id is not None
    prompt_id = prompt.id
    ck = (prompt_id, rec.id, text)
    found = cache.get(ck)
    if found is not None:
        return found
    run_date = when.date()
    used = taken.setdefault((prompt_id, rec.id, run_date), set())
    sample = next(i for i in range(len(used) + 1) if i not in used)
    used.add(sample)
    meta: dict[str, Any] = {"imported_from": path.name, "format": "arena"}
    if b.multi_turn:
        meta["conversation"] = conv
    found = t.Generation(experiment_id=prompt.experiment_id, prompt_id=prompt_id, model_id=rec.id,
                         run_date=run_date, sample_index=sample, backend=rec.backend, text=text,
                         source="imported", meta_json=json.dumps(meta, sort_keys=True),
                         created_at=when)  # fmt: skip
    s.add(found)
    result.generations += 1
    cache[ck] = found
    return found
