#!/usr/bin/env bash
# Runs keepwatch's test suite under AddressSanitizer, then tries ThreadSanitizer, with the
# nightly toolchain installed on the machine.
#
# Without the `rust-src` component, `-Zbuild-std` is not available, so std itself is NOT
# instrumented: ASan still checks every heap access of keepwatch, the tests and their
# dependencies (std's allocations go through the instrumented malloc); TSan sees no
# synchronisation done inside std (thread spawn/join, `std::sync`, `thread::park`), so it
# reports false positives at those edges. See TESTING.md for which ones.
#
# Usage: scripts/sanitizers.sh [asan|tsan|all] [extra cargo test args...]
# Each sanitizer builds in its own target dir (target/asan, target/tsan).
set -uo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
shift || true
target=x86_64-unknown-linux-gnu
# Doctests are not built with the sanitizer runtime's flags reliably: test the lib and tests/.
common_args=(--target "$target" --lib --tests --no-fail-fast "$@")
status=0

if [[ $which == asan || $which == all ]]; then
    echo "=== AddressSanitizer"
    RUSTFLAGS="-Zsanitizer=address" \
    RUSTDOCFLAGS="-Zsanitizer=address" \
    ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1" \
    LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp" \
    CARGO_TARGET_DIR=target/asan \
        cargo +nightly test "${common_args[@]}" || status=1
fi

if [[ $which == tsan || $which == all ]]; then
    echo "=== ThreadSanitizer (std uninstrumented: expect false positives, see TESTING.md)"
    RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
    TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0 ${TSAN_EXTRA:-}" \
    CARGO_TARGET_DIR=target/tsan \
        cargo +nightly test "${common_args[@]}" -- --test-threads=1 || {
        echo "ThreadSanitizer: failures or reports (informational)"
    }
fi
exit $status
