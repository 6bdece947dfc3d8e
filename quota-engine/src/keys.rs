//! API keys: their material (`sk-…`, SHA-256 digest, display prefix) and their records.
//!
//! The plaintext exists only in the return value of [`create`]; the database holds the digest,
//! so a lookup is one indexed query on `key_hash`.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::entity::{api_key, usage_counter, usage_daily, usage_log};
use crate::gate::Limits;
use crate::pacing::{Pacing, PacingPatch};
use crate::teams::Team;
use crate::{EngineError, Result};
use std::sync::Arc;

/// Random bytes in a key: 32 bytes = 256 bits, 43 URL-safe characters after `sk-`.
const KEY_BYTES: usize = 32;
/// Characters of the plaintext kept for display (`sk-` + 8).
const PREFIX_LEN: usize = 11;

/// A key as the rest of the program sees it (never with its plaintext or digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub key_prefix: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub limits: Limits,
    /// Per-minute limits, the parallel-request cap and the fair-queue priority.
    pub pacing: Pacing,
    /// `None` = every model.
    pub allowed_models: Option<Vec<String>>,
    /// Whether the key may use the web search tools that Ollama runs on the host's ollama.com
    /// account (`web_search` on `/v1/responses`, `web_search_*` on `/v1/messages`).
    pub allow_web_search: bool,
    /// After a rotation with a grace period: until when the previous secret works (it may have
    /// passed; views show it only while it is ahead).
    pub old_secret_valid_until: Option<DateTime<Utc>>,
    /// Set when this value was looked up by the previous secret of a rotated key: that secret
    /// stops working at this instant (checked on every request, like the expiry).
    pub secret_valid_until: Option<DateTime<Utc>>,
    /// The team the key belongs to, as it was when the key was read (`None` = no team).
    pub team: Option<Arc<Team>>,
}

impl ApiKey {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether the secret this value was looked up by was rotated out by `now`.
    pub fn is_rotated_out(&self, now: DateTime<Utc>) -> bool {
        self.secret_valid_until.is_some_and(|t| t <= now)
    }

    /// Whether this key may use `model`. Cloud models run on the Ollama host's own ollama.com
    /// account, so they need to be named explicitly ([`is_cloud_model`]).
    /// A model must be allowed by the key and by its team.
    pub fn allows_model(&self, model: &str) -> bool {
        models_allow(&self.allowed_models, model)
            && self.team.as_ref().is_none_or(|t| t.allows_model(model))
    }

    pub fn team_id(&self) -> Option<i64> {
        self.team.as_ref().map(|t| t.id)
    }
}

/// Whether an allow-list (`None` = every local model) allows `model`.
pub(crate) fn models_allow(allowed: &Option<Vec<String>>, model: &str) -> bool {
    match allowed {
        Some(list) => list.iter().any(|m| model_matches(m, model)),
        None => !is_cloud_model(model),
    }
}

/// `llama3` in an allow-list also allows `llama3:latest`, as Ollama treats them as one model.
/// A cloud model matches an entry naming the same cloud model in any of Ollama's spellings
/// (`kimi:cloud` also allows `KIMI:Cloud `): Ollama sends all of them to the same account.
fn model_matches(allowed: &str, model: &str) -> bool {
    fn canonical(m: &str) -> &str {
        m.strip_suffix(":latest").unwrap_or(m)
    }
    match (cloud_base(model), cloud_base(allowed)) {
        (Some(requested), Some(named)) => requested.eq_ignore_ascii_case(&named),
        (Some(_), None) => false,
        (None, _) => canonical(allowed) == canonical(model),
    }
}

/// Whether Ollama runs `model` on ollama.com rather than on the host, decided as Ollama's
/// `internal/modelref` parses a model reference: the name is trimmed, and the part after its
/// last `:`, trimmed and compared case-insensitively, is `cloud`, or ends in `-cloud` (when it
/// holds no `/`). `:local` forces a local model. A name with two source suffixes
/// (`m:cloud:local`) is an error in Ollama; it counts as cloud here, so it is refused unless
/// named.
pub fn is_cloud_model(model: &str) -> bool {
    cloud_base(model).is_some()
}

/// The model a cloud reference names, without its source suffix (`gpt-oss:120b` for
/// `gpt-oss:120b-CLOUD`); `None` for a local model.
fn cloud_base(model: &str) -> Option<String> {
    match source_suffix(model.trim()) {
        Some((base, Source::Cloud)) => Some(base),
        // Two explicit sources: Ollama refuses the name; never let it pass as local.
        Some((base, Source::Local)) => source_suffix(&base).map(|_| base),
        None => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Local,
    Cloud,
}

/// Ollama's `parseSourceSuffix`: an explicit `:cloud`, `:local` or `:<tag>-cloud` suffix, and
/// the name without it.
fn source_suffix(raw: &str) -> Option<(String, Source)> {
    let idx = raw.rfind(':')?;
    let suffix = raw[idx + 1..].trim();
    if suffix.eq_ignore_ascii_case("cloud") {
        return Some((raw[..idx].to_owned(), Source::Cloud));
    }
    if suffix.eq_ignore_ascii_case("local") {
        return Some((raw[..idx].to_owned(), Source::Local));
    }
    let tag_len = suffix.len().checked_sub("-cloud".len())?;
    // `get` is `None` off a character boundary: such a suffix cannot end in "-cloud".
    let (tag, end) = (suffix.get(..tag_len)?, suffix.get(tag_len..)?);
    if !suffix.contains('/') && end.eq_ignore_ascii_case("-cloud") {
        return Some((format!("{}{tag}", &raw[..=idx]), Source::Cloud));
    }
    None
}

/// What a new key starts with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub limits: Limits,
    pub pacing: Pacing,
    pub allowed_models: Option<Vec<String>>,
    pub allow_web_search: bool,
    /// The team to put the key in (`None` = none).
    pub team_id: Option<i64>,
}

/// An edit of a key's descriptive fields; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub allow_web_search: Option<bool>,
    /// `Some(None)` takes the key out of its team.
    pub team_id: Option<Option<i64>>,
}

/// An edit of a key's limits; `None` leaves a limit as it is, `Some(None)` makes it unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitsPatch {
    pub daily_tokens: Option<Option<i64>>,
    pub monthly_tokens: Option<Option<i64>>,
    pub daily_requests: Option<Option<i64>>,
    pub monthly_requests: Option<Option<i64>>,
    /// GPU-time limits in milliseconds.
    pub daily_gpu_ms: Option<Option<i64>>,
    pub monthly_gpu_ms: Option<Option<i64>>,
    /// The pacing fields, edited with the limits.
    pub pacing: PacingPatch,
}

impl LimitsPatch {
    /// `limits` with this edit applied; a negative limit is refused naming its field.
    pub fn apply_limits(&self, mut limits: Limits) -> Result<Limits> {
        for (field, value, slot) in [
            (
                "daily_token_limit",
                self.daily_tokens,
                &mut limits.daily_tokens,
            ),
            (
                "monthly_token_limit",
                self.monthly_tokens,
                &mut limits.monthly_tokens,
            ),
            (
                "daily_request_limit",
                self.daily_requests,
                &mut limits.daily_requests,
            ),
            (
                "monthly_request_limit",
                self.monthly_requests,
                &mut limits.monthly_requests,
            ),
            (
                "daily_gpu_seconds_limit",
                self.daily_gpu_ms,
                &mut limits.daily_gpu_ms,
            ),
            (
                "monthly_gpu_seconds_limit",
                self.monthly_gpu_ms,
                &mut limits.monthly_gpu_ms,
            ),
        ] {
            if let Some(value) = value {
                if value.is_some_and(|v| v < 0) {
                    return Err(EngineError::Invalid(format!(
                        "{field}: must be a non-negative number or null"
                    )));
                }
                *slot = value;
            }
        }
        Ok(limits)
    }
}

/// Freshly generated key material.
pub struct KeyMaterial {
    pub plaintext: String,
    pub hash: String,
    pub prefix: String,
}

/// Generates `sk-` + 43 URL-safe characters from the operating system's CSPRNG.
pub fn generate() -> KeyMaterial {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let plaintext = format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    KeyMaterial {
        hash: hash_key(&plaintext),
        prefix: plaintext.chars().take(PREFIX_LEN).collect(),
        plaintext,
    }
}

/// The SHA-256 hex digest under which a key is stored.
pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

pub(crate) fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(EngineError::Invalid("name: must not be empty".into()));
    }
    if name.chars().count() > 200 {
        return Err(EngineError::Invalid("name: at most 200 characters".into()));
    }
    Ok(name.to_owned())
}

pub(crate) fn validate_models(models: &Option<Vec<String>>) -> Result<Option<String>> {
    match models {
        None => Ok(None),
        Some(list) => {
            if list.iter().any(|m| m.trim().is_empty()) {
                return Err(EngineError::Invalid(
                    "allowed_models: model names must not be empty".into(),
                ));
            }
            serde_json::to_string(list)
                .map(Some)
                .map_err(|e| EngineError::Invalid(format!("allowed_models: {e}")))
        }
    }
}

/// The pacing fields of a row.
fn pacing_of(m: &api_key::Model) -> Pacing {
    Pacing {
        requests_per_minute: m.requests_per_minute,
        tokens_per_minute: m.tokens_per_minute,
        max_parallel_requests: m.max_parallel_requests,
        priority: i64::from(m.priority),
    }
}

fn decode(m: api_key::Model) -> Result<ApiKey> {
    let pacing = pacing_of(&m);
    let allowed_models =
        match m.allowed_models {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                EngineError::Corrupt(format!("allowed_models of key {}: {e}", m.id))
            })?),
        };
    Ok(ApiKey {
        id: m.id,
        name: m.name,
        key_prefix: m.key_prefix,
        is_active: m.is_active,
        created_at: m.created_at,
        updated_at: m.updated_at,
        expires_at: m.expires_at,
        limits: Limits {
            daily_tokens: m.daily_token_limit,
            monthly_tokens: m.monthly_token_limit,
            daily_requests: m.daily_request_limit,
            monthly_requests: m.monthly_request_limit,
            daily_gpu_ms: m.daily_gpu_ms_limit,
            monthly_gpu_ms: m.monthly_gpu_ms_limit,
        },
        pacing,
        allowed_models,
        allow_web_search: m.allow_web_search,
        // The epoch marks a rotation without grace: no previous secret works.
        old_secret_valid_until: m
            .previous_key_valid_until
            .filter(|t| m.previous_key_hash.is_some() && *t > DateTime::<Utc>::UNIX_EPOCH),
        secret_valid_until: None,
        team: None,
    })
}

/// The team a key is put in must exist.
async fn check_team(db: &impl ConnectionTrait, team_id: Option<i64>) -> Result<Option<Arc<Team>>> {
    match team_id {
        None => Ok(None),
        Some(id) => match crate::teams::get(db, id).await {
            Ok(team) => Ok(Some(Arc::new(team))),
            Err(EngineError::TeamNotFound(_)) => Err(EngineError::Invalid(format!(
                "team_id: no team with id {id}"
            ))),
            Err(e) => Err(e),
        },
    }
}

/// Fills in each key's team (one query for all of them).
async fn with_teams(
    db: &impl ConnectionTrait,
    mut keys: Vec<(ApiKey, Option<i64>)>,
) -> Result<Vec<ApiKey>> {
    if keys.iter().all(|(_, team)| team.is_none()) {
        return Ok(keys.into_iter().map(|(k, _)| k).collect());
    }
    let teams: std::collections::HashMap<i64, Arc<Team>> = crate::teams::list(db)
        .await?
        .into_iter()
        .map(|t| (t.id, Arc::new(t)))
        .collect();
    for (key, team_id) in &mut keys {
        key.team = team_id.and_then(|id| teams.get(&id).cloned());
    }
    Ok(keys.into_iter().map(|(k, _)| k).collect())
}

/// Decodes rows and fills in their teams.
async fn decode_all(db: &impl ConnectionTrait, models: Vec<api_key::Model>) -> Result<Vec<ApiKey>> {
    let keys = models
        .into_iter()
        .map(|m| {
            let team = m.team_id;
            decode(m).map(|k| (k, team))
        })
        .collect::<Result<Vec<_>>>()?;
    with_teams(db, keys).await
}

/// Decodes one row with its team.
async fn decode_one(db: &impl ConnectionTrait, model: api_key::Model) -> Result<ApiKey> {
    let team_id = model.team_id;
    let mut key = decode(model)?;
    if let Some(id) = team_id {
        key.team = crate::teams::get(db, id).await.ok().map(Arc::new);
    }
    Ok(key)
}

/// Creates a key and its counters row; returns the key and its plaintext (shown once).
pub async fn create(
    db: &impl TransactionTrait,
    new: &NewKey,
    now: DateTime<Utc>,
) -> Result<(ApiKey, String)> {
    let name = validate_name(&new.name)?;
    new.limits.validate()?;
    new.pacing.validate()?;
    let allowed_models = validate_models(&new.allowed_models)?;
    let material = generate();
    let txn = db.begin().await?;
    let team = check_team(&txn, new.team_id).await?;
    let model = api_key::ActiveModel {
        name: Set(name),
        key_hash: Set(material.hash),
        key_prefix: Set(material.prefix),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        expires_at: Set(new.expires_at),
        daily_token_limit: Set(new.limits.daily_tokens),
        monthly_token_limit: Set(new.limits.monthly_tokens),
        daily_request_limit: Set(new.limits.daily_requests),
        monthly_request_limit: Set(new.limits.monthly_requests),
        daily_gpu_ms_limit: Set(new.limits.daily_gpu_ms),
        monthly_gpu_ms_limit: Set(new.limits.monthly_gpu_ms),
        requests_per_minute: Set(new.pacing.requests_per_minute),
        tokens_per_minute: Set(new.pacing.tokens_per_minute),
        max_parallel_requests: Set(new.pacing.max_parallel_requests),
        priority: Set(new.pacing.priority_column()),
        allowed_models: Set(allowed_models),
        allow_web_search: Set(new.allow_web_search),
        team_id: Set(new.team_id),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    usage_counter::ActiveModel {
        key_id: Set(model.id),
        day_period: Set(String::new()),
        day_requests: Set(0),
        day_tokens: Set(0),
        month_period: Set(String::new()),
        month_requests: Set(0),
        month_tokens: Set(0),
        day_leased_requests: Set(0),
        day_leased_tokens: Set(0),
        month_leased_requests: Set(0),
        month_leased_tokens: Set(0),
        day_gpu_ms: Set(0),
        month_gpu_ms: Set(0),
        day_leased_gpu_ms: Set(0),
        month_leased_gpu_ms: Set(0),
        lease_demand: Set(0),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let mut key = decode(model)?;
    key.team = team;
    Ok((key, material.plaintext))
}

/// Every key, oldest first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<ApiKey>> {
    let models = api_key::Entity::find()
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await?;
    decode_all(db, models).await
}

/// The keys with at least one of the six limits, oldest first (what usage alerts watch).
pub async fn list_with_limits(db: &impl ConnectionTrait) -> Result<Vec<ApiKey>> {
    let models = api_key::Entity::find()
        .filter(
            Condition::any()
                .add(api_key::Column::DailyTokenLimit.is_not_null())
                .add(api_key::Column::MonthlyTokenLimit.is_not_null())
                .add(api_key::Column::DailyRequestLimit.is_not_null())
                .add(api_key::Column::MonthlyRequestLimit.is_not_null())
                .add(api_key::Column::DailyGpuMsLimit.is_not_null())
                .add(api_key::Column::MonthlyGpuMsLimit.is_not_null()),
        )
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await?;
    decode_all(db, models).await
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<ApiKey> {
    let model = api_key::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(EngineError::KeyNotFound(id))?;
    decode_one(db, model).await
}

/// The key whose secret has digest `hash`, active or not: its current secret, or the previous
/// one of the key's last rotation (then [`ApiKey::secret_valid_until`] says until when; once
/// that has passed, the caller refuses it as rotated). One query on two indexed columns.
pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiKey>> {
    let found = api_key::Entity::find()
        .filter(
            Condition::any()
                .add(api_key::Column::KeyHash.eq(hash))
                .add(api_key::Column::PreviousKeyHash.eq(hash)),
        )
        .one(db)
        .await?;
    let Some(model) = found else {
        return Ok(None);
    };
    if model.key_hash == hash {
        return decode_one(db, model).await.map(Some);
    }
    // A lapsed previous secret is still found, with the instant it lapsed: the caller refuses
    // it saying it was rotated, which tells its holder more than "invalid API key".
    let valid_until = model.previous_key_valid_until.unwrap_or(now);
    let mut key = decode_one(db, model).await?;
    key.secret_valid_until = Some(valid_until);
    Ok(Some(key))
}

/// [`get`] inside a transaction that is about to change the key. On PostgreSQL the row is
/// locked (`FOR UPDATE`) until the transaction ends, so concurrent changes of one key (two
/// rotations from a double click, an edit on another instance) take turns and each starts
/// from the one before; SQLite's single pooled connection serialises them already.
pub async fn get_for_update(db: &impl ConnectionTrait, id: i64) -> Result<ApiKey> {
    decode_one(db, find_for_update(db, id).await?).await
}

async fn find_for_update(db: &impl ConnectionTrait, id: i64) -> Result<api_key::Model> {
    let mut query = api_key::Entity::find_by_id(id);
    if db.get_database_backend() == DbBackend::Postgres {
        // Not FOR UPDATE: that would also conflict with the FOR KEY SHARE lock the usage
        // writers' foreign-key checks take on the key's row.
        query = query.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    query.one(db).await?.ok_or(EngineError::KeyNotFound(id))
}

/// The longest grace period a rotation may give the old secret: 30 days.
pub const MAX_ROTATION_GRACE_SECONDS: u64 = 30 * 24 * 3600;

/// What [`rotate`] did.
pub struct Rotated {
    pub key: ApiKey,
    /// The new secret, shown once.
    pub plaintext: String,
    /// The display prefix of the secret it replaced.
    pub old_prefix: String,
}

/// Gives a key a new secret; it keeps its id, name, limits and usage. The old secret stops
/// working at once (`grace_seconds` 0) or at `now + grace_seconds`; a secret rotated out
/// earlier stops at once either way (a key has at most one previous secret). Call it inside a
/// transaction: the row is locked for it on PostgreSQL ([`get_for_update`]).
pub async fn rotate(
    db: &impl ConnectionTrait,
    id: i64,
    grace_seconds: u64,
    now: DateTime<Utc>,
) -> Result<Rotated> {
    if grace_seconds > MAX_ROTATION_GRACE_SECONDS {
        return Err(EngineError::Invalid(format!(
            "grace_seconds: at most {MAX_ROTATION_GRACE_SECONDS} (30 days)"
        )));
    }
    let found = find_for_update(db, id).await?;
    let old_prefix = found.key_prefix.clone();
    let old_hash = found.key_hash.clone();
    let material = generate();
    let mut model: api_key::ActiveModel = found.into();
    model.key_hash = Set(material.hash);
    model.key_prefix = Set(material.prefix);
    // Kept also without a grace period, the old secret is then refused as rotated rather than
    // as unknown. Its end is then the Unix epoch, not `now`: a gateway whose clock is behind
    // the one that rotated must not accept it a moment longer.
    let valid_until = if grace_seconds == 0 {
        DateTime::<Utc>::UNIX_EPOCH
    } else {
        now + chrono::Duration::seconds(i64::try_from(grace_seconds).unwrap_or(i64::MAX))
    };
    model.previous_key_hash = Set(Some(old_hash));
    model.previous_key_valid_until = Set(Some(valid_until));
    model.updated_at = Set(now);
    let mut key = decode_one(db, model.update(db).await?).await?;
    // Without a grace period no previous secret works any more.
    key.old_secret_valid_until = key.old_secret_valid_until.filter(|t| *t > now);
    Ok(Rotated {
        key,
        plaintext: material.plaintext,
        old_prefix,
    })
}

/// Keys changed after `since` (for other instances' cache invalidation).
pub async fn changed_since(db: &impl ConnectionTrait, since: DateTime<Utc>) -> Result<Vec<ApiKey>> {
    let models = api_key::Entity::find()
        .filter(api_key::Column::UpdatedAt.gt(since))
        .all(db)
        .await?;
    decode_all(db, models).await
}

async fn load(db: &impl ConnectionTrait, id: i64) -> Result<api_key::ActiveModel> {
    api_key::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Into::into)
        .ok_or(EngineError::KeyNotFound(id))
}

pub async fn set_active(
    db: &impl ConnectionTrait,
    id: i64,
    active: bool,
    now: DateTime<Utc>,
) -> Result<ApiKey> {
    let mut model = load(db, id).await?;
    model.is_active = Set(active);
    model.updated_at = Set(now);
    decode_one(db, model.update(db).await?).await
}

pub async fn update_limits(
    db: &impl ConnectionTrait,
    id: i64,
    patch: &LimitsPatch,
    now: DateTime<Utc>,
) -> Result<ApiKey> {
    let found = api_key::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(EngineError::KeyNotFound(id))?;
    let pacing = patch.pacing.apply(pacing_of(&found));
    pacing.validate()?;
    let limits = patch.apply_limits(decode(found.clone())?.limits)?;
    let mut model: api_key::ActiveModel = found.into();
    model.requests_per_minute = Set(pacing.requests_per_minute);
    model.tokens_per_minute = Set(pacing.tokens_per_minute);
    model.max_parallel_requests = Set(pacing.max_parallel_requests);
    model.priority = Set(pacing.priority_column());
    model.daily_token_limit = Set(limits.daily_tokens);
    model.monthly_token_limit = Set(limits.monthly_tokens);
    model.daily_request_limit = Set(limits.daily_requests);
    model.monthly_request_limit = Set(limits.monthly_requests);
    model.daily_gpu_ms_limit = Set(limits.daily_gpu_ms);
    model.monthly_gpu_ms_limit = Set(limits.monthly_gpu_ms);
    model.updated_at = Set(now);
    decode_one(db, model.update(db).await?).await
}

pub async fn patch(
    db: &impl ConnectionTrait,
    id: i64,
    patch: &KeyPatch,
    now: DateTime<Utc>,
) -> Result<ApiKey> {
    let mut model = load(db, id).await?;
    if let Some(name) = &patch.name {
        model.name = Set(validate_name(name)?);
    }
    if let Some(expires_at) = patch.expires_at {
        model.expires_at = Set(expires_at);
    }
    if let Some(models) = &patch.allowed_models {
        model.allowed_models = Set(validate_models(models)?);
    }
    if let Some(allow) = patch.allow_web_search {
        model.allow_web_search = Set(allow);
    }
    if let Some(team_id) = patch.team_id {
        check_team(db, team_id).await?;
        model.team_id = Set(team_id);
    }
    model.updated_at = Set(now);
    decode_one(db, model.update(db).await?).await
}

/// Deletes a key with its counters and usage. Returns false when there was no such key.
pub async fn delete(db: &impl TransactionTrait, id: i64) -> Result<bool> {
    let txn = db.begin().await?;
    usage_daily::Entity::delete_many()
        .filter(usage_daily::Column::KeyId.eq(id))
        .exec(&txn)
        .await?;
    usage_log::Entity::delete_many()
        .filter(usage_log::Column::KeyId.eq(id))
        .exec(&txn)
        .await?;
    usage_counter::Entity::delete_by_id(id).exec(&txn).await?;
    let deleted = api_key::Entity::delete_by_id(id)
        .exec(&txn)
        .await?
        .rows_affected
        > 0;
    txn.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Keys are `sk-` + 43 URL-safe characters, unique, with an 11-character display prefix,
    /// and stored as the SHA-256 hex digest of the whole plaintext.
    #[test]
    fn key_material() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert!(a.plaintext.starts_with("sk-"));
        let body = &a.plaintext[3..];
        assert_eq!(body.len(), 43);
        assert!(body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(a.prefix, a.plaintext[..11]);
        assert_eq!(a.hash.len(), 64);
        assert_eq!(a.hash, hash_key(&a.plaintext));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// Allow-lists match `:latest` aliases; cloud models need to be named explicitly.
    #[test]
    fn model_rules() {
        let mut key = ApiKey {
            id: 1,
            name: "k".into(),
            key_prefix: "sk-x".into(),
            is_active: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            expires_at: None,
            limits: Limits::default(),
            pacing: Pacing::default(),
            allowed_models: None,
            allow_web_search: false,
            old_secret_valid_until: None,
            secret_valid_until: None,
            team: None,
        };
        assert!(key.allows_model("llama3"));
        assert!(!key.allows_model("gpt-oss:120b-cloud"));
        assert!(!key.allows_model("kimi:cloud"));
        key.allowed_models = Some(vec!["llama3".into(), "kimi:cloud".into()]);
        assert!(key.allows_model("llama3:latest"));
        assert!(key.allows_model("kimi:cloud"));
        assert!(key.allows_model(" KIMI:Cloud "));
        assert!(!key.allows_model("qwen3"));
        assert!(!key.allows_model("kimi2:cloud"));
    }

    /// Cloud references as Ollama's `internal/modelref` parses them (its `modelref_test.go`).
    #[test]
    fn cloud_models_as_ollama_parses_them() {
        for cloud in [
            "kimi:cloud",
            "gpt-oss:120b-cloud",
            "gpt-oss:120b-CLOUD",
            "m:Cloud ",
            " m:CLOUD",
            "m: cloud",
            "ns/m:7b-Cloud",
            "m:cloud:local",
            "gpt-oss:120b-cloud:local",
            "m:\u{e9}-cloud",
        ] {
            assert!(is_cloud_model(cloud), "{cloud:?} is a cloud model");
        }
        for local in [
            "llama3",
            "llama3:latest",
            "gpt-oss-cloud",
            "m:cloud2",
            "m:local",
            "registry:5000/m-cloud",
            "m:\u{e9}",
            "",
            "cloud",
        ] {
            assert!(!is_cloud_model(local), "{local:?} is local");
        }
    }
}
