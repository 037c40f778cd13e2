#!/usr/bin/env bash
# A throwaway etcd on loopback for keepwatch-etcd's tests, example and benchmark.
#
#   scripts/etcd.sh start   install etcd-server/protoc if missing, start etcd on a free
#                           127.0.0.1 port with a temp data dir, print the endpoint
#   scripts/etcd.sh stop    stop it and remove its data dir
#   scripts/etcd.sh env     print `export KEEPWATCH_ETCD_ENDPOINT=...` for the running one
#   scripts/etcd.sh install only install the packages
#
# State lives in $KEEPWATCH_ETCD_STATE (default /tmp/keepwatch-etcd): `endpoint` (the URL),
# `pid`, `data/`, `log`. Tests read KEEPWATCH_ETCD_ENDPOINT, or else that `endpoint` file.
# The tests that kill and restart the server read `pid` and `cmd` to do so themselves.
set -euo pipefail

STATE="${KEEPWATCH_ETCD_STATE:-/tmp/keepwatch-etcd}"

need_install() {
    local missing=()
    command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
    command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
    command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "etcd.sh: installing ${missing[*]}" >&2
        local SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >&2
        $SUDO apt-get install -y -qq "${missing[@]}" >&2
    fi
}

free_port() {
    python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

is_running() {
    [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null
}

start() {
    need_install
    if is_running; then
        echo "etcd.sh: already running (pid $(cat "$STATE/pid"))" >&2
        cat "$STATE/endpoint"
        return 0
    fi
    rm -rf "$STATE"
    mkdir -p "$STATE/data"
    local client peer
    client=$(free_port)
    peer=$(free_port)
    while [ "$peer" = "$client" ]; do peer=$(free_port); done
    local endpoint="http://127.0.0.1:$client"
    # The exact command line is saved so that tests can restart the same server on the same
    # port and data dir after killing it (the kill/restart test).
    cat > "$STATE/cmd" <<CMD
etcd --name keepwatch-test --data-dir $STATE/data --listen-client-urls $endpoint --advertise-client-urls $endpoint --listen-peer-urls http://127.0.0.1:$peer --initial-advertise-peer-urls http://127.0.0.1:$peer --initial-cluster keepwatch-test=http://127.0.0.1:$peer --log-level error --quota-backend-bytes 1073741824
CMD
    # etcd 3.4 on arm64 refuses to start without this; harmless elsewhere.
    export ETCD_UNSUPPORTED_ARCH="${ETCD_UNSUPPORTED_ARCH:-$(uname -m | sed -e 's/x86_64//' -e 's/aarch64/arm64/')}"
    [ -n "$ETCD_UNSUPPORTED_ARCH" ] || unset ETCD_UNSUPPORTED_ARCH
    # shellcheck disable=SC2046
    nohup $(cat "$STATE/cmd") >"$STATE/log" 2>&1 &
    echo $! > "$STATE/pid"
    echo "$endpoint" > "$STATE/endpoint"
    local i
    for i in $(seq 1 100); do
        if ETCDCTL_API=3 etcdctl --endpoints="$endpoint" --dial-timeout=1s endpoint health >/dev/null 2>&1; then
            echo "etcd.sh: etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}') up at $endpoint (pid $(cat "$STATE/pid"), data $STATE/data)" >&2
            echo "$endpoint"
            return 0
        fi
        if ! is_running; then break; fi
        sleep 0.1
    done
    echo "etcd.sh: etcd failed to start; its log:" >&2
    cat "$STATE/log" >&2 || true
    stop
    return 1
}

stop() {
    if [ -f "$STATE/pid" ]; then
        local pid
        pid=$(cat "$STATE/pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$STATE"
    echo "etcd.sh: stopped" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) need_install ;;
    env)
        if is_running; then echo "export KEEPWATCH_ETCD_ENDPOINT=$(cat "$STATE/endpoint")"; else
            echo "etcd.sh: not running" >&2; exit 1; fi ;;
    *) echo "usage: $0 start|stop|env|install" >&2; exit 2 ;;
esac
