#!/usr/bin/env bash
# Relay overhead: the same sysbench workloads directly against MariaDB and
# through Sluice, in one run, and their ratio. Run it with `make bench-relay`.
#
# It starts its own MariaDB (data dir under target/bench/, free port) and a
# release Sluice in front of it (free port, log level warn), prepares the
# sysbench tables once, then for every combination of workload, mode and
# thread count runs sysbench against MariaDB and against Sluice back to
# back. The order alternates between combinations and rounds (direct first,
# then Sluice first, ...), so a change in the background load of this shared
# machine hits both sides alike. Runs of the same kind are pooled over the
# rounds: throughput is total events / total time, p50 and p99 come from
# the summed sysbench latency histograms (see benches/lib/sbstats.py).
#
# Workloads: point_select = sysbench oltp_point_select (one SELECT by
# primary key per event); insert = one single-row autocommit INSERT per
# event: sysbench oltp_insert in text mode, benches/lib/oltp_insert_ps.lua
# (the same INSERT through a prepared statement) in ps mode, because
# oltp_insert never uses prepared statements. Modes: text =
# --db-ps-mode=disable (COM_QUERY), ps = --db-ps-mode=auto (binary protocol).
#
# Sluice's CPU time per query comes from /proc/PID/stat (utime+stime, and
# stime alone for its kernel share) read before and after each run; the same is read for mariadbd, sysbench's from
# the shell's child times, and the machine's from /proc/stat.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS     length of each measured run, in seconds [10]
#   BENCH_BACKEND_SOCKET  1: Sluice reaches MariaDB through its Unix socket
#                     (clients still reach both over TCP) [0]
#   BENCH_ROUNDS      rounds; each round runs every combination once per side [2]
#   BENCH_THREADS     sysbench thread counts ["1 64"]
#   BENCH_WORKLOADS   ["point_select insert"]
#   BENCH_MODES       ["text ps"]
#   BENCH_TABLES      sysbench tables [4]
#   BENCH_TABLE_SIZE  rows per table at prepare [10000]
#   BENCH_WARMUP      seconds of untimed point selects per side first [5]
#   BENCH_MIN_RATIO   throughput target at 64+ threads, sluice/direct [0.85]
#   BENCH_MAX_ADDED_P50_US  added p50 latency target at 1 thread [60]
#   BENCH_LATENCY_WORKLOADS workloads the latency target is judged on
#                     [point_select: a 1-thread durable INSERT mostly waits
#                     for its fsync, which varies by milliseconds here]
#   BENCH_STRICT      1: exit 3 when a target is missed [0]
#   BENCH_SLUICE_RESTARTS  how often Sluice may be restarted after a clean
#                     stop from outside (another session's SIGTERM) [5]
#   SLUICE_BIN        the proxy binary [target/release/sluice]
#   SLUICE_WRITEBATCH__ENABLED  [false: the plain relay is measured]
#   MARIADB_BENCH_OPTIONS  extra mariadbd options
# Results (sysbench reports, Sluice's log, results.md) stay in
# target/bench/relay.XXXXXX/ (target/bench/relay-latest points to the last
# one); the MariaDB data directory is removed at exit.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/mariadb.sh
source "$BENCH_DIR/lib/mariadb.sh"
# shellcheck source=lib/sluice.sh
source "$BENCH_DIR/lib/sluice.sh"

BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_ROUNDS="${BENCH_ROUNDS:-2}"
BENCH_THREADS="${BENCH_THREADS:-1 64}"
BENCH_WORKLOADS="${BENCH_WORKLOADS:-point_select insert}"
BENCH_MODES="${BENCH_MODES:-text ps}"
BENCH_TABLES="${BENCH_TABLES:-4}"
BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-10000}"
BENCH_WARMUP="${BENCH_WARMUP:-5}"
BENCH_MIN_RATIO="${BENCH_MIN_RATIO:-0.85}"
BENCH_MAX_ADDED_P50_US="${BENCH_MAX_ADDED_P50_US:-60}"
BENCH_STRICT="${BENCH_STRICT:-0}"
BENCH_LATENCY_WORKLOADS="${BENCH_LATENCY_WORKLOADS:-point_select}"
BENCH_SLUICE_RESTARTS="${BENCH_SLUICE_RESTARTS:-5}"

SBSTATS="$BENCH_DIR/lib/sbstats.py"

bench_need_sysbench
bench_need_python3

WORK="$(bench_workdir relay)"
mkdir -p "$WORK/runs"
ln -sfn "$(basename "$WORK")" "$BENCH_ROOT/target/bench/relay-latest"
MANIFEST="$WORK/manifest.tsv"
: >"$MANIFEST"
NCPU="$(nproc)"

bench_log "relay benchmark: results in $WORK"
# Run a copy, so that a rebuild of target/release/sluice during the run
# (the work tree is shared) cannot change the binary under test halfway,
# e.g. when Sluice has to be restarted.
[[ -x "$SLUICE_BIN" ]] || (cd "$BENCH_ROOT" && cargo build --release --bin sluice) >&2
SLUICE_BUILT="$(date -u -r "$SLUICE_BIN" '+%Y-%m-%d %H:%M UTC')"
SLUICE_ORIGIN="$SLUICE_BIN"
cp -p "$SLUICE_BIN" "$WORK/sluice"
bench_on_exit rm -f "$WORK/sluice"
SLUICE_BIN="$WORK/sluice"
mariadb_start "$WORK"
# This benchmark measures the plain relay: write batching stays off (the
# batching benchmark measures it).
export SLUICE_WRITEBATCH__ENABLED="${SLUICE_WRITEBATCH__ENABLED:-false}"
sluice_start "$MARIADB_PORT" "$WORK/sluice.log"

bench_sysbench_common

# The sysbench script and --db-ps-mode for a workload and mode.
sb_script() {
    case "$1/$2" in
    point_select/*) echo oltp_point_select ;;
    insert/text) echo oltp_insert ;;
    insert/ps) echo "$BENCH_DIR/lib/oltp_insert_ps.lua" ;;
    *)
        echo "unknown workload/mode: $1/$2" >&2
        return 1
        ;;
    esac
}

sb_ps_mode() {
    case "$1" in
    text) echo disable ;;
    ps) echo auto ;;
    *)
        echo "unknown mode: $1 (text or ps)" >&2
        return 1
        ;;
    esac
}

target_port() {
    case "$1" in
    direct) echo "$MARIADB_PORT" ;;
    sluice) echo "$SLUICE_PORT" ;;
    esac
}


# run_one WORKLOAD MODE THREADS TARGET ROUND: one measured sysbench run,
# appended to the manifest; repeated when Sluice was stopped from outside
# before or during it (Sluice's CPU figures need it running throughout).
run_one() {
    local label="$1/$2/$3t/$4/r$5"
    while true; do
        if ! sluice_alive; then
            sluice_recover "before $label" "$MARIADB_PORT" "$WORK/sluice.log"
            continue
        fi
        # Not in an `if`: that would switch off `set -e` inside it.
        run_attempt "$@"
        if ((RUN_COUNTED)); then
            return 0
        fi
        sluice_recover "$label" "$MARIADB_PORT" "$WORK/sluice.log"
    done
}

# One attempt of run_one. Sets RUN_COUNTED to 0 if Sluice was not running
# at the end (the run does not count); ends the benchmark on any other
# failure.
run_attempt() {
    local workload="$1" mode="$2" threads="$3" target="$4" round="$5"
    RUN_COUNTED=0
    local script ps_mode port
    script="$(sb_script "$workload" "$mode")"
    ps_mode="$(sb_ps_mode "$mode")"
    port="$(target_port "$target")"
    local file="$WORK/runs/$workload-$mode-${threads}t-$target-r$round.txt"
    local s0 s1 k0 k1 d0 d1 busy0 total0 busy1 total1 c0 c1
    s0="$(bench_proc_ticks "$SLUICE_PID")"
    k0="$(bench_proc_sys_ticks "$SLUICE_PID")"
    d0="$(bench_proc_ticks "$MARIADB_PID")"
    read -r busy0 total0 <<<"$(bench_cpu_ticks)"
    bench_children_cpu_ms c0
    local status=0
    timeout --kill-after=10 $((BENCH_SECONDS + 120)) \
        sysbench "$script" "${SB_COMMON[@]}" --mysql-port="$port" \
        --threads="$threads" --time="$BENCH_SECONDS" --db-ps-mode="$ps_mode" \
        --histogram=on --percentile=99 --report-interval=0 run >"$file" 2>&1 || status=$?
    bench_children_cpu_ms c1
    read -r busy1 total1 <<<"$(bench_cpu_ticks)"
    s1="$(bench_proc_ticks "$SLUICE_PID")"
    k1="$(bench_proc_sys_ticks "$SLUICE_PID")"
    d1="$(bench_proc_ticks "$MARIADB_PID")"
    sluice_alive || return 0
    ((status == 0)) || sluice_fail "sysbench exited with status $status" "$file"
    local summary
    summary="$(python3 "$SBSTATS" one "$file")" || sluice_fail "incomplete sysbench report" "$file"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$workload" "$mode" "$threads" "$target" "$round" "$file" \
        $((s1 - s0)) $((d1 - d0)) $((c1 - c0)) $((busy1 - busy0)) $((total1 - total0)) \
        "$BENCH_CLK_TCK" "$NCPU" $((k1 - k0)) >>"$MANIFEST"
    bench_log "$(printf '%-12s %-4s %3st %-6s r%s: %s' "$workload" "$mode" "$threads" "$target" "$round" "$summary")"
    RUN_COUNTED=1
}

bench_log "preparing $BENCH_TABLES tables of $BENCH_TABLE_SIZE rows"
mariadb_sql "CREATE DATABASE sbtest"
sysbench oltp_insert "${SB_COMMON[@]}" --mysql-port="$MARIADB_PORT" \
    --threads="$BENCH_TABLES" prepare >"$WORK/prepare.txt" 2>&1 || {
    tail -n 20 "$WORK/prepare.txt" >&2
    exit 1
}

if ((BENCH_WARMUP > 0)); then
    for target in direct sluice; do
        bench_log "warm-up: ${BENCH_WARMUP}s of point selects, $target"
        until sysbench oltp_point_select "${SB_COMMON[@]}" --mysql-port="$(target_port "$target")" \
            --threads=16 --time="$BENCH_WARMUP" run >"$WORK/warmup-$target.txt" 2>&1; do
            if [[ "$target" == sluice ]] && ! sluice_alive; then
                sluice_recover "warm-up" "$MARIADB_PORT" "$WORK/sluice.log"
                continue
            fi
            sluice_fail "warm-up against $target failed" "$WORK/warmup-$target.txt"
        done
    done
fi

read -r -a workloads <<<"$BENCH_WORKLOADS"
read -r -a modes <<<"$BENCH_MODES"
read -r -a thread_counts <<<"$BENCH_THREADS"
combos=$((${#workloads[@]} * ${#modes[@]} * ${#thread_counts[@]}))
bench_log "measuring: $combos combinations x 2 sides x $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s" \
    "(about $((combos * 2 * BENCH_ROUNDS * (BENCH_SECONDS + 2) / 60 + 1)) min)"

started="$(date -u '+%Y-%m-%d %H:%M UTC')"
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    index=0
    for workload in "${workloads[@]}"; do
        for mode in "${modes[@]}"; do
            for threads in "${thread_counts[@]}"; do
                if (((round + index) % 2 == 1)); then
                    sides=(direct sluice)
                else
                    sides=(sluice direct)
                fi
                for target in "${sides[@]}"; do
                    run_one "$workload" "$mode" "$threads" "$target" "$round"
                done
                index=$((index + 1))
            done
        done
    done
done

if ! sluice_alive; then
    sluice_reap
    echo "$SLUICE_EXIT_MESSAGE (after the last run)" >&2
fi

{
    echo "Sluice relay benchmark ($started)"
    echo "Command: make bench-relay (BENCH_SECONDS=$BENCH_SECONDS BENCH_ROUNDS=$BENCH_ROUNDS" \
        "BENCH_THREADS=\"$BENCH_THREADS\" BENCH_TABLES=$BENCH_TABLES BENCH_TABLE_SIZE=$BENCH_TABLE_SIZE" \
        "BENCH_BACKEND_SOCKET=${BENCH_BACKEND_SOCKET:-0})"
    echo "Machine: $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), shared by sysbench, Sluice and MariaDB"
    echo "Versions: MariaDB $(mariadb_client -N -e 'SELECT VERSION()'), $(sysbench --version)"
    echo "Sluice: $SLUICE_ORIGIN (built $SLUICE_BUILT; work tree at the end of the run:" \
        "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo unknown))"
    echo
} | tee "$WORK/header.txt"

set +e
python3 "$SBSTATS" relay "$MANIFEST" --markdown "$WORK/results.md" \
    --min-ratio "$BENCH_MIN_RATIO" --max-added-p50-us "$BENCH_MAX_ADDED_P50_US" \
    --fail-on-miss "$BENCH_STRICT" --latency-workloads "$BENCH_LATENCY_WORKLOADS" |
    tee "$WORK/results.txt"
report_status="${PIPESTATUS[0]}"
set -e

echo
if ((SLUICE_RESTARTS > 0)); then
    echo "Sluice was stopped from outside (clean exit after SIGTERM/SIGINT) $SLUICE_RESTARTS time(s);" \
        "it was restarted and these runs repeated: ${SLUICE_STOPS[*]}"
fi
log_lines="$(wc -l <"$WORK/sluice.log")"
if ((log_lines > 0)); then
    echo "Sluice logged $log_lines line(s) at warn or above during the benchmark; first ones:"
    head -n 10 "$WORK/sluice.log"
else
    echo "Sluice logged nothing at warn or above."
fi
echo "Reports: $WORK (results.md, runs/, sluice.log)"
exit "$report_status"
