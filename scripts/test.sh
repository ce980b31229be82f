#!/usr/bin/env bash
# Runs every test: unit, store, TalentLMS client against the simulator, and the
# end-to-end suites against a real Temporal dev server (the test harness starts it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_temporal
cargo build --locked --workspace --bins --tests
# The store suite runs against SQLite and the Firestore emulator.
ensure_firestore_emulator
trap stop_firestore_emulator EXIT
# End-to-end tests mostly wait on timers, so more threads than cores pays off.
cargo test --locked --workspace -- --test-threads "${TOLLGATE_TEST_THREADS:-4}"
