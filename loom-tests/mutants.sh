#!/usr/bin/env bash
# Proof that the loom models can fail. Each mutant is a small patch against src/
# (loom-tests/mutants/<name>.patch, a unified diff, `patch -p1`). For each one this script
# copies the crate (src/, Cargo.toml, Cargo.lock, loom-tests/) into target/mutants/<name>/,
# applies the patch there, builds the models with `--cfg keepwatch_loom`, runs every model in
# its own process, and reports CAUGHT (some model failed: an assertion, a panic, or a loom
# deadlock report) with the models that caught it, or MISSED (every model passed).
#
# src/ and Cargo.toml never carry a mutant: the working tree is only read.
#
# Before any mutant, the unpatched copy is built and every model must pass on it (otherwise a
# "CAUGHT" would mean nothing), and every selected patch must apply cleanly (no fuzz) to it:
# a patch that no longer applies stops the run at once with a non-zero exit.
#
# Usage: bash loom-tests/mutants.sh [NAME...]    (default: every loom-tests/mutants/*.patch)
# Environment: LOOM_MAX_PREEMPTIONS (default 3), MUTANT_TIMEOUT (seconds per model, 300).
# Exits 0 if every mutant is caught; 1 if one is missed or fails to build; 2 if a patch does
# not apply or the unpatched models fail.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"
patches="$root/loom-tests/mutants"
work="$root/target/mutants"

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUSTFLAGS="--cfg keepwatch_loom"
# One target dir for every copy: the dependencies (loom and its tree) are built once; each
# copy's keepwatch and models are built apart (their paths differ).
export CARGO_TARGET_DIR="$work/target"
timeout_secs="${MUTANT_TIMEOUT:-300}"
mkdir -p "$work"

die() {
  echo "mutants: ERROR: $*" >&2
  exit 2
}

# Makes target/mutants/$1 a fresh copy of the crate, in a workspace of its own (keepwatch and
# loom-tests only).
copy_crate() {
  local dest="$work/$1"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp -r "$root/src" "$root/Cargo.toml" "$root/Cargo.lock" "$dest/"
  # The manifest names bench targets: cargo wants their files to exist (never built here).
  cp -r "$root/benches" "$dest/"
  mkdir -p "$dest/loom-tests"
  cp -r "$root/loom-tests/Cargo.toml" "$root/loom-tests/src" "$root/loom-tests/tests" \
    "$dest/loom-tests/"
  sed -i 's/^members = .*/members = [".", "loom-tests"]/' "$dest/Cargo.toml"
  grep -q '^members = \[".", "loom-tests"\]$' "$dest/Cargo.toml" \
    || die "could not narrow the workspace members in $dest/Cargo.toml"
}

# Builds the models in copy $1 and lists their test executables in $work/$1.exes; fails if the
# build fails (its output is in $work/$1.build.log).
build_models() {
  local json="$work/$1.build.json"
  if ! (cd "$work/$1" && cargo test --release -p loom-tests --no-run --message-format=json) \
    >"$json" 2>"$work/$1.build.log"; then
    return 1
  fi
  jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                and .executable != null) | .executable' <"$json" >"$work/$1.exes"
}

# Runs every model of the built copy $1, each in its own process; prints the names of those
# that fail. Their output goes to $work/$1.log.
run_models() {
  local name="$1" exe model status
  local log="$work/$name.log"
  : >"$log"
  while read -r exe; do
    while read -r model; do
      status=0
      echo "== $model" >>"$log"
      timeout "$timeout_secs" "$exe" --exact "$model" --test-threads=1 --nocapture \
        >>"$log" 2>&1 </dev/null || status=$?
      if [ "$status" -eq 124 ]; then
        echo "$model(timeout)"
      elif [ "$status" -ne 0 ]; then
        echo "$model"
      fi
    done < <("$exe" --list --format terse 2>/dev/null | sed -n 's/^\(m[0-9a-z_]*\): test$/\1/p')
  done <"$work/$name.exes"
}

# The mutants to run.
names=()
if [ "$#" -gt 0 ]; then
  for name in "$@"; do
    [ -f "$patches/$name.patch" ] || die "no such mutant: $patches/$name.patch"
    names+=("$name")
  done
else
  for file in "$patches"/*.patch; do
    names+=("$(basename "$file" .patch)")
  done
fi
[ "${#names[@]}" -gt 0 ] || die "no patches in $patches"

total_start=$SECONDS
echo "mutants: ${#names[@]} mutant(s), LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, copies in $work"

# Every patch must apply to the current src/, exactly (no fuzz), before anything is built.
copy_crate baseline
stale=()
for name in "${names[@]}"; do
  if ! (cd "$work/baseline" && patch -p1 --dry-run --batch --forward --fuzz=0 --quiet \
    <"$patches/$name.patch" >"$work/$name.apply.log" 2>&1); then
    stale+=("$name")
  fi
done
if [ "${#stale[@]}" -gt 0 ]; then
  for name in "${stale[@]}"; do
    echo "mutants: PATCH DOES NOT APPLY: loom-tests/mutants/$name.patch" >&2
    sed 's/^/    /' "$work/$name.apply.log" >&2
  done
  die "${#stale[@]} patch(es) no longer apply to src/: rewrite them against the current code \
(see loom-tests/README.md, \"Mutants\")"
fi

# The unpatched copy: every model must pass.
echo "== baseline (no mutation)"
start=$SECONDS
build_models baseline || die "the unpatched copy does not build (see $work/baseline.build.log)"
failed="$(run_models baseline)"
if [ -n "$failed" ]; then
  die "models fail without any mutation: $(echo "$failed" | tr '\n' ' ')(see $work/baseline.log)"
fi
echo "   all models pass ($((SECONDS - start))s, build included)"

summary=()
missed=0
for name in "${names[@]}"; do
  what="$(sed -n 's/^# //p' "$patches/$name.patch" | tr '\n' ' ')"
  echo "== mutant $name: $what"
  start=$SECONDS
  copy_crate "$name"
  (cd "$work/$name" && patch -p1 --batch --forward --fuzz=0 --quiet <"$patches/$name.patch") \
    || die "loom-tests/mutants/$name.patch did not apply"
  if ! build_models "$name"; then
    echo "   BUILD FAILED (see $work/$name.build.log)"
    summary+=("BUILD-FAILED $name")
    missed=$((missed + 1))
    continue
  fi
  failed="$(run_models "$name")"
  elapsed=$((SECONDS - start))
  if [ -n "$failed" ]; then
    caught="$(echo "$failed" | sort | tr '\n' ' ')"
    echo "   CAUGHT in ${elapsed}s by: $caught"
    summary+=("CAUGHT $name by: $caught")
  else
    echo "   MISSED: every model passed (${elapsed}s)"
    summary+=("MISSED $name")
    missed=$((missed + 1))
  fi
done

echo
echo "== summary (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS; logs in $work/<name>.log)"
printf '%s\n' "${summary[@]}"
caught_count=$((${#summary[@]} - missed))
if [ "$missed" -ne 0 ]; then
  echo "mutants: $caught_count of ${#summary[@]} caught, $missed not caught, in $((SECONDS - total_start))s"
  exit 1
fi
echo "mutants: all ${#summary[@]} caught in $((SECONDS - total_start))s"
