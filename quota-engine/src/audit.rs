//! The audit trail: every admin change (keys created, edited, limits changed, activated,
//! deactivated, rotated, deleted; teams created, edited, deleted; settings changed) and every usage alert sent, with the time,
//! who did it (the admin client's address, `cli`, or `gateway`), the key, and the changed values
//! before and after.
//!
//! Callers record an entry in the same transaction as the change it describes, so the trail
//! never misses a change that landed nor shows one that did not. Values come from
//! [`key_settings`], which never holds a secret (the display prefix is not one).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};

use crate::entity::audit_log;
use crate::keys::{ApiKey, Rotated};
use crate::Result;

/// What was done; stored and shown as `key.created`….
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    KeyCreated,
    KeyEdited,
    KeyLimitsChanged,
    KeyActivated,
    KeyDeactivated,
    KeyRotated,
    KeyDeleted,
    TeamCreated,
    TeamEdited,
    TeamDeleted,
    SettingsChanged,
    AlertSent,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::KeyCreated => "key.created",
            Action::KeyEdited => "key.edited",
            Action::KeyLimitsChanged => "key.limits_changed",
            Action::KeyActivated => "key.activated",
            Action::KeyDeactivated => "key.deactivated",
            Action::KeyRotated => "key.rotated",
            Action::KeyDeleted => "key.deleted",
            Action::TeamCreated => "team.created",
            Action::TeamEdited => "team.edited",
            Action::TeamDeleted => "team.deleted",
            Action::SettingsChanged => "settings.changed",
            Action::AlertSent => "alert.sent",
        }
    }
}

/// Who made a change: an admin client's address, or one of these.
pub const CLIENT_CLI: &str = "cli";
pub const CLIENT_GATEWAY: &str = "gateway";

/// One entry as recorded.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub client: String,
    pub action: String,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// An entry to record.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    pub client: &'a str,
    pub action: Action,
    /// The key it is about, if any: (id, name).
    pub key: Option<(i64, &'a str)>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Change<'a> {
    /// A change of `key` from `before` to `after`, keeping only the fields that differ
    /// (instants in `tz`, the operator's zone, as the rest of the admin API shows them).
    pub fn of_key(
        client: &'a str,
        action: Action,
        before: &ApiKey,
        after: &'a ApiKey,
        tz: Tz,
    ) -> Self {
        let (old, new) = changed_fields(&key_settings(before, tz), &key_settings(after, tz));
        Change {
            client,
            action,
            key: Some((after.id, &after.name)),
            before: Some(old),
            after: Some(new),
        }
    }

    /// A key created with these settings.
    pub fn created(client: &'a str, key: &'a ApiKey, tz: Tz) -> Self {
        Change {
            client,
            action: Action::KeyCreated,
            key: Some((key.id, &key.name)),
            before: None,
            after: Some(key_settings(key, tz)),
        }
    }

    /// A team created (`before` `None`), edited, or deleted (`after` `None`): its settings,
    /// only the fields that differ for an edit. The entry names the team in its values.
    pub fn of_team(
        client: &'a str,
        before: Option<&crate::Team>,
        after: Option<&crate::Team>,
    ) -> Self {
        let (action, old, new) = match (before, after) {
            (None, Some(team)) => (Action::TeamCreated, None, Some(team_settings(team))),
            (Some(team), None) => (Action::TeamDeleted, Some(team_settings(team)), None),
            (Some(b), Some(a)) => {
                let (mut old, mut new) = changed_fields(&team_settings(b), &team_settings(a));
                // Which team, also when its name did not change.
                for (side, team) in [(&mut old, b), (&mut new, a)] {
                    if let Value::Object(map) = side {
                        map.insert("team_id".into(), team.id.into());
                        map.entry("name")
                            .or_insert_with(|| team.name.clone().into());
                    }
                }
                (Action::TeamEdited, Some(old), Some(new))
            }
            (None, None) => (Action::TeamEdited, None, None),
        };
        Change {
            client,
            action,
            key: None,
            before: old,
            after: new,
        }
    }

    /// A key given a new secret: the display prefixes, and until when the old one works.
    pub fn rotated(client: &'a str, rotated: &'a Rotated, tz: Tz) -> Self {
        let key = &rotated.key;
        Change {
            client,
            action: Action::KeyRotated,
            key: Some((key.id, &key.name)),
            before: Some(serde_json::json!({ "key_prefix": rotated.old_prefix })),
            after: Some(serde_json::json!({
                "key_prefix": key.key_prefix,
                "old_secret_valid_until": key.old_secret_valid_until.map(|t| local(t, tz)),
            })),
        }
    }
}

/// A change and its audit entry in one transaction: both land, or neither. Every audited
/// change of the admin API and the CLI goes through it: [`Audited::begin`], the change made in
/// [`Audited::txn`], then [`Audited::commit`] with what changed.
pub struct Audited {
    txn: sea_orm::DatabaseTransaction,
    now: DateTime<Utc>,
}

impl Audited {
    /// Starts a change made at `now`.
    pub async fn begin(db: &sea_orm::DatabaseConnection, now: DateTime<Utc>) -> Result<Audited> {
        Ok(Audited {
            txn: crate::db::begin(db).await?,
            now,
        })
    }

    /// The transaction to make the change in.
    pub fn txn(&self) -> &sea_orm::DatabaseTransaction {
        &self.txn
    }

    /// When the change is made.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Takes the time anew, after a row lock was taken, so that changes of one row are
    /// stamped (and listed in the audit trail) in the order they commit.
    pub fn restamp(&mut self) -> DateTime<Utc> {
        self.now = Utc::now();
        self.now
    }

    /// Records `change` in the audit trail and commits it with the change.
    pub async fn commit(self, change: Change<'_>) -> Result<()> {
        record(&self.txn, change, self.now).await?;
        crate::db::commit(self.txn).await
    }
}

/// Records `change` at `now` (alone: a delivered alert; changes go through [`Audited`]).
pub async fn record(
    db: &impl ConnectionTrait,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let text = |v: Option<Value>| v.map(|v| v.to_string());
    audit_log::ActiveModel {
        at: Set(now),
        client: Set(change.client.to_owned()),
        action: Set(change.action.as_str().to_owned()),
        key_id: Set(change.key.map(|(id, _)| id)),
        key_name: Set(change.key.map(|(_, name)| name.to_owned())),
        before: Set(text(change.before)),
        after: Set(text(change.after)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Which entries to read, newest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// At most this many (the caller bounds it).
    pub limit: u64,
    /// Only entries with an id below this one (the last id of the previous page).
    pub before: Option<i64>,
    /// Only entries about this key.
    pub key_id: Option<i64>,
    /// Only entries of this action.
    pub action: Option<Action>,
}

/// A page of entries, newest first. Uses the primary key (and `idx_audit_log_key` for one key).
pub async fn page(db: &impl ConnectionTrait, page: Page) -> Result<Vec<AuditEntry>> {
    let mut query = audit_log::Entity::find();
    if let Some(before) = page.before {
        query = query.filter(audit_log::Column::Id.lt(before));
    }
    if let Some(key_id) = page.key_id {
        query = query.filter(audit_log::Column::KeyId.eq(key_id));
    }
    if let Some(action) = page.action {
        query = query.filter(audit_log::Column::Action.eq(action.as_str()));
    }
    let rows = query
        .order_by_desc(audit_log::Column::Id)
        .limit(page.limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(decode).collect())
}

/// Entries of `action` recorded at or after `since`, oldest first (alerts already sent).
pub async fn since(
    db: &impl ConnectionTrait,
    action: Action,
    since: DateTime<Utc>,
) -> Result<Vec<AuditEntry>> {
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action.as_str()))
        .filter(audit_log::Column::At.gte(since))
        .order_by_asc(audit_log::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(decode).collect())
}

fn decode(row: audit_log::Model) -> AuditEntry {
    // Written by `record` as JSON; a row edited by hand into something else is shown as text.
    let json =
        |text: Option<String>| text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)));
    AuditEntry {
        id: row.id,
        at: row.at,
        client: row.client,
        action: row.action,
        key_id: row.key_id,
        key_name: row.key_name,
        before: json(row.before),
        after: json(row.after),
    }
}

/// RFC 3339 in `tz`.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339()
}

/// A key's settings as the audit trail shows them (the key object's names, instants in `tz`,
/// no usage, no secret).
pub fn key_settings(key: &ApiKey, tz: Tz) -> Value {
    serde_json::json!({
        "name": key.name,
        "key_prefix": key.key_prefix,
        "is_active": key.is_active,
        "expires_at": key.expires_at.map(|t| local(t, tz)),
        "daily_token_limit": key.limits.daily_tokens,
        "monthly_token_limit": key.limits.monthly_tokens,
        "daily_request_limit": key.limits.daily_requests,
        "monthly_request_limit": key.limits.monthly_requests,
        // Seconds, as the key object shows them.
        "daily_gpu_seconds_limit": key.limits.daily_gpu_ms.map(crate::key_view::seconds::of),
        "monthly_gpu_seconds_limit": key.limits.monthly_gpu_ms.map(crate::key_view::seconds::of),
        "requests_per_minute": key.pacing.requests_per_minute,
        "tokens_per_minute": key.pacing.tokens_per_minute,
        "max_parallel_requests": key.pacing.max_parallel_requests,
        "priority": key.pacing.priority,
        "allowed_models": key.allowed_models,
        "allow_web_search": key.allow_web_search,
        "old_secret_valid_until": key.old_secret_valid_until.map(|t| local(t, tz)),
        "team": key.team.as_ref().map(|t| t.name.clone()),
    })
}

/// A team's settings as the audit trail shows them (the team object's names, no usage).
pub fn team_settings(team: &crate::Team) -> Value {
    serde_json::json!({
        "team_id": team.id,
        "name": team.name,
        "description": team.description,
        "daily_token_limit": team.limits.daily_tokens,
        "monthly_token_limit": team.limits.monthly_tokens,
        "daily_request_limit": team.limits.daily_requests,
        "monthly_request_limit": team.limits.monthly_requests,
        "daily_gpu_seconds_limit": team.limits.daily_gpu_ms.map(crate::key_view::seconds::of),
        "monthly_gpu_seconds_limit": team.limits.monthly_gpu_ms.map(crate::key_view::seconds::of),
        "requests_per_minute": team.pacing.requests_per_minute,
        "tokens_per_minute": team.pacing.tokens_per_minute,
        "max_parallel_requests": team.pacing.max_parallel_requests,
        "priority": team.pacing.priority,
        "allowed_models": team.allowed_models,
    })
}

/// The fields of two JSON objects that differ: (their values in `before`, in `after`). A field
/// missing on one side is `null` there. Anything but two objects is returned whole.
pub fn changed_fields(before: &Value, after: &Value) -> (Value, Value) {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return (before.clone(), after.clone());
    };
    let mut old = Map::new();
    let mut new = Map::new();
    for name in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
        let was = b.get(name).unwrap_or(&Value::Null);
        let is = a.get(name).unwrap_or(&Value::Null);
        if was != is {
            old.insert(name.clone(), was.clone());
            new.insert(name.clone(), is.clone());
        }
    }
    (Value::Object(old), Value::Object(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Only changed fields are kept, on both sides; added and removed fields show as null.
    #[test]
    fn changed_fields_keep_only_differences() {
        let (b, a) = changed_fields(
            &json!({"name": "a", "daily_token_limit": 10, "gone": 1}),
            &json!({"name": "a", "daily_token_limit": null, "new": [1]}),
        );
        assert_eq!(b, json!({"daily_token_limit": 10, "gone": 1, "new": null}));
        assert_eq!(
            a,
            json!({"daily_token_limit": null, "gone": null, "new": [1]})
        );
        let (b, a) = changed_fields(&json!(1), &json!(2));
        assert_eq!((b, a), (json!(1), json!(2)));
    }
}
