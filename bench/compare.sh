#!/usr/bin/env bash
# Sluice and Postfix side by side (issue F): installs Postfix (smtp-source, smtp-sink) and
# wrk if missing, builds Sluice in release mode, runs bench/compare.py, writes a markdown
# table to bench/results/. Not part of CI.
#
#   bench/compare.sh [quick|full] [--count N] [--rounds R]
#   BENCH_DATABASE_URL=postgres://... adds the PostgreSQL row.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-quick}; shift || true
if [ ! -x /usr/sbin/smtp-source ] || ! command -v wrk >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix wrk >/dev/null
fi
cargo build --release -p sluice >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 bench/compare.py --mode "$MODE" "$@"
