#!/usr/bin/env bash
# The project's test command: installs what the tests need beyond Rust, then runs them.
# - Debian packages: chromium (the panel's browser test), dovecot (the IMAP / POP3 check),
#   mpop (a POP3 client of the capture sandbox), spamd (its spam check), openssl (its certificate), faketime (the clock-jump tests). Installed only when missing.
# - Python packages from tests/requirements.txt (aiosmtpd, dnspython, botocore, ...).
# - playwright-core from tests/panel (npm ci).
# Extra arguments go to `cargo test` (e.g. `bash tests/run.sh -p sluice --test ingress`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
command -v openssl >/dev/null || need+=(openssl)
command -v faketime >/dev/null || need+=(faketime)
# sluice sendmail (crates/sluice/tests/sendmail.rs): PHP's mail() and mailx (s-nail: no MTA dependency, unlike bsd-mailx) through it.
command -v php >/dev/null || need+=(php-cli)
command -v s-nail >/dev/null || need+=(s-nail)
# POP3 over captured mail (crates/sluice/tests/pop3.rs): mpop, a second real client besides poplib.
command -v mpop >/dev/null || need+=(mpop)
# The capture sandbox's spam check (crates/sluice/tests/capture_spam.rs): SpamAssassin's spamd.
[ -x /usr/sbin/spamd ] || need+=(spamd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
npm ci --prefix tests/panel --no-audit --no-fund --silent
# The TypeScript client's dev dependencies (typescript, @types/node); its suite is built and
# run by crates/sluice/tests/client_typescript.rs (npm run build && npm test).
npm ci --prefix clients/typescript --no-audit --no-fund --silent
if [ $# -eq 0 ]; then
  set -- --workspace
fi
cargo test --locked "$@"
