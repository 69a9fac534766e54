#!/usr/bin/env bash
# Runs Pandora's whole test suite on a fresh machine.
#
# The PostgreSQL store tests start a throwaway PostgreSQL server from the local
# server binaries (initdb/pg_ctl), or use PANDORA_TEST_DATABASE_URL when set.
# When neither is available this script installs the server binaries first
# (Debian/Ubuntu: the `postgresql` package; needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

have_pg_binaries() {
  command -v initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if [ -z "${PANDORA_TEST_DATABASE_URL:-}" ] && ! have_pg_binaries; then
  echo "test.sh: PostgreSQL server binaries not found; installing the 'postgresql' package" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  have_pg_binaries || { echo "test.sh: PostgreSQL installation failed" >&2; exit 1; }
fi

exec cargo test --workspace --locked "$@"
