#!/usr/bin/env bash
# Proof that the loom models can fail: builds keepwatch with each mutation in src/ switched on
# (`--cfg keepwatch_mutant="NAME"`, see the `MUTANT` comments in src/; equivalent to
# RUSTFLAGS="--cfg keepwatch_loom --cfg keepwatch_mutant=\"NAME\""), runs every loom model
# against it, and reports CAUGHT (some model failed: an assertion, a panic, or a loom deadlock
# report) or MISSED (all models passed). Exits non-zero if any mutant is missed or fails to
# build.
#
# Usage: bash loom-tests/mutants.sh [NAME...]     (default: every mutant below)
# Environment: LOOM_MAX_PREEMPTIONS (default 3), MUTANT_TIMEOUT (seconds per model, 600).
set -euo pipefail

cd "$(dirname "$0")/.."

# name: what the mutation does (the models expected to catch it)
MUTANTS=(
  "poll_check_then_register:checks a wait under one lock, registers its sink under another (m01)"
  "wait_register_after_check:tests the current value under one lock, registers the wait under another (m05)"
  "log_outside_lock:appends transitions to the subscription log after releasing the lock (m03)"
  "set_if_check_then_act:tests the set_if condition under one lock, sets under another (m08)"
  "close_no_wake:close ends pending waits but never wakes their waiters (m07)"
  "no_deregister_on_drop:a dropped Wait is never deregistered (m06, m10)"
  "handle_count_load_then_store:the handle count is decremented by a load and a store (m07)"
  "dispatch_without_flag:every setter dispatches callbacks, even while another dispatch runs (m09)"
  "skip_recheck_after_park:a blocking wait trusts the unpark instead of polling again (m10)"
)

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom-mutants}"
export RUSTFLAGS="--cfg keepwatch_loom"
timeout_secs="${MUTANT_TIMEOUT:-600}"
logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"

# The mutant cfg reaches keepwatch alone, through a workspace wrapper, so the dependencies
# (loom and its tree) are built once, not once per mutant as a per-mutant RUSTFLAGS would.
wrapper="$(pwd)/$CARGO_TARGET_DIR/mutant-rustc.sh"
cat >"$wrapper" <<'WRAP'
#!/bin/sh
# rustc wrapper: adds --cfg keepwatch_mutant="$KEEPWATCH_MUTANT" when compiling keepwatch.
for arg in "$@"; do
  if [ "$arg" = keepwatch ] && [ -n "${KEEPWATCH_MUTANT:-}" ]; then
    exec "$@" --cfg "keepwatch_mutant=\"$KEEPWATCH_MUTANT\""
  fi
done
exec "$@"
WRAP
chmod +x "$wrapper"
export RUSTC_WORKSPACE_WRAPPER="$wrapper"

# Every model's full name, from the unmutated build.
export KEEPWATCH_MUTANT=""
cargo clean --release -p keepwatch -p loom-tests >/dev/null 2>&1 || true
mapfile -t models < <(cargo test --release -p loom-tests -- --list 2>/dev/null \
  | sed -n 's/^\(m[0-9][0-9]_[a-z0-9_]*\): test$/\1/p' | sort)
echo "${#models[@]} models"

selected=("$@")
missed=0
summary=()
for entry in "${MUTANTS[@]}"; do
  name="${entry%%:*}"
  what="${entry#*:}"
  if [ "${#selected[@]}" -gt 0 ] && [[ " ${selected[*]} " != *" $name "* ]]; then
    continue
  fi
  export KEEPWATCH_MUTANT="$name"
  log="$logs/$name.log"
  echo "== mutant $name: $what"
  # Cargo does not see KEEPWATCH_MUTANT change: make it rebuild keepwatch and the models.
  cargo clean --release -p keepwatch -p loom-tests >/dev/null 2>&1 || true
  if ! cargo test --release -p loom-tests --no-run >"$log" 2>&1; then
    echo "   BUILD FAILED (see $log)"
    summary+=("BUILD-FAILED $name")
    missed=$((missed + 1))
    continue
  fi
  # Each model in its own process: a loom deadlock report can abort the whole test binary.
  caught=""
  start=$SECONDS
  for model in "${models[@]}"; do
    status=0
    timeout "$timeout_secs" cargo test --release -p loom-tests -- --exact "$model" \
      >>"$log" 2>&1 || status=$?
    if [ "$status" -eq 124 ]; then
      echo "   (timeout: $model did not finish in ${timeout_secs}s; not counted as caught)"
    elif [ "$status" -ne 0 ]; then
      caught="$caught $model"
    fi
  done
  elapsed=$((SECONDS - start))
  caught=$(echo "$caught" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
  if [ -n "$caught" ]; then
    echo "   CAUGHT in ${elapsed}s by: $caught"
    summary+=("CAUGHT $name by: $caught")
  else
    echo "   MISSED: every model passed (${elapsed}s)"
    summary+=("MISSED $name")
    missed=$((missed + 1))
  fi
done

echo
echo "== summary (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS; logs in $logs)"
printf '%s\n' "${summary[@]}"
if [ "$missed" -ne 0 ]; then
  echo "$missed mutant(s) not caught"
  exit 1
fi
echo "all ${#summary[@]} mutants caught"
