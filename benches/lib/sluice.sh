# Sluice (release build) in front of a backend, on a free port. Source this
# file, then:
#
#   sluice_start BACKEND_PORT LOGFILE
#       starts target/release/sluice (or $SLUICE_BIN) with
#       --listen 127.0.0.1:<free port> --backend 127.0.0.1:BACKEND_PORT,
#       waits until a login through it works, sets SLUICE_PORT and
#       (with BENCH_BACKEND_SOCKET=1, the backend is MariaDB's Unix socket,
#       $MARIADB_DIR/data/sock, instead of its TCP port)
#       SLUICE_PID and registers sluice_stop for exit. Extra configuration
#       goes in the environment (SLUICE_<SECTION>__<KEY>); the log level
#       defaults to warn and the metrics endpoint to off.
#   sluice_alive               whether the process still runs
#   sluice_reap                after it died: collect its exit status in
#                              SLUICE_EXIT_STATUS, and SLUICE_EXIT_MESSAGE
#                              says how it ended
#   sluice_stop                SIGTERM, then SIGKILL after 10 s
#   sluice_recover LABEL BACKEND_PORT LOGFILE
#                              after Sluice was found not running: a crash
#                              ends the benchmark; a clean stop (something
#                              outside sent SIGTERM/SIGINT) restarts it, up
#                              to BENCH_SLUICE_RESTARTS times, counting them
#                              in SLUICE_RESTARTS and the labels in
#                              SLUICE_STOPS; the caller repeats the run

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SLUICE_BIN="${SLUICE_BIN:-$BENCH_ROOT/target/release/sluice}"
SLUICE_PORT=""
SLUICE_PID=""
SLUICE_RESTARTS=0
SLUICE_STOPS=()
BENCH_SLUICE_RESTARTS="${BENCH_SLUICE_RESTARTS:-5}"

sluice_start() {
    local backend_port="$1" log="$2"
    local backend="127.0.0.1:$backend_port"
    if [[ "${BENCH_BACKEND_SOCKET:-0}" == 1 ]]; then
        backend="$MARIADB_DIR/data/sock"
    fi
    if [[ ! -x "$SLUICE_BIN" ]]; then
        bench_log "building $SLUICE_BIN"
        (cd "$BENCH_ROOT" && cargo build --release --bin sluice) >&2
    fi
    bench_on_exit sluice_stop
    local attempt
    for attempt in 1 2 3 4 5; do
        SLUICE_PORT="$(bench_free_port)"
        SLUICE_LOG__LEVEL="${SLUICE_LOG__LEVEL:-warn}" \
            SLUICE_METRICS__LISTEN="${SLUICE_METRICS__LISTEN-}" \
            "$SLUICE_BIN" --listen "127.0.0.1:$SLUICE_PORT" \
            --backend "$backend" >>"$log" 2>&1 &
        SLUICE_PID=$!
        local deadline=$((SECONDS + 30))
        while ((SECONDS < deadline)) && sluice_alive; do
            if mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$SLUICE_PORT" \
                -u root --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; then
                bench_log "Sluice up on 127.0.0.1:$SLUICE_PORT -> $backend (pid $SLUICE_PID)"
                return 0
            fi
            sleep 0.1
        done
        if grep -q 'cannot listen' "$log" 2>/dev/null; then
            bench_log "port $SLUICE_PORT was taken; trying another"
            sluice_stop
            continue
        fi
        echo "Sluice did not start; last lines of $log:" >&2
        tail -n 30 "$log" >&2
        sluice_stop
        return 1
    done
    echo "Sluice found no free port after 5 attempts" >&2
    return 1
}

sluice_alive() {
    [[ -n "$SLUICE_PID" ]] && kill -0 "$SLUICE_PID" 2>/dev/null
}

sluice_stop() {
    [[ -n "$SLUICE_PID" ]] || return 0
    bench_terminate "$SLUICE_PID" 10
    SLUICE_PID=""
}

# Sets SLUICE_EXIT_STATUS and SLUICE_EXIT_MESSAGE. Call it in the shell
# that started Sluice (not in a $(...) subshell): only that one can wait.
sluice_reap() {
    SLUICE_EXIT_STATUS=""
    SLUICE_EXIT_MESSAGE="Sluice is not running"
    [[ -n "$SLUICE_PID" ]] || return 0
    local status=0
    wait "$SLUICE_PID" 2>/dev/null || status=$?
    SLUICE_PID=""
    SLUICE_EXIT_STATUS="$status"
    case "$status" in
    0) SLUICE_EXIT_MESSAGE="Sluice exited with status 0, a clean stop, which it makes only on SIGTERM or SIGINT: something outside this script stopped it" ;;
    101) SLUICE_EXIT_MESSAGE="Sluice panicked (exit status 101)" ;;
    127) SLUICE_EXIT_MESSAGE="Sluice's exit status could not be collected" ;;
    *)
        if ((status > 128)); then
            SLUICE_EXIT_MESSAGE="Sluice was killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
        else
            SLUICE_EXIT_MESSAGE="Sluice exited with status $status"
        fi
        ;;
    esac
}

# sluice_fail WHAT OUTPUT: a phase failed; show its output's last lines,
# and Sluice's log if Sluice is gone, then end the benchmark. Uses $WORK.
sluice_fail() {
    echo "failed: $1; last lines of $2:" >&2
    tail -n 20 "$2" >&2 || true
    if [[ -n "$SLUICE_PID" ]] && ! sluice_alive; then
        sluice_reap
        echo "$SLUICE_EXIT_MESSAGE; last lines of $WORK/sluice.log:" >&2
        tail -n 30 "$WORK/sluice.log" >&2 || true
    fi
    exit 1
}

sluice_recover() {
    local label="$1" backend_port="$2" log="$3"
    sluice_reap
    bench_log "$label: $SLUICE_EXIT_MESSAGE"
    if [[ "$SLUICE_EXIT_STATUS" != 0 ]]; then
        echo "Sluice stopped unexpectedly during $label; last lines of $log:" >&2
        tail -n 30 "$log" >&2 || true
        exit 1
    fi
    if ((SLUICE_RESTARTS >= BENCH_SLUICE_RESTARTS)); then
        echo "Sluice was stopped from outside $SLUICE_RESTARTS times; giving up" >&2
        exit 1
    fi
    SLUICE_RESTARTS=$((SLUICE_RESTARTS + 1))
    SLUICE_STOPS+=("$label")
    sluice_start "$backend_port" "$log"
    bench_log "$label: Sluice restarted; repeating the run"
}
