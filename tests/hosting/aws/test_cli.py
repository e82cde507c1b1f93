"""`slam host ...` end to end: the real `slam` entry point in a subprocess, against moto's
server (AWS_ENDPOINT_URL) and a fake Ollama, with fake credentials in the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws_fakes import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    FakeOllama,
    aws_env,
    fake_ollama,
    moto_server,
    reset_moto,
)
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def slam_cmd() -> list[str]:
    """The installed console script (what the Docker image's ENTRYPOINT runs), else -m."""
    script = Path(sys.executable).with_name("slam")
    return [str(script)] if script.exists() else [sys.executable, "-m", "slam.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run(
        [*slam_cmd(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server(free_port()) as url:
        yield url


@pytest.fixture
def config(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    reset_moto(moto_url)
    aws_env(monkeypatch, moto_url, str(tmp_path))
    ami = _moto_ami(moto_url)
    path = tmp_path / "slam.toml"
    path.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "slam.db"}"

[aws]
region = "us-east-1"
ami_id = "{ami}"
ollama_models = ["llama3.2:1b"]
poll_interval_s = 0
boot_timeout_s = 5
ready_timeout_s = 5
""",
        encoding="utf-8",
    )
    return path


def _moto_ami(url: str) -> str:
    import boto3

    ec2 = boto3.Session(region_name="us-east-1").client("ec2")
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
    return str(images["Images"][0]["ImageId"])


def _all_output(*procs: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(p.stdout + p.stderr for p in procs)


def test_entrypoint_help_lists_the_host_commands(tmp_path: Path) -> None:
    root = run("--help", cwd=tmp_path)
    assert root.returncode == 0, root.stderr
    assert "host" in root.stdout
    host = run("host", "--help", cwd=tmp_path)
    assert host.returncode == 0, host.stderr
    for command in ("up", "status", "down", "guard"):
        assert re.search(rf"^\W*{command}\s", host.stdout, re.M), host.stdout


def test_down_needs_an_id_or_all(tmp_path: Path) -> None:
    proc = run("host", "down", cwd=tmp_path)
    assert proc.returncode == 2
    assert "give an instance id" in proc.stderr and "Traceback" not in proc.stderr


def test_host_lifecycle_through_the_cli(config: Path, tmp_path: Path) -> None:
    cwd = config.parent
    with fake_ollama(free_port(), FakeOllama(models=["llama3.2:1b"])) as ollama:
        up = run("-v", "host", "up", "-c", str(config), "--endpoint", ollama.url, cwd=cwd)
    assert up.returncode == 0, up.stderr
    iid = re.search(r"host (i-[0-9a-f]+) ready at " + re.escape(ollama.url), up.stdout)
    assert iid, up.stdout
    instance = iid.group(1)
    assert "$0.526/h on demand" in up.stdout
    assert f"export OLLAMA_HOST={ollama.url}" in up.stdout

    status = run("host", "status", "-c", str(config), cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert instance in status.stdout and "ready" in status.stdout and "0.526" in status.stdout
    assert "accrued total: $0.01" in status.stdout  # the one-minute billing minimum

    guard = run("host", "guard", "-c", str(config), cwd=cwd)
    assert guard.returncode == 0 and f"{instance}: kept until" in guard.stdout

    down = run("host", "down", "--all", "-c", str(config), cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert f"{instance}: terminated" in down.stdout
    again = run("-v", "host", "down", instance, "-c", str(config), cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert f"{instance}: already terminated" in again.stdout
    assert "no slam hosts" in run("host", "status", "-c", str(config), cwd=cwd).stdout

    text = _all_output(up, status, guard, down, again)
    assert FAKE_SECRET not in text and FAKE_KEY_ID not in text


def test_failed_launch_is_a_message_not_a_traceback(config: Path, tmp_path: Path) -> None:
    text = config.read_text().replace(
        'region = "us-east-1"', 'region = "us-east-1"\nsubnet_id = "subnet-0123456789abcdef0"'
    )
    config.write_text(text)
    proc = run("-v", "host", "up", "-c", str(config), cwd=config.parent)
    assert proc.returncode == 2
    assert "error: launching a g4dn.xlarge host failed: InvalidSubnetID.NotFound" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert FAKE_SECRET not in _all_output(proc)
    status = run("host", "status", "-c", str(config), cwd=config.parent)
    assert "no slam hosts in us-east-1" in status.stdout


def test_missing_credentials_is_a_message(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    proc = run("host", "status", "-c", str(config), cwd=config.parent)
    assert proc.returncode == 2
    assert "error: no AWS credentials found" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_replica_options_are_messages(tmp_path: Path) -> None:
    proc = run("host", "up", "--replica-mode", "twins", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--replica-mode must be 'servers' or 'parallel'" in proc.stderr
    proc = run("host", "up", "--replicas", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "--replicas" in proc.stderr and "Traceback" not in proc.stderr
