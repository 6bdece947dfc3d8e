use chrono::{DateTime, Utc};
use quota_engine::{db, DatabaseConnection, DatabaseUrl, Ledger, LedgerConfig, Periods};

/// A database under test, with what keeps it alive.
pub struct TestDb {
    pub name: &'static str,
    pub db: DatabaseConnection,
    /// The URL a second, independent pool can connect with (a second "instance").
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn second_pool(&self) -> DatabaseConnection {
        db::connect(&self.url).await.unwrap()
    }
}

/// A fresh SQLite file, and a fresh PostgreSQL schema when `TEST_DATABASE_URL` is set; both
/// migrated.
pub async fn databases() -> Vec<TestDb> {
    let mut all = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}/nested/q.db", dir.path().display())).unwrap();
    let conn = db::connect(&url).await.unwrap();
    db::migrate(&conn).await.unwrap();
    all.push(TestDb {
        name: "sqlite",
        db: conn,
        url,
        _dir: Some(dir),
    });
    if let Some(pg) = postgres().await {
        all.push(pg);
    }
    all
}

async fn postgres() -> Option<TestDb> {
    let base = test_kit::postgres::test_database_url()?;
    let url = test_kit::postgres::fresh_schema_url(&base, "qe")
        .await
        .expect("TEST_DATABASE_URL unreachable");
    let url = DatabaseUrl::parse(&url).unwrap();
    let conn = db::connect(&url).await.unwrap();
    db::migrate(&conn).await.unwrap();
    Some(TestDb {
        name: "postgres",
        db: conn,
        url,
        _dir: None,
    })
}

pub fn berlin() -> Periods {
    Periods::from_name("Europe/Berlin").unwrap()
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// A ledger over the test database, configured as `serve` would (shared on PostgreSQL).
pub fn ledger(t: &TestDb) -> Ledger {
    Ledger::new(
        t.db.clone(),
        LedgerConfig {
            shared: t.url.is_postgres(),
            ..LedgerConfig::default()
        },
    )
}

/// A key named `name`, created on 2026-11-01.
pub async fn new_key(db: &DatabaseConnection, name: &str) -> quota_engine::ApiKey {
    let new = quota_engine::NewKey {
        name: name.into(),
        ..Default::default()
    };
    quota_engine::keys::create(db, &new, at("2026-11-01T00:00:00Z"))
        .await
        .unwrap()
        .0
}

/// A finished request of `key_id` on `day` with these token counts (no GPU time).
pub fn usage_record(
    key_id: i64,
    day: &str,
    model: &str,
    prompt: i64,
    completion: i64,
) -> quota_engine::usage_log::UsageRecord {
    quota_engine::usage_log::UsageRecord {
        key_id,
        team_id: None,
        day: day.into(),
        model: model.into(),
        prompt_tokens: prompt,
        completion_tokens: completion,
        gpu: Default::default(),
    }
}
