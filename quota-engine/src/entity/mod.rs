//! SeaORM entities. They only derive; queries live with what they are about.

pub mod api_key;
pub mod audit_log;
pub mod setting;
pub mod team;
pub mod usage_counter;
pub mod usage_daily;
/// The per-request log of earlier versions: kept, no longer written (see `usage_daily`).
pub mod usage_log;
