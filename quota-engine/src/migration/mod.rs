//! Schema migrations: one file per change, never edited after it lands (SQLite's `ALTER TABLE`
//! is limited, so changes stay additive).

use sea_orm_migration::prelude::*;

mod m20261129_000001_init;
mod m20261201_000001_leases;
mod m20261201_000002_usage_daily;
mod m20261201_000003_pacing;
mod m20261201_000004_ledger_instances;
mod m20261201_000005_team;
mod m20261207_000001_web_search;
mod m20261208_000001_gpu_time_usage;
mod m20261208_000002_gpu_limits;
mod m20261209_000001_teams;

/// Runs every migration in order; `serve` and `migrate` call it.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_init::Migration),
            Box::new(m20261201_000001_leases::Migration),
            Box::new(m20261201_000002_usage_daily::Migration),
            Box::new(m20261201_000003_pacing::Migration),
            Box::new(m20261201_000004_ledger_instances::Migration),
            Box::new(m20261201_000005_team::Migration),
            Box::new(m20261207_000001_web_search::Migration),
            Box::new(m20261208_000001_gpu_time_usage::Migration),
            Box::new(m20261208_000002_gpu_limits::Migration),
            Box::new(m20261209_000001_teams::Migration),
        ]
    }
}
