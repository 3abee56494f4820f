#!/usr/bin/env bash
# Holds the running server to its own OpenAPI document with schemathesis, and
# checks that the interactive docs render in a real headless browser.
# Usage: .ci/contract.sh PATH-TO-todo-api-BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$1
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Schemathesis lives in a virtual environment under target/, which git ignores.
venv=target/ci-venv
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet schemathesis
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
TODO_API_AUTH_RATE_LIMIT=0 RUST_LOG=warn "$binary" serve --demo --bind "127.0.0.1:$port" \
    --database-url "sqlite:$work/contract.db" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fs "$base/healthz" > /dev/null 2>&1 && break
    sleep 0.1
done

# The demo admin's token, so that the user-management operations are
# exercised too; todo operations then act on the admin's own todos.
token=$(curl -fs "$base/auth/token" -d grant_type=password -d username=admin -d password=secret \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

echo "== schemathesis against $base/openapi.json"
# Logging out or changing the password would end the fuzzer's session
# and leave every later request a 401; those routes have their own tests.
"$venv/bin/st" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples 25 \
    --exclude-path /auth/logout --exclude-path /api/users/me/password \
    --header "Authorization: Bearer $token" \
    --generation-deterministic

echo "== headless Chromium renders /docs"
if ! command -v chromium > /dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
fi
dom=$(chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --virtual-time-budget=15000 \
    --dump-dom "$base/docs/" 2> "$work/chromium.log")
for operation in "/auth/register" "/auth/token" "/api/todos" "/api/users/{id}"; do
    if ! grep -qF "$operation" <<< "$dom"; then
        echo "the rendered /docs page does not show $operation" >&2
        exit 1
    fi
done
echo "/docs renders every operation"
