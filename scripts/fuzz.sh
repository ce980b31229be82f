#!/usr/bin/env bash
# Fuzzes the Hotmart webhook parser (domain/src/hotmart.rs `parse`) for a bounded time
# (issue 5, "hostile input"). Idempotent: installs cargo-fuzz and the nightly toolchain if
# missing, reuses the corpus in fuzz/corpus/<target> between runs, runs the known
# crashers in fuzz/regressions/<target>/ first, keeps new crash inputs in
# fuzz/artifacts/<target>/. Exits non-zero if the target crashed, timed out or ran out
# of memory, after printing the command that replays the input.
#
#   TOLLGATE_FUZZ_SECONDS    time budget of the run (default 60)
#   TOLLGATE_FUZZ_TARGET     fuzz target, see fuzz/fuzz_targets/ (default parse)
#   TOLLGATE_FUZZ_SANITIZER  address | none | ... (default none: the parser is safe Rust,
#                            so ASan costs throughput and finds nothing; panics and
#                            integer overflow are caught either way)
set -euo pipefail
cd "$(dirname "$0")/.."

# The fuzz crate is its own workspace and keeps its nightly build in fuzz/target, whatever
# target dir the caller uses for the main workspace (CI's cache, for one).
unset CARGO_TARGET_DIR
seconds=${TOLLGATE_FUZZ_SECONDS:-60}
target=${TOLLGATE_FUZZ_TARGET:-parse}
sanitizer=${TOLLGATE_FUZZ_SANITIZER:-none}
cargo_fuzz_version=0.13.2

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "installing the nightly toolchain (cargo-fuzz needs it)..." >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz $cargo_fuzz_version..." >&2
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

corpus=fuzz/corpus/$target
seeds=fuzz/seeds/$target              # checked in: valid bodies to mutate from
regressions=fuzz/regressions/$target  # checked in: inputs that once crashed the target
artifacts=fuzz/artifacts/$target
mkdir -p "$corpus" "$artifacts"
[ -d "$seeds" ] || seeds=
[ -d "$regressions" ] || regressions=

# Release build with debug assertions and overflow checks (cargo-fuzz's default), in
# fuzz/target (the fuzz crate is its own workspace). The first directory is the corpus
# libFuzzer writes to; seeds and regressions are read only, and every input in them runs
# first, so a known crasher fails the run at once.
rc=0
cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" \
  "$corpus" ${seeds:+"$seeds"} ${regressions:+"$regressions"} -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -dict=fuzz/parse.dict -print_final_stats=1 || rc=$?

if [ "$rc" -ne 0 ]; then
  echo >&2
  echo "fuzz target '$target' FAILED (exit $rc). Inputs kept in $artifacts/:" >&2
  ls -1t "$artifacts" >&2 || true
  newest=$(ls -1t "$artifacts" 2>/dev/null | head -n 1)
  if [ -n "$newest" ]; then
    echo "replay: cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer $sanitizer $target $artifacts/$newest" >&2
  fi
  exit "$rc"
fi
echo "fuzz target '$target': no crash in ${seconds}s (corpus: $(ls -1 "$corpus" | wc -l) inputs in $corpus)"
