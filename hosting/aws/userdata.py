"""The cloud-init user data that turns a fresh GPU instance into an Ollama server.

It holds no secret (user data is readable by anyone allowed to describe the instance).

Replication on the one GPU (`replicas` > 1), two ways, because which is better is what
`slam sweep --replicas` measures:
- `servers`: N Ollama servers on consecutive ports (port, port+1, ...), each holding its own
  copy of the model in GPU memory, sharing one model store (pulled once);
- `parallel`: one server with OLLAMA_NUM_PARALLEL=N (one copy, N request slots).
With `dcgm` the host also runs NVIDIA's dcgm-exporter (a container) publishing the GPU's
energy, power, utilization and memory on port 9400 for the bot's telemetry.
"""

from __future__ import annotations

import shlex
from typing import Literal

READY_MARKER = "/var/lib/slam/ollama-ready"
LOG_FILE = "/var/log/slam-userdata.log"
# dcgm-exporter's image (NVIDIA NGC); its default counters include the energy counter.
DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"
DCGM_PORT = 9400

_TEMPLATE = """\
#!/bin/bash
# SLaM bot GPU host: install Ollama, listen on 0.0.0.0:{port}, pull the models under test.
set -euo pipefail
exec > >(tee -a {log}) 2>&1
{self_destruct}
if ! command -v ollama >/dev/null 2>&1; then
  curl -fsSL https://ollama.com/install.sh | sh
fi
mkdir -p /etc/systemd/system/ollama.service.d
cat > /etc/systemd/system/ollama.service.d/slam.conf <<'UNIT'
[Service]
Environment="OLLAMA_HOST=0.0.0.0:{port}"
Environment="OLLAMA_KEEP_ALIVE=24h"
{parallel}UNIT
systemctl daemon-reload
systemctl enable ollama
systemctl restart ollama
for _ in $(seq 1 120); do
  curl -fsS http://127.0.0.1:{port}/api/tags >/dev/null && break
  sleep 2
done
export OLLAMA_HOST=127.0.0.1:{port}
for model in {models}; do
  ollama pull "$model"
done
{replicas}{dcgm}mkdir -p "$(dirname {marker})" && date -u +%FT%TZ > {marker}
"""

# Extra servers on the same GPU: one templated unit per port, sharing the first's model store.
_REPLICAS = """# {n} Ollama servers on this GPU: ports {first}..{last}
cat > /etc/systemd/system/ollama-replica@.service <<'UNIT'
[Unit]
Description=Ollama replica on port %i (SLaM bot)
After=network-online.target ollama.service

[Service]
ExecStart=/usr/bin/env ollama serve
User=ollama
Group=ollama
Restart=always
Environment="OLLAMA_HOST=0.0.0.0:%i"
Environment="OLLAMA_KEEP_ALIVE=24h"
Environment="OLLAMA_MODELS=/usr/share/ollama/.ollama/models"

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
for p in {ports}; do
  systemctl enable --now "ollama-replica@$p"
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$p/api/tags" >/dev/null && break
    sleep 2
  done
done
"""

# NVIDIA's exporter of DCGM metrics; the bot's telemetry reads its /metrics page. Not fatal:
# without it the host still serves, and the bot says "no GPU telemetry" once.
_DCGM = """if command -v docker >/dev/null 2>&1; then
  docker run -d --name dcgm-exporter --restart unless-stopped --gpus all --cap-add SYS_ADMIN \\
    -p {port}:9400 {image} || echo "dcgm-exporter did not start: no GPU telemetry"
else
  echo "docker is missing: dcgm-exporter not started (no GPU telemetry)"
fi
"""


def replica_ports(port: int, replicas: int, mode: str = "servers") -> list[int]:
    """The ports the host's Ollama servers listen on (one in `parallel` mode)."""
    return [port + i for i in range(replicas if mode == "servers" else 1)]


def render_user_data(
    models: list[str],
    *,
    port: int = 11434,
    ttl_minutes: int | None = None,
    replicas: int = 1,
    replica_mode: Literal["servers", "parallel"] = "servers",
    dcgm: bool = False,
    dcgm_port: int = DCGM_PORT,
) -> str:
    """The bash user data: install Ollama, serve on all interfaces, pull `models`; with
    `replicas` > 1 serve N copies (servers on consecutive ports, or N parallel slots), with
    `dcgm` start dcgm-exporter.

    With `ttl_minutes` the host also schedules its own shutdown; launched with
    shutdown behaviour 'terminate', that ends the bill even if no TTL guard ever runs.
    """
    self_destruct = (
        f"shutdown -h +{int(ttl_minutes)} 'SLaM host TTL reached' || true"
        if ttl_minutes
        else "# no self-termination requested"
    )
    parallel = ""
    extra = ""
    if replicas > 1 and replica_mode == "parallel":
        parallel = f'Environment="OLLAMA_NUM_PARALLEL={int(replicas)}"\n'
    elif replicas > 1:
        ports = replica_ports(int(port), int(replicas))[1:]
        extra = _REPLICAS.format(
            n=int(replicas), first=int(port), last=ports[-1], ports=" ".join(map(str, ports))
        )
    return _TEMPLATE.format(
        port=int(port),
        log=LOG_FILE,
        marker=READY_MARKER,
        self_destruct=self_destruct,
        models=" ".join(shlex.quote(m) for m in models) or "''",
        parallel=parallel,
        replicas=extra,
        dcgm=_DCGM.format(port=int(dcgm_port), image=DCGM_IMAGE) if dcgm else "",
    )
