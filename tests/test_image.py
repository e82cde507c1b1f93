"""The built image, run for real: `make image-test` builds it and runs these (with SLAM_IMAGE
set); `make test` skips them.

No docker daemon is needed: each check starts a process in a buildah working container made
from the image (chroot isolation, so the container shares this machine's network), with the
image's own ENTRYPOINT, CMD, USER, ENV and WORKDIR, as `docker run` would. The Slack bot
answers /healthz and a signed `/slam help` while it talks to a fake Slack Web API on this host
(SLACK_API_URL); the HEALTHCHECK command is the one recorded in the image.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_slack_api import FakeSlack
from tests.support.ports import free_port
from tests.support.slack_helpers import FORM, SECRET, TOKEN, signed, slash_body

IMAGE = os.environ.get("SLAM_IMAGE", "")
STORAGE_DRIVER = os.environ.get("STORAGE_DRIVER", "vfs")
ISOLATION = os.environ.get("BUILDAH_ISOLATION", "chroot")
USER = "10001:10001"

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="needs a built image: `make image-test` builds one and sets SLAM_IMAGE"
)


def buildah(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        ["buildah", "--storage-driver", STORAGE_DRIVER, *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"buildah {args[0]} failed: {proc.stderr}"
    return proc.stdout


@dataclass
class Container:
    """A working container of the image; `run` is `docker run IMAGE ARGS` without a daemon."""

    name: str
    config: dict[str, Any]  # the image's Docker config: Entrypoint, Cmd, User, Env, …

    def command(self, args: list[str] | None = None, env: dict[str, str] | None = None,
                entrypoint: bool = True) -> list[str]:  # fmt: skip
        """The buildah argv for ENTRYPOINT + (args or CMD), or a bare command."""
        argv = [*self.config["Entrypoint"], *(args or self.config["Cmd"])] if entrypoint else args
        assert argv
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return ["buildah", "--storage-driver", STORAGE_DRIVER, "run",
                f"--isolation={ISOLATION}", *flags, self.name, "--", *argv]  # fmt: skip

    def run(self, args: list[str], env: dict[str, str] | None = None, timeout: float = 300,
            entrypoint: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            self.command(args, env, entrypoint), capture_output=True, text=True, timeout=timeout
        )

    def healthcheck(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command, run in the container the way docker runs it."""
        test = self.config["Healthcheck"]["Test"]
        assert test[0] == "CMD", test
        return self.run(test[1:], env=env, timeout=60, entrypoint=False)


@pytest.fixture(scope="module")
def image() -> Iterator[Container]:
    info = json.loads(buildah("inspect", "--type", "image", IMAGE))
    name = buildah("from", "--pull=never", IMAGE, timeout=1200).strip()
    try:
        yield Container(name, info["Docker"]["config"])
    finally:
        buildah("rm", name)


def test_image_config_runs_slam_as_a_non_root_user(image: Container) -> None:
    cfg = image.config
    assert cfg["User"] == USER
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["slam"], ["bot", "slack"])
    assert cfg["WorkingDir"] == "/data" and "/data" in cfg["Volumes"]
    assert "3000/tcp" in cfg["ExposedPorts"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["SLAM_HTTP_HOST"] == "0.0.0.0" and env["SLAM_HTTP_PORT"] == "3000"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # Nothing about the build machine (wheelhouse, CA bundle, indexes) is left in the image.
    assert not [k for k in env if k.startswith("PIP_") or k.endswith("_INDEX_URL")]
    assert cfg["Healthcheck"]["Test"][:2] == ["CMD", "python"]


def test_slam_help_through_the_entrypoint(image: Container) -> None:
    proc = image.run(["--help"])
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "bot", "report", "generate", "db"):
        assert command in proc.stdout


def test_processes_run_as_the_slam_user_with_the_cpu_build_of_torch(image: Container) -> None:
    script = (
        "import json, os, sys, importlib.metadata as md, torch, llama_cpp;"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'cwd': os.getcwd(),"
        " 'data_writable': os.access('/data', os.W_OK), 'python': sys.version_info[:2],"
        " 'torch': torch.__version__, 'cuda': torch.version.cuda,"
        " 'nvidia': [d.metadata['Name'] for d in md.distributions()"
        "            if d.metadata['Name'].lower().startswith('nvidia')],"
        " 'llama_cpp': llama_cpp.__version__, 'mnt': os.listdir('/mnt')}))"
    )
    proc = image.run(["python", "-c", script], entrypoint=False)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (facts["uid"], facts["gid"]) == (10001, 10001)
    assert facts["cwd"] == "/data" and facts["data_writable"]
    assert facts["python"] == [3, 11]
    assert facts["torch"] == "2.13.0+cpu" and facts["cuda"] is None and facts["nvidia"] == []
    assert facts["llama_cpp"] == "0.3.36"
    assert facts["mnt"] == []  # where the build saw this machine's wheels: left empty


def test_demo_quick_runs_the_whole_pipeline_in_the_container(image: Container) -> None:
    proc = image.run(["demo", "--quick"], timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "about this demo" in out and "workspace:" in out
    assert "Traceback" not in out + proc.stderr


# --- the Slack bot in HTTP mode ------------------------------------------------------------


@dataclass
class Output:
    """A process's merged stdout/stderr, read without blocking and kept for messages."""

    proc: subprocess.Popen[bytes]
    text: str = ""
    _thread: threading.Thread | None = field(default=None, repr=False)

    def wait_for(self, needle: str, timeout: float) -> None:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} within {timeout:.0f} s:\n{self.text[-4000:]}"
            if sel.select(timeout=left):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"the process ended (status {self.proc.wait()}):\n{self.text}"
                self.text += chunk.decode(errors="replace")
        sel.close()

    def drain(self) -> None:
        """Keep reading in the background so the process never blocks on a full pipe."""

        def pump() -> None:
            assert self.proc.stdout is not None
            for chunk in iter(lambda: os.read(self.proc.stdout.fileno(), 65536), b""):  # type: ignore[union-attr]
                self.text += chunk.decode(errors="replace")

        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()


def children(pid: int) -> list[int]:
    """Every descendant of pid (chroot isolation: container processes are host processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def find_bot(launcher: int) -> int:
    for pid in children(launcher):
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"/slam") for a in argv) and b"bot" in argv:
            return pid
    raise AssertionError("no `slam bot` process under the container's launcher")


def status_ids(pid: int, key: str) -> set[int]:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith(key + ":"):
            return {int(v) for v in line.split()[1:]}
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on port (from /proc/net/tcp)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            out.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


def stop(launcher: subprocess.Popen[bytes], bot_pid: int | None) -> None:
    """SIGTERM to the bot (buildah run then exits); if that does not end it, or the bot was
    never found, every process under the launcher is killed: none is left behind."""
    if bot_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(bot_pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            launcher.wait(timeout=60)
    if launcher.poll() is None:
        for pid in [*reversed(children(launcher.pid)), launcher.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher.wait()


def test_slack_bot_in_http_mode_answers_healthz_and_a_signed_slash_command(
    image: Container,
) -> None:
    fake = FakeSlack().start()
    port = free_port()
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,  # the fake on this host: the container shares its network
        "SLAM_RATER_SALT": "image-test-salt",
        "SLAM_HTTP_PORT": str(port),
    }
    # Exactly `docker run -e … slam-bot bot slack --http`: SLAM_HTTP_HOST comes from the image.
    launcher = subprocess.Popen(
        image.command(["bot", "slack", "--http"], env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out = Output(launcher)
    bot_pid = None
    try:
        out.wait_for(f"Slack events at http://0.0.0.0:{port}/slack/events", timeout=300)
        out.drain()
        bot_pid = find_bot(launcher.pid)
        # The bot process itself runs as the image's non-root user (real, effective, saved).
        assert status_ids(bot_pid, "Uid") == {10001} and status_ids(bot_pid, "Gid") == {10001}
        # It listens on every interface (a published port reaches it), not only on loopback.
        assert listening_addresses(port) == {"0.0.0.0"}

        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 200, health.text
        assert health.json() == {"ok": True,
                                 "checks": {"database": "ok", "scheduler": "running"}}  # fmt: skip
        assert "slam_" in httpx.get(f"{base}/metrics", timeout=30).text

        body = slash_body("help", user="U1")
        resp = httpx.post(f"{base}/slack/events", content=body,
                          headers={**FORM, **signed(body)}, timeout=30)  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert "round start" in resp.text
        forged_headers = {**FORM, **signed(body, secret="wrong")}
        forged = httpx.post(f"{base}/slack/events", content=body, headers=forged_headers)
        assert forged.status_code == 401
        # The Slack client inside the container called the fake Web API with the bot token.
        assert fake.named("auth.test") and {c.token for c in fake.calls} == {TOKEN}

        # The image's HEALTHCHECK passes while the bot serves …
        check = image.healthcheck({"SLAM_HTTP_PORT": str(port)})
        assert check.returncode == 0, check.stderr
    finally:
        stop(launcher, bot_pid)
        fake.stop()
    # … and fails once it is gone.
    assert bot_pid is not None and not Path(f"/proc/{bot_pid}").exists()
    check = image.healthcheck({"SLAM_HTTP_PORT": str(port)})
    assert check.returncode != 0
    assert TOKEN not in out.text and SECRET not in out.text  # logs stay free of secrets
