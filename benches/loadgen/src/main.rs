//! Many clients, each sending single-row autocommit INSERTs as fast as it
//! gets answers; prints rows/s and latency percentiles as one JSON line.
//! Every client checks that the id it was told is the id of its own row
//! when `--verify` is given.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use mysql_async::prelude::*;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Text,
    Prepared,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long, default_value = "root")]
    user: String,
    #[arg(long, default_value = "")]
    password: String,
    #[arg(long, default_value = "loadgen")]
    database: String,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, value_enum, default_value = "text")]
    protocol: Protocol,
    /// Create (drop first) the schema and table.
    #[arg(long)]
    setup: bool,
    /// Check every reported id against the row it names.
    #[arg(long)]
    verify: bool,
}

const TABLE_DDL: &str = "CREATE TABLE rows_in (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
     client INT NOT NULL, seq INT NOT NULL, payload VARCHAR(64) NOT NULL, \
     created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB";

fn opts(args: &Args, database: Option<&str>) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(args.host.clone())
        .tcp_port(args.port)
        .user(Some(args.user.clone()))
        .pass(Some(args.password.clone()))
        .db_name(database.map(str::to_string))
        .prefer_socket(false)
        .into()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.setup {
        let mut conn = mysql_async::Conn::new(opts(&args, None))
            .await
            .context("connect")?;
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", args.database))
            .await?;
        conn.query_drop(format!("CREATE DATABASE `{}`", args.database))
            .await?;
        conn.query_drop(format!("USE `{}`", args.database)).await?;
        conn.query_drop(TABLE_DDL).await?;
        conn.disconnect().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..args.clients {
        let opts = opts(&args, Some(&args.database));
        let protocol = args.protocol;
        let verify = args.verify;
        tasks.push(tokio::spawn(async move {
            run_client(opts, client, protocol, verify, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
        latencies[i].as_secs_f64() * 1e6
    };
    println!(
        "{{\"rows\":{},\"seconds\":{:.3},\"rows_per_sec\":{:.1},\"p50_us\":{:.0},\"p99_us\":{:.0}}}",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}

async fn run_client(
    opts: mysql_async::Opts,
    client: usize,
    protocol: Protocol,
    verify: bool,
    deadline: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut conn = mysql_async::Conn::new(opts).await.context("connect")?;
    let mut latencies = Vec::new();
    let mut seq = 0u32;
    let stmt = match protocol {
        Protocol::Prepared => Some(
            conn.prep("INSERT INTO rows_in (client, seq, payload) VALUES (?, ?, ?)")
                .await?,
        ),
        Protocol::Text => None,
    };
    while Instant::now() < deadline {
        seq += 1;
        let payload = format!("client {client} row {seq}");
        let t = Instant::now();
        match &stmt {
            Some(stmt) => conn.exec_drop(stmt, (client as i64, seq, &payload)).await?,
            None => {
                conn.query_drop(format!(
                    "INSERT INTO rows_in (client, seq, payload) VALUES ({client}, {seq}, '{payload}')"
                ))
                .await?
            }
        }
        latencies.push(t.elapsed());
        if verify {
            let id = conn.last_insert_id().context("no insert id")?;
            let row: Option<(i64, u32)> = conn
                .exec_first("SELECT client, seq FROM rows_in WHERE id = ?", (id,))
                .await?;
            anyhow::ensure!(
                row == Some((client as i64, seq)),
                "client {client} row {seq} was told id {id}, which holds {row:?}"
            );
            let last: u64 = conn
                .query_first("SELECT LAST_INSERT_ID()")
                .await?
                .unwrap_or(0);
            anyhow::ensure!(last == id, "LAST_INSERT_ID() {last} != reported {id}");
        }
    }
    conn.disconnect().await?;
    Ok(latencies)
}
