#!/usr/bin/env bash
# The Dockerfile and compose.yaml, built and run for real with podman (no Docker engine
# runs here). Fails, never skips, when something does not work. Steps:
#   tools    podman + runc + debootstrap (apt), podman-compose + hadolint (pip),
#            docker-compose v1 (apt: `config -q` validates compose.yaml without an engine)
#   lint     hadolint on the Dockerfiles, `docker-compose config -q`, `podman-compose config`
#   base     debian:bookworm-slim from `debootstrap --variant=minbase` + `podman import`
#   stand-ins  rust:<RUST_VERSION>-bookworm (the host's toolchain on that base) and
#            postgres:15-bookworm (Debian's PostgreSQL 15 with the official entrypoint's
#            behaviour), tagged with the exact names the Dockerfile and compose.yaml use
#   image    `podman build --pull=never --format docker` of the Dockerfile (a release build)
#   dev      `serve --dev` with -p mappings: SMTP (smtplib, plain + STARTTLS/AUTH), /healthz,
#            the panel, the API, HEALTHCHECK, then SIGTERM → exit 0 promptly
#   compose  the quick start under podman-compose on PostgreSQL, workers scaled to 2,
#            `run --rm test-client --count 10 --rate 5`, the 10 messages delivered in
#            PostgreSQL, a second `up` (the seed is idempotent), then `down -v`
# Stand-in images are kept between runs on one machine (made again when their recipe
# changes); set SLUICE_CONTAINERS_FRESH=1 to make them again anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${SLUICE_CONTAINERS_WORK:-/var/tmp/sluice-containers}
PROJECT=sluicect
START=$(date +%s)
step() { echo "--- containers: $* (+$(($(date +%s) - START)) s)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$WORK"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

step "tools"
need=()
for tool in podman:podman runc:runc debootstrap:debootstrap docker-compose:docker-compose \
  newuidmap:uidmap; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -x /usr/lib/podman/netavark ] || need+=(netavark aardvark-dns)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need[@]}" slirp4netns containernetworking-plugins >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -r tests/containers/requirements.txt

step "lint"
hadolint Dockerfile tests/containers/*.Containerfile
docker-compose -f compose.yaml config -q
podman-compose -f compose.yaml config >/dev/null

# Traps of this machine's podman 4.3: crun fails on the hybrid cgroup setup (runc), and the
# default rlimits are above the hard ones (nproc above pid_max is refused too).
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
[ "$nofile" = unlimited ] && nofile=1048576
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
BUILD=(podman build --pull=never --format docker)
# HTTPS in a build (cargo fetching crates) passes an intercepting proxy whose CA only the
# host's bundle has. It is mounted where cargo's OpenSSL probe looks first (/var/ssl), not
# over /etc/ssl/certs/ca-certificates.crt, which the image's ca-certificates package
# rewrites (a bind-mounted file cannot be replaced: its postinst would fail).
HOST_CA=/etc/ssl/certs/ca-certificates.crt
[ -f "$HOST_CA" ] || fail "no CA bundle at $HOST_CA"

# A stand-in is made again when its recipe changes: the files it is made from, and the
# version below for what this script does to make it (raise it when that changes).
RECIPE_VERSION=2
recipe() { { echo "$RECIPE_VERSION"; cat "$@"; } | sha256sum | cut -c1-16; }
have_image() { # NAME RECIPE
  [ -z "${SLUICE_CONTAINERS_FRESH:-}" ] \
    && [ "$(podman image inspect --format '{{index .Labels "sluice.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}

step "base: debian:bookworm-slim from debootstrap"
BASE=docker.io/library/debian:bookworm-slim
base_recipe=$(recipe /dev/null)
if ! have_image "$BASE" "$base_recipe"; then
  rootfs=$WORK/rootfs
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  # What makes the official image "slim": no docs, man pages or locales, empty apt lists.
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/info/*
EOF
  # ... and apt's caches cleaned after every install, as the official image's apt.conf.d does.
  cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL sluice.recipe=$base_recipe" - "$BASE" >/dev/null 2>&1
  rm -rf "$rootfs"
fi

step "stand-in: rust builder image"
RUST_VERSION=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
[ -n "$RUST_VERSION" ] || fail "no ARG RUST_VERSION in the Dockerfile"
RUST_IMAGE=docker.io/library/rust:$RUST_VERSION-bookworm
host_rustc=$(rustc --version | awk '{print $2}')
case "$host_rustc" in
  "$RUST_VERSION" | "$RUST_VERSION".*) ;;
  *) fail "the host's rustc is $host_rustc, the Dockerfile wants $RUST_VERSION" ;;
esac
rust_recipe=$(recipe tests/containers/rust-standin.Containerfile <(echo "$host_rustc"))
if ! have_image "$RUST_IMAGE" "$rust_recipe"; then
  sysroot=$(rustc --print sysroot)
  ctx=$WORK/rust-context
  rm -rf "$ctx" && mkdir -p "$ctx/toolchain"
  # Hard links where the file system allows, copies elsewhere; no docs.
  for dir in bin lib libexec; do
    cp -al "$sysroot/$dir" "$ctx/toolchain/" 2>/dev/null || cp -a "$sysroot/$dir" "$ctx/toolchain/"
  done
  "${BUILD[@]}" -q -f tests/containers/rust-standin.Containerfile \
    --build-arg "RUST_TOOLCHAIN=$host_rustc-x86_64-unknown-linux-gnu" \
    --label "sluice.recipe=$rust_recipe" -t "$RUST_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

step "stand-in: postgres image"
PG_IMAGE=docker.io/library/$(sed -n 's/^ *image: \(postgres:.*\)$/\1/p' compose.yaml)
[ "$PG_IMAGE" = docker.io/library/postgres:15-bookworm ] \
  || fail "compose.yaml's postgres image is $PG_IMAGE; the stand-in is PostgreSQL 15 (bookworm's)"
pg_recipe=$(recipe tests/containers/postgres-standin.Containerfile tests/containers/postgres-entrypoint.sh)
if ! have_image "$PG_IMAGE" "$pg_recipe"; then
  "${BUILD[@]}" -q -f tests/containers/postgres-standin.Containerfile \
    --label "sluice.recipe=$pg_recipe" -t "$PG_IMAGE" tests/containers >/dev/null
fi

step "image: podman build of the Dockerfile (release)"
build_start=$(date +%s)
"${BUILD[@]}" -v "$HOST_CA:/var/ssl/cert.pem:ro" -t localhost/sluice:latest . >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; fail "podman build"; }
echo "image built in $(($(date +%s) - build_start)) s"
# The binary the builder stage compiled, for tests/deb.sh in .ci/run (one release build).
ctr=$(podman create localhost/sluice:latest)
podman cp "$ctr:/usr/local/bin/sluice" "$WORK/sluice-from-image"
podman rm -f "$ctr" >/dev/null
"$WORK/sluice-from-image" --version >/dev/null || fail "the image's binary does not run on the host"
inspect() { podman image inspect --format "$1" localhost/sluice:latest; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || fail "the image does not run as 10001"
inspect '{{json .Config.Healthcheck}}' | grep -q healthcheck || fail "no HEALTHCHECK in the image"
[ "$(inspect '{{json .Config.Cmd}}')" = '["serve","--config","/etc/sluice/sluice.toml"]' ] \
  || fail "default command: $(inspect '{{json .Config.Cmd}}')"
podman run --rm localhost/sluice:latest config check --config /etc/sluice/sluice.toml >/dev/null \
  || fail "the image's /etc/sluice/sluice.toml does not validate"

# `down` does not know containers made by `--scale`: what is left of the project is removed
# by its label and names.
project_containers() { podman ps -aq --filter "label=io.podman.compose.project=$PROJECT"; }
project_volumes() { podman volume ls -q | grep "^${PROJECT}_" || true; }
cleanup() {
  podman rm -f -v -t 0 sluicect-dev >/dev/null 2>&1 || true
  podman-compose -p "$PROJECT" --in-pod false -f compose.yaml --profile tools down -v -t 5 \
    >/dev/null 2>&1 || true
  project_containers | xargs -r podman rm -f -v -t 0 >/dev/null 2>&1 || true
  project_volumes | xargs -r podman volume rm -f >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

step "dev: serve --dev with port mappings"
# Host ports of their own, so a developer's `serve --dev` on this machine is not in the way.
podman run -d --name sluicect-dev -p 32525:2525 -p 32587:2587 -p 32580:2580 -p 32581:2581 \
  localhost/sluice:latest serve --dev >/dev/null
dev_logs() { podman logs sluicect-dev 2>&1 | tail -30; }
python3 tests/containers/probe.py wait-http http://127.0.0.1:32580/healthz 60 || { dev_logs; exit 1; }
python3 tests/containers/probe.py smtp-plain 32525 plain@example.com || { dev_logs; exit 1; }
python3 tests/containers/probe.py smtp-submission 32587 dev@example.com dev auth@example.com \
  || { dev_logs; exit 1; }
python3 tests/containers/probe.py http http://127.0.0.1:32581/login 200 '<form'
api_key=$(podman logs sluicect-dev 2>/dev/null | sed -n 's/^ *export API_KEY=//p' | tail -1)
[ -n "$api_key" ] || { dev_logs; fail "no API key in serve --dev's banner"; }
# --dev's account is in sandbox mode: its mail is captured.
python3 tests/containers/probe.py api-messages http://127.0.0.1:32580 "$api_key" plain@example.com captured
python3 tests/containers/probe.py api-messages http://127.0.0.1:32580 "$api_key" auth@example.com captured
podman healthcheck run sluicect-dev || fail "the image's HEALTHCHECK reports unhealthy"
[ "$(podman exec sluicect-dev id -u)" = 10001 ] || fail "serve --dev does not run as 10001"
stop_start=$(date +%s%N)
podman stop -t 30 sluicect-dev >/dev/null
stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
code=$(podman inspect --format '{{.State.ExitCode}}' sluicect-dev)
echo "SIGTERM: exit code $code after $stop_ms ms"
[ "$code" = 0 ] || { dev_logs; fail "serve --dev exited $code on SIGTERM"; }
[ "$stop_ms" -lt 10000 ] || fail "serve --dev took $stop_ms ms to stop on SIGTERM"
podman rm -v sluicect-dev >/dev/null

step "compose: the quick start on PostgreSQL"
COMPOSE=(podman-compose -p "$PROJECT" --in-pod false -f compose.yaml)
# Host ports of their own here too (compose.yaml's defaults are 2587, 2465, 2580, 2581).
export SLUICE_PORT_SUBMISSION=32687 SLUICE_PORT_SUBMISSIONS=32665 SLUICE_PORT_HTTP=32680 \
  SLUICE_PORT_PANEL=32681
compose_logs() { "${COMPOSE[@]}" logs 2>&1 | tail -60; }
ctr() { echo "${PROJECT}_$1_1"; }
psql_q() {
  podman exec "$(ctr postgres)" psql -U sluice -d sluice -tAc "$1"
}
# Built above with the flags this machine needs; `up` reuses it (the quick start's
# `--build` would build the same Dockerfile).
"${COMPOSE[@]}" up -d --no-build --scale worker=2 >"$WORK/compose-up.log" 2>&1 \
  || { cat "$WORK/compose-up.log"; fail "podman-compose up"; }
wait_exited_0() { # SERVICE
  local state
  for _ in $(seq 120); do
    state=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$(ctr "$1")" 2>/dev/null || true)
    case "$state" in
      "exited 0") echo "ok: $1 exited 0"; return 0 ;;
    esac
    sleep 1
  done
  compose_logs
  fail "$1 did not finish with 0 (state: $state)"
}
wait_exited_0 migrate
wait_exited_0 seed
for _ in $(seq 60); do
  podman healthcheck run "$(ctr ingress)" >/dev/null 2>&1 && break
  sleep 1
done
podman healthcheck run "$(ctr ingress)" >/dev/null || { compose_logs; fail "ingress is not healthy"; }
workers=$(podman ps --filter "label=io.podman.compose.project=$PROJECT" \
  --filter "label=com.docker.compose.service=worker" --filter status=running -q | wc -l)
[ "$workers" = 2 ] || { compose_logs; fail "$workers workers running, wanted 2"; }
python3 tests/containers/probe.py http http://127.0.0.1:32680/healthz 200
python3 tests/containers/probe.py http http://127.0.0.1:32681/login 200 '<form'
python3 tests/containers/probe.py smtp-submission 32687 dev@example.com dev host@example.com

# podman-compose runs a service of a profile only with that profile named (docker compose
# does without).
before=$(psql_q "SELECT coalesce(max(id), 0) FROM messages")
"${COMPOSE[@]}" --profile tools run --rm test-client --count 10 --rate 5 >"$WORK/test-client.log" 2>&1 \
  || { cat "$WORK/test-client.log"; compose_logs; fail "test-client"; }
cat "$WORK/test-client.log" | grep -v '^\s*$' | tail -5
grep -Eq 'sent: +10\s*$' "$WORK/test-client.log" || fail "test-client did not report 10 sent"
delivered=
for _ in $(seq 60); do
  delivered=$(psql_q "SELECT count(*) FROM messages WHERE id > $before AND mail_from = 'app@example.com' AND status = 'delivered'")
  [ "$delivered" = 10 ] && break
  sleep 1
done
psql_q "SELECT status, count(*) FROM messages GROUP BY status"
[ "$delivered" = 10 ] || { compose_logs; fail "$delivered of 10 messages delivered in PostgreSQL"; }
echo "ok: 10 messages in PostgreSQL, delivered by the workers (log provider)"

# A second `up`: migrate and seed run again and succeed; the account is left as it was.
"${COMPOSE[@]}" up -d --no-build --scale worker=2 >>"$WORK/compose-up.log" 2>&1 \
  || { cat "$WORK/compose-up.log"; fail "second podman-compose up"; }
wait_exited_0 seed
podman logs "$(ctr seed)" 2>&1 | grep -q "exists; left as it is" \
  || { podman logs "$(ctr seed)"; fail "the second seed did not find the account"; }
[ "$(psql_q "SELECT count(*) FROM accounts WHERE email = 'dev@example.com'")" = 1 ] \
  || fail "the dev account is not there exactly once"

"${COMPOSE[@]}" --profile tools down -v -t 30 >/dev/null 2>&1 || fail "podman-compose down"
trap - EXIT
cleanup
[ -z "$(project_containers)$(project_volumes)" ] || fail "containers or volumes of $PROJECT are left"
# The builder stage's images (the target directory stays in the build's cache mount).
podman image prune -f >/dev/null
step "ok"
