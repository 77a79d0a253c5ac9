#!/usr/bin/env bash
# Sluice's user-space instructions per batched row, counted by valgrind's
# callgrind: a figure that does not move with the machine's speed the way
# CPU seconds do on a shared VM, for comparing builds (A/B) on the per-row
# path. Not the CPU-time target itself: that is measured by batch.sh.
#
# A private MariaDB, Sluice under callgrind in front of it, and sysbench
# oltp_insert through Sluice for a fixed number of rows. Sluice runs
# 20-50 times slower under valgrind, so batches are larger than in
# batch.sh; the count per row still includes everything a row costs in
# user space (the classifier, admission, the queue, the leader's share,
# the answer) and no kernel work.
#
#   BENCH_ROWS      rows inserted through Sluice [20000]
#   BENCH_THREADS   sysbench threads [64]
#   SLUICE_BIN      the proxy [target/release/sluice]
#   BENCH_ANNOTATE  1: also print callgrind's top functions (inclusive)
#
# Prints one line, "instructions per row: N", and leaves the callgrind
# output in target/bench/instructions.*/ (callgrind_annotate reads it).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/mariadb.sh
source "$BENCH_DIR/lib/mariadb.sh"

BENCH_ROWS="${BENCH_ROWS:-20000}"
BENCH_THREADS="${BENCH_THREADS:-64}"
BENCH_ANNOTATE="${BENCH_ANNOTATE:-0}"
SLUICE_BIN="${SLUICE_BIN:-$BENCH_ROOT/target/release/sluice}"

bench_need_sysbench
if ! command -v valgrind >/dev/null 2>&1; then
    bench_log "valgrind not found: installing it with apt-get"
    (apt-get update && apt-get install -y valgrind) >&2
fi
[[ -x "$SLUICE_BIN" ]] || (cd "$BENCH_ROOT" && cargo build --release --bin sluice) >&2

WORK="$(bench_workdir instructions)"
mariadb_start "$WORK"
mariadb_sql "CREATE DATABASE sbtest"
BENCH_TABLES=1
BENCH_TABLE_SIZE=1000
bench_sysbench_common
sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$MARIADB_PORT" prepare >"$WORK/prepare.txt" 2>&1

SLUICE_PORT="$(bench_free_port)"
SLUICE_LOG__LEVEL=warn SLUICE_METRICS__LISTEN= \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$SLUICE_BIN" --listen "127.0.0.1:$SLUICE_PORT" --backend "127.0.0.1:$MARIADB_PORT" \
    >"$WORK/sluice.log" 2>&1 &
SLUICE_PID=$!
bench_on_exit "kill -KILL $SLUICE_PID 2>/dev/null || true"
for _ in $(seq 1 300); do
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$SLUICE_PORT" -u root \
        -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
done
bench_log "sysbench: $BENCH_ROWS rows, $BENCH_THREADS threads, through Sluice under callgrind"
before="$(mariadb_client -N -e 'SELECT COUNT(*) FROM sbtest.sbtest1')"
sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$SLUICE_PORT" --db-ps-mode=disable \
    --threads="$BENCH_THREADS" --events="$BENCH_ROWS" --time=0 run >"$WORK/sysbench.txt" 2>&1
after="$(mariadb_client -N -e 'SELECT COUNT(*) FROM sbtest.sbtest1')"
# SIGINT: Sluice drains and exits, and callgrind writes its counts.
kill -INT "$SLUICE_PID"
wait "$SLUICE_PID" || true
rows=$((after - before))
# Valgrind's own summary at exit, in Sluice's log.
total="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$WORK/sluice.log" | tail -n 1)"
if ((rows <= 0)) || [[ -z "$total" ]]; then
    echo "no rows or no count: see $WORK" >&2
    exit 1
fi
if ((BENCH_ANNOTATE)); then
    callgrind_annotate --inclusive=yes "$WORK/callgrind.out" >"$WORK/annotate.txt" 2>&1 || true
    sed -n 1,60p "$WORK/annotate.txt"
fi
echo "rows: $rows; instructions in Sluice: $total (startup and shutdown included)"
echo "instructions per row: $((total / rows))"
echo "output: $WORK/callgrind.out"
