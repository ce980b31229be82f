#!/usr/bin/env bash
# Supply-chain checks of the workspace's dependency tree with cargo-deny (issue 5), against
# deny.toml: licenses, bans and sources always (they need only crates.io), advisories
# (RustSec) when the advisory database can be had. Installs cargo-deny if missing.
#
# The RustSec advisory-db is a git repository on GitHub. Where GitHub is unreachable (this
# workplace: only crates.io, PyPI, npm and Debian are), advisories are NOT checked: the
# script says so loudly and still passes, unless TOLLGATE_AUDIT_REQUIRE_ADVISORIES=1.
# A database already in $CARGO_HOME/advisory-dbs (from an earlier online run) is used
# offline, and its age is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deny_version=0.20.2
if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny $cargo_deny_version (a few minutes)..." >&2
  cargo install cargo-deny --locked --version "$cargo_deny_version"
fi

# --locked: fail if Cargo.lock is stale. Not --offline: cargo metadata wants the crates
# of every target platform, which a plain build doesn't download.
echo "== cargo deny check licenses bans sources"
cargo deny --locked check --hide-inclusion-graph licenses bans sources

echo "== cargo deny check advisories"
advisory_dbs=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
have_db() { compgen -G "$advisory_dbs/advisory-db-*/.git" >/dev/null; }
not_checked() {
  echo "WARNING: security advisories NOT checked: $1" >&2
  echo "WARNING: the RustSec advisory-db (github.com/RustSec/advisory-db) is needed;" \
       "run scripts/audit.sh where GitHub is reachable." >&2
  if [ "${TOLLGATE_AUDIT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    exit 1
  fi
}
if curl -sf -m 10 -o /dev/null https://github.com/RustSec/advisory-db 2>/dev/null; then
  cargo deny --locked check --hide-inclusion-graph advisories
elif have_db; then
  for d in "$advisory_dbs"/advisory-db-*/; do
    echo "GitHub unreachable: using the advisory-db fetched earlier in $d (last commit" \
         "$(git -C "$d" log -1 --format=%cs 2>/dev/null || echo unknown))" >&2
  done
  cargo deny --frozen check --hide-inclusion-graph advisories
else
  not_checked "github.com is unreachable and no advisory-db was fetched before"
fi
