#!/usr/bin/env bash
# A Docker engine of the course's own, for building and running the course images where no engine runs:
# Debian's dockerd with its own data root, socket and bridge, and no iptables rules (builds use the
# host network; published ports go through docker-proxy on 127.0.0.1). Storage: overlay2 where the
# kernel mounts an overlay on the data root's file system, else vfs (works anywhere, also inside a
# container, but copies the whole file system for every layer: builds take several times longer).
#
#   deploy/docker/engine.sh start     # idempotent; prints the DOCKER_HOST to use
#   deploy/docker/engine.sh status    # exit 0 when the engine answers
#   deploy/docker/engine.sh env       # `export DOCKER_HOST=...`, for eval
#   deploy/docker/engine.sh stop      # stops it and removes its bridge (images stay in the data root)
#
# Needs root and dockerd (Debian: apt-get install docker.io). Where a Docker engine already runs,
# use that one instead: nothing here is needed.
set -euo pipefail

STATE=${MLOPS_COURSE_DOCKER_STATE:-/var/lib/mlops-course-docker}  # data root and dockerd.log
RUN=${MLOPS_COURSE_DOCKER_RUN:-/run/mlops-course-docker}        # socket, pid file, containerd state
BRIDGE=${MLOPS_COURSE_DOCKER_BRIDGE:-mlcdocker0}
BRIDGE_IP=${MLOPS_COURSE_DOCKER_BRIDGE_IP:-10.213.0.1/24}
SOCK=$RUN/docker.sock
export DOCKER_HOST=unix://$SOCK

storage_driver() {
  if [ -n "${MLOPS_COURSE_DOCKER_STORAGE:-}" ]; then echo "$MLOPS_COURSE_DOCKER_STORAGE"; return; fi
  local t; t=$(mktemp -d "$STATE/overlay-probe.XXXXXX")
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
    umount "$t/merged"; echo overlay2
  else
    echo vfs
  fi
  rm -rf "$t"
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  mkdir -p "$STATE" "$RUN"
  exec 9>"$RUN/engine.lock"; flock 9           # two callers at once start one engine
  if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
  command -v dockerd >/dev/null || { echo "engine.sh: no dockerd: apt-get install docker.io" >&2; return 1; }
  [ "$(id -u)" -eq 0 ] || { echo "engine.sh: dockerd needs root" >&2; return 1; }
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  rm -f "$SOCK" "$RUN/dockerd.pid"
  local driver; driver=$(storage_driver)
  nohup dockerd --data-root "$STATE/data" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
    --host "$DOCKER_HOST" --storage-driver "$driver" --bridge "$BRIDGE" \
    --iptables=false --ip-masq=false --ip-forward=false \
    >>"$STATE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 120); do
    if answers; then echo "storage driver: $driver" >&2; echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  echo "engine.sh: dockerd did not answer on $SOCK; last lines of $STATE/dockerd.log:" >&2
  tail -15 "$STATE/dockerd.log" >&2
  return 1
}

stop() {
  local pid
  pid=$(cat "$RUN/dockerd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  rm -f "$SOCK" "$RUN/dockerd.pid"
  echo "engine stopped (logs: $STATE/dockerd.log)"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
