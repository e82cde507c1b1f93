"""`slam demo --quick` runs every stage for real, offline, and leaves evidence of each; the
workspace is only ever deleted when it is a demo's; Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import logging
import signal
import struct
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from core.errors import SlamError
from slam.demo.run import JUDGE_NAME, MARKER, REFERENCE_NAME, prepare_workspace, run_demo
from storage.db import session_scope
from storage.models import Generation, JudgeScore, ModelRecord, Probe, SimilarityScore, Vote


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = run_demo(tmp_path / "ws", quick=True)
    out = capsys.readouterr().out
    assert ctx.engine is not None and ctx.cfg is not None
    assert ctx.cfg.reference is not None and ctx.cfg.reference.name == REFERENCE_NAME
    assert ctx.cfg.judge_model is not None and ctx.cfg.judge_model.name == JUDGE_NAME
    assert ctx.cfg.judge_model.model == "builtin:smollm2-135m"  # the instruct model judges
    variants = sorted(p.name for p in (tmp_path / "ws" / "models").glob("*.gguf"))
    assert variants == ["SmolLM2-135M-Instruct-q2_k.gguf", "gemma-3-270m-q3_k_m.gguf"]
    assert (tmp_path / "ws" / MARKER).is_file()

    def count(model: type) -> int:
        with session_scope(ctx.engine) as s:  # type: ignore[arg-type]
            return int(s.exec(select(func.count()).select_from(model)).one())

    with session_scope(ctx.engine) as s:
        models = {m.name: m.quantization for m in s.exec(select(ModelRecord)).all()}
        gens = s.exec(select(Generation)).all()
        judged = s.exec(select(JudgeScore)).all()
    assert models == {
        "smollm2-135m-q4_1": "Q4_1",
        "smollm2-135m-q2_k": "Q2_K",
        "gemma3-270m-q4_k_m": "Q4_K_M",
        "gemma3-270m-q3_k_m": "Q3_K_M",
    }
    assert len(gens) == 4 * 2  # four models x two quick users
    assert all(g.error is None and g.text and g.ttft_s and g.latency_s for g in gens)
    # The instruct judge answers in the schema's JSON: every answer readable
    assert {j.method for j in judged} == {"scorer", "selector"}
    assert judged and all(j.parse_ok for j in judged), [j.raw for j in judged if not j.parse_ok]
    assert all(isinstance(json.loads(j.raw, strict=False), dict) for j in judged)
    assert count(SimilarityScore) >= 4 * 3 * 2  # 4 metrics x 3 candidates x 2 users
    assert count(Probe) == 4 * (1 + 2)  # warmup 1 + measure 2 per model
    assert count(Vote) > 0

    report = tmp_path / "ws" / "report"
    html = (report / "report.html").read_text()
    assert "<img" in html and "base64," in html
    pngs = list(report.glob("*.png"))
    assert len(pngs) >= 10
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", head[16:24])
        assert width >= 600 and height >= 300
    assert "What ran here, offline" in out
    assert "scripted rater votes at random" in out
    assert "How far to trust each judge method" in out
    assert "Too few rated pairs to tell" in out  # ten scripted votes cannot decide it


def test_demo_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    from slam.cli import main

    assert main(["demo", "--help"]) == 0
    assert "offline" in capsys.readouterr().out


def test_fresh_refuses_a_folder_that_is_not_a_demo_workspace(tmp_path: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    with pytest.raises(SlamError, match=r"refusing to delete .*thesis.*'chapter1\.tex'"):
        prepare_workspace(precious, fresh=True)
    assert (precious / "chapter1.tex").read_text() == "years of work"
    # without --fresh the demo may run there, but never marks it as its own
    prepare_workspace(precious, fresh=False)
    assert not (precious / MARKER).exists()
    with pytest.raises(SlamError, match="refusing to delete"):
        prepare_workspace(precious, fresh=True)
    assert (precious / "chapter1.tex").exists()


def test_fresh_empties_an_empty_folder_or_a_demo_workspace(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_workspace(empty, fresh=True) == empty.resolve()
    assert (empty / MARKER).is_file()  # an empty folder becomes the demo's

    ws = tmp_path / "ws"
    prepare_workspace(ws, fresh=False)  # created by the demo: marked
    (ws / "slam.db").write_text("old run")
    (ws / "notes.txt").write_text("anything the demo put there")
    prepare_workspace(ws, fresh=True)
    assert sorted(p.name for p in ws.iterdir()) == [MARKER]

    old = tmp_path / "old-demo"  # a workspace of a demo from before the marker
    (old / "models").mkdir(parents=True)
    (old / "slam.db").write_text("x")
    (old / "report").mkdir()
    prepare_workspace(old, fresh=True)
    assert sorted(p.name for p in old.iterdir()) == [MARKER]

    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(SlamError, match="is a file, not a folder"):
        prepare_workspace(afile, fresh=True)


def test_fresh_refusal_is_one_line_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slam.cli import main

    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo", "--fresh", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to delete") and err.count("\n") == 1
    assert (tmp_path / "keep.txt").exists()


class _CtrlCOnQuantizerLog(logging.Handler):
    """Presses Ctrl-C (SIGINT to this process) at llama.cpp's first log line while its C
    quantizer runs (`quantizing` is set around llama_model_quantize) and calls back into
    Python: where the signal used to be lost. Lines from other llama.cpp calls (a model loaded
    by an earlier test in this process routes them here too) do not press."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pressed = False
        self.quantizing = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.quantizing and not self.pressed:
            self.pressed = True
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_quantize_stops_the_demo_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT while llama.cpp quantizes: exit 130 and one line, no ctypes traceback, and the
    demo does not go on (the next variant is never made)."""
    import llama_cpp

    from slam.cli import main

    log = logging.getLogger("slam.llama_cpp")
    press = _CtrlCOnQuantizerLog()
    monkeypatch.setattr(log, "propagate", False)
    real_quantize = llama_cpp.llama_model_quantize

    def quantize(*args: Any) -> int:
        press.quantizing = True
        try:
            return int(real_quantize(*args))
        finally:
            press.quantizing = False

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", quantize)
    # setLevel, not a plain attribute: it clears logging's isEnabledFor cache, which an earlier
    # test in this process (tests/hosting/test_quantize.py) filled with "DEBUG is off" — the
    # quantizer's lines were then dropped and the press landed in generation instead.
    level = log.level
    log.setLevel(logging.DEBUG)
    log.addHandler(press)
    try:
        code = main(["demo", "--quick", "--workspace", str(tmp_path / "w")])
    finally:
        log.removeHandler(press)
        log.setLevel(level)
    captured = capsys.readouterr()
    assert press.pressed
    assert code == 130
    assert captured.err == "interrupted\n"
    assert "generate" not in captured.out  # the next stage never started
    made = sorted(p.name for p in (tmp_path / "w" / "models").iterdir())
    assert made == ["SmolLM2-135M-Instruct-q2_k.gguf"]  # finished; Gemma's never begun
