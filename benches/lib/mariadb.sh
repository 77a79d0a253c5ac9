# A private MariaDB server for a benchmark: its own data directory (under
# the directory given), a free port on 127.0.0.1, root with an empty
# password over TCP, stopped and removed at exit. Source this file, then:
#
#   mariadb_start DIR [MARIADBD_OPTION...]
#       installs a data dir in DIR/data and starts mariadbd; extra options
#       come after the defaults and so override them. Sets MARIADB_PORT,
#       MARIADB_PID, MARIADB_DIR. Registers mariadb_stop for exit.
#   mariadb_sql SQL            run SQL as root on the private server
#   mariadb_stop               shut the server down and delete DIR/data
#
# Defaults (override with later options, or set MARIADB_BENCH_OPTIONS):
# durable commits (innodb-flush-log-at-trx-commit=1), no binary log,
# a 256 MiB buffer pool and room for 1000 connections.

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MARIADB_PORT=""
MARIADB_PID=""
MARIADB_DIR=""

MARIADB_DEFAULT_OPTIONS=(
    --bind-address=127.0.0.1
    --max-connections=1000
    --innodb-buffer-pool-size=256M
    --skip-log-bin
    --innodb-flush-log-at-trx-commit=1
)

# The mariadb client with no option files (the system's /etc/mysql/my.cnf
# must not leak in) and root over TCP to the private server.
mariadb_client() {
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$MARIADB_PORT" -u root "$@"
}

mariadb_sql() {
    mariadb_client -e "$1"
}

mariadb_start() {
    local dir="$1"
    shift
    command -v mariadbd >/dev/null || {
        echo "mariadbd is not on PATH" >&2
        return 1
    }
    MARIADB_DIR="$dir"
    mkdir -p "$dir"
    bench_on_exit mariadb_stop
    bench_log "installing a private MariaDB data directory in $dir/data"
    if ! mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install.log" 2>&1; then
        tail -n 30 "$dir/install.log" >&2
        return 1
    fi
    local attempt
    for attempt in 1 2 3 4 5; do
        MARIADB_PORT="$(bench_free_port)"
        # --no-defaults must come first: /etc/mysql/my.cnf sets user=mysql.
        # shellcheck disable=SC2086
        mariadbd --no-defaults --user=root --datadir="$dir/data" \
            --port="$MARIADB_PORT" --socket="$dir/data/sock" \
            --pid-file="$dir/data/mariadbd.pid" --log-error="$dir/error.log" \
            "${MARIADB_DEFAULT_OPTIONS[@]}" ${MARIADB_BENCH_OPTIONS:-} "$@" \
            >>"$dir/mariadbd.out" 2>&1 &
        MARIADB_PID=$!
        if mariadb_wait_ready 120; then
            bench_log "MariaDB $(mariadb_client -N -e 'SELECT VERSION()') up on 127.0.0.1:$MARIADB_PORT (pid $MARIADB_PID)"
            return 0
        fi
        if grep -qiE 'Address already in use|Do you already have another' "$dir/error.log" 2>/dev/null; then
            bench_log "port $MARIADB_PORT was taken; trying another"
            mariadb_kill
            continue
        fi
        echo "MariaDB did not start; last lines of $dir/error.log:" >&2
        tail -n 30 "$dir/error.log" >&2
        mariadb_kill
        return 1
    done
    echo "MariaDB found no free port after 5 attempts" >&2
    return 1
}

# Waits up to $1 seconds until the server answers; fails at once if the
# process died.
mariadb_wait_ready() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$MARIADB_PID" 2>/dev/null; then
            return 1
        fi
        if mariadb-admin --no-defaults --protocol=TCP -h 127.0.0.1 -P "$MARIADB_PORT" \
            -u root --connect-timeout=2 ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

mariadb_kill() {
    [[ -n "$MARIADB_PID" ]] || return 0
    bench_terminate "$MARIADB_PID" 30
    MARIADB_PID=""
}

mariadb_stop() {
    if [[ -n "$MARIADB_PID" ]]; then
        bench_log "stopping MariaDB (pid $MARIADB_PID)"
        mariadb_kill
    fi
    if [[ -n "$MARIADB_DIR" && -d "$MARIADB_DIR/data" ]]; then
        rm -rf "$MARIADB_DIR/data"
    fi
}
