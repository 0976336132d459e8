#!/usr/bin/env bash
# An offline base image for the course's Dockerfiles, made from Debian packages only:
# debootstrap Debian 12 "bookworm" with Debian's python3.11 (+ venv), then `docker import` it.
#
#   deploy/docker/offline-base.sh [TAG]      # default TAG: mlops-course/python:3.11-bookworm-offline
#   docker build --build-arg BASE_IMAGE=mlops-course/python:3.11-bookworm-offline ...
#
# For machines that reach a Debian mirror but no image registry. The Dockerfiles' default base stays
# the pinned public image (python:3.11.14-slim-trixie); this one differs from it in the Debian release
# (bookworm: trixie has no python3.11) and the Python patch release (Debian's 3.11.2).
# The root file system is cached as a tarball (MLOPS_COURSE_DOCKER_CACHE, default
# ~/.cache/mlops-course/docker) and reused while this script and its package list are unchanged.
# Needs root (debootstrap) and a running engine (DOCKER_HOST as `docker` uses it).
set -euo pipefail

TAG=${1:-mlops-course/python:3.11-bookworm-offline}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${MLOPS_COURSE_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-course/docker}
# python3-distutils: python3.11-venv needs it (a virtual package debootstrap does not resolve);
# python-is-python3: `python` on PATH as in the public image; ca-certificates: pip's and apt's trust store
PACKAGES=python3.11,python3.11-venv,python3-distutils,python3-lib2to3,python-is-python3,ca-certificates
KEY=$( (cat "$0"; echo "$MIRROR") | sha256sum | cut -c1-12)
TARBALL=$CACHE/bookworm-python3.11-$KEY.tar

if docker image inspect "$TAG" --format '{{index .Config.Labels "mlops-course.base-key"}}' 2>/dev/null \
    | grep -qx "$KEY"; then
  echo "$TAG is up to date ($KEY)"; exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { echo "offline-base.sh: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { echo "offline-base.sh: debootstrap needs root" >&2; exit 1; }
  ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$ROOTFS"' EXIT
  echo "debootstrap bookworm into $ROOTFS (a few minutes) ..."
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # what the image does not need at run time: downloaded packages, package lists, docs
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* \
         "$ROOTFS"/usr/share/man/* "$ROOTFS"/var/log/*.log
  tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  find "$CACHE" -maxdepth 1 -name 'bookworm-python3.11-*.tar' ! -name "$(basename "$TARBALL")" -delete
fi

# the environment the public python image sets, so the Dockerfiles behave the same on both bases
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL mlops-course.base-key=$KEY org.opencontainers.image.description=\"Debian bookworm + python3.11 from Debian packages\"" \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$TAG" >/dev/null
echo "$TAG imported from $TARBALL"
