#!/usr/bin/env bash
# Development: the gateway (debug build, `cargo run`) and the admin UI's Vite dev server, together.
#
#   cp .env.example .env     # once; set ADMIN_PASSWORD in it
#   ./start.sh
#
# 1. builds llm-quota and validates the configuration (environment > .env > YAML > defaults);
# 2. checks that the proxy, admin, metrics and Vite (5173) ports are free, naming any taken one;
# 3. migrates the database;
# 4. starts `cargo run -p llm-quota -- serve` and `npm run dev` in ui/ (skipped, with a message,
#    while ui/ has no package.json);
# 5. Ctrl-C stops both (so does either one exiting).
set -euo pipefail
cd "$(dirname "$0")"

VITE_PORT=5173
BIN=target/debug/llm-quota

say() { printf 'start.sh: %s\n' "$*"; }
die() { printf 'start.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo is missing: install a Rust toolchain (https://rustup.rs)"
command -v cmake >/dev/null 2>&1 || die "cmake is missing (Pingora builds zlib-ng with it): apt-get install cmake"

say "building llm-quota (debug)"
cargo build --quiet -p llm-quota

# The effective configuration, from the binary itself, so that the ports checked below are the
# ones it will use whatever layer set them. Exit 2 = a configuration error, already explained.
if ! check="$("$BIN" config check)"; then
    die "the configuration is invalid (see the message above); fix it, then run ./start.sh again"
fi
value() { printf '%s\n' "$check" | awk -v k="$1" '$1 == k { print $2; exit }'; }
if [ "$(value admin.password)" = "(not" ]; then
    die "ADMIN_PASSWORD is not set: run 'cp .env.example .env' and set it there, or export it"
fi

with_ui=1
if [ ! -f ui/package.json ]; then
    with_ui=0
    say "ui/package.json does not exist yet: starting the gateway only (no Vite dev server)"
elif ! command -v npm >/dev/null 2>&1; then
    die "npm is missing: install Node.js 20 or later for the admin UI's dev server"
fi

# A port is taken when something accepts connections on it. Wildcard binds are probed on the
# loopback, which a listener on 0.0.0.0 also answers.
in_use() {
    local host="$1" port="$2"
    case "$host" in 0.0.0.0 | "::" | "[::]" | localhost) host=127.0.0.1 ;; esac
    host="${host#[}"
    host="${host%]}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
holder() {
    if command -v lsof >/dev/null 2>&1; then
        lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR == 2 { print " by " $1 " (pid " $2 ")" }'
    fi
}
taken=0
check_port() {
    local what="$1" address="$2" variable="$3"
    local host="${address%:*}" port="${address##*:}"
    if in_use "$host" "$port" || { [ "$host" = localhost ] && in_use ::1 "$port"; }; then
        printf 'start.sh: port %s (%s) is already in use%s: stop that process or set %s\n' \
            "$port" "$what" "$(holder "$port")" "$variable" >&2
        taken=1
    fi
}
check_port proxy "$(value proxy)" "PROXY_PORT"
check_port admin "$(value admin)" "ADMIN_PORT"
check_port metrics "$(value metrics)" "METRICS_PORT"
if [ "$with_ui" = 1 ]; then
    check_port "Vite dev server" "localhost:$VITE_PORT" "server.port in ui/vite.config.ts"
fi
[ "$taken" = 0 ] || exit 1
if [ "$with_ui" = 1 ] && [ "$(value admin)" != "127.0.0.1:8001" ] && [ "$(value admin)" != "0.0.0.0:8001" ]; then
    say "warning: the admin API listens on $(value admin), but the Vite dev server proxies /api to 127.0.0.1:8001 (ui/vite.config.ts)"
fi

say "migrating the database"
"$BIN" migrate

if [ "$with_ui" = 1 ] && [ ! -d ui/node_modules ]; then
    say "installing the UI's dependencies (npm ci)"
    (cd ui && npm ci --no-audit --no-fund)
fi

# Each child runs in its own process group (job control), so that stopping it also stops what
# it started (npm -> vite), and Ctrl-C reaches this script only, which then stops both.
set -m
pids=()
stop() {
    trap - INT TERM EXIT
    say "stopping"
    for pid in "${pids[@]}"; do
        # SIGINT: Pingora's quick shutdown (no grace period) and Vite's normal exit.
        kill -INT -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    exit "${1:-0}"
}
# stdin from /dev/null: a background process group that reads the terminal would be stopped
# (SIGTTIN), and Vite reads it for its keyboard shortcuts.
cargo run --quiet -p llm-quota -- serve </dev/null &
pids+=("$!")
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop $?' EXIT
if [ "$with_ui" = 1 ]; then
    (cd ui && exec npm run dev) </dev/null &
    pids+=("$!")
    say "admin UI (dev, hot reload): http://localhost:$VITE_PORT"
fi
say "proxy: http://$(value proxy)  admin: http://$(value admin)  metrics: http://$(value metrics)/metrics"
say "press Ctrl-C to stop"

# Stop everything as soon as one of the children exits (bash 3.2 has no `wait -n`).
while :; do
    for pid in "${pids[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" || status=$?
            say "a process exited (status $status)"
            stop "$status"
        fi
    done
    sleep 1
done
