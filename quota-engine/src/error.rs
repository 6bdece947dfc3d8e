use thiserror::Error;

/// What can go wrong in the quota engine. Callers branch on the variants; the database's own
/// errors are wrapped in [`EngineError::Database`].
#[derive(Debug, Error)]
pub enum EngineError {
    /// `DATABASE_URL` is not one of the accepted forms.
    #[error("{0}")]
    InvalidDatabaseUrl(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the folder {path} for the SQLite database: {source}")]
    CreateFolder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Input the caller should have validated (a negative limit, an empty name…).
    #[error("{0}")]
    Invalid(String),
    /// Another process serves from this SQLite file.
    #[error("{0}")]
    DatabaseInUse(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The request's periods are older than what the quota has already moved on to (it was
    /// timed just before a midnight, or this instance's clock is behind another's): the
    /// caller takes the periods anew and asks again.
    #[error("the quota periods moved on while the request was admitted; try again")]
    StalePeriods,
    /// No API key with this id.
    #[error("no API key with id {0}")]
    KeyNotFound(i64),
    /// No team with this id.
    #[error("no team with id {0}")]
    TeamNotFound(i64),
    /// The change conflicts with what is stored (a team name taken, a team that keys still
    /// belong to); the message says what to do.
    #[error("{0}")]
    Conflict(String),
    /// Usage cannot be written to the database (it has failed for a while): admission fails
    /// closed until it lands again. Nothing admitted is forgotten meanwhile.
    #[error(
        "usage cannot be written to the database ({0}); requests are refused until it is back"
    )]
    UsageNotLanding(String),
    /// A stored value could not be decoded (a corrupted `allowed_models` or setting).
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}
