#!/usr/bin/env bash
# Runs the whole benchmark suite (benches/compare.rs, benches/memory.rs, benches/curves.rs) in
# its own target dir, then benches/report.py: prints the table and the cost curves, writes
# docs/bench.svg, docs/curve-*.svg and target/bench/report.md.
#
#   scripts/bench.sh                 # the full run: about 3½ minutes on 2 cores (once built)
#   QUICK=1 scripts/bench.sh         # every measurement at 0.3×: about 1½ minutes, noisier
#   scripts/bench.sh --no-run        # build only
#   NOTE="machine busy" scripts/bench.sh   # added to the charts' subtitle
#
# KEEPWATCH_BENCH_SCALE (a number) overrides QUICK. Run it on an otherwise idle machine for
# figures worth publishing: `uptime` before and after says how quiet it was (the report prints
# the load average too).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/bench}"
if [[ -n "${QUICK:-}" ]]; then
    export KEEPWATCH_BENCH_SCALE="${KEEPWATCH_BENCH_SCALE:-0.3}"
fi
cargo bench --no-run --bench compare --bench memory --bench curves
if [[ "${1:-}" == "--no-run" ]]; then
    exit 0
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
# Old results would mix into the report: start from none.
rm -rf "$CARGO_TARGET_DIR/criterion"
cargo bench --bench compare
cargo bench --bench memory
cargo bench --bench curves
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); suite took $(( $(date +%s) - start )) s"
python3 benches/report.py --markdown "$CARGO_TARGET_DIR/report.md" --note "${NOTE:-}"
