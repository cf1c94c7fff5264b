# Sluice's container image: a release build on the official Rust image, run on Debian slim
# as the unprivileged user `sluice`.
#   docker build -t sluice .            podman build --format docker -t sluice .
#   docker run -p 2587:2587 -p 2580:2580 -p 2581:2581 sluice serve --dev
# (`--format docker`: podman's default OCI format drops HEALTHCHECK.)
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The registry and target caches make a rebuild after a source change incremental; the
# binary is copied out of the cached target directory.
RUN --mount=type=cache,id=sluice-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=sluice-target,target=/src/target \
    cargo build --release --locked -p sluice \
    && install -m 0755 target/release/sluice /usr/local/bin/sluice

FROM debian:bookworm-slim
# ca-certificates: upstream SMTP and the email services' APIs are reached over TLS.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --home-dir /var/lib/sluice \
       --shell /usr/sbin/nologin sluice \
    && mkdir -p /var/lib/sluice /etc/sluice/tls \
    && chown sluice:sluice /var/lib/sluice
COPY --from=builder /usr/local/bin/sluice /usr/local/bin/sluice
COPY deploy/container/sluice.toml /etc/sluice/sluice.toml
# `serve --dev` in a container listens on every interface and trusts the engine's private
# ranges on its plain port (see README "Containers"); state goes to /var/lib/sluice/data.
ENV SLUICE_DEV_CONTAINER=true
USER 10001:10001
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice", "/etc/sluice/tls"]
# 2587 STARTTLS, 2465 implicit TLS, 2525 plain (--dev only), 2580 API and health,
# 2581 panel, 2555 outbound-email webhook.
EXPOSE 2587 2465 2525 2580 2581 2555
# `sluice healthcheck`: GET http://127.0.0.1:2580/healthz, exit 0 on 200 (no curl here).
# A node without the http role (`--roles worker`) has no such listener: disable it there.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["sluice", "healthcheck"]
# `sluice serve` is PID 1 and handles SIGTERM itself: it stops accepting, lets sessions and
# deliveries finish (smtp.shutdown_grace_secs) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sluice"]
CMD ["serve", "--config", "/etc/sluice/sluice.toml"]
