#!/usr/bin/env bash
# First relay benchmark: `sluice send` -> Sluice (SQLite, durable, async) -> a sink.
# Prints ingress msgs/s and accept latency (from sluice send) and end-to-end msgs/s (until
# Sluice has delivered every message). Loopback only; every loop bounded.
#
#   bench/relay.sh [COUNT] [CONCURRENCY] [SIZE_BYTES]
#   SLUICE_BIN=/path/to/sluice runs that binary instead of building one.
#
# The sink is Postfix's smtp-sink when installed (apt-get install postfix), else aiosmtpd
# (pip install -r tests/requirements.txt) discarding what it gets. The side-by-side run
# against Postfix itself is issue F.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-5000}
CONCURRENCY=${2:-50}
SIZE=${3:-1024}

if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release -p sluice >/dev/null
  SLUICE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/sluice"
fi
BIN=$SLUICE_BIN
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${BENCH_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(free_port); SMTP_PORT=$(free_port); HTTP_PORT=$(free_port)

if command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ]; then
  SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
  "$SINK" -u "$(id -un)" 127.0.0.1:$SINK_PORT 1000 &
  SINK_NAME="postfix smtp-sink"
else
  sleep 1000000 | python3 crates/testkit/py/upstream.py --port $SINK_PORT --out "$WORK/sink" --discard >/dev/null &
  SINK_NAME="aiosmtpd (discarding)"
fi

wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
wait_port $SINK_PORT

cat > "$WORK/sluice.toml" <<TOML
data_dir = "$WORK/data"
[smtp]
trusted_networks = ["127.0.0.0/8"]
trusted_account = "bench@example.com"
[[smtp.listeners]]
addr = "127.0.0.1:$SMTP_PORT"
tls = "none"
auth = "none"
[delivery.default_provider]
type = "smtp"
host = "127.0.0.1"
port = $SINK_PORT
security = "none"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[logging]
level = "warn"
TOML
"$BIN" account create --config "$WORK/sluice.toml" --name bench --email bench@example.com \
  --password bench --domain example.com >/dev/null
"$BIN" serve --config "$WORK/sluice.toml" &
wait_port $SMTP_PORT

delivered() {
  curl -s "http://127.0.0.1:$HTTP_PORT/metrics" \
    | awk '/^sluice_messages_total\{status="delivered"/ {s+=$2} END {print s+0}'
}

echo "sink: $SINK_NAME; messages: $COUNT; sessions: $CONCURRENCY; size: $SIZE bytes"
START=$(date +%s.%N)
"$BIN" send --port $SMTP_PORT --tls none --from bench@example.com --to sink@dest.test \
  --count "$COUNT" --concurrency "$CONCURRENCY" --size "$SIZE"
for _ in $(seq 1200); do
  D=$(delivered); [ -n "${BENCH_DEBUG:-}" ] && echo "delivered $D"; [ "$D" -ge "$COUNT" ] && break
  sleep 0.1
done
END=$(date +%s.%N)
python3 -c "print('end-to-end: %.1f msgs/s (%d delivered)' % ($COUNT / ($END - $START), $(delivered)))"
