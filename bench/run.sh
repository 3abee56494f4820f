#!/usr/bin/env bash
# The todo-api benchmark, one command from the repository root:
#
#   bench/run.sh            the normal mode: eight scenarios and the floor
#   bench/run.sh --large    the growth mode: scenarios 1 and 2 on a small and
#                           on a large database
#
# Builds the release binary and the floor (examples/floor.rs), starts both
# servers pinned to core 0 on a fresh SQLite database in a temporary
# directory, seeds it through the API, then drives load with wrk pinned to
# core 1: keep-alive, 32 connections, a short warm-up, then 10 s per scenario.
# It prints one table, writes the same as JSON to target/bench/results.json
# and draws docs/bench.svg from that JSON. The raw material of the last run
# (wrk's outputs, the records, the server's log) is kept in
# target/bench/last-run/; `python3 bench/report.py target/bench/last-run/meta.json
# target/bench/last-run/records.jsonl OUT.json` prints the table again.
# Login throughput (scenario 7) is held to what the server's core can hash:
# just before it, examples/argon2_verify.rs times argon2id verifications on
# that core with the server's own hasher.
#
# The growth mode shows that reads do not slow down as the data grows. Beside
# the small database of the normal mode (seeded through the API) it builds a
# large one straight in SQLite (examples/seed_large.rs): 100,000 users and
# 1,000,000 todos, 100,000 of them one user's. A second server serves it, on
# the same core, and scenarios 1 (`GET /api/todos?limit=20`) and 2 (`GET
# /api/todos/{id}`, over 1,000 ids spread across the big user's todos) are
# measured on each database in turn: alice's 20 todos, then the big user's.
# The target: on the large database, req/s at least the small database's ÷
# 1.5 and p99 at most 1.5× the small database's. It writes
# target/bench/results-large.json and no chart.
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s,
# default 2), BENCH_CONNECTIONS (default 32), BENCH_LOGIN_CONNECTIONS (the
# concurrent logins of scenario 8, default 16), BENCH_SERVER_CPU and
# BENCH_CLIENT_CPU (default 0 and 1), BENCH_STRICT=1 (also fail when a target
# is missed; by default a miss is reported, not fatal, because the machine
# may be busy with other work), BENCH_RUST_LOG (the server's log filter,
# default info).
#
# Exit status: non-zero if anything fails, including any unexpected status in
# any scenario (a non-2xx where success is expected, anything but 401 in the
# unauthenticated scenario, anything but 200 from the logins) or any socket
# error or timeout reported by wrk.

# -e: stop at the first failing command; -u: an unset variable is a bug, not
# an empty string; -o pipefail: a failure inside a pipeline is not hidden by
# the last command of the pipeline succeeding.
set -euo pipefail

# Run from the repository root whatever the caller's directory, so that the
# relative paths below (bench/, docs/, cargo) mean the same thing every time.
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
LOGIN_CONNECTIONS=${BENCH_LOGIN_CONNECTIONS:-16}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
# Logins queue behind argon2 (one hash at a time on one core), so with 32
# connections a login can take seconds; wrk's default 2 s timeout would count
# those as errors. The server itself answers 503 after 10 s in the queue.
WRK_TIMEOUT=30s

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
    "") MODE=normal ;;
    --large) MODE=large ;;
    *) die "usage: bench/run.sh [--large]" ;;
esac

# --- prerequisites -----------------------------------------------------------

# The server and the load generator each get a core of their own; with fewer
# than two, the numbers would measure their fight for one core.
CORES=$(nproc --all)
[ "$CORES" -ge 2 ] || die "needs at least 2 cores, this machine has $CORES"
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin processes to cores"
command -v curl >/dev/null || die "curl is needed to seed the database"
command -v python3 >/dev/null || die "python3 is needed for the report and the chart"

# wrk: a well-known HTTP load generator, scriptable in Lua, packaged by Debian.
if ! command -v wrk >/dev/null; then
    log "installing wrk from the Debian packages"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq wrk >/dev/null
fi

# --- build -------------------------------------------------------------------

log "building the release binary and the examples the modes run (cargo build --release)"
cargo build --release --bin todo-api --example floor --example argon2_verify --example seed_large
# Where cargo put them (CARGO_TARGET_DIR or the workspace's target/). The
# binaries are started directly, not through `cargo run`, so that the PID we
# hold is the server's own: its memory is read from /proc/PID and it is
# stopped by that PID.
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
SERVER_BIN=$TARGET_DIR/release/todo-api
FLOOR_BIN=$TARGET_DIR/release/examples/floor
ARGON2_BIN=$TARGET_DIR/release/examples/argon2_verify
SEED_BIN=$TARGET_DIR/release/examples/seed_large
for bin in "$SERVER_BIN" "$FLOOR_BIN" "$ARGON2_BIN" "$SEED_BIN"; do
    [ -x "$bin" ] || die "build product $bin not found"
done
OUT_DIR=$TARGET_DIR/bench
mkdir -p "$OUT_DIR" docs

# --- processes and cleanup ---------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/todo-api-bench.XXXXXX")
PIDS=()
WRK_PIDS=()
SERVER_PID=
FLOOR_PID=
LARGE_PID=

# Stop every process this script started, by the PID it was given, and
# remove the temporary directory, however the script ends (success, error,
# Ctrl-C). Nothing else on the machine is touched.
cleanup() {
    local status=$?
    local pid
    for pid in "${WRK_PIDS[@]}" "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${WRK_PIDS[@]}" "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    # Keep the raw material of the last run (wrk's outputs, the records, the
    # server's log) next to the results, for a second look.
    if [ -n "${OUT_DIR:-}" ]; then
        rm -rf "$OUT_DIR/last-run"
        mkdir -p "$OUT_DIR/last-run"
        cp "$WORK"/*.out "$WORK"/*.warmup "$WORK"/*.log "$WORK"/*.json* "$OUT_DIR/last-run/" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ]; then
        local server_log
        for server_log in "$WORK"/server*.log; do
            [ -f "$server_log" ] || continue
            printf 'bench: failed; the last lines of %s:\n' "${server_log##*/}" >&2
            tail -n 20 "$server_log" >&2 || true
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls URL until it answers 200, for at most 30 s, failing early if the
# process PID has died.
wait_ready() {
    local url=$1 pid=$2 _
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || die "the server (pid $pid) exited during start-up"
        if curl -sf -o /dev/null "$url"; then
            return 0
        fi
        sleep 0.1
    done
    die "$url did not answer within 30 s"
}

# --- start the servers -------------------------------------------------------

# The machine's business before we add ours: the run is only as quiet as this.
LOADAVG_BEFORE=$(cat /proc/loadavg)
log "load average before the run: $LOADAVG_BEFORE"

PORT=$(free_port)
# The floor's in the normal mode, the large database's server's in the growth
# mode.
SECOND_PORT=$(free_port)
[ "$PORT" != "$SECOND_PORT" ] || SECOND_PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
SECOND_BASE=http://127.0.0.1:$SECOND_PORT

# A throwaway signing secret for this run only (64 alphanumeric characters).
JWT_SECRET=$(python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(64)))')

# Starts todo-api on 127.0.0.1:PORT over the SQLite file DATABASE, logging
# to LOG: start_server PORT DATABASE LOG [FLAG...]. Leaves its PID in
# STARTED_PID and in PIDS for the cleanup.
# TODO_API_AUTH_RATE_LIMIT=0: the per-address login limit (60/min by
# default) would answer the login scenarios with 429s; everything comes from
# 127.0.0.1 here. Access tokens live an hour so that the tokens taken while
# seeding outlast a slow run. The server's tokio runtime and its hashing
# threads all inherit the one-core affinity from taskset. The log level is
# the server's default, info (one access-log line per request, written to a
# file here), as deployed; BENCH_RUST_LOG changes it, RUST_LOG from the
# caller's shell deliberately does not.
# `taskset ... &` as a plain command: taskset execs the server, so $! is the
# server's PID.
start_server() {
    local port=$1 database=$2 server_log=$3
    shift 3
    TODO_API_JWT_SECRET=$JWT_SECRET \
        TODO_API_AUTH_RATE_LIMIT=0 \
        TODO_API_ACCESS_TOKEN_TTL=3600 \
        RUST_LOG=${BENCH_RUST_LOG:-info} \
        taskset -c "$SERVER_CPU" "$SERVER_BIN" serve --bind "127.0.0.1:$port" \
        --database-url "sqlite:$database" "$@" >"$server_log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

log "starting todo-api on $BASE (core $SERVER_CPU), database in $WORK"
start_server "$PORT" "$WORK/bench.db" "$WORK/server.log" --demo
SERVER_PID=$STARTED_PID

if [ "$MODE" = normal ]; then
    FLOOR_BASE=$SECOND_BASE
    log "starting the floor on $FLOOR_BASE (core $SERVER_CPU)"
    taskset -c "$SERVER_CPU" "$FLOOR_BIN" "127.0.0.1:$SECOND_PORT" >"$WORK/floor.log" 2>&1 &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID")
fi

wait_ready "$BASE/healthz" "$SERVER_PID"
if [ "$MODE" = normal ]; then
    wait_ready "$FLOOR_BASE/api/todos" "$FLOOR_PID"
fi

# --- seed through the API ----------------------------------------------------

# Prints the value of KEY from the JSON object on standard input.
json_get() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Logs in with the OAuth2 password grant and prints the access token:
# login BASE USERNAME PASSWORD.
login() {
    curl -sf "$1/auth/token" -d grant_type=password \
        --data-urlencode "username=$2" --data-urlencode "password=$3" |
        json_get access_token
}

log "seeding: alice with 20 todos, a second writer, the admin"
ALICE_TOKEN=$(login "$BASE" alice wonderland)
TODO_IDS=
for n in $(seq 20); do
    id=$(curl -sf -X POST "$BASE/api/todos" -H "Authorization: Bearer $ALICE_TOKEN" \
        -H 'Content-Type: application/json' -d "{\"title\": \"Benchmark todo $n\"}" |
        json_get id)
    TODO_IDS="$TODO_IDS $id"
done
TODO_IDS=${TODO_IDS# }
# The POST scenario writes as another user, so that alice's list keeps its 20
# todos for the reads that follow it.
WRITER_PASSWORD='bench writer passphrase'
curl -sf -o /dev/null -X POST "$BASE/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\": \"writer\", \"password\": \"$WRITER_PASSWORD\", \"name\": \"Bench Writer\"}"
WRITER_TOKEN=$(login "$BASE" writer "$WRITER_PASSWORD")
ADMIN_TOKEN=$(login "$BASE" admin secret)

# Checks that two list bodies hold 20 todos each, of the same shape (same
# fields in the same order), and prints their sizes as JSON:
# check_bodies NAME FILE OTHER_NAME OTHER_FILE.
check_bodies() {
    python3 - "$@" <<'EOF'
import json, os, sys
name, path, other_name, other_path = sys.argv[1:5]
todos, other = (json.load(open(p)) for p in (path, other_path))
if len(todos) != 20 or len(other) != 20:
    sys.exit(f"expected 20 todos from each, the {name} gave {len(todos)}, "
             f"the {other_name} {len(other)}")
if list(todos[0]) != list(other[0]):
    sys.exit(f"the {other_name}'s todos differ in shape: {list(todos[0])} vs {list(other[0])}")
print(json.dumps({f"{name}_bytes": os.path.getsize(path),
                  f"{other_name}_bytes": os.path.getsize(other_path)}))
EOF
}

if [ "$MODE" = normal ]; then
    # What the scenarios will read: 20 todos from the server, and a floor
    # body of the same shape.
    curl -sf "$BASE/api/todos" -H "Authorization: Bearer $ALICE_TOKEN" >"$WORK/todos.json"
    curl -sf "$FLOOR_BASE/api/todos" >"$WORK/floor.json"
    BODIES=$(check_bodies server "$WORK/todos.json" floor "$WORK/floor.json") ||
        die "the seeded data is not what the scenarios expect"
    log "list bodies: $BODIES"
fi

# --- the large database (growth mode) ----------------------------------------

# Scenario 1's request in the growth mode: one page of 20 on both databases,
# so that the small database's figure is for the same work as the large one's.
LIST_PATH='/api/todos?limit=20'
LARGE_DATABASE=

if [ "$MODE" = large ]; then
    BIG_USER=bigreader
    BIG_PASSWORD='bench big reader passphrase'
    log "building the large database (examples/seed_large.rs)"
    "$SERVER_BIN" migrate --database-url "sqlite:$WORK/large.db" >"$WORK/migrate.log" 2>&1 ||
        die "migrating the large database failed: $(cat "$WORK/migrate.log")"
    "$SEED_BIN" "$WORK/large.db" "$BIG_USER" "$BIG_PASSWORD" 2>"$WORK/seed.log" ||
        die "seeding the large database failed: $(cat "$WORK/seed.log")"
    LARGE_DATABASE=$(tail -n 1 "$WORK/seed.log")
    LARGE_DATABASE=${LARGE_DATABASE#seed_large: }
    log "large database: $LARGE_DATABASE"

    LARGE_BASE=$SECOND_BASE
    log "starting todo-api on $LARGE_BASE (core $SERVER_CPU) over the large database"
    start_server "$SECOND_PORT" "$WORK/large.db" "$WORK/server-large.log"
    LARGE_PID=$STARTED_PID
    wait_ready "$LARGE_BASE/healthz" "$LARGE_PID"
    BIG_TOKEN=$(login "$LARGE_BASE" "$BIG_USER" "$BIG_PASSWORD")

    # Scenario 2 reads 1,000 of the big user's todos, ten pages of 100 spread
    # over all their 100,000, so that the reads reach all over the table
    # rather than one corner of it that stays in the cache.
    BIG_TODO_IDS=
    for offset in $(seq 0 10000 90000); do
        ids=$(curl -sf "$LARGE_BASE/api/todos?limit=100&offset=$offset" \
            -H "Authorization: Bearer $BIG_TOKEN" |
            python3 -c 'import json, sys; print(" ".join(str(t["id"]) for t in json.load(sys.stdin)))')
        [ "$(wc -w <<<"$ids")" -eq 100 ] ||
            die "expected 100 of the big user's todos at offset $offset, got: $ids"
        BIG_TODO_IDS="$BIG_TODO_IDS $ids"
    done

    curl -sf "$BASE$LIST_PATH" -H "Authorization: Bearer $ALICE_TOKEN" >"$WORK/todos.json"
    curl -sf "$LARGE_BASE$LIST_PATH" -H "Authorization: Bearer $BIG_TOKEN" >"$WORK/large.json"
    BODIES=$(check_bodies small "$WORK/todos.json" large "$WORK/large.json") ||
        die "the seeded data is not what the scenarios expect"
    log "list bodies: $BODIES"
fi

# --- measuring ---------------------------------------------------------------

RECORDS=$WORK/records.jsonl
: >"$RECORDS"
CLK_TCK=$(getconf CLK_TCK)

# CPU time (user + system, in clock ticks) of process PID, all threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Peak resident set size (VmHWM) of process PID, in KiB.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# "BUSY TOTAL" clock ticks of core $1 so far, from /proc/stat: busy is user,
# nice, system, irq, softirq and steal; total adds idle and iowait.
core_ticks() {
    awk -v core="cpu$1" '$1 == core { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}
# CPU ticks of this script's finished children (wrk, and small helpers).
children_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
# CPU ticks of all the servers this script started (the floor is one).
servers_ticks() {
    local pid total=0
    for pid in "${PIDS[@]}"; do
        total=$((total + $(cpu_ticks "$pid")))
    done
    echo "$total"
}
# One snapshot of how busy the two cores were and how much of it was ours:
# "CORE0_BUSY CORE0_TOTAL CORE1_BUSY CORE1_TOTAL SERVERS CHILDREN".
cpu_snapshot() {
    echo "$(core_ticks "$SERVER_CPU") $(core_ticks "$CLIENT_CPU")" \
        "$(servers_ticks)" "$(children_ticks)"
}

# Starts wrk on the client core, in the background:
#   wrk_start OUTPUT CONNECTIONS SECONDS SCRIPT URL
# with the scenario's variables already in the environment, and leaves its PID
# in WRK_PIDS for the cleanup. One wrk thread: there is one core to run it on.
# wrk is started as a plain command, so that $! is wrk's own PID (taskset
# execs it).
wrk_start() {
    taskset -c "$CLIENT_CPU" wrk --threads 1 --connections "$2" --duration "$3s" \
        --timeout "$WRK_TIMEOUT" --script "bench/$4" "$5" >"$1" 2>&1 &
    WRK_PIDS+=("$!")
}

# Waits for the wrk started last and forgets its PID. (Waiting for a
# background process, rather than running it in the foreground, lets the
# INT/TERM traps run at once.)
wrk_wait() {
    local pid=${WRK_PIDS[-1]}
    wait "$pid" || die "wrk failed (exit status $?)"
    unset 'WRK_PIDS[-1]'
}

# Runs wrk to the end: wrk_run OUTPUT CONNECTIONS SECONDS SCRIPT URL.
wrk_run() {
    wrk_start "$@"
    wrk_wait
}

# The BENCH_RESULT line that bench/common.lua printed into wrk's output.
wrk_result() {
    grep -m1 '^BENCH_RESULT ' "$1" | cut -d' ' -f2- ||
        die "no result from wrk in $1: $(cat "$1")"
}

# Appends one JSON record:
#   record ID LABEL EXPECT GROUP PID SERVER_TICKS CLIENT_TICKS WRK_OUTPUT
# EXPECT is "2xx" or one exact status code; GROUP is floor, scenario or
# companion (scenario 8's logins).
record() {
    local result rss
    # Separate assignments, so that set -e sees a failure in either.
    result=$(wrk_result "$8")
    kill -0 "$5" 2>/dev/null || die "the server (pid $5) died during \"$2\""
    rss=$(peak_rss_kib "$5")
    printf '{"id":"%s","label":"%s","expect":"%s","group":"%s","peak_rss_kib":%s,"server_cpu_s":%s,"client_cpu_s":%s,"wrk":%s}\n' \
        "$1" "$2" "$3" "$4" "$rss" "$(seconds "$6")" "$(seconds "$7")" "$result" >>"$RECORDS"
}

# Clock ticks as seconds.
seconds() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# measure ID LABEL EXPECT PID BASE SCRIPT: a warm-up, then the measured run,
# then one record. The record's group is GROUP (scenario unless set).
GROUP=scenario
measure() {
    local id=$1 label=$2 expect=$3 pid=$4 base=$5 script=$6 server client
    log "$label: ${WARMUP}s warm-up, ${DURATION}s measured"
    wrk_run "$WORK/$id.warmup" "$CONNECTIONS" "$WARMUP" "$script" "$base"
    server=$(cpu_ticks "$pid")
    client=$(children_ticks)
    wrk_run "$WORK/$id.out" "$CONNECTIONS" "$DURATION" "$script" "$base"
    server=$(($(cpu_ticks "$pid") - server))
    client=$(($(children_ticks) - client))
    record "$id" "$label" "$expect" "$GROUP" "$pid" "$server" "$client" "$WORK/$id.out"
}

# The floor: the same request as scenario 1 (the token is sent, and ignored),
# measured three times spread over the run -- first, in the middle, last --
# and the best one is kept, so a moment of outside load counts less.
floor_run() {
    GROUP=floor BENCH_TOKEN=$ALICE_TOKEN \
        measure "floor$1" "floor, run $1" 2xx "$FLOOR_PID" "$FLOOR_BASE" todos_list.lua
}

# Scenario 8: reads while a second wrk keeps 16 logins in flight, both on
# the client core. It runs right after scenario 1, on the same data: its
# target is about what the hashing does to the reads, and later scenarios
# add hundreds of thousands of todos, which deepen the B-trees and slow every
# read a little (that growth has its own check, --large). The logins start a
# second early and end a second late so that the whole measured read window
# has hashing going on.
reads_during_logins() {
    log "8 GET /api/todos during logins: ${DURATION}s measured, $LOGIN_CONNECTIONS logins in flight"
    BENCH_USERNAME=alice BENCH_PASSWORD=wonderland \
        wrk_start "$WORK/s8logins.out" "$LOGIN_CONNECTIONS" $((DURATION + 2)) login.lua "$BASE"
    sleep 1
    local client
    client=$(children_ticks)
    BENCH_TOKEN=$ALICE_TOKEN wrk_run "$WORK/s8.out" "$CONNECTIONS" "$DURATION" todos_list.lua "$BASE"
    client=$(($(children_ticks) - client))
    wrk_wait # the logins
    # (The server's CPU time in scenario 8 is shared by reads and logins, so
    # neither record gets a per-request figure.)
    record s8 "8 GET /api/todos during logins" 2xx scenario "$SERVER_PID" 0 "$client" "$WORK/s8.out"
    record s8logins "8 (the concurrent logins)" 200 companion "$SERVER_PID" 0 0 "$WORK/s8logins.out"
}

# The normal mode: the floor, and the eight scenarios in between its runs.
normal_scenarios() {
    floor_run 1

    BENCH_TOKEN=$ALICE_TOKEN \
        measure s1 "1 GET /api/todos (20 todos)" 2xx "$SERVER_PID" "$BASE" todos_list.lua
    reads_during_logins
    BENCH_TOKEN=$ALICE_TOKEN BENCH_TODO_IDS=$TODO_IDS \
        measure s2 "2 GET /api/todos/{id}" 2xx "$SERVER_PID" "$BASE" todo_get.lua
    BENCH_TOKEN=$WRITER_TOKEN \
        measure s3 "3 POST /api/todos" 2xx "$SERVER_PID" "$BASE" todo_create.lua
    BENCH_TOKEN=$ALICE_TOKEN BENCH_TODO_IDS=$TODO_IDS \
        measure s4 "4 PATCH /api/todos/{id}" 2xx "$SERVER_PID" "$BASE" todo_patch.lua

    floor_run 2

    BENCH_TOKEN=$ADMIN_TOKEN \
        measure s5 "5 GET /api/users (admin)" 2xx "$SERVER_PID" "$BASE" users_list.lua
    measure s6 "6 GET /api/todos, no token" 401 "$SERVER_PID" "$BASE" unauthorized.lua

    # What scenario 7 is held to: the time of one argon2id verification,
    # taken on the server's core while both servers idle. Its CPU time ends
    # up with this script's children, which otherwise run on the client
    # core; the report moves it back to the server core.
    log "timing $ARGON2_RUNS argon2id verifications on core $SERVER_CPU"
    local ticks
    ticks=$(children_ticks)
    ARGON2_VERIFY_S=$(taskset -c "$SERVER_CPU" "$ARGON2_BIN" "$ARGON2_RUNS" 2>"$WORK/argon2.log") ||
        die "timing argon2 failed: $(cat "$WORK/argon2.log")"
    PINNED_HELPER_TICKS=$(($(children_ticks) - ticks))
    log "$(cat "$WORK/argon2.log")"

    BENCH_USERNAME=alice BENCH_PASSWORD=wonderland \
        measure s7 "7 POST /auth/token (argon2)" 200 "$SERVER_PID" "$BASE" login.lua

    floor_run 3
}

# The growth mode: scenarios 1 and 2 on each database in turn, so that
# other work on the machine falls on both sides of a comparison alike.
growth_scenarios() {
    BENCH_TOKEN=$ALICE_TOKEN BENCH_PATH=$LIST_PATH \
        measure s1 "1 GET /api/todos?limit=20, 20 todos" 2xx "$SERVER_PID" "$BASE" todos_list.lua
    GROUP=large BENCH_TOKEN=$BIG_TOKEN BENCH_PATH=$LIST_PATH \
        measure s1-large "1 GET /api/todos?limit=20, 100,000" 2xx \
        "$LARGE_PID" "$LARGE_BASE" todos_list.lua
    BENCH_TOKEN=$ALICE_TOKEN BENCH_TODO_IDS=$TODO_IDS \
        measure s2 "2 GET /api/todos/{id}, 20 todos" 2xx "$SERVER_PID" "$BASE" todo_get.lua
    GROUP=large BENCH_TOKEN=$BIG_TOKEN BENCH_TODO_IDS=$BIG_TODO_IDS \
        measure s2-large "2 GET /api/todos/{id}, 1,000 of 100,000" 2xx \
        "$LARGE_PID" "$LARGE_BASE" todo_get.lua
}

ARGON2_RUNS=20
ARGON2_VERIFY_S=
PINNED_HELPER_TICKS=0
START=$(date +%s)
CPU_BEFORE=$(cpu_snapshot)
if [ "$MODE" = normal ]; then
    normal_scenarios
else
    growth_scenarios
fi
END=$(date +%s)
CPU_AFTER=$(cpu_snapshot)

LOADAVG_AFTER=$(cat /proc/loadavg)

# --- report ------------------------------------------------------------------

# What the run was, on what, and how busy the machine was around it.
CPU_BEFORE=$CPU_BEFORE CPU_AFTER=$CPU_AFTER \
    START=$START END=$END LOADAVG_BEFORE=$LOADAVG_BEFORE LOADAVG_AFTER=$LOADAVG_AFTER \
    CORES=$CORES SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU \
    CONNECTIONS=$CONNECTIONS LOGIN_CONNECTIONS=$LOGIN_CONNECTIONS \
    DURATION=$DURATION WARMUP=$WARMUP BODIES=$BODIES MODE=$MODE \
    SERVER_CORES="$(taskset -c "$SERVER_CPU" nproc)" ARGON2_VERIFY_S=$ARGON2_VERIFY_S \
    PINNED_HELPER_TICKS=$PINNED_HELPER_TICKS LARGE_DATABASE=$LARGE_DATABASE \
    GIT_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)" \
    WRK_VERSION="$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2 || true)" \
    python3 - >"$WORK/meta.json" <<'EOF'
import datetime, json, os, platform
e = os.environ
# How busy the two cores were during the measurements, and how much of that
# was the benchmark itself (the servers, and the argon2 timing, on the server
# core; wrk, plus a few short helpers, on the client core). "other" is
# everyone else's work.
b0, t0, b1, t1, ours0, ours1 = (int(x) for x in e["CPU_BEFORE"].split())
a0, u0, a1, u1, after0, after1 = (int(x) for x in e["CPU_AFTER"].split())
pinned = int(e["PINNED_HELPER_TICKS"])
def share(ticks, total):
    return round(100 * ticks / total, 1) if total else None
cores_busy = {
    "server_core": {"busy_pct": share(a0 - b0, u0 - t0),
                    "ours_pct": share(after0 - ours0 + pinned, u0 - t0)},
    "client_core": {"busy_pct": share(a1 - b1, u1 - t1),
                    "ours_pct": share(after1 - ours1 - pinned, u1 - t1)},
}
for core in cores_busy.values():
    if core["busy_pct"] is not None:
        core["other_pct"] = round(max(core["busy_pct"] - core["ours_pct"], 0.0), 1)
cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "unknown")
print(json.dumps({
    "started_at": datetime.datetime.fromtimestamp(int(e["START"]), datetime.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
    "wall_seconds": int(e["END"]) - int(e["START"]),
    "loadavg_before": e["LOADAVG_BEFORE"],
    "loadavg_after": e["LOADAVG_AFTER"],
    "cpu_during_run": cores_busy,
    "cores": int(e["CORES"]),
    "cpu_model": cpu_model,
    "kernel": platform.release(),
    "git_commit": e["GIT_COMMIT"],
    "wrk": e["WRK_VERSION"],
    "server_cpu": int(e["SERVER_CPU"]),
    "client_cpu": int(e["CLIENT_CPU"]),
    "connections": int(e["CONNECTIONS"]),
    "login_connections": int(e["LOGIN_CONNECTIONS"]),
    "duration_s": int(e["DURATION"]),
    "warmup_s": int(e["WARMUP"]),
    "list_bodies": json.loads(e["BODIES"]),
    "mode": e["MODE"],
    "server_cores": int(e["SERVER_CORES"]),
    "argon2_verify_s": float(e["ARGON2_VERIFY_S"]) if e["ARGON2_VERIFY_S"] else None,
    "large_database": e["LARGE_DATABASE"] or None,
}, indent=2))
EOF

# The table goes to standard output; the JSON and, in the normal mode, the
# chart to files. The report exits non-zero on any unexpected status or
# socket error.
if [ "$MODE" = normal ]; then
    python3 bench/report.py "$WORK/meta.json" "$RECORDS" "$OUT_DIR/results.json"
    python3 bench/chart.py "$OUT_DIR/results.json" docs/bench.svg
    log "wrote $OUT_DIR/results.json and docs/bench.svg"
else
    python3 bench/report.py "$WORK/meta.json" "$RECORDS" "$OUT_DIR/results-large.json"
    log "wrote $OUT_DIR/results-large.json"
fi
