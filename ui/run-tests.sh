#!/usr/bin/env bash
# The admin UI's tests: npm ci, type-check and build (ui/dist, which admin-api embeds), lint,
# vitest component tests, then the Playwright end-to-end run against the real binaries in
# Debian's Chromium.
#
# Needs target/debug/llm-quota and target/debug/fake-ollama: build them first
# (`cargo build -p llm-quota -p fake-ollama`; ./run-tests does). A debug build reads ui/dist
# from disk at run time, so a binary built before `npm run build` serves the fresh UI without
# a rebuild. Screenshots go to ui/node_modules/.screenshots; UPDATE_SCREENSHOTS=1 writes them
# to docs/images instead (the README shows those).
set -euo pipefail
cd "$(dirname "$0")"

fail() {
  echo "ui/run-tests: $*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node is missing (Node.js 20 or newer)"
command -v npm >/dev/null 2>&1 || fail "npm is missing"
for bin in llm-quota fake-ollama; do
  [ -x "../target/debug/$bin" ] || fail "../target/debug/$bin is missing: run cargo build -p llm-quota -p fake-ollama first"
done
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$CHROMIUM_PATH" ] || fail "$CHROMIUM_PATH is missing: apt-get install chromium (never npx playwright install)"

echo "== ui: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== ui: type-check and build (ui/dist)"
npm run --silent build

echo "== ui: lint (eslint, no warnings allowed)"
npm run --silent lint

echo "== ui: component tests (vitest)"
npx vitest run

echo "== ui: end-to-end (Playwright, $("$CHROMIUM_PATH" --version 2>/dev/null || echo chromium))"
if [ "${UPDATE_SCREENSHOTS:-0}" != "1" ]; then
  export SCREENSHOT_DIR="$PWD/node_modules/.screenshots"
fi
npx playwright test
