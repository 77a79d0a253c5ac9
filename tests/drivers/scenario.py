#!/usr/bin/env python3
"""Driver matrix scenario for Python drivers (PyMySQL, mysql-connector-python).

Usage: scenario.py HOST PORT PREFIX COMPRESS DRIVER
  PREFIX    prefix of the table names this run creates in database `test`
  COMPRESS  1 to request the compressed protocol, 0 not to
  DRIVER    pymysql | connector

Prints one JSON object with the normalized outcome of every step (errors
are outcomes too) and exits 0; exits non-zero only when the harness itself
fails. Run by tests/e2e/tests/drivers.rs, directly against MariaDB and
through Sluice; the two outputs must be equal.
"""

import json
import sys
import threading
import traceback
from importlib import metadata

BATCH_CLIENTS = 32
TIMEOUT = 10


def usage():
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if len(sys.argv) != 6:
    usage()
HOST, PORT, PREFIX, COMPRESS, DRIVER = sys.argv[1:]
PORT = int(PORT)
COMPRESS = COMPRESS in ("1", "true", "yes", "on")


class Driver:
    """The few operations the scenario needs, over one driver module."""

    def __init__(self, name):
        self.name = name
        if name == "pymysql":
            import pymysql

            self.mod = pymysql
            # pymysql.__version__ imitates mysqlclient's: ask the metadata.
            self.version = metadata.version("PyMySQL")
        elif name == "connector":
            import mysql.connector

            self.mod = mysql.connector
            self.version = metadata.version("mysql-connector-python")
        else:
            usage()

    def label(self):
        return {"pymysql": "PyMySQL", "connector": "mysql-connector-python"}[self.name] + " " + self.version

    def connect(self, database=None):
        if self.name == "pymysql":
            if COMPRESS:
                raise HarnessError("PyMySQL does not support the compressed protocol")
            return self.mod.connect(
                host=HOST,
                port=PORT,
                user="root",
                password="",
                database=database,
                autocommit=True,
                connect_timeout=TIMEOUT,
                read_timeout=TIMEOUT,
                write_timeout=TIMEOUT,
            )
        kwargs = dict(
            host=HOST,
            port=PORT,
            user="root",
            password="",
            autocommit=True,
            connection_timeout=TIMEOUT,
            compress=COMPRESS,
        )
        if database:
            kwargs["database"] = database
        return self.mod.connect(**kwargs)

    def compressed(self, conn):
        """Whether the driver speaks the compressed protocol on `conn`."""
        if self.name == "pymysql":
            return False
        # mysql-connector-python (pure Python) swaps its network broker for
        # the compressed one once the login negotiated CLIENT_COMPRESS.
        broker = getattr(getattr(conn, "_socket", None), "_netbroker", None)
        if broker is None:
            return None
        return type(broker).__name__ == "NetworkBrokerCompressed"

    def query(self, conn, sql):
        """Text protocol: (rows or None, affected rows, insert id)."""
        cur = conn.cursor()
        try:
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else None
            return rows, cur.rowcount, cur.lastrowid
        finally:
            cur.close()

    def prepared(self, conn, sql, params):
        """A statement with parameters: PyMySQL interpolates them on the
        client (it has no server-side prepared statements);
        mysql-connector-python prepares on the server."""
        if self.name == "pymysql":
            cur = conn.cursor()
            sql = sql.replace("?", "%s")
        else:
            cur = conn.cursor(prepared=True)
        try:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
            return rows, cur.rowcount, cur.lastrowid
        finally:
            cur.close()

    def error(self, e):
        """A driver error as a JSON-able outcome."""
        if self.name == "pymysql" and isinstance(e, self.mod.err.MySQLError):
            args = list(e.args)
            out = {"class": type(e).__name__}
            if len(args) >= 1 and isinstance(args[0], int):
                out["code"] = args[0]
                out["message"] = str(args[1]) if len(args) > 1 else None
            else:
                out["message"] = " ".join(str(a) for a in args)
            # PyMySQL drops the SQLSTATE of an ERR packet.
            return out
        if self.name == "connector" and isinstance(e, self.mod.Error):
            return {
                "class": type(e).__name__,
                "code": e.errno,
                "sqlstate": e.sqlstate,
                "message": e.msg,
            }
        raise e


class HarnessError(Exception):
    pass


def value(v):
    """A result value as JSON: numbers stay numbers, bytes become text."""
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    if v is None or isinstance(v, (int, float, str, bool)):
        return v
    return "%s:%s" % (type(v).__name__, v)


def rows_json(rows):
    if rows is None:
        return None
    return [[value(v) for v in row] for row in rows]


def step(driver, fn):
    """Runs one step; a driver error becomes its outcome."""
    try:
        return fn()
    except HarnessError:
        raise
    except Exception as e:  # noqa: BLE001 (driver errors are outcomes)
        return {"error": driver.error(e)}


def run():
    d = Driver(DRIVER)
    out = {"driver": d.label(), "compress_requested": COMPRESS}
    try:
        admin = d.connect()
    except HarnessError:
        raise
    except Exception as e:  # noqa: BLE001
        out["connect"] = {"error": d.error(e)}
        return out
    out["connect"] = "ok"
    try:
        scenario(d, admin, out)
    finally:
        try:
            admin.close()
        except Exception:  # noqa: BLE001
            pass
    return out


def scenario(d, conn, out):
    step(d, lambda: d.query(conn, "CREATE DATABASE IF NOT EXISTS test"))
    out["use_test"] = step(d, lambda: (d.query(conn, "USE test"), "ok")[1])

    # 2. compression: as the server sees the session, and as the driver does
    def compression():
        rows, _, _ = d.query(conn, "SHOW SESSION STATUS LIKE 'Compression'")
        return value(rows[0][1]) if rows else None

    out["server_compression_status"] = step(d, compression)
    out["client_compressed"] = d.compressed(conn)

    # 3. statements with parameters
    t = PREFIX + "_prep"

    def prepared():
        res = {}
        rows, _, _ = d.prepared(conn, "SELECT ? + 1 AS answer", (41,))
        res["select_plus_one"] = rows_json(rows)
        d.query(conn, "CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)" % t)
        _, affected, _ = d.query(conn, "INSERT INTO %s VALUES (1, 'one'), (2, 'two'), (3, 'three')" % t)
        res["insert_text"] = {"affected_rows": affected}
        _, affected, _ = d.prepared(conn, "INSERT INTO %s (id, name) VALUES (?, ?)" % t, (4, "four"))
        res["insert_prepared"] = {"affected_rows": affected}
        rows, _, _ = d.prepared(conn, "SELECT id, name FROM %s WHERE id = ? OR name = ? ORDER BY id" % t, (2, "four"))
        res["select_where"] = rows_json(rows)
        rows, _, _ = d.prepared(conn, "SELECT COUNT(*) FROM %s WHERE id > ?" % t, (10,))
        res["select_none"] = rows_json(rows)
        return res

    out["prepared"] = step(d, prepared)

    # 4. duplicate key
    t = PREFIX + "_dup"
    dup = {}
    dup["create"] = step(
        d,
        lambda: (d.query(conn, "CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, "
                               "k VARCHAR(20) NOT NULL, UNIQUE KEY uk (k))" % t), "ok")[1],
    )

    def insert():
        _, affected, insert_id = d.query(conn, "INSERT INTO %s (k) VALUES ('dup')" % t)
        return {"affected_rows": affected, "insert_id": insert_id}

    dup["first"] = step(d, insert)
    dup["second"] = step(d, insert)
    dup["after_error"] = step(d, lambda: rows_json(d.query(conn, "SELECT COUNT(*) FROM %s" % t)[0]))
    out["duplicate_key"] = dup

    # 5. concurrent single-row autocommit INSERTs (what Sluice batches)
    out["batch"] = batch(d, conn)


def batch(d, conn):
    t = PREFIX + "_batch"
    created = step(
        d,
        lambda: (d.query(conn, "CREATE TABLE %s (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                               "tag VARCHAR(40) NOT NULL)" % t), "ok")[1],
    )
    if created != "ok":
        return {"create": created}
    # One row first, alone: Sluice learns the table (its columns and keys)
    # on the first INSERT it sees into it, and only then batches.
    def warm():
        _, affected, insert_id = d.query(conn, "INSERT INTO %s (tag) VALUES ('warm-up')" % t)
        return {"affected_rows": affected, "insert_id": insert_id}

    warm_up = step(d, warm)
    barrier = threading.Barrier(BATCH_CLIENTS, timeout=TIMEOUT)
    results = [None] * BATCH_CLIENTS

    def client(i):
        tag = "client-%d" % i
        c = None
        try:
            try:
                c = d.connect("test")
            except Exception as e:  # noqa: BLE001
                results[i] = {"error": d.error(e)}
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            if c is None:
                return
            r = step(d, lambda: d.query(c, "INSERT INTO %s (tag) VALUES ('%s')" % (t, tag)))
            if isinstance(r, dict):
                results[i] = r
            else:
                results[i] = {"tag": tag, "affected_rows": r[1], "insert_id": r[2]}
        except Exception:  # noqa: BLE001
            results[i] = {"error": {"harness": traceback.format_exc()}}
        finally:
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass

    threads = [threading.Thread(target=client, args=(i,)) for i in range(BATCH_CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(TIMEOUT * 3)
        if th.is_alive():
            raise HarnessError("a batch client thread hung")

    rows = step(d, lambda: d.query(conn, "SELECT id, tag FROM %s" % t)[0])
    if isinstance(rows, dict):
        return {"select": rows}
    by_id = {int(r[0]): value(r[1]) for r in rows}
    ok = [r for r in results if r and "error" not in r]
    errors = sorted({json.dumps(r["error"], sort_keys=True) for r in results if r and "error" in r})
    ids = [int(r["insert_id"]) for r in ok if r["insert_id"] is not None]
    return {
        "warm_up": warm_up,
        "clients": BATCH_CLIENTS,
        "inserted": len(ok),
        "errors": [json.loads(e) for e in errors],
        "affected_rows_all_1": all(r["affected_rows"] == 1 for r in ok),
        "ids_distinct": len(set(ids)) == len(ids) == len(ok),
        "ids_ok": len(ids) == len(ok) and all(by_id.get(int(r["insert_id"] or 0)) == r["tag"] for r in ok),
        "rows": len(rows),
    }


def main():
    try:
        out = run()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
