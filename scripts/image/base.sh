#!/usr/bin/env bash
# A local stand-in for python:3.11-slim when no container registry can be reached: a Debian
# bookworm root filesystem made by debootstrap from Debian's packages (its python3 is 3.11),
# committed as a local image with buildah. Prints the image reference.
#
#   scripts/image/base.sh            # reuse the image when it exists
#   scripts/image/base.sh --rebuild  # make it again
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/image/common.sh

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
WORK="build/image/base"

need buildah
if [ "${1:-}" != "--rebuild" ] && image_exists "$LOCAL_BASE"; then
    log "base image $LOCAL_BASE exists (--rebuild to make it again)"
    echo "$LOCAL_BASE"
    exit 0
fi
need debootstrap

rm -rf "$WORK"
mkdir -p "$WORK"
log "debootstrap $SUITE from $MIRROR into $WORK/rootfs"
# What python:3.11-slim offers the Dockerfile: python (3.11) with venv and pip, CA
# certificates, apt, and useradd/groupadd (passwd is in minbase).
debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }

root="$WORK/rootfs"
# The same apt sources as the official Debian images: bookworm, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# No package caches, lists or device nodes in the image (the runtime provides /dev).
rm -rf "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/lib/apt/lists/* \
    "${root:?}"/dev/* "${root:?}"/var/log/* "${root:?}"/tmp/* \
    "${root:?}"/etc/hostname "${root:?}"/etc/resolv.conf
"$root/usr/bin/python3" --version >/dev/null 2>&1 \
    || die "the root filesystem has no working python3"
version="$(chroot "$root" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
case "$version" in 3.11.*) ;; *) die "bookworm's python3 is $version, expected 3.11" ;; esac

log "committing $LOCAL_BASE (python $version)"
tar --numeric-owner -C "$root" -cf "$WORK/rootfs.tar" .
ctr="$(bh from scratch)"
trap 'bh rm "$ctr" >/dev/null 2>&1 || true' EXIT
bh add --quiet "$ctr" "$WORK/rootfs.tar" / >/dev/null
bh config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --env PYTHON_VERSION="$version" \
    --cmd python3 \
    --label org.opencontainers.image.description="Debian $SUITE (debootstrap) with python $version: a local stand-in for python:3.11-slim" \
    "$ctr"
bh commit --quiet --rm --format docker "$ctr" "$LOCAL_BASE" >/dev/null
trap - EXIT
rm -rf "$WORK"
log "base image $LOCAL_BASE: $(bh images --format '{{.Size}}' "$LOCAL_BASE")"
echo "$LOCAL_BASE"
