//! Runtime overrides of configured values, stored in the database so that every instance
//! sharing it sees them (each instance re-reads them every few seconds).

use chrono::{DateTime, Utc};
use sea_orm::{sea_query::OnConflict, ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::entity::setting;
use crate::{EngineError, Result};

/// The setting names that may be overridden.
pub const OLLAMA_URLS: &str = "ollama_urls";
pub const DEFAULT_MODEL: &str = "default_model";

/// The overrides in force; `None` = use the configured value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub ollama_urls: Option<Vec<String>>,
    pub default_model: Option<String>,
    /// When the newest override was written (for the admin UI).
    pub updated_at: Option<DateTime<Utc>>,
}

/// Reads every override.
pub async fn load(db: &impl ConnectionTrait) -> Result<Overrides> {
    let mut overrides = Overrides::default();
    for row in setting::Entity::find().all(db).await? {
        overrides.updated_at = overrides.updated_at.max(Some(row.updated_at));
        let corrupt =
            |e: serde_json::Error| EngineError::Corrupt(format!("setting {}: {e}", row.name));
        match row.name.as_str() {
            OLLAMA_URLS => {
                overrides.ollama_urls = Some(serde_json::from_str(&row.value).map_err(corrupt)?)
            }
            DEFAULT_MODEL => {
                overrides.default_model = Some(serde_json::from_str(&row.value).map_err(corrupt)?)
            }
            _ => {} // written by a newer version: ignore
        }
    }
    Ok(overrides)
}

/// Stores an override (`Some`) or clears it (`None`).
pub async fn set(
    db: &impl ConnectionTrait,
    name: &str,
    value: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    if name != OLLAMA_URLS && name != DEFAULT_MODEL {
        return Err(EngineError::Invalid(format!(
            "{name}: not a setting that can be overridden"
        )));
    }
    match value {
        None => {
            setting::Entity::delete_by_id(name.to_owned())
                .exec(db)
                .await?;
        }
        Some(value) => {
            let row = setting::ActiveModel {
                name: Set(name.to_owned()),
                value: Set(value.to_string()),
                updated_at: Set(now),
            };
            setting::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(setting::Column::Name)
                        .update_columns([setting::Column::Value, setting::Column::UpdatedAt])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
    }
    Ok(())
}
