#!/usr/bin/env python3
"""Driver matrix scenario for the `mariadb` command line client.

Usage: scenario_cli.py HOST PORT PREFIX COMPRESS [MARIADB]
  PREFIX    prefix of the table names this run creates in database `test`
  COMPRESS  1 to run the client with --compress, 0 without
  MARIADB   the client binary (default: mariadb on PATH)

Runs one SQL script with --force (its duplicate-key error does not stop
it), then 32 clients at once that each send one INSERT, and prints one JSON
object with the normalized outcome (standard output and errors of the
client, the lines of `status` that do not change from run to run, the batch
check) on stdout. Exits 0 unless the harness itself fails. Standard library
only. Run by tests/e2e/tests/drivers.rs, directly against MariaDB and
through Sluice; the two outputs must be equal.
"""

import json
import subprocess
import sys
import threading

BATCH_CLIENTS = 32
TIMEOUT = 10

# `status` lines kept: the rest (connection id, TCP port, uptime, counters)
# differ from run to run.
STATUS_KEYS = {
    "Current database",
    "Current user",
    "SSL",
    "Server",
    "Server version",
    "Protocol version",
    "Connection",
    "Server characterset",
    "Db     characterset",
    "Client characterset",
    "Conn.  characterset",
    "Protocol",
}

if len(sys.argv) not in (5, 6):
    print(__doc__, file=sys.stderr)
    sys.exit(2)
HOST, PORT, PREFIX, COMPRESS = sys.argv[1:5]
MARIADB = sys.argv[5] if len(sys.argv) == 6 else "mariadb"
COMPRESS = COMPRESS in ("1", "true", "yes", "on")


def client_args(*extra):
    args = [MARIADB, "--no-defaults", "--protocol=TCP", "-h", HOST, "-P", PORT, "-u", "root"]
    if COMPRESS:
        args.append("--compress")
    return args + list(extra)


SCRIPT = """\
CREATE DATABASE IF NOT EXISTS test;
USE test;
SHOW SESSION STATUS LIKE 'Compression';
status
PREPARE s FROM 'SELECT ? + 1 AS answer';
SET @a = 41;
EXECUTE s USING @a;
DEALLOCATE PREPARE s;
CREATE TABLE {p}_prep (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL);
INSERT INTO {p}_prep VALUES (1, 'one'), (2, 'two'), (3, 'three');
SELECT ROW_COUNT();
PREPARE s FROM 'INSERT INTO {p}_prep (id, name) VALUES (?, ?)';
SET @id = 4, @name = 'four';
EXECUTE s USING @id, @name;
SELECT ROW_COUNT();
PREPARE s FROM 'SELECT id, name FROM {p}_prep WHERE id = ? OR name = ? ORDER BY id';
SET @id = 2;
EXECUTE s USING @id, @name;
DEALLOCATE PREPARE s;
CREATE TABLE {p}_dup (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(20) NOT NULL, UNIQUE KEY uk (k));
INSERT INTO {p}_dup (k) VALUES ('dup');
SELECT ROW_COUNT(), LAST_INSERT_ID();
INSERT INTO {p}_dup (k) VALUES ('dup');
SHOW WARNINGS;
SELECT COUNT(*) FROM {p}_dup;
CREATE TABLE {p}_batch (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL);
INSERT INTO {p}_batch (tag) VALUES ('warm-up');
SELECT ROW_COUNT(), LAST_INSERT_ID();
"""


def normalize_stdout(text):
    """Output lines with the `status` block reduced to its stable lines."""
    out = []
    in_status = False
    for line in text.splitlines():
        if line.startswith("--------------"):
            in_status = not in_status
            out.append(line)
            continue
        if in_status:
            key, sep, value = line.partition(":")
            if sep and key.strip() in STATUS_KEYS:
                out.append("%s: %s" % (key.strip(), value.strip()))
            continue
        out.append(line)
    return out


def run_script():
    p = subprocess.run(
        client_args("--batch", "--force"),
        input=SCRIPT.format(p=PREFIX),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    stdout = normalize_stdout(p.stdout)
    # The server's view of compression, and the client's (`status`).
    server = [line for line in stdout if line.startswith("Compression\t")]
    return {
        "server_compression_status": server[0].partition("\t")[2] if server else None,
        "client_compressed": "Protocol: Compressed" in stdout,
        "exit_code": p.returncode,
        "stdout": [line for line in stdout if not line.startswith("Compression\t")],
        "stderr": p.stderr.splitlines(),
    }


def batch():
    """32 clients connect; when all have answered a first query, each sends
    one INSERT at the same moment and reports its ROW_COUNT() and
    LAST_INSERT_ID()."""
    procs = []
    for _ in range(BATCH_CLIENTS):
        procs.append(
            subprocess.Popen(
                client_args("--batch", "--skip-column-names", "--unbuffered", "test"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [None] * BATCH_CLIENTS
    timer = threading.Timer(3 * TIMEOUT, lambda: [p.kill() for p in procs])
    timer.start()
    try:
        ready = []
        for p in procs:
            p.stdin.write("SELECT 'ready';\n")
            p.stdin.flush()
        for i, p in enumerate(procs):
            line = p.stdout.readline()
            ready.append(line.strip() == "ready")
        for i, p in enumerate(procs):
            if ready[i]:
                p.stdin.write(
                    "INSERT INTO %s_batch (tag) VALUES ('client-%d');\n"
                    "SELECT ROW_COUNT(), LAST_INSERT_ID();\n" % (PREFIX, i)
                )
                p.stdin.flush()
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=3 * TIMEOUT)
            lines = out.split()
            if p.returncode == 0 and ready[i] and len(lines) == 2:
                results[i] = {"tag": "client-%d" % i, "affected_rows": int(lines[0]), "insert_id": int(lines[1])}
            else:
                results[i] = {"error": {"exit_code": p.returncode, "stdout": out, "stderr": err.strip()}}
    finally:
        timer.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    check = subprocess.run(
        client_args("--batch", "--skip-column-names", "test"),
        input="SELECT id, tag FROM %s_batch;\n" % PREFIX,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check.returncode != 0:
        return {"select": {"exit_code": check.returncode, "stderr": check.stderr.strip()}}
    by_id = {}
    for line in check.stdout.splitlines():
        id_, _, tag = line.partition("\t")
        by_id[int(id_)] = tag
    ok = [r for r in results if "error" not in r]
    errors = sorted({json.dumps(r["error"], sort_keys=True) for r in results if "error" in r})
    ids = [r["insert_id"] for r in ok]
    return {
        "clients": BATCH_CLIENTS,
        "inserted": len(ok),
        "errors": [json.loads(e) for e in errors],
        "affected_rows_all_1": all(r["affected_rows"] == 1 for r in ok),
        "ids_distinct": len(set(ids)) == len(ids),
        "ids_ok": all(by_id.get(r["insert_id"]) == r["tag"] for r in ok),
        "rows": len(by_id),
    }


def main():
    version = subprocess.run([MARIADB, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    out = {
        "driver": version.stdout.strip(),
        "compress_requested": COMPRESS,
        "script": run_script(),
    }
    out["batch"] = batch()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        sys.exit(1)
