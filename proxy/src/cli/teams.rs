//! `llm-quota teams create|list|update|delete`: teams (one budget shared by several keys)
//! from the command line, audited like the admin API's changes (`cli`).

use chrono::Utc;
use clap::{Args, Subcommand};
use quota_engine::audit::{Audited, Change, CLIENT_CLI};
use quota_engine::gate;
use quota_engine::keys::LimitsPatch;
use quota_engine::pacing::PacingPatch;
use quota_engine::teams::{self, NewTeam, TeamPatch};
use quota_engine::{DatabaseConnection, EngineError, Limits, Pacing, Team};

use super::Failure;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team: one budget shared by every key put in it (keys create --team NAME).
    Create(Box<TeamArgs>),
    /// List teams with their limits, key counts and current usage.
    List {
        /// Print JSON (the admin API's team objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change a team's name, description or limits (`none` makes a limit unlimited).
    Update {
        /// The team's id or name.
        team: String,
        #[command(flatten)]
        args: Box<TeamArgs>,
    },
    /// Delete a team; refused while keys belong to it.
    Delete {
        /// The team's id or name.
        team: String,
    },
}

/// A limit flag's value: a number, or `none` (unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitValue(Option<i64>);

fn parse_limit(raw: &str) -> Result<LimitValue, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("unlimited") {
        return Ok(LimitValue(None));
    }
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(|v| LimitValue(Some(v)))
        .ok_or_else(|| format!("{raw:?}: use a non-negative whole number, or none"))
}

/// GPU seconds (up to three decimals) as milliseconds, or `none`.
fn parse_gpu_limit(raw: &str) -> Result<LimitValue, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("unlimited") {
        return Ok(LimitValue(None));
    }
    let seconds: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of seconds (e.g. 3600 or 1.5), or none"))?;
    gate::gpu_ms_from_seconds("GPU seconds", seconds)
        .map(|ms| LimitValue(Some(ms)))
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    /// The team's name (unique).
    #[arg(long)]
    pub name: Option<String>,
    /// What the team is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Tokens a day, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub daily_tokens: Option<LimitValue>,
    /// Tokens a month, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub monthly_tokens: Option<LimitValue>,
    /// Requests a day, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub daily_requests: Option<LimitValue>,
    /// Requests a month, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub monthly_requests: Option<LimitValue>,
    /// GPU seconds a day (host time × its gpu_weight), up to three decimals.
    #[arg(long, value_name = "SECONDS|none", value_parser = parse_gpu_limit)]
    pub daily_gpu_seconds: Option<LimitValue>,
    /// GPU seconds a month, up to three decimals.
    #[arg(long, value_name = "SECONDS|none", value_parser = parse_gpu_limit)]
    pub monthly_gpu_seconds: Option<LimitValue>,
    /// Requests in any sliding 60 seconds, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub rpm: Option<LimitValue>,
    /// Tokens in any sliding 60 seconds, all the team's keys together.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub tpm: Option<LimitValue>,
    /// Requests of the team's keys in flight at once; more wait.
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub max_parallel: Option<LimitValue>,
    /// The team's weight in the fair queue for busy hosts, 1–10 (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=10))]
    pub priority: Option<u8>,
    /// Models the team's keys may use, comma-separated (default: all local models).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    pub models: Option<Vec<String>>,
}

impl TeamArgs {
    fn limits_patch(&self) -> LimitsPatch {
        LimitsPatch {
            daily_tokens: self.daily_tokens.map(|v| v.0),
            monthly_tokens: self.monthly_tokens.map(|v| v.0),
            daily_requests: self.daily_requests.map(|v| v.0),
            monthly_requests: self.monthly_requests.map(|v| v.0),
            daily_gpu_ms: self.daily_gpu_seconds.map(|v| v.0),
            monthly_gpu_ms: self.monthly_gpu_seconds.map(|v| v.0),
            pacing: PacingPatch {
                requests_per_minute: self.rpm.map(|v| v.0),
                tokens_per_minute: self.tpm.map(|v| v.0),
                max_parallel_requests: self.max_parallel.map(|v| v.0),
                priority: self.priority.map(|p| Some(i64::from(p))),
            },
        }
    }

    fn models(&self) -> Option<Vec<String>> {
        self.models.clone().map(|m| {
            m.into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }
}

/// An engine error as the CLI reports it.
fn failure(e: EngineError) -> Failure {
    match e {
        EngineError::Invalid(m) | EngineError::Conflict(m) => Failure::Usage(m),
        EngineError::TeamNotFound(id) => {
            Failure::Usage(format!("no team with id {id} (see llm-quota teams list)"))
        }
        other => Failure::Runtime(other.into()),
    }
}

/// The team named by `raw`: an id, else a name.
pub async fn find(db: &DatabaseConnection, raw: &str) -> Result<Team, Failure> {
    if let Ok(id) = raw.trim().parse::<i64>() {
        return teams::get(db, id).await.map_err(failure);
    }
    teams::find_by_name(db, raw)
        .await
        .map_err(failure)?
        .ok_or_else(|| Failure::Usage(format!("no team named {raw:?} (see llm-quota teams list)")))
}

pub async fn run(
    cmd: &TeamsCommand,
    db: &DatabaseConnection,
    config: &Config,
) -> Result<(), Failure> {
    let now = Utc::now();
    match cmd {
        TeamsCommand::Create(args) => {
            let Some(name) = args.name.clone() else {
                return Err(Failure::Usage("--name: a team needs a name".into()));
            };
            let limits = args.limits_patch();
            let new = NewTeam {
                name,
                description: args.description.clone(),
                limits: limits.apply_limits(Limits::default()).map_err(failure)?,
                pacing: limits.pacing.apply(Pacing::default()),
                allowed_models: args.models(),
            };
            let audited = Audited::begin(db, now).await.map_err(failure)?;
            let team = teams::create(audited.txn(), &new, now)
                .await
                .map_err(failure)?;
            audited
                .commit(Change::of_team(CLIENT_CLI, None, Some(&team)))
                .await
                .map_err(failure)?;
            out!("created team {} ({:?})", team.id, team.name);
            Ok(())
        }
        TeamsCommand::List { json } => list(db, config, *json).await,
        TeamsCommand::Update { team, args } => {
            let before = find(db, team).await?;
            let patch = TeamPatch {
                name: args.name.clone(),
                description: args
                    .description
                    .clone()
                    .map(|d| Some(d).filter(|d| !d.is_empty())),
                limits: args.limits_patch(),
                allowed_models: args.models().map(Some),
            };
            let audited = Audited::begin(db, now).await.map_err(failure)?;
            let after = teams::patch(audited.txn(), before.id, &patch, now)
                .await
                .map_err(failure)?;
            audited
                .commit(Change::of_team(CLIENT_CLI, Some(&before), Some(&after)))
                .await
                .map_err(failure)?;
            out!("updated team {} ({:?})", after.id, after.name);
            Ok(())
        }
        TeamsCommand::Delete { team } => {
            let found = find(db, team).await?;
            let audited = Audited::begin(db, now).await.map_err(failure)?;
            let team = teams::delete(audited.txn(), found.id)
                .await
                .map_err(failure)?;
            audited
                .commit(Change::of_team(CLIENT_CLI, Some(&team), None))
                .await
                .map_err(failure)?;
            out!("deleted team {} ({:?})", team.id, team.name);
            Ok(())
        }
    }
}

async fn list(db: &DatabaseConnection, config: &Config, json: bool) -> Result<(), Failure> {
    let periods = config.periods.at(Utc::now());
    let all = teams::list(db).await.map_err(failure)?;
    let counts = teams::key_counts(db).await.map_err(failure)?;
    let counters = gate::all_team_counters(db, &periods)
        .await
        .map_err(failure)?;
    let views: Vec<_> = all
        .iter()
        .map(|t| {
            quota_engine::key_view::TeamView::new(
                t,
                counts.get(&t.id).copied().unwrap_or(0),
                counters.get(&t.id).copied().unwrap_or_default(),
                Default::default(),
                &periods,
            )
        })
        .collect();
    if json {
        let text = serde_json::to_string_pretty(&views).map_err(|e| Failure::Runtime(e.into()))?;
        out!("{text}");
        return Ok(());
    }
    if views.is_empty() {
        out!("no teams yet: create one with llm-quota teams create --name NAME");
        return Ok(());
    }
    let used = |used: i64, limit: Option<i64>| match limit {
        Some(l) => format!("{used}/{l}"),
        None => format!("{used}/-"),
    };
    let gpu = |used_ms: i64, limit_ms: Option<i64>| {
        let s = quota_engine::usage_report::seconds;
        match limit_ms {
            Some(l) => format!("{}/{}", s(used_ms), s(l)),
            None => format!("{}/-", s(used_ms)),
        }
    };
    let mut rows = vec![[
        "ID",
        "NAME",
        "KEYS",
        "REQ DAY",
        "REQ MONTH",
        "TOK DAY",
        "TOK MONTH",
        "GPU S DAY",
        "GPU S MONTH",
    ]
    .map(String::from)];
    for v in &views {
        rows.push([
            v.id.to_string(),
            v.name.clone(),
            v.key_count.to_string(),
            used(v.usage.day.requests, v.daily_request_limit),
            used(v.usage.month.requests, v.monthly_request_limit),
            used(v.usage.day.tokens, v.daily_token_limit),
            used(v.usage.month.tokens, v.monthly_token_limit),
            gpu(v.usage.day.gpu_ms, v.daily_gpu_ms_limit),
            gpu(v.usage.month.gpu_ms, v.monthly_gpu_ms_limit),
        ]);
    }
    super::print_rows(&rows);
    Ok(())
}
