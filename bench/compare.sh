#!/usr/bin/env bash
# Sluice and Postfix side by side (issue F): installs Postfix (smtp-source, smtp-sink) and
# wrk if missing, builds Sluice in release mode, runs bench/compare.py, writes a markdown
# table to bench/results/. Not part of CI.
#
#   bench/compare.sh [quick|full] [--count N] [--rounds R] [--sizes 1K,50K,1M]
#   BENCH_DATABASE_URL=postgres://... adds the PostgreSQL rows.
#   SLUICE_BIN=/path/to/sluice runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-quick}; shift || true
if [ ! -x /usr/sbin/smtp-source ] || ! command -v wrk >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix wrk >/dev/null
fi
if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release -p sluice >/dev/null
  export SLUICE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/sluice"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 bench/compare.py --mode "$MODE" "$@"
