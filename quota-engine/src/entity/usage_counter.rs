use sea_orm::entity::prelude::*;

/// The running counters of one key for its current day and month. One row per key holds both
/// periods so that the gate is a single-row, single-statement update. A period column holds the
/// period's label (`2026-11-29`, `2026-11`); when it differs from the current label the counters
/// belong to a past period and count as zero. Usage counts what was used; leases count room
/// that instances hold to admit locally (used + leased never passes a limit).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: i64,
    pub day_period: String,
    pub day_requests: i64,
    pub day_tokens: i64,
    pub month_period: String,
    pub month_requests: i64,
    pub month_tokens: i64,
    /// Room moved out to instances' ledgers and not yet used or given back (see the ledger).
    pub day_leased_requests: i64,
    pub day_leased_tokens: i64,
    pub month_leased_requests: i64,
    pub month_leased_tokens: i64,
    /// GPU time in milliseconds, used and leased, like requests and tokens.
    pub day_gpu_ms: i64,
    pub month_gpu_ms: i64,
    pub day_leased_gpu_ms: i64,
    pub month_leased_gpu_ms: i64,
    /// Bumped by an instance that found no room while others held leases of this key.
    pub lease_demand: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
