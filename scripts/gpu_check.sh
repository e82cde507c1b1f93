#!/usr/bin/env bash
# Measure one real sweep with GPU energy on a machine with an NVIDIA GPU and Ollama running.
#   scripts/gpu_check.sh [ollama model] [ollama url]
# 1. the NVML test that is skipped on machines without a GPU, 2. what NVML reads now,
# 3. a sweep (concurrency 1,2,4, replicas 1) with energy per level into a scratch database.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-gemma3:270m}"
URL="${2:-${OLLAMA_HOST:-http://127.0.0.1:11434}}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,power.draw,memory.used \
  --format=csv || echo "nvidia-smi not found: is the NVIDIA driver installed?"

echo "== NVML through pynvml"
"$PY" -m pytest -q -rs tests/hosting/telemetry/test_nvml.py -k real
"$PY" - <<'PY'
from hosting.telemetry import NvmlSource
src = NvmlSource()
sample = src.read()
if sample is None:
    raise SystemExit(f"NVML read nothing: {src.problem}")
for g in sample.gpus:
    print(f"GPU {g.index} {g.name}: {g.energy_j} J since driver load, {g.power_w} W, "
          f"{g.util_pct}% util, {g.memory_used_mib:.0f} MiB")
src.close()
PY

echo "== one sweep with energy ($MODEL at $URL)"
if ! curl -fsS "$URL/api/tags" >/dev/null; then
  echo "Ollama does not answer at $URL: start it (ollama serve) or pass its URL" >&2
  exit 1
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/slam.toml" <<TOML
[experiment]
max_tokens = 64

[database]
url = "sqlite:///$WORK/gpu_check.db"

[telemetry]
source = "nvml"
interval_s = 0.5

[[models]]
name = "gpu-check"
backend = "ollama"
model = "$MODEL"
host = "$URL"
hardware = "g4dn.xlarge"
TOML
"$PY" -m slam.cli sweep -c "$WORK/slam.toml" -m gpu-check --concurrency 1,2,4 --requests 8 \
  --slo-search -q
OUT="${GPU_CHECK_OUT:-gpu-check-report}"
"$PY" -m slam.cli report -c "$WORK/slam.toml" -o "$OUT" --chart tokens_per_joule \
  --chart gpu_load --chart replicas_pareto --no-cache >/dev/null
echo "energy charts: $OUT/"
