#!/usr/bin/env bash
# Write batching: single-row autocommit INSERTs directly against MariaDB and
# through Sluice (batching on), side by side in one run, and their ratios.
# Run it with `make bench-batch`.
#
# It starts its own MariaDB (durable commits: innodb-flush-log-at-trx-commit
# = 1, max-connections = 1000, data dir under target/bench/, free port) and
# a release Sluice in front of it, then measures, each phase directly and
# through Sluice back to back (which side goes first alternates):
#
#   sysbench oltp_insert, text protocol (--db-ps-mode=disable; oltp_insert
#     always sends COM_QUERY), `INSERT INTO sbtest1 (id, k, c, pad) VALUES
#     (0, ...)`: id 0 means "generate one" (no NO_AUTO_VALUE_ON_ZERO), so
#     every row gets a new AUTO_INCREMENT id; at BENCH_THREADS threads, on
#     BENCH_TABLES table(s) (one table = one batch key = most batching);
#   the mysql_async load generator (benches/loadgen), text and prepared, at
#     BENCH_LOADGEN_CLIENTS clients;
#   ingestion traffic (sysbench with benches/lib/ingest.lua, text protocol,
#     BENCH_TARGET_THREADS threads) into a table with a UNIQUE key:
#     dup1 / dup5 (INSERT, 1 % / 5 % of rows repeat a key the thread already
#     inserted, the client ignores the 1062), ignore1 (INSERT IGNORE, 1 %),
#     upsert1 (INSERT … ON DUPLICATE KEY UPDATE, 1 %), rows5 (INSERTs of 5
#     new rows); dup0 (no repeats, not run by default) is the same table
#     and client without a repeated key, the baseline the others' costs
#     compare with. Their rows are the rows the client sent.
#
# Per phase it records: rows (sysbench's events / the loadgen's count, and
# checks them against the table's row count delta), rows/s, p50/p99 latency
# (sysbench: from its histogram, see benches/lib/sbstats.py), CPU time of
# mariadbd and of Sluice (utime and stime from /proc/PID/stat), of the client
# (the shell's child times), of the whole machine (/proc/stat), the server's
# statement counters (Com_insert, Com_commit, ...) and Sluice's batch counters
# (SHOW SLUICE STATUS) before and after. benches/batch/report.py turns them
# into the tables and the target verdicts.
#
# Before the measurements, unless BENCH_CHECK_SECONDS=0, it checks results
# (not speed): the load generator with --verify through Sluice (every client
# is told the id of its own row; LAST_INSERT_ID() agrees), and sysbench's
# INSERT (id 0) from 16 concurrent sessions, half of them with
# NO_AUTO_VALUE_ON_ZERO (id 0 is then a real value: one INSERT stores it,
# every other one gets error 1062) and half without (every INSERT gets a new
# id), through Sluice exactly as directly. After the phases it checks that
# no sysbench row got id 0.
#
# This machine is shared: before every phase the script waits (up to
# BENCH_WAIT_MAX seconds) while another benchmark runs (a process matching
# `benches/relay.sh` or `sysbench` that is not its own), then, within a small
# budget, while the machine is busy with anything else (a build, a fuzzer),
# and records how busy it was just before.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS          length of each measured phase, in seconds [10]
#   BENCH_THREADS          sysbench thread counts ["1 16 64 256"]
#   BENCH_TARGET_ROUNDS    rounds of the thread counts the targets are judged
#                          at (1 and BENCH_TARGET_THREADS); others run once [2]
#   BENCH_TARGET_THREADS   thread count of the throughput and CPU targets [64]
#   BENCH_LOADGEN_CLIENTS  load generator clients [64]
#   BENCH_LOADGEN_PROTOCOLS  ["text prepared"]; empty skips the load generator
#   BENCH_INGEST           ingestion variants ["dup1 dup5 ignore1 upsert1
#                          rows5"]; empty skips them
#   BENCH_TABLES           sysbench tables (batch keys) [1]
#   BENCH_TABLE_SIZE       rows per table at prepare (also the range of k) [10000]
#   BENCH_WARMUP           seconds of untimed INSERTs per side first [3]
#   BENCH_CHECK_SECONDS    length of each correctness check; 0 skips them [2]
#   BENCH_WAIT_MAX         longest wait for another benchmark, per phase [600]
#   BENCH_QUIET_MAX        background load (% of all CPUs) above which a phase
#                          waits for the machine to calm down [30]
#   BENCH_QUIET_BUDGET     seconds of such waits per run, in all [120]
#   BENCH_STRICT           1: exit 3 when a target is missed [0]
#   BENCH_MIN_RATIO        rows/s through Sluice / direct at the target
#                          thread count [1.8]
#   BENCH_MAX_DB_CPU_RATIO mariadbd CPU per row, through Sluice / direct [0.25]
#   BENCH_MAX_SLUICE_US    Sluice CPU per batched INSERT, in us [10]
#   BENCH_MAX_P50_RATIO    p50 at 1 thread, through Sluice / direct [1.2]
#   BENCH_PERF             1: record a perf profile of Sluice during the
#                          first Sluice phase at the target thread count
#                          (perf's own CPU then weighs on that phase) [0]
#   BENCH_PERF_PHASE       the phase BENCH_PERF profiles, as kind/variant
#                          (e.g. ingest/dup5) [sysbench/text]
#   SLUICE_BIN             the proxy [target/release/sluice]
#   LOADGEN_BIN            the load generator [target/release/sluice-loadgen]
#   SLUICE_WRITEBATCH__*   batching settings, passed to Sluice (e.g.
#                          SLUICE_WRITEBATCH__MAX_DELAY_MS=5)
#   MARIADB_BENCH_OPTIONS  extra mariadbd options
# Results (reports, manifest, Sluice's log, results.md) stay in
# target/bench/batch.XXXXXX/ (target/bench/batch-latest points to the last
# one); the MariaDB data directory is removed at exit.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/mariadb.sh
source "$BENCH_DIR/lib/mariadb.sh"
# shellcheck source=lib/sluice.sh
source "$BENCH_DIR/lib/sluice.sh"

BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_THREADS="${BENCH_THREADS:-1 16 64 256}"
BENCH_TARGET_ROUNDS="${BENCH_TARGET_ROUNDS:-2}"
BENCH_TARGET_THREADS="${BENCH_TARGET_THREADS:-64}"
BENCH_LOADGEN_CLIENTS="${BENCH_LOADGEN_CLIENTS:-64}"
BENCH_LOADGEN_PROTOCOLS="${BENCH_LOADGEN_PROTOCOLS-text prepared}"
BENCH_INGEST="${BENCH_INGEST-dup1 dup5 ignore1 upsert1 rows5}"
BENCH_TABLES="${BENCH_TABLES:-1}"
BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_CHECK_SECONDS="${BENCH_CHECK_SECONDS:-2}"
BENCH_WAIT_MAX="${BENCH_WAIT_MAX:-600}"
BENCH_QUIET_MAX="${BENCH_QUIET_MAX:-30}"
BENCH_QUIET_BUDGET="${BENCH_QUIET_BUDGET:-120}"
BENCH_STRICT="${BENCH_STRICT:-0}"
BENCH_MIN_RATIO="${BENCH_MIN_RATIO:-1.8}"
BENCH_MAX_DB_CPU_RATIO="${BENCH_MAX_DB_CPU_RATIO:-0.25}"
BENCH_MAX_SLUICE_US="${BENCH_MAX_SLUICE_US:-10}"
BENCH_MAX_P50_RATIO="${BENCH_MAX_P50_RATIO:-1.2}"
BENCH_PERF="${BENCH_PERF:-0}"
BENCH_PERF_PHASE="${BENCH_PERF_PHASE:-sysbench/text}"
BENCH_SLUICE_RESTARTS="${BENCH_SLUICE_RESTARTS:-5}"
LOADGEN_BIN="${LOADGEN_BIN:-$BENCH_ROOT/target/release/sluice-loadgen}"

BATCH_HELPERS="$BENCH_DIR/batch"
SBSTATS="$BENCH_DIR/lib/sbstats.py"

bench_need_sysbench
bench_need_python3

# One run of this script at a time: two would measure each other.
mkdir -p "$BENCH_ROOT/target/bench"
exec 9>"$BENCH_ROOT/target/bench/.batch.lock"
if ! flock -n 9; then
    bench_log "another benches/batch.sh is running; waiting for it to finish"
    flock 9
fi

WORK="$(bench_workdir batch)"
mkdir -p "$WORK/runs"
ln -sfn "$(basename "$WORK")" "$BENCH_ROOT/target/bench/batch-latest"
MANIFEST="$WORK/manifest.tsv"
: >"$MANIFEST"
bench_log "batching benchmark: results in $WORK"

# Run copies of the binaries, so that a rebuild in the shared work tree
# cannot change them halfway (e.g. when Sluice has to be restarted).
[[ -x "$SLUICE_BIN" ]] || (cd "$BENCH_ROOT" && cargo build --release --bin sluice) >&2
[[ -x "$LOADGEN_BIN" ]] || (cd "$BENCH_ROOT" && cargo build --release -p sluice-loadgen) >&2
SLUICE_BUILT="$(date -u -r "$SLUICE_BIN" '+%Y-%m-%d %H:%M UTC')"
SLUICE_ORIGIN="$SLUICE_BIN"
cp -p "$SLUICE_BIN" "$WORK/sluice"
cp -p "$LOADGEN_BIN" "$WORK/loadgen"
bench_on_exit rm -f "$WORK/sluice" "$WORK/loadgen"
SLUICE_BIN="$WORK/sluice"
LOADGEN_BIN="$WORK/loadgen"

# ---------------------------------------------------------------------------
# Measuring helpers (the shared ones in benches/lib sum user and system time;
# these keep them apart).

# The helpers used inside the timed window run no subprocess (a subshell's
# CPU time would count as the client's): only builtins and /proc reads.

# utime and stime of process $1 (all its threads), in clock ticks, into the
# variables named $2 and $3 (0 if it is gone).
batch_proc_cpu() {
    local stat=""
    read -r stat <"/proc/$1/stat" 2>/dev/null || true
    if [[ -z "$stat" ]]; then
        printf -v "$2" 0
        printf -v "$3" 0
        return 0
    fi
    stat="${stat##*) }"
    local -a f
    read -r -a f <<<"$stat"
    printf -v "$2" '%s' "${f[11]}"
    printf -v "$3" '%s' "${f[12]}"
}

# User and system CPU time of the shell's reaped children, in ms, into the
# variables named $1 and $2. Must run in the main shell (not in $(...)).
batch_children_cpu() {
    local file="$WORK/.times"
    times >"$file"
    local -a lines parts
    mapfile -t lines <"$file"
    read -r -a parts <<<"${lines[1]}"
    local i out=()
    for i in 0 1; do
        local part="${parts[i]}"
        local min="${part%%m*}" sec="${part#*m}"
        sec="${sec%s}"
        local whole="${sec%.*}" frac="${sec#*.}000"
        out+=($((min * 60000 + 10#$whole * 1000 + 10#${frac:0:3})))
    done
    printf -v "$1" '%s' "${out[0]}"
    printf -v "$2" '%s' "${out[1]}"
}

# Machine CPU ticks from /proc/stat as key=value words, into the variable
# named $1.
batch_machine_cpu() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    printf -v "$1" 'm_user=%s m_nice=%s m_system=%s m_idle=%s m_iowait=%s m_irq=%s m_softirq=%s m_steal=%s' \
        "$user" "$nice" "$system" "$idle" "$iowait" "$irq" "$softirq" "$steal"
}

# Share (percent) of all CPUs busy over the next second, with nothing of
# ours running: the background load a phase starts into.
batch_background_busy() {
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$(bench_cpu_ticks)"
    sleep 1
    read -r b1 t1 <<<"$(bench_cpu_ticks)"
    if ((t1 > t0)); then
        echo $((100 * (b1 - b0) / (t1 - t0)))
    else
        echo 0
    fi
}

# Whether a process is this script or one of its descendants.
batch_is_ours() {
    local pid="$1" depth
    for ((depth = 0; depth < 32 && pid > 1; depth++)); do
        ((pid == $$)) && return 0
        pid="$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 1)"
        [[ -n "$pid" ]] || return 1
    done
    return 1
}

# Benchmarks of others running now (their pids), by the issue's rule.
batch_others() {
    local pid
    for pid in $(pgrep -f 'benches/relay[.]sh|sysbench' || true); do
        batch_is_ours "$pid" || echo "$pid"
    done
}

WAITED_TOTAL=0
# Waits (up to BENCH_WAIT_MAX s) until no other benchmark runs.
batch_wait_turn() {
    local label="$1" start=$SECONDS others
    others="$(batch_others)"
    [[ -z "$others" ]] && return 0
    bench_log "$label: another benchmark is running (pids $(echo $others)); waiting"
    while [[ -n "$others" ]] && ((SECONDS - start < BENCH_WAIT_MAX)); do
        sleep 5
        others="$(batch_others)"
    done
    WAITED_TOTAL=$((WAITED_TOTAL + SECONDS - start))
    if [[ -n "$others" ]]; then
        bench_log "$label: still running after ${BENCH_WAIT_MAX}s; measuring anyway (noted)"
        PHASE_CONTENDED=1
    else
        bench_log "$label: waited $((SECONDS - start))s"
    fi
}

QUIET_WAITED=0
# The background load before a phase (percent busy over one second) into
# PHASE_BG, after waiting while it is above BENCH_QUIET_MAX percent (e.g.
# someone's build), within a budget of BENCH_QUIET_BUDGET seconds per run.
batch_quiet_turn() {
    local label="$1" bg
    bg="$(batch_background_busy)"
    if ((bg > BENCH_QUIET_MAX && QUIET_WAITED < BENCH_QUIET_BUDGET)); then
        bench_log "$label: the machine is ${bg}% busy before the phase; waiting" \
            "(at most ${BENCH_QUIET_BUDGET}s per run in all, $QUIET_WAITED used)"
    fi
    while ((bg > BENCH_QUIET_MAX && QUIET_WAITED < BENCH_QUIET_BUDGET)); do
        sleep 4
        QUIET_WAITED=$((QUIET_WAITED + 5))
        bg="$(batch_background_busy)"
    done
    PHASE_BG="$bg"
}

batch_client_sql() {
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$1" -u root -N -B -e "$2"
}

# Server counters as key=value words (prefix s_).
SERVER_VARS="'Com_insert','Com_commit','Com_begin','Com_rollback','Com_select','Questions',\
'Handler_commit','Innodb_data_fsyncs','Innodb_os_log_written','Innodb_log_writes',\
'Bytes_received','Bytes_sent','Connections'"
batch_server_status() {
    mariadb_client -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN ($SERVER_VARS)" |
        awk -F'\t' '{printf "s_%s=%s ", $1, $2}'
}

# Sluice's batch counters as key=value words (prefix q_); only counters.
batch_sluice_status() {
    batch_client_sql "$SLUICE_PORT" 'SHOW SLUICE STATUS' |
        awk -F'\t' '$1 ~ /^(batches|rows_batched|batch_failures|isolated_rows|outcome_unknown|unbatched_.*)$/ {printf "q_%s=%s ", $1, $2}
                    $1 == "current_delay_ms" {printf "x_delay_ms=%s ", $2}'
}

# Rows in the phase's table(s).
batch_count_rows() {
    local kind="$1" sql
    case "$kind" in
    sysbench)
        sql="SELECT 0"
        local t
        for ((t = 1; t <= BENCH_TABLES; t++)); do
            sql+=" + (SELECT COUNT(*) FROM sbtest.sbtest$t)"
        done
        ;;
    loadgen) sql="SELECT COUNT(*) FROM loadgen.rows_in" ;;
    ingest) sql="SELECT COUNT(*) FROM ingest.events" ;;
    esac
    mariadb_client -N -B -e "$sql"
}

# Everything read slowly (SQL), outside the timed window: key=value words.
batch_snapshot_sql() {
    local kind="$1"
    printf 'rows_in_table=%s ' "$(batch_count_rows "$kind")"
    batch_server_status
    batch_sluice_status
}

# Everything read quickly around the client run, into SNAP_FAST (no
# subprocess: see above).
batch_snapshot_fast() {
    local su ss du ds cu cs machine
    batch_children_cpu cu cs
    batch_proc_cpu "$SLUICE_PID" su ss
    batch_proc_cpu "$MARIADB_PID" du ds
    batch_machine_cpu machine
    SNAP_FAST="sluice_utime=$su sluice_stime=$ss db_utime=$du db_stime=$ds client_user_ms=$cu client_sys_ms=$cs $machine wall_us=${EPOCHREALTIME/./}"
}

# ---------------------------------------------------------------------------
# A phase that fails ends the benchmark. (Sluice stopped from outside is
# restarted by sluice_recover, in lib/sluice.sh.)


target_port() {
    case "$1" in
    direct) echo "$MARIADB_PORT" ;;
    sluice) echo "$SLUICE_PORT" ;;
    esac
}

bench_sysbench_common

# The client command of a phase, into the array CLIENT_CMD.
batch_client_cmd() {
    local kind="$1" variant="$2" threads="$3" port="$4" seconds="$5"
    case "$kind" in
    sysbench)
        CLIENT_CMD=(sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$port"
            --threads="$threads" --time="$seconds" --db-ps-mode=disable
            --histogram=on --percentile=99 --report-interval=0 run)
        ;;
    ingest)
        local form=plain repeat=1 rows=1
        case "$variant" in
        dup0) repeat=0 ;;
        dup1) ;;
        dup5) repeat=5 ;;
        ignore1) form=ignore ;;
        upsert1) form=upsert ;;
        rows5) repeat=0 rows=5 ;;
        *) sluice_fail "unknown ingestion variant $variant" /dev/null ;;
        esac
        CLIENT_CMD=(sysbench "$BENCH_DIR/lib/ingest.lua" --db-driver=mysql
            --mysql-host=127.0.0.1 --mysql-user=root --mysql-password= --mysql-db=ingest
            --mysql-port="$port" --mysql-ignore-errors=1062 --threads="$threads"
            --time="$seconds" --ingest-form="$form" --repeat-pct="$repeat"
            --rows-per-insert="$rows" --histogram=on --percentile=99 --report-interval=0 run)
        ;;
    loadgen)
        CLIENT_CMD=("$LOADGEN_BIN" --host 127.0.0.1 --port "$port" --user root
            --password "" --database loadgen --clients "$threads"
            --seconds "$seconds" --protocol "$variant")
        ;;
    esac
}

PERF_DONE=0
# One measured phase, appended to the manifest. Repeated when Sluice was
# stopped from outside before or during it.
batch_phase() {
    local kind="$1" variant="$2" threads="$3" target="$4" round="$5"
    local label="$kind/$variant/${threads}/$target/r$round"
    while true; do
        if ! sluice_alive; then
            sluice_recover "before $label" "$MARIADB_PORT" "$WORK/sluice.log"
            continue
        fi
        batch_phase_attempt "$@"
        ((PHASE_COUNTED)) && return 0
        sluice_recover "$label" "$MARIADB_PORT" "$WORK/sluice.log"
    done
}

batch_phase_attempt() {
    local kind="$1" variant="$2" threads="$3" target="$4" round="$5"
    local label="$kind/$variant/${threads}/$target/r$round"
    PHASE_COUNTED=0
    PHASE_CONTENDED=0
    batch_wait_turn "$label"
    batch_quiet_turn "$label"
    local bg="$PHASE_BG"
    local port file
    port="$(target_port "$target")"
    file="$WORK/runs/$kind-$variant-$threads-$target-r$round.txt"
    batch_client_cmd "$kind" "$variant" "$threads" "$port" "$BENCH_SECONDS"
    local sql0 sql1 fast0 fast1
    sql0="$(batch_snapshot_sql "$kind")"
    local perf_pid=""
    if ((BENCH_PERF && !PERF_DONE)) && [[ "$target" == sluice && "$kind/$variant" == "$BENCH_PERF_PHASE" &&
        "$threads" == "$BENCH_TARGET_THREADS" ]]; then
        perf record -F 999 -g -p "$SLUICE_PID" -o "$WORK/perf-sluice.data" \
            >"$WORK/perf-record.log" 2>&1 &
        perf_pid=$!
        PERF_DONE=1
    fi
    batch_snapshot_fast
    fast0="$SNAP_FAST"
    local status=0
    timeout --kill-after=10 $((BENCH_SECONDS + 120)) "${CLIENT_CMD[@]}" >"$file" 2>&1 || status=$?
    batch_snapshot_fast
    fast1="$SNAP_FAST"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    sluice_alive || return 0
    ((status == 0)) || sluice_fail "$label: client exited with status $status" "$file"
    sql1="$(batch_snapshot_sql "$kind")"
    local summary
    case "$kind" in
    sysbench | ingest) summary="$(python3 "$SBSTATS" one "$file")" || sluice_fail "$label: incomplete sysbench report" "$file" ;;
    loadgen) summary="$(tail -n 1 "$file")" ;;
    esac
    {
        printf 'kind=%s\tvariant=%s\tthreads=%s\ttarget=%s\tround=%s\tfile=%s\tbg_busy_pct=%s\tcontended=%s\tclk_tck=%s\tncpu=%s' \
            "$kind" "$variant" "$threads" "$target" "$round" "$file" "$bg" "$PHASE_CONTENDED" \
            "$BENCH_CLK_TCK" "$(nproc)"
        local word
        for word in $sql0 $fast0; do printf '\tb.%s' "$word"; done
        for word in $sql1 $fast1; do printf '\ta.%s' "$word"; done
        printf '\n'
    } >>"$MANIFEST"
    bench_log "$(printf '%-8s %-8s %3s %-6s r%s (bg %s%%): %s' "$kind" "$variant" "$threads" "$target" "$round" "$bg" "$summary")"
    PHASE_COUNTED=1
}

# ---------------------------------------------------------------------------
# Correctness checks (not timed).

# The load generator with --verify through Sluice: every client checks the
# id it was told and LAST_INSERT_ID().
batch_check_loadgen() {
    local protocol="$1" out="$WORK/check-loadgen-$protocol.txt"
    local b0 b1
    b0="$(batch_sluice_status)"
    "$LOADGEN_BIN" --host 127.0.0.1 --port "$SLUICE_PORT" --user root --password "" \
        --database loadgen --clients 16 --seconds "$BENCH_CHECK_SECONDS" \
        --protocol "$protocol" --verify >"$out" 2>&1 ||
        sluice_fail "loadgen --verify ($protocol) through Sluice" "$out"
    b1="$(batch_sluice_status)"
    local batched
    batched="$(python3 "$BATCH_HELPERS/report.py" delta "$b0" "$b1" q_rows_batched)"
    CHECKS+=("loadgen --verify, $protocol, 16 clients through Sluice: every id and LAST_INSERT_ID() right ($(tail -n 1 "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])') rows, $batched of them batched)")
    bench_log "check: ${CHECKS[-1]}"
}

# NO_AUTO_VALUE_ON_ZERO: sysbench's INSERT (id 0) from 16 concurrent
# sessions on one table, 8 of them with NO_AUTO_VALUE_ON_ZERO in their
# sql_mode (there id 0 is a real value: one INSERT stores it and every other
# gets error 1062) and 8 without it (id 0 = generate: every INSERT succeeds
# with a new id). Directly and through Sluice the outcome must be the same.
# The mariadb client sends each statement as COM_QUERY, and --force goes on
# after an error.
BATCH_ZERO_STATEMENTS=100
batch_check_zero() {
    local target port n=$BATCH_ZERO_STATEMENTS
    mariadb_sql "CREATE DATABASE sbzero; CREATE TABLE sbzero.sbtest1 (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0,
        c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB"
    local i
    for mode in zero generate; do
        {
            if [[ "$mode" == zero ]]; then
                echo "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO');"
            fi
            for ((i = 1; i <= n; i++)); do
                echo "INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, $i, '$mode', 'sluice-check');"
            done
        } >"$WORK/check-zero-$mode.sql"
    done
    for target in direct sluice; do
        port="$(target_port "$target")"
        mariadb_sql "TRUNCATE TABLE sbzero.sbtest1"
        local q0 q1 pids=() c
        q0="$(batch_sluice_status)"
        for ((c = 0; c < 16; c++)); do
            local mode=generate
            ((c % 2)) && mode=zero
            mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u root --force \
                sbzero <"$WORK/check-zero-$mode.sql" >"$WORK/check-zero-$target-$c.out" 2>&1 &
            pids+=($!)
        done
        for c in "${pids[@]}"; do wait "$c" || true; done
        q1="$(batch_sluice_status)"
        local got want dup other
        got="$(mariadb_client -N -B -e "SELECT CONCAT_WS(' ',
            SUM(c = 'zero'), SUM(c = 'zero' AND id = 0), SUM(c = 'generate'),
            SUM(c = 'generate' AND id > 0), COUNT(DISTINCT id)) FROM sbzero.sbtest1")"
        want="1 1 $((8 * n)) $((8 * n)) $((8 * n + 1))"
        dup="$(cat "$WORK"/check-zero-"$target"-*.out | grep -c '^ERROR 1062' || true)"
        other="$(cat "$WORK"/check-zero-"$target"-*.out | grep '^ERROR' | grep -vc '^ERROR 1062' || true)"
        if [[ "$got" != "$want" || "$dup" != $((8 * n - 1)) || "$other" != 0 ]]; then
            sluice_fail "NO_AUTO_VALUE_ON_ZERO check against $target: rows (zero, zero with id 0, generate, generate with id > 0, distinct ids) = ($got), want ($want); $dup errors 1062 (want $((8 * n - 1))), $other other errors" \
                "$(ls "$WORK"/check-zero-"$target"-*.out | head -n 1)"
        fi
        local failed batched
        failed="$(python3 "$BATCH_HELPERS/report.py" delta "$q0" "$q1" q_batch_failures)"
        batched="$(python3 "$BATCH_HELPERS/report.py" delta "$q0" "$q1" q_rows_batched)"
        local note=""
        if [[ "$target" == sluice ]]; then
            note=" ($batched rows went out in batches; $failed batches failed and re-ran row by row)"
        fi
        CHECKS+=("id 0 from 16 sessions at once, $target: 8 with NO_AUTO_VALUE_ON_ZERO stored one row with id 0 and got $dup errors 1062; 8 without it got $((8 * n)) new ids$note")
        bench_log "check: ${CHECKS[-1]}"
    done
    mariadb_sql "DROP DATABASE sbzero"
}

# ---------------------------------------------------------------------------

MARIADB_PERF_OPTIONS=(--innodb-flush-log-at-trx-commit=1 --max-connections=1000)
mariadb_start "$WORK" "${MARIADB_PERF_OPTIONS[@]}"
export SLUICE_WRITEBATCH__ENABLED="${SLUICE_WRITEBATCH__ENABLED:-true}"
sluice_start "$MARIADB_PORT" "$WORK/sluice.log"

bench_log "preparing: $BENCH_TABLES sysbench table(s) of $BENCH_TABLE_SIZE rows, the loadgen table"
mariadb_sql "CREATE DATABASE sbtest"
sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$MARIADB_PORT" \
    --threads="$BENCH_TABLES" prepare >"$WORK/prepare.txt" 2>&1 ||
    sluice_fail "sysbench prepare" "$WORK/prepare.txt"
"$LOADGEN_BIN" --host 127.0.0.1 --port "$MARIADB_PORT" --user root --password "" \
    --database loadgen --clients 1 --seconds 0 --setup >"$WORK/loadgen-setup.txt" 2>&1 ||
    sluice_fail "loadgen --setup" "$WORK/loadgen-setup.txt"
mariadb_sql "CREATE DATABASE ingest; CREATE TABLE ingest.events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, ukey BIGINT NOT NULL UNIQUE,
    payload VARCHAR(100) NOT NULL) ENGINE=InnoDB"

CHECKS=()
if ((BENCH_CHECK_SECONDS > 0)); then
    batch_wait_turn "checks"
    for protocol in text prepared; do
        batch_check_loadgen "$protocol"
    done
    batch_check_zero
fi

if ((BENCH_WARMUP > 0)); then
    batch_wait_turn "warm-up"
    for target in direct sluice; do
        bench_log "warm-up: ${BENCH_WARMUP}s of INSERTs, $target"
        sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$(target_port "$target")" \
            --threads=16 --time="$BENCH_WARMUP" --db-ps-mode=disable run \
            >"$WORK/warmup-sysbench-$target.txt" 2>&1 ||
            sluice_fail "warm-up against $target" "$WORK/warmup-sysbench-$target.txt"
        if [[ -n "$BENCH_LOADGEN_PROTOCOLS" ]]; then
            "$LOADGEN_BIN" --host 127.0.0.1 --port "$(target_port "$target")" --user root \
                --password "" --database loadgen --clients 16 --seconds "$BENCH_WARMUP" \
                >"$WORK/warmup-loadgen-$target.txt" 2>&1 ||
                sluice_fail "loadgen warm-up against $target" "$WORK/warmup-loadgen-$target.txt"
        fi
    done
fi

# The phases: (kind variant threads rounds), in order.
PHASES=()
read -r -a thread_counts <<<"$BENCH_THREADS"
for threads in "${thread_counts[@]}"; do
    rounds=1
    if [[ "$threads" == 1 || "$threads" == "$BENCH_TARGET_THREADS" ]]; then
        rounds="$BENCH_TARGET_ROUNDS"
    fi
    PHASES+=("sysbench text $threads $rounds")
done
read -r -a protocols <<<"$BENCH_LOADGEN_PROTOCOLS"
for protocol in "${protocols[@]}"; do
    PHASES+=("loadgen $protocol $BENCH_LOADGEN_CLIENTS 1")
done
read -r -a ingest_variants <<<"$BENCH_INGEST"
for variant in "${ingest_variants[@]}"; do
    PHASES+=("ingest $variant $BENCH_TARGET_THREADS $BENCH_TARGET_ROUNDS")
done
total=0
for phase in "${PHASES[@]}"; do
    read -r _ _ _ rounds <<<"$phase"
    total=$((total + 2 * rounds))
done
bench_log "measuring: $total phases of ${BENCH_SECONDS}s (about $((total * (BENCH_SECONDS + 4) / 60 + 1)) min)"

started="$(date -u '+%Y-%m-%d %H:%M UTC')"
index=0
max_rounds="$BENCH_TARGET_ROUNDS"
((max_rounds >= 1)) || max_rounds=1
# Round-major, so that repeated phases are spread over the run; the side
# that goes first alternates from one pair to the next.
for ((round = 1; round <= max_rounds; round++)); do
    for phase in "${PHASES[@]}"; do
        read -r kind variant threads rounds <<<"$phase"
        ((round <= rounds)) || continue
        if ((index % 2 == 0)); then
            sides=(direct sluice)
        else
            sides=(sluice direct)
        fi
        for target in "${sides[@]}"; do
            batch_phase "$kind" "$variant" "$threads" "$target" "$round"
        done
        index=$((index + 1))
    done
done

if ! sluice_alive; then
    sluice_reap
    echo "$SLUICE_EXIT_MESSAGE (after the last phase)" >&2
fi

# Rows the server generated an id of 0 for: there must be none.
zero_ids="$(mariadb_client -N -B -e 'SELECT COUNT(*) FROM sbtest.sbtest1 WHERE id = 0')"
CHECKS+=("sysbench oltp_insert (id 0 = generate): $zero_ids row(s) with id 0 after all phases (want 0)")
if [[ "$zero_ids" != 0 ]]; then
    CHECKS[-1]="FAILED: ${CHECKS[-1]}"
fi

{
    echo "Sluice write-batching benchmark ($started)"
    echo "Command: make bench-batch (BENCH_SECONDS=$BENCH_SECONDS BENCH_THREADS=\"$BENCH_THREADS\"" \
        "BENCH_TARGET_ROUNDS=$BENCH_TARGET_ROUNDS BENCH_TABLES=$BENCH_TABLES" \
        "BENCH_LOADGEN_CLIENTS=$BENCH_LOADGEN_CLIENTS BENCH_LOADGEN_PROTOCOLS=\"$BENCH_LOADGEN_PROTOCOLS\")"
    echo "Batching settings: $(env | grep '^SLUICE_WRITEBATCH__' | sort | tr '\n' ' ')(others: config defaults)"
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), shared by the client, Sluice and MariaDB (and other work)"
    echo "Versions: MariaDB $(mariadb_client -N -e 'SELECT VERSION()') (innodb_flush_log_at_trx_commit=$(mariadb_client -N -e 'SELECT @@innodb_flush_log_at_trx_commit'), max_connections=$(mariadb_client -N -e 'SELECT @@max_connections')), $(sysbench --version)"
    echo "Sluice: $SLUICE_ORIGIN (built $SLUICE_BUILT; work tree at the end of the run:" \
        "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo unknown))"
    if ((WAITED_TOTAL > 0)); then
        echo "Waited ${WAITED_TOTAL}s in all for other benchmarks to finish."
    fi
    if ((QUIET_WAITED > 0)); then
        echo "Waited ${QUIET_WAITED}s in all for background load to calm down" \
            "(budget ${BENCH_QUIET_BUDGET}s; see 'bg before' below)."
    fi
    echo
    echo "Correctness checks:"
    for check in "${CHECKS[@]}"; do echo "  $check"; done
    echo
} | tee "$WORK/header.txt"

set +e
python3 "$BATCH_HELPERS/report.py" report "$MANIFEST" --markdown "$WORK/results.md" \
    --target-threads "$BENCH_TARGET_THREADS" --min-ratio "$BENCH_MIN_RATIO" \
    --max-db-cpu-ratio "$BENCH_MAX_DB_CPU_RATIO" --max-sluice-us "$BENCH_MAX_SLUICE_US" \
    --max-p50-ratio "$BENCH_MAX_P50_RATIO" --fail-on-miss "$BENCH_STRICT" |
    tee "$WORK/results.txt"
report_status="${PIPESTATUS[0]}"
set -e
if [[ -f "$WORK/results.md" ]]; then
    { sed 's/$/  /' "$WORK/header.txt"; cat "$WORK/results.md"; } >"$WORK/results.md.tmp"
    mv "$WORK/results.md.tmp" "$WORK/results.md"
fi

echo
if ((SLUICE_RESTARTS > 0)); then
    echo "Sluice was stopped from outside $SLUICE_RESTARTS time(s); it was restarted and these" \
        "phases repeated: ${SLUICE_STOPS[*]}"
fi
if [[ -s "$WORK/sluice.log" ]]; then
    echo "Sluice logged $(wc -l <"$WORK/sluice.log") line(s) at warn or above; first ones:"
    head -n 10 "$WORK/sluice.log"
else
    echo "Sluice logged nothing at warn or above."
fi
if [[ -f "$WORK/perf-sluice.data" ]]; then
    perf report -i "$WORK/perf-sluice.data" --no-children --sort dso,symbol -g none \
        --percent-limit 0.5 --stdio \
        >"$WORK/perf-sluice.txt" 2>/dev/null || true
    echo "perf profile of Sluice: $WORK/perf-sluice.txt"
fi
echo "Reports: $WORK (results.md, runs/, manifest.tsv, sluice.log)"
if [[ "${CHECKS[*]}" == *FAILED* ]]; then
    exit 1
fi
exit "$report_status"
