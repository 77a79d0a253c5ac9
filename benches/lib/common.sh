# Shared helpers for the benchmarks under benches/. Source this file (the
# other files in benches/lib source it themselves); it defines functions
# only, plus an EXIT trap that runs the registered clean-up steps.
#
#   bench_on_exit CMD...      run CMD at exit (last registered runs first)
#   bench_workdir NAME        make and print a fresh directory under target/bench
#   bench_free_port           print a TCP port on 127.0.0.1 that is free now
#   bench_need_sysbench       install sysbench (apt) when it is missing
#   bench_need_python3        install python3 (apt) when it is missing
#   bench_proc_ticks PID      utime+stime of a process, in clock ticks
#   bench_proc_sys_ticks PID  stime alone
#   bench_cpu_ticks           "busy total" ticks of the whole machine
#   bench_log MSG...          a progress line on stderr

if [[ -n "${BENCH_COMMON_LOADED:-}" ]]; then
    return 0
fi
BENCH_COMMON_LOADED=1

BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_LIB_DIR/../.." && pwd)"
BENCH_CLK_TCK="$(getconf CLK_TCK)"

BENCH_CLEANUPS=()

bench_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_on_exit() {
    BENCH_CLEANUPS+=("$*")
}

bench_run_cleanups() {
    local i
    for ((i = ${#BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${BENCH_CLEANUPS[i]}" || true
    done
    BENCH_CLEANUPS=()
}

trap 'bench_run_cleanups' EXIT
# A signal ends the script through `exit`, so the EXIT trap cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bench_workdir() {
    local base="$BENCH_ROOT/target/bench"
    mkdir -p "$base"
    mktemp -d "$base/$1.XXXXXX"
}

bench_need_python3() {
    command -v python3 >/dev/null 2>&1 && return 0
    bench_log "python3 not found: installing it with apt-get"
    (apt-get update && apt-get install -y python3) >&2
}

# bench_terminate PID SECONDS: SIGTERM, wait up to SECONDS for the process
# to end, then SIGKILL; reaps it (the caller must be its parent).
bench_terminate() {
    local pid="$1" seconds="$2" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_free_port() {
    bench_need_python3
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The sysbench options every phase shares, into the array SB_COMMON
# (database sbtest on 127.0.0.1 as root; BENCH_TABLES, BENCH_TABLE_SIZE).
bench_sysbench_common() {
    SB_COMMON=(
        --db-driver=mysql
        --mysql-host=127.0.0.1
        --mysql-user=root
        --mysql-password=
        --mysql-db=sbtest
        --tables="$BENCH_TABLES"
        --table-size="$BENCH_TABLE_SIZE"
    )
}

bench_need_sysbench() {
    command -v sysbench >/dev/null 2>&1 && return 0
    bench_log "sysbench not found: installing it with apt-get"
    (apt-get update && apt-get install -y sysbench) >&2
    command -v sysbench >/dev/null 2>&1
}

# utime and stime of PID in clock ticks, "0 0" once it is gone (fields 14
# and 15 of /proc/PID/stat; the command name in field 2 may contain spaces,
# so split after its ')').
bench_proc_times() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
        echo "0 0"
        return 0
    }
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo "${12} ${13}"
}

# utime + stime of PID in clock ticks.
bench_proc_ticks() {
    local user system
    read -r user system <<<"$(bench_proc_times "$1")"
    echo $((user + system))
}

# stime of PID alone (its kernel share), in clock ticks.
bench_proc_sys_ticks() {
    local user system
    read -r user system <<<"$(bench_proc_times "$1")"
    echo "$system"
}

# "busy total" ticks summed over all CPUs, from the first line of /proc/stat:
# busy = user nice system irq softirq steal, total = busy + idle + iowait.
bench_cpu_ticks() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    local busy=$((user + nice + system + irq + softirq + steal))
    echo "$busy $((busy + idle + iowait))"
}

# CPU time (user+system, in milliseconds) of the shell's waited-for
# children so far, from the `times` builtin. It must not run in a
# subshell, so the result goes to the variable named by $1.
bench_children_cpu_ms() {
    local file="${BENCH_TIMES_FILE:-/tmp/bench-times.$$}"
    times >"$file"
    local line
    line="$(sed -n 2p "$file")"
    rm -f "$file"
    local -a parts
    read -r -a parts <<<"$line"
    local ms=0 part
    for part in "${parts[@]}"; do
        # Format: 1m2.345s
        local min="${part%%m*}" sec="${part#*m}"
        sec="${sec%s}"
        local whole="${sec%.*}" frac="${sec#*.}"
        frac="${frac}000"
        frac="${frac:0:3}"
        ms=$((ms + min * 60000 + 10#$whole * 1000 + 10#$frac))
    done
    printf -v "$1" '%s' "$ms"
}
