//! Report mode (`--usage-report`): how long `GET /api/usage` takes over a month of a busy
//! gateway, on SQLite and (with `--postgres`) PostgreSQL.
//!
//! The database gets 500 keys and, for each key, 8 models and each day of two months, the
//! usage of ten million requests per month (`usage_daily` rows, as the gateway writes them:
//! 2 × 500 × 8 × 30 = 240,000 rows). The gateway is started on it, and each report over the
//! later month (every grouping, and the full one as CSV) is fetched [`RUNS`] times through the
//! admin API; the table shows the median and the slowest time of each, and the rows answered.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{Days, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, Statement};

use crate::procs;

const KEYS: i64 = 500;
const MODELS: usize = 8;
const DAYS: u64 = 30;
/// Requests per month in all; spread evenly over keys, models and days.
const REQUESTS_PER_MONTH: i64 = 10_000_000;
const RUNS: usize = 5;
/// The month reported on, and the one before it (which the range must skip).
const FIRST_DAY: &str = "2026-11-01";
const EARLIER_MONTH: &str = "2026-10-01";

const QUERIES: &[(&str, &str)] = &[
    ("key, model, day", "group_by=key,model,day"),
    (
        "key, model, day as CSV",
        "group_by=key,model,day&format=csv",
    ),
    ("key", "group_by=key"),
    ("model", "group_by=model"),
    ("day", "group_by=day"),
    ("total", "group_by="),
];

pub async fn run(gateway_bin: &Path, postgres: Option<&str>) -> anyhow::Result<()> {
    println!("# Usage report over a month of 10 million requests\n");
    println!(
        "{KEYS} keys × {MODELS} models × {DAYS} days per month, two months in the table ({} rows); \
         each report covers the later month, fetched {RUNS} times through the admin API.\n",
        2 * KEYS * MODELS as i64 * DAYS as i64
    );
    println!("| database | grouping | rows | median | slowest |");
    println!("|---|---|---:|---:|---:|");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}/report.db", dir.path().display());
    measure("SQLite", gateway_bin, &sqlite).await?;
    if let Some(url) = postgres {
        let url = test_kit::postgres::fresh_schema_url(url, "bench_report")
            .await
            .with_context(|| format!("--postgres {url}: cannot create a schema there"))?;
        measure("PostgreSQL", gateway_bin, &url).await?;
    }
    Ok(())
}

async fn measure(name: &str, gateway_bin: &Path, database_url: &str) -> anyhow::Result<()> {
    fill(database_url).await?;
    let mut gateway = procs::start_gateway(
        gateway_bin,
        "http://127.0.0.1:9",
        procs::Db::Url(database_url),
        Some("unused"),
    )?;
    let last_day = day(FIRST_DAY)? + Days::new(DAYS - 1);
    for (label, query) in QUERIES {
        let path = format!("/api/usage?from={FIRST_DAY}&to={last_day}&{query}");
        let mut times = Vec::with_capacity(RUNS);
        let mut rows = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let body = get(&gateway.admin_addr, &path)?;
            times.push(started.elapsed());
            rows = if query.contains("csv") {
                body.lines().count().saturating_sub(1)
            } else {
                serde_json::from_str::<serde_json::Value>(&body)?
                    .as_array()
                    .map_or(0, Vec::len)
            };
        }
        times.sort();
        println!(
            "| {name} | {label} | {rows} | {} | {} |",
            ms(times[RUNS / 2]),
            ms(times[RUNS - 1])
        );
    }
    gateway.stop_gracefully();
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn day(text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| format!("bad day {text}"))
}

/// Migrates the database and writes the keys and two months of `usage_daily`.
async fn fill(database_url: &str) -> anyhow::Result<()> {
    let url = quota_engine::DatabaseUrl::parse(database_url)?;
    let db = quota_engine::connect(&url).await?;
    quota_engine::db::migrate(&db).await?;
    for i in 0..KEYS {
        let new = quota_engine::NewKey {
            name: format!("team-{i:03}"),
            ..Default::default()
        };
        quota_engine::keys::create(&db, &new, Utc::now()).await?;
    }
    let per_row = REQUESTS_PER_MONTH / (KEYS * MODELS as i64 * DAYS as i64);
    let backend = db.get_database_backend();
    for month in [EARLIER_MONTH, FIRST_DAY] {
        let first = day(month)?;
        for d in 0..DAYS {
            let label = (first + Days::new(d)).format("%Y-%m-%d").to_string();
            for chunk_start in (1..=KEYS).step_by(100) {
                let mut values = Vec::new();
                for key in chunk_start..(chunk_start + 100).min(KEYS + 1) {
                    for m in 0..MODELS {
                        values.push(format!(
                            "({key}, '{label}', 'model-{m}', {per_row}, {}, {})",
                            per_row * 120,
                            per_row * 300
                        ));
                    }
                }
                let sql = format!(
                    "INSERT INTO usage_daily (key_id, day, model, requests, prompt_tokens, completion_tokens) VALUES {}",
                    values.join(", ")
                );
                db.execute(Statement::from_string(backend, sql)).await?;
            }
        }
    }
    if url.is_postgres() {
        db.execute_unprepared("ANALYZE usage_daily").await?;
    }
    db.close().await?;
    Ok(())
}

/// `GET path` on the admin API with the bench's password; the body of a 200.
fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP answer from {addr}");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
