#!/usr/bin/env bash
# Build the SLaM bot image (`make image`): with docker when a docker engine answers, else with
# buildah (no daemon). The buildah path uses the Dockerfile's defaults when it can reach them,
# and otherwise builds the same Dockerfile from what this machine has:
#   - no container registry  -> BASE_IMAGE is a local Debian bookworm base (scripts/image/base.sh)
#   - no PyTorch CPU index   -> the CPU torch wheel that pip finds on this machine, handed to the
#                               build in a wheelhouse (PIP_FIND_LINKS), the rest from the index
#   - a llama-cpp-python wheel in pip's cache is handed over too, so the image does not compile
#     llama.cpp again (IMAGE_LLAMA_WHEEL=never compiles it in the image, as docker build does).
#
# Environment: IMAGE (default slam-bot:latest), IMAGE_BUILD_ARGS (extra arguments for the
# builder), IMAGE_LLAMA_WHEEL (auto|never), IMAGE_BUILDER (docker|buildah: force one).
# Writes the build log and figures to build/image/.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/image/common.sh

OUT=build/image
mkdir -p "$OUT"
TORCH_INDEX_DEFAULT="https://download.pytorch.org/whl/cpu"
read -r -a extra <<<"${IMAGE_BUILD_ARGS:-}"

builder="${IMAGE_BUILDER:-}"
if [ -z "$builder" ]; then
    if docker_engine; then builder=docker; else builder=buildah; fi
fi

start=$(date +%s)
if [ "$builder" = docker ]; then
    log "building $IMAGE with docker"
    docker build -t "$IMAGE" "${extra[@]}" .
    elapsed=$(( $(date +%s) - start ))
    size="$(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
    log "built $IMAGE with docker in ${elapsed}s; size $size"
    exit 0
fi

need buildah
args=(--format docker)  # the OCI format has no HEALTHCHECK
settings=()

# Base image: the official one if a registry answers, else the local debootstrap base.
if image_exists "$UPSTREAM_BASE" || timeout 300 buildah --storage-driver "$STORAGE_DRIVER" pull --quiet "$UPSTREAM_BASE" >/dev/null 2>&1; then
    settings+=("base image: $UPSTREAM_BASE")
else
    log "no container registry reachable: using the local Debian bookworm base"
    t0=$(date +%s)
    base="$(bash scripts/image/base.sh)"
    settings+=("base image: $base (debootstrap, $(( $(date +%s) - t0 ))s; reused when it exists)")
    # Debian's python3 keeps its headers in python3-dev (python:3.11-slim ships them).
    args+=(--build-arg "BASE_IMAGE=$base"
           --build-arg "BUILD_PACKAGES=build-essential cmake python3-dev")
fi

# Package indexes. What the build needs from this machine goes in one folder that every RUN
# sees at /mnt (empty in both base images, so the mount leaves nothing behind in the image):
# wheels/ for pip (PIP_FIND_LINKS) and ca.crt (PIP_CERT).
input="$OUT/input"
wheelhouse="$input/wheels"
rm -rf "$input"
mkdir -p "$wheelhouse"
if python3 -c "import urllib.request as u; u.urlopen('$TORCH_INDEX_DEFAULT/torch/', timeout=15)" 2>/dev/null; then
    settings+=("torch: $TORCH_INDEX_DEFAULT")
else
    log "the PyTorch CPU index is not reachable: taking the CPU torch wheel from this machine"
    # pip's own configuration (`pip config list`) says where this machine's wheels are.
    python3 -m pip download --quiet --no-deps --only-binary :all: --dest "$wheelhouse" \
        --python-version 3.11 --implementation cp --platform manylinux_2_28_x86_64 \
        "torch==2.13.0" || die "pip cannot find torch==2.13.0 here"
    torch_whl="$(find "$wheelhouse" -name 'torch-2.13.0+cpu-*.whl' -print -quit)"
    [ -n "$torch_whl" ] || die "pip found no CPU build of torch 2.13.0 here (only: $(ls "$wheelhouse")); refusing the CUDA build"
    # The CPU wheel (2.13.0+cpu) sorts above PyPI's 2.13.0, so pip takes it from the
    # wheelhouse and torch's own dependencies from the index.
    args+=(--build-arg "TORCH_INDEX_URL=${PIP_INDEX_URL:-https://pypi.org/simple}")
    settings+=("torch: $(basename "$torch_whl") (wheelhouse)")
fi
if [ "${IMAGE_LLAMA_WHEEL:-auto}" != never ]; then
    cached="$(python3 -m pip cache list --format abspath 'llama_cpp_python-0.3.36-*' 2>/dev/null | head -n 1 || true)"
    if [ -n "$cached" ] && [ -f "$cached" ]; then
        cp "$cached" "$wheelhouse/"
        settings+=("llama-cpp-python: $(basename "$cached") from pip's cache (wheelhouse)")
    else
        settings+=("llama-cpp-python: compiled in the image")
    fi
else
    settings+=("llama-cpp-python: compiled in the image")
fi
# A TLS-inspecting proxy between this machine and the index: pip's CA bundle goes in too.
cert="${PIP_CERT:-$(python3 -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p" | head -n 1)}"
if [ -n "$cert" ] && [ -f "$cert" ]; then
    cp "$(realpath "$cert")" "$input/ca.crt"
    args+=(--build-arg PIP_CERT=/mnt/ca.crt)
    settings+=("pip CA bundle: $cert")
fi
if [ -n "$(ls -A "$wheelhouse")" ]; then
    args+=(--build-arg PIP_FIND_LINKS=/mnt/wheels)
fi
if [ -n "$(ls -A "$input")" ]; then
    args+=(--volume "$PWD/$input:/mnt:ro")
fi

for s in "${settings[@]}"; do log "$s"; done
log "building $IMAGE with buildah (log: $OUT/build.log)"
previous="$(bh inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)"
bud_start=$(date +%s)
if ! bh bud --isolation "$BUILDAH_ISOLATION" "${args[@]}" "${extra[@]}" -t "$IMAGE" . >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log" >&2
    die "the image build failed (log: $OUT/build.log)"
fi
end=$(date +%s)
rm -rf "$input"
# The image this build replaced is now untagged: remove it (it is GBs under vfs).
current="$(bh inspect --type image --format '{{.FromImageID}}' "$IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    bh rmi "$previous" >/dev/null 2>&1 || log "kept the previous image $previous (in use)"
fi
size="$(bh images --format '{{.Size}}' "$IMAGE" | head -n 1)"
{
    echo "image: $IMAGE"
    echo "builder: buildah $(buildah --version | awk '{print $3}') ($STORAGE_DRIVER, $BUILDAH_ISOLATION)"
    for s in "${settings[@]}"; do echo "$s"; done
    echo "image build (buildah bud): $(( end - bud_start ))s"
    echo "build in all: $(( end - start ))s"
    echo "image size: $size"
} >"$OUT/build.txt"
log "built $IMAGE with buildah in $(( end - start ))s; size $size"
