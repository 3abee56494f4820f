#!/usr/bin/env bash
# Runs the whole black-box suite (tests/api) on PostgreSQL.
#
# A throwaway cluster is created in a temporary directory, owned by an
# unprivileged user (initdb and postgres refuse to run as root), listening
# on 127.0.0.1 on a free port with fsync on and trust authentication; every
# test creates its own database there. The cluster is stopped and removed at
# the end, whatever happened. Arguments are passed to the test binary, e.g.
#   bash .ci/postgres.sh instances
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)

# The server binaries: on PATH, under /usr/lib/postgresql/*/bin, or installed.
find_bin_dir() {
    local initdb dir
    if initdb=$(command -v initdb) && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if ! bin=$(find_bin_dir); then
    echo "== installing PostgreSQL"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(find_bin_dir) || { echo "no PostgreSQL server binaries after installing" >&2; exit 1; }
fi
echo "== PostgreSQL: $("$bin/postgres" --version)"

# initdb and postgres refuse root: run them as an unprivileged user.
if [ "$(id -u)" -eq 0 ]; then
    pg_user=nobody
    if ! id "$pg_user" >/dev/null 2>&1; then
        pg_user=todo-api-pg
        id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh "$pg_user"
    fi
    as_pg() { runuser -u "$pg_user" -- "$@"; }
else
    pg_user=$(id -un)
    as_pg() { "$@"; }
fi

tmp=$(mktemp -d /tmp/todo-api-pg.XXXXXX)
data="$tmp/data"
[ "$(id -u)" -eq 0 ] && chown "$pg_user" "$tmp"

cleanup() {
    local status=$?
    if [ -f "$data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 \
            || as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$tmp/server.log" ]; then
        echo "== last lines of the PostgreSQL log"
        tail -n 30 "$tmp/server.log" || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A UTF-8 locale, as production clusters have: lower() then folds more
# than ASCII, which the backend must not let change who a name is.
if ! as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$tmp/initdb.log" 2>&1; then
    rm -rf "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
        >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
fi

# A free port: postgres binds it itself, so a port taken meanwhile only
# costs another try.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    candidate=$((20000 + RANDOM % 40000))
    port_in_use "$candidate" && continue
    if as_pg "$bin/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -c port=$candidate -c unix_socket_directories='$tmp' \
         -c fsync=on -c max_connections=300" start >/dev/null; then
        port=$candidate
        break
    fi
done
[ -n "$port" ] || { echo "PostgreSQL did not start" >&2; exit 1; }
echo "== PostgreSQL listening on 127.0.0.1:$port (data in $data, user $pg_user)"

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "== cargo test --test api on PostgreSQL"
# --include-ignored: the tests of two instances on one database, which a
# plain `cargo test` on SQLite leaves out (tests/api/instances.rs).
cargo test --test api -- --include-ignored "$@"

# The outage test stops and starts this cluster, so it runs alone, after
# the suite (in the suite it finds no commands and does nothing).
if [ "$#" -eq 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then pg_as="runuser -u $pg_user --"; else pg_as=""; fi
    echo "== PostgreSQL stopped under load and started again"
    TEST_PG_STOP="$pg_as $bin/pg_ctl -D $data -m immediate -w stop" \
    TEST_PG_START="$pg_as $bin/pg_ctl -D $data -l $tmp/server.log -w -t 60 -o \
        '-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$tmp \
         -c fsync=on -c max_connections=300' start" \
        cargo test --test api outage:: -- --nocapture
fi

echo "== the suite passed on PostgreSQL in $(($(date +%s) - started)) s"
