#!/usr/bin/env bash
# The Debian package, for real (issue L §1). Builds it with cargo-deb (`cargo deb -p sluice`
# into target/debian/), lints it (lintian, systemd-analyze verify), installs it with apt-get
# (over Debian's unrelated `sluice`, which it must replace), checks files, owners, modes and
# the `sluice` user, then runs the installed binary the way the unit does: as the sluice
# user with only CAP_NET_BIND_SERVICE, the packaged config, cwd /var/lib/sluice, a clean
# environment. Only env moves listeners: the SMTP ports stay 587 / 465 (bound through the
# capability, to 127.0.0.1 instead of 0.0.0.0) and HTTP / panel / webhook go to free
# loopback ports. Checks /healthz, SMTP submission on both ports, delivery by the worker,
# SIGHUP reload, SIGTERM exit 0; then purges and checks what purge removes and keeps.
#
# It installs and purges a system package and creates the `sluice` system user: it runs
# as root (or through sudo) and, outside CI, refuses to touch an installed sluice-relay.
# Every check fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
PKG=sluice-relay
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive

step() { echo "--- deb: $*"; }
fail() {
  echo "deb: FAIL: $*" >&2
  exit 1
}
# expect_stat PATH "owner:group mode"
expect_stat() {
  local got
  got=$($SUDO stat -c '%U:%G %a' "$1") || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    $SUDO kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "tools"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
  [ "${CI:-}" = true ] || fail "$PKG is installed on this machine; this test installs and purges it (run with CI=true to allow that)"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 purge -y -qq "$PKG" >/dev/null
fi
# A previous run's purge keeps the user and the state (by design): start from none of it,
# so the package's own scripts are what create them here.
if getent passwd sluice >/dev/null; then
  [ "$(getent passwd sluice | cut -d: -f6)" = /var/lib/sluice ] \
    || fail "a user 'sluice' that is not the package's exists"
  $SUDO deluser --system --quiet sluice >/dev/null 2>&1
  getent group sluice >/dev/null && $SUDO delgroup --system --quiet sluice >/dev/null
fi
$SUDO rm -rf /var/lib/sluice /etc/sluice
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v setpriv >/dev/null || need+=(util-linux)
command -v adduser >/dev/null || need+=(adduser)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  t=$(date +%s)
  CARGO_INCREMENTAL=0 cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet
  echo "cargo-deb installed in $(elapsed "$t")"
fi

step "build: cargo deb -p sluice"
# cargo (and cargo-deb) build and package under CARGO_TARGET_DIR when it is set.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
rm -f "$TARGET_DIR"/debian/${PKG}_*.deb
t=$(date +%s)
if [ -n "${SLUICE_DEB_PREBUILT:-}" ]; then
  # .ci/run: the release binary the container image's builder stage compiled from this tree
  # with the same toolchain; packaged as cargo-deb packages its own build.
  [ -x "$SLUICE_DEB_PREBUILT" ] || fail "SLUICE_DEB_PREBUILT=$SLUICE_DEB_PREBUILT is not an executable"
  mkdir -p "$TARGET_DIR/release"
  install -m 0755 "$SLUICE_DEB_PREBUILT" "$TARGET_DIR/release/sluice"
  cargo deb -p sluice --no-build
else
  CARGO_INCREMENTAL=0 cargo deb -p sluice -- --locked
fi
echo "package built in $(elapsed "$t")"
debs=("$TARGET_DIR"/debian/${PKG}_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one $TARGET_DIR/debian/${PKG}_*.deb, found: ${debs[*]}"
DEB=$(realpath "${debs[0]}")
VERSION=$(dpkg-deb -f "$DEB" Version)
echo "$DEB ($VERSION, $(du -h "$DEB" | cut -f1))"

step "lint: lintian"
t=$(date +%s)
# Exceptions are in the package's own overrides (crates/sluice/debian/lintian-overrides),
# each with its reason; anything else at warning level or above fails the run.
lintian --fail-on error,warning --tag-display-limit 0 \
  "$DEB" || fail "lintian"
echo "lintian passed in $(elapsed "$t")"

step "install over Debian's unrelated 'sluice' (apt-get install ./file.deb)"
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq sluice >/dev/null
[ "$(dpkg-query -W -f='${Version}' sluice)" != "" ] || fail "Debian's sluice did not install"
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$DEB" >/dev/null
dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q "ok installed" \
  && fail "Debian's sluice is still installed beside $PKG"
[ "$(dpkg-query -W -f='${Status} ${Version}' "$PKG")" = "install ok installed $VERSION" ] \
  || fail "$PKG $VERSION is not what dpkg says is installed: $(dpkg-query -W -f='${Status} ${Version}' "$PKG")"
[ "$(dpkg -S /usr/bin/sluice | cut -d: -f1)" = "$PKG" ] || fail "/usr/bin/sluice is not $PKG's"
/usr/bin/sluice --version | grep -qx "sluice ${VERSION%-*}" \
  || fail "/usr/bin/sluice --version says '$(/usr/bin/sluice --version)', expected sluice ${VERSION%-*}"

step "files, owners, modes, the user"
expect_stat /usr/bin/sluice "root:root 755"
expect_stat /etc/sluice/sluice.toml "root:sluice 640"
expect_stat /var/lib/sluice "sluice:sluice 750"
expect_stat /lib/systemd/system/sluice.service "root:root 644"
expect_stat /usr/share/doc/$PKG/sluice.example.toml "root:root 644"
[ "$(readlink /usr/lib/sluice/sendmail)" = ../../bin/sluice ] \
  || fail "/usr/lib/sluice/sendmail is not a symlink to ../../bin/sluice"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q "^ /etc/sluice/sluice.toml " \
  || fail "/etc/sluice/sluice.toml is not a conffile"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd sluice) || fail "no user sluice"
[ "$uid" -lt 1000 ] || fail "sluice is not a system user (uid $uid)"
[ "$home" = /var/lib/sluice ] && [ "$shell" = /usr/sbin/nologin ] \
  || fail "sluice has home $home and shell $shell"
[ "$(getent group sluice | cut -d: -f3)" = "$gid" ] || fail "sluice's primary group is not 'sluice'"
unit=/lib/systemd/system/sluice.service
[ "$(dpkg -S "$unit" | cut -d: -f1)" = "$PKG" ] || fail "$unit is not $PKG's (dpkg -S)"
[ -L /etc/systemd/system/multi-user.target.wants/sluice.service ] \
  || fail "the unit was not enabled on install (deb-systemd-helper)"
for line in "User=sluice" "ExecStart=/usr/bin/sluice serve --config /etc/sluice/sluice.toml" \
  'ExecReload=/bin/kill -HUP $MAINPID' "StateDirectory=sluice" "ProtectSystem=strict" \
  "NoNewPrivileges=yes" "AmbientCapabilities=CAP_NET_BIND_SERVICE" \
  "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "SystemCallFilter=@system-service"; do
  grep -qxF "$line" "$unit" || fail "$unit lacks '$line'"
done
# Offline: systemd is not PID 1 here; verify reads the unit and checks it and its binary.
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
runuser -u sluice -- /usr/bin/sluice config check --config /etc/sluice/sluice.toml >/dev/null \
  || fail "the packaged config does not validate when read as the sluice user"
if runuser -u nobody -- cat /etc/sluice/sluice.toml >/dev/null 2>&1; then
  fail "another user can read /etc/sluice/sluice.toml"
fi

step "run the installed binary as the unit does"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP_PORT=$(free_port)
PANEL_PORT=$(free_port)
WEBHOOK_PORT=$(free_port)
LOG=$WORK/serve.log
# The unit's process: User/Group sluice, only CAP_NET_BIND_SERVICE (bounding and ambient),
# NoNewPrivileges, UMask 0027, WorkingDirectory /var/lib/sluice, systemd's small environment.
as_unit() {
  local caps=("$@")
  (cd /var/lib/sluice && umask 0027 && exec $SUDO setpriv --reuid=sluice --regid=sluice --init-groups \
    --no-new-privs "${caps[@]}" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/sluice \
    USER=sluice LOGNAME=sluice \
    SLUICE_SMTP__LISTENERS='[{addr="127.0.0.1:587",tls="starttls",auth="required"},{addr="127.0.0.1:465",tls="implicit",auth="required"}]' \
    SLUICE_HTTP__LISTEN="127.0.0.1:$HTTP_PORT" SLUICE_PANEL__LISTEN="127.0.0.1:$PANEL_PORT" \
    SLUICE_WEBHOOK__LISTEN="127.0.0.1:$WEBHOOK_PORT" \
    /usr/bin/sluice serve --config /etc/sluice/sluice.toml)
}
CAPS=(--bounding-set=-all,+net_bind_service --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service)
# Without the capability the sluice user cannot take port 587: the unit's grant is needed.
as_unit --bounding-set=-all >"$WORK/nocap.log" 2>&1 &
nocap=$!
for ((i = 0; i < 300; i++)); do kill -0 "$nocap" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$nocap" 2>/dev/null; then
  $SUDO kill -KILL "$nocap" 2>/dev/null || true
  fail "sluice serve kept running without CAP_NET_BIND_SERVICE"
fi
if wait "$nocap"; then fail "sluice serve exited 0 without CAP_NET_BIND_SERVICE"; fi
grep -qi "permission denied" "$WORK/nocap.log" \
  || { cat "$WORK/nocap.log" >&2; fail "without the capability, expected a bind refusal"; }

as_unit "${CAPS[@]}" >"$LOG" 2>&1 &
SERVER_PID=$!
wait_log() { # wait_log TEXT SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    grep -qF "$1" "$LOG" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; fail "the server exited while waiting for '$1'"; }
    sleep 0.1
  done
  cat "$LOG" >&2
  fail "no '$1' in the log within $2 s"
}
wait_log "sluice ready" 30
PROC_PID=$(pgrep -u sluice -x sluice) || fail "no sluice process of the sluice user"
grep -q "^CapEff:[[:space:]]*0000000000000400$" "/proc/$PROC_PID/status" \
  || fail "the server's effective capabilities are not exactly CAP_NET_BIND_SERVICE: $(grep Cap /proc/$PROC_PID/status)"
expect_stat /var/lib/sluice/sluice.db "sluice:sluice 640"
expect_stat /var/lib/sluice/master.key "sluice:sluice 600"

PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
(umask 0027 && SLUICE_ACCOUNT_PASSWORD=$PASSWORD runuser -u sluice -- /usr/bin/sluice account create \
  --config /etc/sluice/sluice.toml --name "Deb CI" --email ci@deb.test --domain deb.test) \
  >"$WORK/account.out" 2>"$WORK/account.err" \
  || { cat "$WORK/account.err" >&2; fail "account create as the sluice user"; }

MARKER="deb-body-$(date +%s%N)"
python3 - "$HTTP_PORT" "$PASSWORD" "$MARKER" <<'PY' || fail "HTTP or SMTP check"
import smtplib, ssl, sys, urllib.request
http_port, password, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for path in ("/healthz", "/readyz"):
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{path}", timeout=10) as r:
        assert r.status == 200, (path, r.status)
        print(path, r.status)
insecure = ssl.create_default_context()
insecure.check_hostname = False
insecure.verify_mode = ssl.CERT_NONE
msg = (f"From: app@deb.test\r\nTo: someone@example.net\r\nSubject: deb test\r\n\r\n{marker}\r\n")
with smtplib.SMTP("127.0.0.1", 587, timeout=20) as s:
    s.starttls(context=insecure)
    s.login("ci@deb.test", password)
    code, reply = s.mail("app@deb.test")
    assert code == 250, (code, reply)
    code, reply = s.rcpt("someone@example.net")
    assert code == 250, (code, reply)
    code, reply = s.data(msg)
    assert code == 250, (code, reply)
    print("587 STARTTLS:", code, reply.decode())
    # A sender domain the account does not own is refused with an enhanced code.
    s.rset()
    try:
        s.sendmail("app@not-ours.test", ["someone@example.net"], msg)
        raise SystemExit("a foreign sender domain was accepted")
    except smtplib.SMTPSenderRefused as e:
        assert 500 <= e.smtp_code < 600 and e.smtp_error[:2] == b"5.", e
        print("foreign sender:", e.smtp_code, e.smtp_error.decode())
with smtplib.SMTP_SSL("127.0.0.1", 465, context=insecure, timeout=20) as s:
    s.login("ci@deb.test", password)
    refused = s.sendmail("app@deb.test", ["other@example.net"], msg)
    assert refused == {}, refused
    print("465 implicit TLS: accepted")
PY
SENT=2
# /usr/lib/sluice/sendmail: once the source has `sluice sendmail` (wt-idem), the packaged
# symlink must submit through it, as an application's user that cannot read the config.
if grep -q '^mod sendmail;' crates/sluice/src/main.rs; then
  printf 'From: app@deb.test\nTo: third@example.net\nSubject: via sendmail\n\n%s\n' "$MARKER" \
    | SLUICE_SENDMAIL_SERVER=127.0.0.1:587 SLUICE_SENDMAIL_USER=ci@deb.test \
      SLUICE_SENDMAIL_PASSWORD="$PASSWORD" SLUICE_SENDMAIL_TLS=starttls SLUICE_SENDMAIL_INSECURE=1 \
      runuser -u nobody -- /usr/lib/sluice/sendmail -t \
    || fail "/usr/lib/sluice/sendmail -t exited $?"
  SENT=3
  echo "/usr/lib/sluice/sendmail -t: sent"
else
  echo "this source has no 'sluice sendmail' yet: only the symlink was checked"
fi
# The worker delivered each through the packaged default provider (log: nothing sent).
for ((i = 0; i < 100; i++)); do
  [ "$(grep -c "log provider: message not sent" "$LOG")" -ge "$SENT" ] && break
  sleep 0.1
done
[ "$(grep -c "log provider: message not sent" "$LOG")" -ge "$SENT" ] \
  || { cat "$LOG" >&2; fail "the worker did not deliver all $SENT messages"; }
grep -qF "$MARKER" "$LOG" && fail "a message body reached the log"

step "SIGHUP reloads, SIGTERM stops"
$SUDO kill -HUP "$PROC_PID"
wait_log "SIGHUP: reloading the config" 10
wait_log "config reloaded" 10
kill -0 "$PROC_PID" || fail "SIGHUP stopped the server"
$SUDO kill -TERM "$PROC_PID"
status=0
timeout 60 tail --pid="$PROC_PID" -f /dev/null || fail "the server did not stop within 60 s of SIGTERM"
wait "$SERVER_PID" || status=$?
SERVER_PID=
[ "$status" -eq 0 ] || { cat "$LOG" >&2; fail "the server exited $status on SIGTERM"; }
wait_log_done() { grep -qF "$1" "$LOG" || { cat "$LOG" >&2; fail "no '$1' in the log"; }; }
wait_log_done "stopped"

step "purge"
$SUDO apt-get -o DPkg::Lock::Timeout=600 purge -y -qq "$PKG" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; fail "purge"; }
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "installed" && fail "$PKG still installed"
for gone in /usr/bin/sluice /etc/sluice /lib/systemd/system/sluice.service /usr/lib/sluice \
  /etc/systemd/system/multi-user.target.wants/sluice.service; do
  [ ! -e "$gone" ] || fail "$gone left after purge"
done
# Kept on purge (README: mail queue and keys are the administrator's to delete).
expect_stat /var/lib/sluice/sluice.db "sluice:sluice 640"
getent passwd sluice >/dev/null || fail "purge removed the sluice user"
grep -q "kept /var/lib/sluice" "$WORK/purge.log" || fail "purge did not say what it kept"
$SUDO deluser --system --quiet sluice >/dev/null 2>&1
getent group sluice >/dev/null && $SUDO delgroup --system --quiet sluice >/dev/null
$SUDO rm -rf /var/lib/sluice

echo "deb: 1 passed, 0 failed"
