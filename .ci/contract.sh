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
    "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
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

# Tokens of the demo users: the admin's for user management (which may
# narrow the admin's own scopes), alice's for the todos.
token_of() {
    curl -fs "$base/auth/token" -d username="$1" -d password="$2" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
admin_token=$(token_of admin secret)
alice_token=$(token_of alice wonderland)

# Every check schemathesis has (positive data accepted, negative data
# refused, status codes, content types, response schemas and headers,
# authentication, stateful links); its settings file states the one place
# where the contract's answer differs from a check's default.
schemathesis() {
    "$venv/bin/st" --config-file .ci/schemathesis/schemathesis.toml run "$base/openapi.json" \
        --checks all --max-examples 100 --generation-deterministic "$@"
}

echo "== schemathesis against $base/openapi.json: the todos, as alice"
schemathesis --header "Authorization: Bearer $alice_token" --include-tag todos

echo "== schemathesis: every other operation but those that end sessions, as the admin"
schemathesis --header "Authorization: Bearer $admin_token" --exclude-tag todos \
    --exclude-tag "two-step login" --exclude-path '/api/users/{id}/sessions' \
    --exclude-path /auth/logout --exclude-path /api/users/me/password

# Logging out or changing the password ends the caller's sessions, so they
# run apart, as a user of their own who logs in afresh for every request.
echo "== schemathesis: logout and password change, with tokens they may spend"
spender=contract-spender
spender_password="spendable tokens only"
curl -fs "$base/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$spender\",\"password\":\"$spender_password\",\"name\":\"Spender\"}" > /dev/null
SCHEMATHESIS_HOOKS=fresh_login PYTHONPATH=.ci/schemathesis CONTRACT_BASE_URL=$base \
    CONTRACT_USERNAME=$spender CONTRACT_PASSWORD=$spender_password \
    schemathesis --include-path /auth/logout --include-path /api/users/me/password

# Two-step login's own routes, as a user of their own: random passwords
# count as failed logins and get that user throttled, which is the
# contract's 429 and must not reach the admin. Nothing random turns two-step
# login on, so the token stays good.
echo "== schemathesis: the caller's two-step login routes, as a user of their own"
guarded=contract-two-step
curl -fs "$base/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$guarded\",\"password\":\"$spender_password\",\"name\":\"Guarded\"}" > /dev/null
guarded_token=$(token_of "$guarded" "$spender_password")
schemathesis --header "Authorization: Bearer $guarded_token" \
    --include-path-regex '^/api/users/me/mfa'

# An admin's reset of a user's two-step login, and ending a user's
# sessions, end that user's sessions, the admin's own if the id is theirs:
# a fresh admin login every request.
echo "== schemathesis: the admin's routes that end a user's sessions, logging in afresh"
SCHEMATHESIS_HOOKS=fresh_login PYTHONPATH=.ci/schemathesis CONTRACT_BASE_URL=$base \
    CONTRACT_USERNAME=admin CONTRACT_PASSWORD=secret \
    schemathesis --include-path '/api/users/{id}/mfa' --include-path '/api/users/{id}/sessions'

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
