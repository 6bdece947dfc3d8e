#!/usr/bin/env bash
# Entrypoint of the llm-quota image.
#
#   (no arguments) | serve [--config PATH]   migrate the database, then exec `llm-quota serve`
#   --config PATH                           the same as `serve --config PATH`
#   migrate | keys … | config … | help      run that llm-quota command, e.g.
#                                             docker exec llm-quota llm-quota keys list
#                                             docker run --rm -v llm-quota-data:/data llm-quota keys list
#   healthcheck                             GET /healthz on the proxy port; exit 0 when it answers 200
#   anything else (bash, sh, …)             run it as is
#
# `serve` is exec'd, so llm-quota runs as PID 1 and receives Docker's SIGTERM itself (Pingora
# drains running requests for proxy.grace_period_seconds, then exits).
set -euo pipefail

# GET /healthz over bash's /dev/tcp (the slim image has no curl). The proxy listens on
# PROXY_HOST:PROXY_PORT; a wildcard bind is probed on the loopback.
healthcheck() {
    local host="${PROXY_HOST:-0.0.0.0}" port="${PROXY_PORT:-8000}" status
    case "$host" in
        0.0.0.0 | "::" | "[::]" | "") host=127.0.0.1 ;;
    esac
    host="${host#[}"
    host="${host%]}"
    exec 3<>"/dev/tcp/$host/$port" || {
        echo "healthcheck: nothing listens on $host:$port" >&2
        return 1
    }
    printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
    if ! IFS= read -r -t 5 status <&3; then
        echo "healthcheck: no answer from $host:$port within 5 s" >&2
        return 1
    fi
    exec 3<&-
    status="${status%$'\r'}"
    case "$status" in
        "HTTP/1."?" 200"*) return 0 ;;
    esac
    echo "healthcheck: GET /healthz answered \"$status\"" >&2
    return 1
}

if [ "$#" -eq 0 ]; then
    set -- serve
fi
case "$1" in
    -h | --help | -V | --version) ;;
    -*) set -- serve "$@" ;;
esac

case "$1" in
    serve)
        shift
        # `serve` migrates too; doing it first, on its own, makes a database problem (PostgreSQL
        # not reachable yet, /data not writable) the one clear failure of this container.
        llm-quota migrate "$@"
        exec llm-quota serve "$@"
        ;;
    healthcheck)
        healthcheck
        ;;
    migrate | keys | config | help | -h | --help | -V | --version)
        exec llm-quota "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
