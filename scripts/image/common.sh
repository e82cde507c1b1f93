# shellcheck shell=bash disable=SC2034
# Shared settings for the image scripts (sourced, not run).
# buildah runs without a daemon and needs no kernel features a container may lack: the vfs
# storage driver (no overlay mounts) and chroot isolation (no namespaces or runc). buildah
# itself does not read STORAGE_DRIVER, so every call goes through bh().
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
bh() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }

IMAGE="${IMAGE:-slam-bot:latest}"
# The default base, as in the Dockerfile, and the local stand-in made by base.sh.
UPSTREAM_BASE="docker.io/library/python:3.11-slim"
LOCAL_BASE="${LOCAL_BASE:-localhost/slam-python:3.11-bookworm}"

log() { printf '\033[1m[image]\033[0m %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

# Install a Debian package when its command is missing (CI runs as root on a fresh machine).
need() {  # need COMMAND [PACKAGE]
    command -v "$1" >/dev/null 2>&1 && return 0
    local pkg="${2:-$1}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $pkg (apt-get)"
        if [ -z "${_APT_UPDATED:-}" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            _APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (Debian/Ubuntu: apt-get install $pkg)"
}

# A docker engine that answers (the docker CLI alone is not enough).
docker_engine() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

image_exists() {  # image_exists REF
    bh inspect --type image "$1" >/dev/null 2>&1
}
