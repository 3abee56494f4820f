#!/usr/bin/env bash
# Drives the web page at / in headless Chromium with Playwright: sign-up,
# sign-in and -out, todos, a reload, the admin page. Screenshots go to
# target/artifacts/. Any console error or page error fails the run.
# Usage: .ci/web.sh PATH-TO-todo-api-BINARY   (default: target/debug/todo-api)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/todo-api}
[ -x "$binary" ] || cargo build
work=$(mktemp -d)
server_pid=""
cleanup() {
    status=$?
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$work/server.log" ]; then
        echo "== last lines of the server log" >&2
        tail -n 40 "$work/server.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
fi

# playwright-core (the library, without its browser downloads) lives under
# target/, which git ignores.
modules=target/web-e2e
playwright=1.65.1
if ! grep -qs "\"version\": \"$playwright\"" "$modules/node_modules/playwright-core/package.json"; then
    mkdir -p "$modules"
    printf '{\n  "name": "todo-api-web-e2e",\n  "private": true\n}\n' > "$modules/package.json"
    npm install --prefix "$modules" --no-audit --no-fund --loglevel=error "playwright-core@$playwright"
fi

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
base="http://127.0.0.1:$port"
# Short-lived access tokens, so that the page's renewal before expiry is exercised.
TODO_API_AUTH_RATE_LIMIT=0 RUST_LOG=warn "$binary" serve --demo --bind "127.0.0.1:$port" \
    --database-url "sqlite:$work/web.db" --access-token-ttl 15 > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fs "$base/healthz" > /dev/null 2>&1 && break
    sleep 0.1
done

echo "== the web page in headless Chromium ($base)"
E2E_BASE=$base E2E_MODULES=$modules E2E_ARTIFACTS=target/artifacts node web/e2e/e2e.mjs
