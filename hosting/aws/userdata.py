"""The cloud-init user data that turns a fresh GPU instance into an Ollama server.

It holds no secret (user data is readable by anyone allowed to describe the instance).
"""

from __future__ import annotations

import shlex

READY_MARKER = "/var/lib/slam/ollama-ready"
LOG_FILE = "/var/log/slam-userdata.log"

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
UNIT
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
mkdir -p "$(dirname {marker})" && date -u +%FT%TZ > {marker}
"""


def render_user_data(
    models: list[str], *, port: int = 11434, ttl_minutes: int | None = None
) -> str:
    """The bash user data: install Ollama, serve on all interfaces, pull `models`.

    With `ttl_minutes` the host also schedules its own shutdown; launched with
    shutdown behaviour 'terminate', that ends the bill even if no TTL guard ever runs.
    """
    self_destruct = (
        f"shutdown -h +{int(ttl_minutes)} 'SLaM host TTL reached' || true"
        if ttl_minutes
        else "# no self-termination requested"
    )
    return _TEMPLATE.format(
        port=int(port),
        log=LOG_FILE,
        marker=READY_MARKER,
        self_destruct=self_destruct,
        models=" ".join(shlex.quote(m) for m in models) or "''",
    )
