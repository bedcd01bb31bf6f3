# syntax=docker/dockerfile:1.7
#
# vigil: one static-ish binary (the bundled models are compiled in), built in a Rust
# image and copied into a small Debian image with a non-root user and a /data volume.
#
#   docker build -t vigil:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 -p 127.0.0.1:8001:8001 -v vigil-data:/data vigil:0.1.0
#
# Dependencies are cached with BuildKit cache mounts (cargo registry, git checkouts
# and target/): after the first build only the crates that changed are recompiled,
# without a dummy-source dance that breaks whenever a workspace member is added.

# ---- build -------------------------------------------------------------------------
# Keep in step with rust-version in Cargo.toml.
FROM rust:1.94.1-slim-bookworm AS build
WORKDIR /src
# The whole workspace is needed: cargo loads every member's manifest, and the models
# under models/ are include_bytes!'d into the binary. .dockerignore keeps target/ out.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p vigil \
 && install -D -m 0755 target/release/vigil /out/vigil

# ---- runtime -----------------------------------------------------------------------
FROM debian:12.12-slim AS runtime
# curl only for health checks (HEALTHCHECK below, docker-compose.yml); vigil itself
# needs nothing beyond glibc and libgcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin vigil \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=build /out/vigil /usr/local/bin/vigil

LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="ONNX model server with monitoring built in" \
      org.opencontainers.image.source="https://github.com/vigil-ml/vigil" \
      org.opencontainers.image.licenses="Apache-2.0"

# SQLite database, prediction spool and generated keys. A named volume created from
# this image inherits the ownership below.
ENV VIGIL_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

# 8000 inference, 8001 collector (`vigil up` runs both).
EXPOSE 8000 8001

# `up` and `serve` answer on 8000, `collector` on 8001: try VIGIL_PORT (or 8000),
# then 8001. docker-compose.yml and Kubernetes use their own per-service probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${VIGIL_PORT:-8000}/health/ready" \
   || curl -fsS -o /dev/null "http://127.0.0.1:${VIGIL_PORT:-8001}/health/ready" \
   || exit 1

# vigil handles SIGTERM itself (drain, flush logs and records, exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["vigil"]
CMD ["up", "--host", "0.0.0.0"]
