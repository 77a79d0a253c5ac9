<?php
// Driver matrix scenario for PHP's mysqli and PDO (both on mysqlnd).
//
// Usage: php scenario.php HOST PORT PREFIX COMPRESS DRIVER
//   PREFIX    prefix of the table names this run creates in database `test`
//   COMPRESS  1 to request the compressed protocol, 0 not to
//   DRIVER    mysqli | pdo
//
// Prints one JSON object with the normalized outcome of every step (errors
// are outcomes too) and exits 0; exits non-zero only when the harness itself
// fails. Run by tests/e2e/tests/drivers.rs, directly against MariaDB and
// through Sluice; the two outputs must be equal.
//
// (Internal: `php scenario.php --pdo-worker HOST PORT PREFIX COMPRESS TAG`
// is one client of the PDO batch step; PDO has no asynchronous queries, so
// each concurrent client is its own process.)

declare(strict_types=1);

const BATCH_CLIENTS = 32;
const TIMEOUT = 10;

ini_set('display_errors', 'stderr');
error_reporting(E_ALL);

// PHP warnings and notices a driver raises are part of the outcome.
$GLOBALS['php_warnings'] = [];
set_error_handler(function (int $no, string $msg): bool {
    $GLOBALS['php_warnings'][] = $msg;
    return true;
});

function usage(): void
{
    fwrite(STDERR, "usage: php scenario.php HOST PORT PREFIX COMPRESS mysqli|pdo\n");
    exit(2);
}

function flag(string $s): bool
{
    return in_array(strtolower($s), ['1', 'true', 'yes', 'on'], true);
}

/** A driver error as a JSON-able outcome; anything else is re-thrown. */
function error_outcome(Throwable $e): array
{
    if ($e instanceof mysqli_sql_exception) {
        return [
            'class' => get_class($e),
            'code' => $e->getCode(),
            'sqlstate' => $e->getSqlState(),
            'message' => $e->getMessage(),
        ];
    }
    if ($e instanceof PDOException) {
        $out = ['class' => get_class($e), 'code' => $e->getCode(), 'message' => $e->getMessage()];
        if (is_array($e->errorInfo)) {
            $out['error_info'] = $e->errorInfo;
        }
        return $out;
    }
    throw $e;
}

/** Runs one step; a driver error becomes its outcome. */
function step(callable $fn)
{
    try {
        return $fn();
    } catch (mysqli_sql_exception | PDOException $e) {
        return ['error' => error_outcome($e)];
    }
}

function is_error($r): bool
{
    return is_array($r) && array_key_exists('error', $r);
}

/** What one driver offers the scenario. */
interface Driver
{
    public function label(): string;
    public function connect(?string $database);
    /** Text protocol: rows (as lists) or ['affected_rows', 'insert_id']. */
    public function query($conn, string $sql);
    /** Server-side prepared statement with these parameters. */
    public function prepared($conn, string $sql, array $params);
    /** Whether the driver speaks the compressed protocol on this connection. */
    public function compressed($conn): bool;
    /** Sends one INSERT from each connection at once; per-client outcomes. */
    public function concurrent(array $conns, array $sqls, string $host, int $port, string $prefix, bool $compress): array;
    public function close($conn): void;
}

final class MysqliDriver implements Driver
{
    private string $host;
    private int $port;
    private bool $compress;

    public function __construct(string $host, int $port, bool $compress)
    {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        $this->host = $host;
        $this->port = $port;
        $this->compress = $compress;
    }

    public function label(): string
    {
        return 'mysqli ' . PHP_VERSION . ' (' . mysqli_get_client_info() . ')';
    }

    public function connect(?string $database)
    {
        $m = mysqli_init();
        $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, TIMEOUT);
        $m->options(MYSQLI_OPT_READ_TIMEOUT, TIMEOUT);
        $m->real_connect(
            $this->host,
            'root',
            '',
            $database ?? '',
            $this->port,
            null,
            $this->compress ? MYSQLI_CLIENT_COMPRESS : 0
        );
        return $m;
    }

    public function compressed($conn): bool
    {
        // mysqlnd counts the bytes on the wire: a megabyte of one letter
        // arrives as a few kilobytes when compressed.
        $before = $conn->get_connection_stats()['bytes_received'];
        $this->query($conn, "SELECT REPEAT('a', 1000000)");
        return $conn->get_connection_stats()['bytes_received'] - $before < 500000;
    }

    public function query($conn, string $sql)
    {
        $res = $conn->query($sql);
        if ($res instanceof mysqli_result) {
            $rows = $res->fetch_all(MYSQLI_NUM);
            $res->free();
            return $rows;
        }
        return ['affected_rows' => $conn->affected_rows, 'insert_id' => $conn->insert_id];
    }

    public function prepared($conn, string $sql, array $params)
    {
        $st = $conn->prepare($sql);
        try {
            $types = '';
            foreach ($params as $p) {
                $types .= is_int($p) ? 'i' : 's';
            }
            if ($params) {
                $st->bind_param($types, ...$params);
            }
            $st->execute();
            $res = $st->get_result();
            if ($res instanceof mysqli_result) {
                return $res->fetch_all(MYSQLI_NUM);
            }
            return ['affected_rows' => $st->affected_rows, 'insert_id' => $st->insert_id];
        } finally {
            $st->close();
        }
    }

    public function concurrent(array $conns, array $sqls, string $host, int $port, string $prefix, bool $compress): array
    {
        // Every query is sent (MYSQLI_ASYNC) before any result is read.
        $results = [];
        $pending = [];
        foreach ($conns as $i => $c) {
            if (is_error($c)) {
                $results[$i] = $c;
                continue;
            }
            $sent = step(function () use ($c, $sqls, $i) {
                $c->query($sqls[$i], MYSQLI_ASYNC);
                return true;
            });
            if ($sent === true) {
                $pending[$i] = $c;
            } else {
                $results[$i] = $sent;
            }
        }
        $deadline = microtime(true) + 3 * TIMEOUT;
        while ($pending) {
            if (microtime(true) > $deadline) {
                throw new RuntimeException('mysqli_poll: the batch INSERTs did not all finish');
            }
            $read = $error = $reject = array_values($pending);
            $n = mysqli_poll($read, $error, $reject, 1);
            if ($n === false) {
                throw new RuntimeException('mysqli_poll failed');
            }
            foreach ($pending as $i => $c) {
                if (in_array($c, $read, true) || in_array($c, $error, true) || in_array($c, $reject, true)) {
                    $results[$i] = step(function () use ($c) {
                        $c->reap_async_query();
                        return ['affected_rows' => $c->affected_rows, 'insert_id' => $c->insert_id];
                    });
                    unset($pending[$i]);
                }
            }
        }
        ksort($results);
        return $results;
    }

    public function close($conn): void
    {
        try {
            $conn->close();
        } catch (Throwable $e) {
        }
    }
}

final class PdoDriver implements Driver
{
    private string $host;
    private int $port;
    private bool $compress;

    public function __construct(string $host, int $port, bool $compress)
    {
        $this->host = $host;
        $this->port = $port;
        $this->compress = $compress;
    }

    public function label(): string
    {
        return 'PDO ' . PHP_VERSION;
    }

    public function connect(?string $database)
    {
        $dsn = "mysql:host={$this->host};port={$this->port}";
        if ($database !== null) {
            $dsn .= ";dbname=$database";
        }
        $pdo = new PDO($dsn, 'root', '', [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_TIMEOUT => TIMEOUT,
            PDO::MYSQL_ATTR_COMPRESS => $this->compress,
            // query() and exec() use the text protocol; prepared() asks
            // for a server-side prepared statement explicitly.
            PDO::ATTR_EMULATE_PREPARES => true,
        ]);
        return $pdo;
    }

    public function compressed($pdo): bool
    {
        // PDO has no statistics of its own, but it runs on mysqlnd, whose
        // process-wide statistics count the bytes on the wire: a megabyte
        // of one letter arrives as a few kilobytes when compressed.
        $before = mysqli_get_client_stats()['bytes_received'];
        $this->query($pdo, "SELECT REPEAT('a', 1000000)");
        return mysqli_get_client_stats()['bytes_received'] - $before < 500000;
    }

    public function query($pdo, string $sql)
    {
        $st = $pdo->query($sql);
        return $this->outcome($pdo, $st);
    }

    public function prepared($pdo, string $sql, array $params)
    {
        // (pdo_mysql ignores ATTR_EMULATE_PREPARES among prepare()'s
        // options: switch the connection's for this one statement.)
        $pdo->setAttribute(PDO::ATTR_EMULATE_PREPARES, false);
        try {
            $st = $pdo->prepare($sql);
        } finally {
            $pdo->setAttribute(PDO::ATTR_EMULATE_PREPARES, true);
        }
        foreach (array_values($params) as $k => $p) {
            $st->bindValue($k + 1, $p, is_int($p) ? PDO::PARAM_INT : PDO::PARAM_STR);
        }
        $st->execute();
        return $this->outcome($pdo, $st);
    }

    private function outcome(PDO $pdo, PDOStatement $st)
    {
        if ($st->columnCount() > 0) {
            $rows = $st->fetchAll(PDO::FETCH_NUM);
            $st->closeCursor();
            return $rows;
        }
        return ['affected_rows' => $st->rowCount(), 'insert_id' => $pdo->lastInsertId()];
    }

    public function concurrent(array $conns, array $sqls, string $host, int $port, string $prefix, bool $compress): array
    {
        // One worker process per client: each connects and says "ready";
        // once all are ready every one is told to go at the same moment.
        $workers = [];
        foreach ($sqls as $i => $sql) {
            $cmd = [PHP_BINARY, __FILE__, '--pdo-worker', $host, (string)$port, $prefix, $compress ? '1' : '0', (string)$i];
            $pipes = [];
            $proc = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => STDERR], $pipes);
            if (!is_resource($proc)) {
                throw new RuntimeException('cannot start a PDO worker');
            }
            $workers[$i] = [$proc, $pipes];
        }
        $results = [];
        foreach ($workers as $i => [$proc, $pipes]) {
            $line = fgets($pipes[1]);
            if ($line === false) {
                throw new RuntimeException("PDO worker $i died before connecting");
            }
            if (trim($line) !== 'ready') {
                $results[$i] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
            }
        }
        foreach ($workers as $i => [$proc, $pipes]) {
            if (!isset($results[$i])) {
                fwrite($pipes[0], "go\n");
                fflush($pipes[0]);
            }
        }
        foreach ($workers as $i => [$proc, $pipes]) {
            if (!isset($results[$i])) {
                $line = fgets($pipes[1]);
                if ($line === false) {
                    throw new RuntimeException("PDO worker $i died before answering");
                }
                $results[$i] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
            }
            fclose($pipes[0]);
            fclose($pipes[1]);
            $status = proc_close($proc);
            if ($status !== 0) {
                throw new RuntimeException("PDO worker $i exited with $status");
            }
        }
        ksort($results);
        return $results;
    }

    public function close($conn): void
    {
    }
}

/** One client of the PDO batch step (see PdoDriver::concurrent). */
function pdo_worker(array $argv): void
{
    [, , $host, $port, $prefix, $compress, $i] = $argv;
    $d = new PdoDriver($host, (int)$port, flag($compress));
    $conn = step(fn () => $d->connect('test'));
    if (is_error($conn)) {
        echo json_encode($conn), "\n";
        return;
    }
    echo "ready\n";
    if (fgets(STDIN) === false) {
        return;
    }
    $r = step(fn () => $d->query($conn, "INSERT INTO {$prefix}_batch (tag) VALUES ('client-$i')"));
    if ($GLOBALS['php_warnings']) {
        $r['php_warnings'] = $GLOBALS['php_warnings'];
    }
    echo json_encode($r), "\n";
}

function scenario(Driver $d, $conn, string $prefix, bool $compress, string $host, int $port): array
{
    $out = [];
    step(fn () => $d->query($conn, 'CREATE DATABASE IF NOT EXISTS test'));
    $out['use_test'] = step(function () use ($d, $conn) {
        $d->query($conn, 'USE test');
        return 'ok';
    });

    // 2. compression: as the server sees the session, and as the driver does
    $out['server_compression_status'] = step(function () use ($d, $conn) {
        $rows = $d->query($conn, "SHOW SESSION STATUS LIKE 'Compression'");
        return $rows ? $rows[0][1] : null;
    });
    $out['client_compressed'] = step(fn () => $d->compressed($conn));

    // 3. prepared statements with parameters
    $t = "{$prefix}_prep";
    $out['prepared'] = step(function () use ($d, $conn, $t) {
        $res = [];
        $res['select_plus_one'] = $d->prepared($conn, 'SELECT ? + 1 AS answer', [41]);
        $d->query($conn, "CREATE TABLE $t (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)");
        $res['insert_text'] = $d->query($conn, "INSERT INTO $t VALUES (1, 'one'), (2, 'two'), (3, 'three')");
        $res['insert_prepared'] = $d->prepared($conn, "INSERT INTO $t (id, name) VALUES (?, ?)", [4, 'four']);
        $res['select_where'] = $d->prepared($conn, "SELECT id, name FROM $t WHERE id = ? OR name = ? ORDER BY id", [2, 'four']);
        $res['select_none'] = $d->prepared($conn, "SELECT COUNT(*) FROM $t WHERE id > ?", [10]);
        return $res;
    });

    // 4. duplicate key
    $t = "{$prefix}_dup";
    $dup = [];
    $dup['create'] = step(function () use ($d, $conn, $t) {
        $d->query($conn, "CREATE TABLE $t (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(20) NOT NULL, UNIQUE KEY uk (k))");
        return 'ok';
    });
    $dup['first'] = step(fn () => $d->query($conn, "INSERT INTO $t (k) VALUES ('dup')"));
    $dup['second'] = step(fn () => $d->query($conn, "INSERT INTO $t (k) VALUES ('dup')"));
    $dup['after_error'] = step(fn () => $d->query($conn, "SELECT COUNT(*) FROM $t"));
    $out['duplicate_key'] = $dup;

    // 5. concurrent single-row autocommit INSERTs (what Sluice batches)
    $t = "{$prefix}_batch";
    $created = step(function () use ($d, $conn, $t) {
        $d->query($conn, "CREATE TABLE $t (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(40) NOT NULL)");
        return 'ok';
    });
    if ($created !== 'ok') {
        $out['batch'] = ['create' => $created];
        return $out;
    }
    // One row first, alone: Sluice learns the table (its columns and keys)
    // on the first INSERT it sees into it, and only then batches.
    $warm_up = step(fn () => $d->query($conn, "INSERT INTO $t (tag) VALUES ('warm-up')"));
    $sqls = [];
    for ($i = 0; $i < BATCH_CLIENTS; $i++) {
        $sqls[$i] = "INSERT INTO $t (tag) VALUES ('client-$i')";
    }
    $conns = [];
    if ($d instanceof MysqliDriver) {
        for ($i = 0; $i < BATCH_CLIENTS; $i++) {
            $conns[$i] = step(fn () => $d->connect('test'));
        }
    }
    $results = $d->concurrent($conns, $sqls, $host, $port, $prefix, $compress);
    foreach ($conns as $c) {
        if (!is_error($c)) {
            $d->close($c);
        }
    }
    $rows = step(fn () => $d->query($conn, "SELECT id, tag FROM $t"));
    if (is_error($rows)) {
        $out['batch'] = ['select' => $rows];
        return $out;
    }
    $by_id = [];
    foreach ($rows as [$id, $tag]) {
        $by_id[(string)$id] = $tag;
    }
    $ok = [];
    $errors = [];
    $worker_warnings = [];
    foreach ($results as $i => $r) {
        if (isset($r['php_warnings'])) {
            array_push($worker_warnings, ...$r['php_warnings']);
            unset($r['php_warnings']);
        }
        if (is_error($r)) {
            $errors[json_encode($r['error'])] = $r['error'];
        } else {
            $ok[$i] = $r;
        }
    }
    ksort($errors);
    $ids = array_map(fn ($r) => (string)$r['insert_id'], $ok);
    $ids_ok = true;
    $affected_ok = true;
    foreach ($ok as $i => $r) {
        $ids_ok = $ids_ok && ($by_id[(string)$r['insert_id']] ?? null) === "client-$i";
        $affected_ok = $affected_ok && (int)$r['affected_rows'] === 1;
    }
    $out['batch'] = [
        'warm_up' => $warm_up,
        'clients' => BATCH_CLIENTS,
        'inserted' => count($ok),
        'errors' => array_values($errors),
        'affected_rows_all_1' => $affected_ok,
        'ids_distinct' => count(array_unique($ids)) === count($ok),
        'ids_ok' => $ids_ok,
        'rows' => count($rows),
    ];
    if ($worker_warnings) {
        $out['batch']['php_warnings'] = array_values(array_unique($worker_warnings));
    }
    return $out;
}

function main(array $argv): int
{
    if (($argv[1] ?? '') === '--pdo-worker') {
        pdo_worker($argv);
        return 0;
    }
    if (count($argv) !== 6) {
        usage();
    }
    [, $host, $port, $prefix, $compress, $driver] = $argv;
    $port = (int)$port;
    $compress = flag($compress);
    if ($driver === 'mysqli') {
        $d = new MysqliDriver($host, $port, $compress);
    } elseif ($driver === 'pdo') {
        $d = new PdoDriver($host, $port, $compress);
    } else {
        usage();
    }
    $out = ['driver' => $d->label(), 'compress_requested' => $compress];
    $conn = step(fn () => $d->connect(null));
    if (is_error($conn)) {
        $out['connect'] = $conn;
    } else {
        $out['connect'] = 'ok';
        $out += scenario($d, $conn, $prefix, $compress, $host, $port);
        $d->close($conn);
    }
    $out['php_warnings'] = $GLOBALS['php_warnings'];
    echo json_encode(
        $out,
        JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE
    ), "\n";
    return 0;
}

exit(main($argv));
