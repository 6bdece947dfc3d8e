# syntax=docker/dockerfile:1
#
# llm-quota: the gateway binary with the admin UI built in, on a slim Debian runtime.
#
#   docker build -t llm-quota .
#   docker run -d --name llm-quota -p 8000:8000 -p 127.0.0.1:8001:8001 \
#     -v llm-quota-data:/data -e ADMIN_PASSWORD=… llm-quota
#
# Port 8000 (proxy) is for LLM clients; port 8001 (admin API and UI) is published on the
# host's loopback only and reached from a laptop through an SSH tunnel (docs/deployment.md).

# ---- 1. the admin UI (React + Vite) -> /src/ui/dist -------------------------------------------
FROM node:22-bookworm-slim AS ui
WORKDIR /src/ui
# Dependencies first, so that editing a component does not reinstall node_modules.
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

# ---- 2. the llm-quota binary (release) --------------------------------------------------------
FROM rust:1.95-bookworm AS build
# Pingora builds zlib-ng with cmake.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The built UI replaces whatever ui/ holds (ui/dist is not in the build context, see
# .dockerignore), so the image always carries the UI of this very source tree.
COPY --from=ui /src/ui/dist ui/dist
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p llm-quota \
    && cp target/release/llm-quota /usr/local/bin/llm-quota

# ---- 3. runtime ---------------------------------------------------------------------------------
FROM debian:bookworm-slim
# The binary links only glibc and libgcc (TLS to PostgreSQL is rustls with built-in roots), so
# the runtime needs no extra package: the HEALTHCHECK uses bash's /dev/tcp instead of curl.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin llm-quota \
    && mkdir -p /data /app/conf \
    && chown llm-quota:llm-quota /data
COPY --from=build /usr/local/bin/llm-quota /usr/local/bin/llm-quota
COPY --chmod=0755 docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The reference configuration (every value is the built-in default). Mount your own over it,
# or use environment variables, which take precedence.
COPY conf/llm-quota.yaml /app/conf/llm-quota.yaml
WORKDIR /app

# Inside a container every listener binds 0.0.0.0: the container's own loopback (127.0.0.1) is
# a different network namespace from the host's, and `docker run -p` forwards to the container's
# eth0, so a listener on the container's 127.0.0.1 could never be reached through -p. The admin
# port stays private on the HOST side instead: publish it as `-p 127.0.0.1:8001:8001` (never
# plain `-p 8001:8001`, which opens it on every interface of the server and bypasses ufw), and
# reach it through `ssh -L 8001:localhost:8001 user@server`. The same goes for metrics (9464).
# The SQLite database lives in the /data volume; `sqlite:////data/…` (four slashes) is the
# absolute path /data/llm-quota.db. NO_COLOR keeps ANSI colour codes out of `docker logs`.
ENV PROXY_HOST=0.0.0.0 \
    ADMIN_HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0 \
    DATABASE_URL=sqlite:////data/llm-quota.db \
    NO_COLOR=1

VOLUME ["/data"]
EXPOSE 8000 8001 9464
# By number, so that `docker run --user`-style checks and Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# GET /healthz on the proxy port (no key needed), over bash's /dev/tcp: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["docker-entrypoint.sh", "healthcheck"]

# Pingora drains on SIGTERM: it waits proxy.grace_period_seconds (default 5) for running
# requests, then at most 3 s more, so a stop takes 5 to 8 s and fits Docker's default 10 s stop
# timeout. Raise --stop-timeout (compose: stop_grace_period) if you raise the grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["serve"]
