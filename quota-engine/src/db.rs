//! `DATABASE_URL` parsing and connecting.
//!
//! Accepted forms (docs/configuration.md):
//! - `sqlite://data/llm-quota.db`, `sqlite://./x.db`: a path relative to the working directory;
//! - `sqlite:///./x.db`, `sqlite:///x.db`: SQLAlchemy's relative form (three slashes);
//! - `sqlite:////var/lib/x.db`: SQLAlchemy's absolute form (four slashes);
//! - `sqlite:///var/lib/x.db`: an absolute path, when the part after the third slash itself
//!   contains a folder that is not `.` or `..` (how sqlx and most URLs spell it);
//! - `postgres://…` and `postgresql://…`.
//!
//! Query parameters on a SQLite URL (`?mode=rwc`) are ignored: the file and its folder are
//! always created on first use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::{migration::Migrator, EngineError, Result};

/// A validated database location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses any accepted form; the error names the accepted forms.
    pub fn parse(raw: &str) -> Result<DatabaseUrl> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            return parse_sqlite(rest).map(DatabaseUrl::Sqlite);
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let after_scheme = raw.split_once("://").map_or("", |(_, rest)| rest);
            if after_scheme.is_empty() || after_scheme.starts_with('/') {
                return Err(EngineError::InvalidDatabaseUrl(format!(
                    "malformed PostgreSQL URL {raw:?}: expected postgres://user:password@host:5432/database"
                )));
            }
            return Ok(DatabaseUrl::Postgres(raw.to_owned()));
        }
        Err(EngineError::InvalidDatabaseUrl(format!(
            "unsupported database URL {:?}: use sqlite://path/to/file.db or postgres://user:password@host/database",
            redact_url(raw)
        )))
    }

    /// The URL with any password replaced by `***`, for logs and `config check`.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_url(url),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

fn parse_sqlite(rest: &str) -> Result<PathBuf> {
    let rest = rest.split('?').next().unwrap_or_default();
    let path = if let Some(after) = rest.strip_prefix("////") {
        format!("/{after}")
    } else if let Some(after) = rest.strip_prefix("///") {
        let first = after.split('/').next().unwrap_or_default();
        let has_folder = after.contains('/');
        if !has_folder || first == "." || first == ".." {
            after.to_owned()
        } else {
            format!("/{after}")
        }
    } else if let Some(after) = rest.strip_prefix("//") {
        after.to_owned()
    } else {
        rest.to_owned()
    };
    if path.is_empty() || path.ends_with('/') {
        return Err(EngineError::InvalidDatabaseUrl(format!(
            "sqlite URL \"sqlite:{rest}\" names no file: use sqlite://data/llm-quota.db"
        )));
    }
    if path == ":memory:" {
        return Err(EngineError::InvalidDatabaseUrl(
            "an in-memory SQLite database would lose every key at restart: use sqlite://data/llm-quota.db".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// Replaces the password of `scheme://user:password@host` by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..authority_start],
            &userinfo[..colon],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
    }
}

/// Pool sizing. SQLite runs one writer at a time, and a second connection that finds the
/// write lock taken sleeps in SQLite's busy handler (1 ms and up), which would put milliseconds
/// on the gate under load; one connection makes writers queue in the pool instead (each
/// statement takes microseconds). PostgreSQL gets a usual pool.
const SQLITE_POOL: u32 = 1;
const POSTGRES_POOL: u32 = 16;

/// Connects, creating the SQLite file and its folder when needed. SQLite runs in WAL mode with
/// `synchronous = NORMAL` (see docs/architecture.md: a killed process loses nothing committed).
/// Held by the one `serve` process that owns a SQLite file; dropping it (or the process
/// ending, however it ends) releases the file for the next one.
#[derive(Debug)]
pub struct SqliteOwner {
    _lock: std::fs::File,
}

/// Makes this process the owner of the SQLite file at `path`, so that a second `serve` on the
/// same file is refused: the ledger admits out of leases in memory, and two processes that each
/// believe they own the file could not share a limit exactly (PostgreSQL can: see
/// `crate::ledger`). The lock is an OS file lock on `<file>.lock`: the kernel releases it when
/// the process dies, also after `kill -9`.
pub fn own_sqlite(path: &Path) -> Result<SqliteOwner> {
    create_parent(path)?;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| EngineError::Io {
            what: format!("cannot open the lock file {}", lock_path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(SqliteOwner { _lock: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::DatabaseInUse(format!(
            "another llm-quota serve is already using the SQLite database {} (lock {}): stop it \
             first, give this one its own DATABASE_URL, or use PostgreSQL to run several \
             instances on one database",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(EngineError::Io {
            what: format!("cannot lock {}", lock_path.display()),
            source,
        }),
    }
}

pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection> {
    let raw = match url {
        DatabaseUrl::Sqlite(path) => return connect_sqlite(path).await,
        DatabaseUrl::Postgres(raw) => raw,
    };
    let mut options = ConnectOptions::new(raw.clone());
    // Short: a database that is down must fail requests fast (they are refused with a
    // message), not hold each of them for long; the pool reconnects by itself once it is back.
    let wait = Duration::from_secs(1);
    options
        .max_connections(POSTGRES_POOL)
        .min_connections(1)
        .acquire_timeout(wait)
        .connect_timeout(wait)
        .idle_timeout(IDLE_TIMEOUT)
        // sqlx pings a pooled connection before handing it out by default: one more round
        // trip per statement on the hot path, for a pool it manages itself.
        .test_before_acquire(false)
        .sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

/// Pooled connections unused this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The SQLite pool, built with sqlx directly for its acquire hook: a connection still inside a
/// transaction when it is next handed out is closed instead of reused.
///
/// Why: when a write fails with `SQLITE_FULL` (a full disk) or an I/O error, SQLite may roll
/// the transaction back by itself; the `ROLLBACK` that follows then fails, and sqlx keeps
/// counting the connection as one transaction deep. Its next transactions become savepoints,
/// and after the next failure a `ROLLBACK TO` leaves a transaction open for good: every
/// later "commit" only releases a savepoint inside it, the gateway reads its own writes back,
/// and nothing reaches the file (seen: usage stuck at the count of the moment the disk filled,
/// and lost at exit). A fresh connection has no such state.
async fn connect_sqlite(path: &Path) -> Result<DatabaseConnection> {
    use sea_orm::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    use sea_orm::sqlx::{ConnectOptions as _, Sqlite, TransactionManager as _};
    create_parent(path)?;
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .create_if_missing(true)
        // A checkpoint syncs the files (milliseconds on a VM disk); left to SQLite it runs
        // inside whichever commit crosses 1000 pages, and that request waits. The gateway
        // checkpoints from a task of its own instead ([`checkpoint_forever`]); one-shot CLI
        // commands leave it to close.
        .pragma("wal_autocheckpoint", "0")
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_POOL)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(IDLE_TIMEOUT)
        .test_before_acquire(false)
        // Checked when the connection is handed out: by then the pool's own ping after the
        // release has flushed any queued ROLLBACK, so the depth is the real one.
        .before_acquire(|conn, _| {
            let depth =
                <Sqlite as sea_orm::sqlx::Database>::TransactionManager::get_transaction_depth(
                    conn,
                );
            if depth > 0 {
                warn_replaced();
            }
            Box::pin(async move { Ok(depth == 0) })
        })
        .connect_with(connect)
        .await
        .map_err(|e| sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))?;
    Ok(sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// Logs a replaced connection at warn at most once a minute (on a full disk every flush
/// fails, a hundred times a second), at debug otherwise.
fn warn_replaced() {
    static THROTTLE: crate::log_throttle::Throttle = crate::log_throttle::Throttle::new();
    if THROTTLE.ready() {
        tracing::warn!("a database connection was left inside a failed transaction; it is replaced (logged at most once a minute)");
    } else {
        tracing::debug!(
            "a database connection was left inside a failed transaction; it is replaced"
        );
    }
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| EngineError::CreateFolder {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// How often [`checkpoint_forever`] moves the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints a SQLite database's WAL every second on a connection of its own, so that the
/// file syncs never happen inside a request's commit (a passive checkpoint does not block
/// writers). Returns at once for PostgreSQL; otherwise runs until the task is dropped.
pub async fn checkpoint_forever(url: &DatabaseUrl) {
    let DatabaseUrl::Sqlite(path) = url else {
        return;
    };
    let mut options = ConnectOptions::new(format!("sqlite://{}", path.display()));
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    options.map_sqlx_sqlite_opts(|s| {
        s.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
    });
    let db = match Database::connect(options).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the checkpoint connection; the WAL will grow");
            return;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) =
            sea_orm::ConnectionTrait::execute_unprepared(&db, "PRAGMA wal_checkpoint(PASSIVE)")
                .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// Creates or upgrades the schema; idempotent.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// Starts a transaction, for a change and its audit-trail entry to land together.
pub async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction> {
    Ok(sea_orm::TransactionTrait::begin(db).await?)
}

/// Commits what [`begin`] started.
pub async fn commit(txn: sea_orm::DatabaseTransaction) -> Result<()> {
    Ok(txn.commit().await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every accepted spelling of a SQLite location maps to the path an operator means.
    #[test]
    fn sqlite_forms() {
        let p = |s: &str| match DatabaseUrl::parse(s).unwrap() {
            DatabaseUrl::Sqlite(p) => p.display().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(p("sqlite://data/llm-quota.db"), "data/llm-quota.db");
        assert_eq!(p("sqlite:///./test.db"), "./test.db");
        assert_eq!(p("sqlite:///test.db"), "test.db");
        assert_eq!(p("sqlite:////var/lib/x.db"), "/var/lib/x.db");
        assert_eq!(p("sqlite:///tmp/x/y.db"), "/tmp/x/y.db");
        assert_eq!(p("sqlite://data/x.db?mode=rwc"), "data/x.db");
        assert_eq!(p("sqlite:x.db"), "x.db");
    }

    /// PostgreSQL URLs pass, unknown schemes and empty paths are refused with a hint.
    #[test]
    fn other_forms() {
        assert!(DatabaseUrl::parse("postgres://postgres@127.0.0.1/test")
            .unwrap()
            .is_postgres());
        assert!(DatabaseUrl::parse("postgresql://u:p@h/d")
            .unwrap()
            .is_postgres());
        let err = DatabaseUrl::parse("mysql://root@localhost/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sqlite://"), "{err}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    }

    /// Passwords never reach a log line or `config check`.
    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            DatabaseUrl::parse("postgresql://a:b@c/d")
                .unwrap()
                .redacted(),
            "postgresql://a:***@c/d"
        );
    }
}
