#!/usr/bin/env bash
# Runs every test: supply-chain checks, a bounded fuzz run of the webhook parser, unit and
# property tests, the store suite (SQLite + Firestore emulator), the warehouse suite
# (SQLite + BigQuery emulator), the TalentLMS client against the simulator, the
# end-to-end suites against a real Temporal dev server (the test harness starts it), and
# the dashboard in headless Chromium; the Pub/Sub journal against its emulator. Installs what is missing; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_disk
ensure_temporal
ensure_chromium
ensure_browser_deps
ensure_promtool
# The shipped alert rules parse, type-check and fire when they should (docs/alerts.test.yml);
# the Grafana dashboard is valid JSON.
promtool check rules docs/alerts.yml
promtool test rules docs/alerts.test.yml
python3 -m json.tool docs/grafana-dashboard.json >/dev/null
# The binaries the end-to-end tests start, with the tests' feature set (a build without
# `--tests` unifies other features and rebuilds the dependencies), then the test-mode
# targets `cargo test --lib --bins` adds (those marked `test = false`), so the test run
# below compiles nothing and its two `cargo test`s never wait on each other's build.
cargo build --locked --workspace --bins --tests
cargo test --locked --workspace --lib --bins --tests --no-run
# Licenses, bans, sources (and advisories where the RustSec database is reachable).
bash scripts/audit.sh
# Hostile input: the parser under libFuzzer for a bounded time; known crashers first.
TOLLGATE_FUZZ_SECONDS="${TOLLGATE_FUZZ_SECONDS:-30}" bash scripts/fuzz.sh
# The store suite runs against SQLite and the Firestore emulator, the warehouse suite
# against SQLite and the BigQuery emulator.
ensure_firestore_emulator
ensure_bq_emulator
# The Pub/Sub journal's tests (tests/tests/pubsub.rs) use the Pub/Sub emulator.
ensure_pubsub_emulator
pubsub_pid=
pubsub_log=$(mktemp)
# The Pub/Sub test runs in its own process group, so an interrupted run stops it with the
# emulators instead of leaving it behind.
trap '[ -z "$pubsub_pid" ] || kill -- -"$pubsub_pid" 2>/dev/null || true; rm -f "$pubsub_log";
      stop_firestore_emulator; stop_bq_emulator; stop_pubsub_emulator' EXIT
# The Pub/Sub test spends its ~80 s waiting on the emulator's redelivery backoff (the
# dead-letter step), so it runs beside the rest. `--workspace` keeps the build's feature
# set (a `-p` run would rebuild crates under the build lock); cargo holds that lock only
# while building.
setsid -w cargo test --locked --workspace --test pubsub >"$pubsub_log" 2>&1 &
pubsub_pid=$!
# End-to-end tests mostly wait on timers, so more threads than cores pays off. No doc
# tests (the docs' code blocks are shell and text): skipping rustdoc saves a pass per crate.
status=0
cargo test --locked --workspace --lib --bins --tests -- --test-threads "${TOLLGATE_TEST_THREADS:-4}" \
  --skip pubsub_journal_forwards_once || status=$?
pubsub_status=0
wait "$pubsub_pid" || pubsub_status=$?
pubsub_pid=
echo "== the Pub/Sub test (run beside the others) =="
cat "$pubsub_log"
[ "$status" -eq 0 ] && [ "$pubsub_status" -eq 0 ]
