//! A database of its own for every test and benchmark run, on one PostgreSQL server: a new
//! schema, and the URL whose connections use it (`search_path`).

use std::sync::atomic::{AtomicU32, Ordering};

/// `TEST_DATABASE_URL` when it is set and not empty: the PostgreSQL tests run only then.
pub fn test_database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A new, empty schema on the PostgreSQL server of `base_url`, named `prefix` plus this
/// process, a sequence number and the time, and the URL whose connections use it.
pub async fn fresh_schema_url(base_url: &str, prefix: &str) -> Result<String, sea_orm::DbErr> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    let admin = sea_orm::Database::connect(base_url).await?;
    sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE SCHEMA {schema}"))
        .await?;
    admin.close().await?;
    let sep = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base_url}{sep}options=-c%20search_path%3D{schema}"
    ))
}
