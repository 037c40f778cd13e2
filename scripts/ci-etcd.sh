#!/usr/bin/env bash
# Everything CI needs for keepwatch-etcd, on a fresh machine: install etcd-server and protoc
# (apt), start a throwaway etcd on loopback, lint, test, build the example and the benchmark,
# run both briefly, and stop etcd whatever happens.
#
#   bash scripts/ci-etcd.sh
#
# Uses its own target dir (CARGO_TARGET_DIR, default target/etcd) so that it does not fight
# over the core's. Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/etcd}"
export KEEPWATCH_ETCD_STATE="${KEEPWATCH_ETCD_STATE:-$(mktemp -d /tmp/keepwatch-etcd-ci.XXXXXX)}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

started=$(date +%s)
step() { echo "== ci-etcd [$(( $(date +%s) - started ))s] $*"; }

stop_etcd() {
    local rc=$?
    step "stopping etcd"
    scripts/etcd.sh stop || true
    step "done (exit $rc)"
    exit $rc
}

step "installing etcd-server and protobuf-compiler if missing"
scripts/etcd.sh install
etcd --version | sed -n 1p
protoc --version

step "starting etcd"
trap stop_etcd EXIT
KEEPWATCH_ETCD_ENDPOINT="$(scripts/etcd.sh start)"
export KEEPWATCH_ETCD_ENDPOINT
echo "KEEPWATCH_ETCD_ENDPOINT=$KEEPWATCH_ETCD_ENDPOINT"

step "clippy"
# --no-deps: lint this crate only; the core is linted by its own CI step.
cargo clippy -p keepwatch-etcd --all-targets --no-deps -- -D warnings

step "fmt and docs"
cargo fmt -p keepwatch-etcd --check
RUSTDOCFLAGS="-D warnings" cargo doc -q -p keepwatch-etcd --no-deps

step "tests"
cargo test -p keepwatch-etcd

step "example"
timeout 120 cargo run -q -p keepwatch-etcd --example two_nodes

step "benchmark (short run, dev profile: a smoke test, not the figures)"
timeout 180 cargo test -q -p keepwatch-etcd --bench latency
