#!/usr/bin/env node
// Driver matrix scenario for Node's mysql2.
//
// Usage: node scenario.js HOST PORT PREFIX COMPRESS MYSQL2_DIR
//   PREFIX      prefix of the table names this run creates in database `test`
//   COMPRESS    1 to request the compressed protocol, 0 not to
//   MYSQL2_DIR  directory whose node_modules holds the mysql2 to test
//               (<target>/drivers/mysql2-latest or mysql2-3.23)
//
// Prints one JSON object with the normalized outcome of every step (errors
// are outcomes too) and exits 0; exits non-zero only when the harness itself
// fails. Run by tests/e2e/tests/drivers.rs, directly against MariaDB and
// through Sluice; the two outputs must be equal.
'use strict';

const path = require('path');

const BATCH_CLIENTS = 32;
const TIMEOUT_MS = 10000;

const args = process.argv.slice(2);
if (args.length !== 5) {
  process.stderr.write(
    'usage: node scenario.js HOST PORT PREFIX COMPRESS MYSQL2_DIR\n',
  );
  process.exit(2);
}
const [HOST, PORT_TEXT, PREFIX, COMPRESS_TEXT, MYSQL2_DIR] = args;
const PORT = Number(PORT_TEXT);
const COMPRESS = ['1', 'true', 'yes', 'on'].includes(COMPRESS_TEXT);

const modules = path.resolve(MYSQL2_DIR, 'node_modules', 'mysql2');
const mysql = require(path.join(modules, 'promise'));
const mysql2Version = require(path.join(modules, 'package.json')).version;

// Errors that are not the driver's (a bug in this script) end the run.
class HarnessError extends Error {}

function connect(database) {
  const opts = {
    host: HOST,
    port: PORT,
    user: 'root',
    password: '',
    connectTimeout: TIMEOUT_MS,
    compress: COMPRESS,
  };
  if (database) opts.database = database;
  return mysql.createConnection(opts);
}

// A driver error as a JSON-able outcome.
function errorOutcome(e) {
  if (e instanceof HarnessError || !(e instanceof Error)) throw e;
  if (e.errno === undefined && e.code === undefined && e.sqlState === undefined) {
    // Not from the driver or the server (TypeError and the like).
    throw e;
  }
  const out = { message: e.sqlMessage !== undefined ? e.sqlMessage : e.message };
  if (e.code !== undefined) out.code = e.code;
  if (e.errno !== undefined) out.errno = e.errno;
  if (e.sqlState !== undefined) out.sqlstate = e.sqlState;
  if (e.fatal !== undefined) out.fatal = e.fatal;
  return out;
}

async function step(fn) {
  try {
    return await fn();
  } catch (e) {
    return { error: errorOutcome(e) };
  }
}

function value(v) {
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return v.toISOString();
  return v;
}

function rowsJson(rows) {
  return rows.map((row) => row.map(value));
}

// Text protocol: the rows as arrays, or the OK packet's counts.
async function query(conn, sql) {
  const [res] = await conn.query({ sql, rowsAsArray: true });
  return Array.isArray(res) ? rowsJson(res) : okJson(res);
}

// Server-side prepared statement (COM_STMT_PREPARE + COM_STMT_EXECUTE).
async function execute(conn, sql, params) {
  const [res] = await conn.execute({ sql, rowsAsArray: true }, params);
  return Array.isArray(res) ? rowsJson(res) : okJson(res);
}

function okJson(res) {
  return {
    affected_rows: res.affectedRows,
    insert_id: value(res.insertId),
    warnings: res.warningStatus,
  };
}

async function scenario(conn, out) {
  await step(() => query(conn, 'CREATE DATABASE IF NOT EXISTS test'));
  out.use_test = await step(async () => {
    await query(conn, 'USE test');
    return 'ok';
  });

  // 2. compression: as the server sees the session, and as the driver does
  // (mysql2 keeps `compress` only if the server offered CLIENT_COMPRESS)
  out.server_compression_status = await step(async () => {
    const rows = await query(conn, "SHOW SESSION STATUS LIKE 'Compression'");
    return rows.length ? rows[0][1] : null;
  });
  out.client_compressed = Boolean(conn.connection.config.compress);

  // 3. prepared statements with parameters
  let t = `${PREFIX}_prep`;
  out.prepared = await step(async () => {
    const res = {};
    res.select_plus_one = await execute(conn, 'SELECT ? + 1 AS answer', [41]);
    await query(
      conn,
      `CREATE TABLE ${t} (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)`,
    );
    res.insert_text = await query(
      conn,
      `INSERT INTO ${t} VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
    );
    res.insert_prepared = await execute(
      conn,
      `INSERT INTO ${t} (id, name) VALUES (?, ?)`,
      [4, 'four'],
    );
    res.select_where = await execute(
      conn,
      `SELECT id, name FROM ${t} WHERE id = ? OR name = ? ORDER BY id`,
      [2, 'four'],
    );
    res.select_none = await execute(
      conn,
      `SELECT COUNT(*) FROM ${t} WHERE id > ?`,
      [10],
    );
    return res;
  });

  // 4. duplicate key
  t = `${PREFIX}_dup`;
  const dup = {};
  dup.create = await step(async () => {
    await query(
      conn,
      `CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, ` +
        'k VARCHAR(20) NOT NULL, UNIQUE KEY uk (k))',
    );
    return 'ok';
  });
  const insert = () => query(conn, `INSERT INTO ${t} (k) VALUES ('dup')`);
  dup.first = await step(insert);
  dup.second = await step(insert);
  dup.after_error = await step(() => query(conn, `SELECT COUNT(*) FROM ${t}`));
  out.duplicate_key = dup;

  // 5. concurrent single-row autocommit INSERTs (what Sluice batches)
  out.batch = await batch(conn);
}

async function batch(conn) {
  const t = `${PREFIX}_batch`;
  const created = await step(async () => {
    await query(
      conn,
      `CREATE TABLE ${t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, ` +
        'tag VARCHAR(40) NOT NULL)',
    );
    return 'ok';
  });
  if (created !== 'ok') return { create: created };
  // One row first, alone: Sluice learns the table (its columns and keys)
  // on the first INSERT it sees into it, and only then batches.
  const warmUp = await step(() =>
    query(conn, `INSERT INTO ${t} (tag) VALUES ('warm-up')`),
  );

  // Every client connects first; then all INSERTs go out together.
  const clients = await Promise.all(
    Array.from({ length: BATCH_CLIENTS }, () => step(() => connect('test'))),
  );
  const results = await Promise.all(
    clients.map(async (c, i) => {
      if (c.error) return c;
      const tag = `client-${i}`;
      const r = await step(() =>
        query(c, `INSERT INTO ${t} (tag) VALUES ('${tag}')`),
      );
      return r.error ? r : { tag, ...r };
    }),
  );
  await Promise.all(
    clients.filter((c) => !c.error).map((c) => c.end().catch(() => {})),
  );

  const rows = await step(() => query(conn, `SELECT id, tag FROM ${t}`));
  if (rows.error) return { select: rows };
  const byId = new Map(rows.map(([id, tag]) => [String(id), tag]));
  const ok = results.filter((r) => !r.error);
  const errors = [
    ...new Set(results.filter((r) => r.error).map((r) => JSON.stringify(r.error))),
  ]
    .sort()
    .map((e) => JSON.parse(e));
  const ids = ok.map((r) => String(r.insert_id));
  return {
    warm_up: warmUp,
    clients: BATCH_CLIENTS,
    inserted: ok.length,
    errors,
    affected_rows_all_1: ok.every((r) => r.affected_rows === 1),
    ids_distinct: new Set(ids).size === ok.length,
    ids_ok: ok.every((r) => byId.get(String(r.insert_id)) === r.tag),
    rows: rows.length,
  };
}

async function main() {
  const out = {
    driver: `mysql2 ${mysql2Version}`,
    compress_requested: COMPRESS,
  };
  let conn;
  try {
    conn = await connect();
  } catch (e) {
    out.connect = { error: errorOutcome(e) };
    return out;
  }
  out.connect = 'ok';
  try {
    await scenario(conn, out);
  } finally {
    await conn.end().catch(() => {});
  }
  return out;
}

const guard = setTimeout(() => {
  process.stderr.write('scenario.js: timed out\n');
  process.exit(3);
}, 4 * TIMEOUT_MS);
guard.unref();

main().then(
  (out) => {
    process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
    // Exit at once: a connection a failed step left open must not keep
    // the process alive.
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`scenario.js: harness failure: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
