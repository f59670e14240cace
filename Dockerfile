# syntax=docker/dockerfile:1
# hush: build with the Rust toolchain, run on a slim Debian with only the
# binary, CA certificates and curl (for the health check).
#
#   docker build -t hush .
#   docker run -p 8080:8080 -v $PWD/my-hush.toml:/etc/hush/hush.toml:ro hush
#
# Configuration comes from /etc/hush/hush.toml (mount your own, with your
# tenants and tokens of at least 16 characters) and HUSH_… environment
# variables (docs/configuration.md). The image's default config holds the
# README's demo tokens, which a gateway listening on 0.0.0.0 refuses unless
# HUSH_SERVER__ALLOW_DEMO_TOKENS=true, for a port published on the host's
# loopback only (-p 127.0.0.1:8080:8080).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every workspace member must be here, or cargo refuses the workspace
# (tests/e2e/deployment.rs checks it).
COPY crates crates
COPY bench bench
COPY tests tests
# The cache mounts keep the registry and build between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p hush \
    && install -D target/release/hush /out/hush

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/hush --create-home hush
COPY --from=build /out/hush /usr/local/bin/hush
COPY config/hush.toml /etc/hush/hush.toml
USER hush
WORKDIR /var/lib/hush
# The SQLite default keeps its file here; with PostgreSQL nothing is written.
VOLUME ["/var/lib/hush"]
ENV HUSH_SERVER__LISTEN=0.0.0.0:8080 \
    HUSH_STORAGE__PATH=/var/lib/hush/hush.db \
    HUSH_LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["hush"]
CMD ["serve", "--config", "/etc/hush/hush.toml"]
