//! Usage alerts (docs/operations.md, "Alerts"): when a key's or a team's usage first crosses a
//! threshold of one of its limits in a period, one JSON POST to `alerts.webhook_url`, and (for
//! keys) the gauge `llm_quota_key_usage_ratio{api_key,limit}` for Alertmanager.
//!
//! Nothing here is on the request path. A scan every `alerts.scan_interval_seconds` reads the
//! keys and teams that have a limit and their counters (four queries), updates the gauge and finds new
//! crossings; a sender task delivers them one at a time with retries, through a bounded
//! queue, so a slow or dead receiver never holds up a request or the scan. Each crossing (of a
//! threshold of a limit's value in a period) is sent once per instance and recorded in the
//! audit trail (`alert.sent`) when delivered; one that could not be delivered is tried again
//! at later scans, [`RETRY_AFTER`] apart and more. At start the trail tells which crossings of
//! the current periods were already sent, so a restart does not repeat them. Delivery errors
//! never name the webhook's URL: its path is a secret (Slack's is).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pingora::server::ShutdownWatch;
use quota_engine::audit::{self, Action, Change, CLIENT_GATEWAY};
use quota_engine::gate::{self, AccountId, Counters, LimitKind};
use quota_engine::{keys, teams, ApiKey, Limits, PeriodKeys, Team};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::state::AppState;

/// An undelivered crossing is tried again this long after it failed, doubling up to
/// [`MAX_RETRY_AFTER`].
const RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// A full delivery queue is logged at most this often.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);
/// Alerts waiting for delivery; a crossing that finds the queue full is tried at a later scan.
const QUEUE: usize = 256;
/// Delivery attempts per alert, the wait before the second (doubling after), and the time
/// one attempt may take.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whose limits a scan compares with usage: a key's, or a team's (all its keys together).
#[derive(Clone, Debug, PartialEq)]
pub struct Watched {
    pub account: AccountId,
    pub name: String,
    /// The key's display prefix; `None` for a team.
    pub prefix: Option<String>,
    pub limits: Limits,
}

impl Watched {
    pub fn key(key: &ApiKey) -> Watched {
        Watched {
            account: AccountId::Key(key.id),
            name: key.name.clone(),
            prefix: Some(key.key_prefix.clone()),
            limits: key.limits,
        }
    }

    pub fn team(team: &Team) -> Watched {
        Watched {
            account: AccountId::Team(team.id),
            name: team.name.clone(),
            prefix: None,
            limits: team.limits,
        }
    }

    fn is_team(&self) -> bool {
        matches!(self.account, AccountId::Team(_))
    }
}

/// The JSON body of one alert. `text` is what Slack and Mattermost show as the message. A
/// key's alert names the key (`key_name`, `key_prefix`), a team's the team (`team`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    #[serde(skip)]
    pub account: AccountId,
    #[serde(skip)]
    pub kind: LimitKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// `daily_tokens`, `monthly_tokens`, `daily_requests`, `monthly_requests`,
    /// `daily_gpu_seconds` or `monthly_gpu_seconds`; `team_` before it for a team's limit.
    pub limit: String,
    /// The threshold crossed, a fraction of the limit.
    pub threshold: f64,
    /// Used and the limit, in the limit's unit (GPU time: milliseconds).
    pub used: i64,
    pub limit_value: i64,
    /// `2026-12-01` for a daily limit, `2026-12` for a monthly one.
    pub period: String,
    pub resets_at: String,
    pub text: String,
}

/// One crossing: (key or team, limit, the limit's value, threshold as bits). A limit changed
/// in a period gets crossings of its own.
type Slot = (AccountId, LimitKind, i64, u64);

/// Slot → the period it was last sent (or queued) for.
type Sent = HashMap<Slot, String>;

fn slot(alert: &Alert) -> Slot {
    (
        alert.account,
        alert.kind,
        alert.limit_value,
        alert.threshold.to_bits(),
    )
}

/// What one scan found: the gauge's values and the new crossings.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// (key prefix, limit label, used / limit)
    pub ratios: Vec<(String, &'static str, f64)>,
    pub crossings: Vec<Alert>,
}

/// Compares every watched key's and team's usage with its limits. A crossing already in
/// `sent` for the same period is not repeated; new ones are added to `sent`. Limits of 0 (a
/// key shut off on purpose) have no ratio and no alerts. The gauge's ratios are the keys'.
pub fn scan(
    watched: &[Watched],
    counters: &HashMap<AccountId, Counters>,
    periods: &PeriodKeys,
    thresholds: &[f64],
    sent: &mut Sent,
) -> Scan {
    let mut out = Scan::default();
    for key in watched {
        let used_now = counters.get(&key.account).copied().unwrap_or_default();
        for (kind, limit) in key.limits.each() {
            let Some(limit) = limit.filter(|l| *l > 0) else {
                continue;
            };
            let used = used_now.used(kind);
            #[allow(clippy::cast_precision_loss)] // limits and usage are far below 2^52
            let ratio = used as f64 / limit as f64;
            if let Some(prefix) = &key.prefix {
                out.ratios.push((prefix.clone(), kind.label(), ratio));
            }
            let (period, resets_at) = if kind.is_daily() {
                (&periods.day, periods.day_resets_at)
            } else {
                (&periods.month, periods.month_resets_at)
            };
            for &threshold in thresholds {
                if ratio < threshold {
                    continue;
                }
                let slot = (key.account, kind, limit, threshold.to_bits());
                if sent.get(&slot) == Some(period) {
                    continue;
                }
                sent.insert(slot, period.clone());
                out.crossings
                    .push(alert(key, kind, threshold, used, limit, period, resets_at));
            }
        }
    }
    out
}

fn alert(
    key: &Watched,
    kind: LimitKind,
    threshold: f64,
    used: i64,
    limit: i64,
    period: &str,
    resets_at: DateTime<Tz>,
) -> Alert {
    let percent = (threshold * 100.0).round();
    // GPU time reads as seconds (`12.500 s`); the body's numbers stay in its milliseconds.
    let (used_text, limit_text) = if kind.is_gpu() {
        (kind.amount(used), kind.amount(limit) + " of GPU time")
    } else if kind.is_requests() {
        (used.to_string(), format!("{limit} requests"))
    } else {
        (used.to_string(), format!("{limit} tokens"))
    };
    let (who, label) = match &key.prefix {
        Some(prefix) => (
            format!("key \"{}\" ({prefix})", key.name),
            kind.label().to_owned(),
        ),
        None => (
            format!("team \"{}\"", key.name),
            format!("team_{}", kind.label()),
        ),
    };
    Alert {
        account: key.account,
        kind,
        key_name: key.prefix.as_ref().map(|_| key.name.clone()),
        key_prefix: key.prefix.clone(),
        team: key.is_team().then(|| key.name.clone()),
        limit: label,
        threshold,
        used,
        limit_value: limit,
        period: period.to_owned(),
        resets_at: resets_at.to_rfc3339(),
        text: format!(
            "llm-quota: {who} has crossed {percent}% of its {}: {used_text} of {limit_text} used in {period}; it resets at {}",
            kind.noun(),
            resets_at.to_rfc3339()
        ),
    }
}

/// The crossings of the current periods already delivered, from the audit trail.
async fn already_sent(state: &AppState, periods: &PeriodKeys) -> Sent {
    let mut sent = Sent::new();
    let since = periods.month_start.with_timezone(&Utc);
    let entries = match audit::since(&state.db, Action::AlertSent, since).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "alerts: cannot read the alerts already sent; crossings of this period may be sent again");
            return sent;
        }
    };
    for entry in entries {
        let Some(after) = entry.after else {
            continue;
        };
        let team_id = after.get("team_id").and_then(serde_json::Value::as_i64);
        let Some(account) = entry
            .key_id
            .map(AccountId::Key)
            .or(team_id.map(AccountId::Team))
        else {
            continue;
        };
        if after.get("delivered").and_then(serde_json::Value::as_bool) == Some(false) {
            continue; // recorded by an earlier version: not delivered, so not sent
        }
        let limit = after
            .get("limit")
            .and_then(|v| v.as_str())
            .map(|l| l.strip_prefix("team_").unwrap_or(l));
        let kind = LimitKind::ALL
            .into_iter()
            .find(|k| Some(k.label()) == limit);
        let value = after.get("limit_value").and_then(serde_json::Value::as_i64);
        let threshold = after.get("threshold").and_then(serde_json::Value::as_f64);
        let period = after.get("period").and_then(|v| v.as_str());
        if let (Some(kind), Some(value), Some(threshold), Some(period)) =
            (kind, value, threshold, period)
        {
            sent.insert(
                (account, kind, value, threshold.to_bits()),
                period.to_owned(),
            );
        }
    }
    sent
}

/// An undelivered crossing: when it may be tried again, the wait that led there, and the
/// period it belongs to (a retry never carries over into the next period).
#[derive(Clone, Debug, PartialEq)]
struct Retry {
    at: Instant,
    backoff: Duration,
    period: String,
}

/// What the scan and the sender share: the crossings sent or queued, and the undelivered ones
/// waiting for a retry. Both sides act only on entries of the alert's own period.
#[derive(Debug, Default)]
struct Deliveries {
    sent: Sent,
    retry: HashMap<Slot, Retry>,
}

impl Deliveries {
    /// Forgets everything of periods that are over (deleted keys and old limit values go
    /// with them), so the maps stay as large as the current periods' crossings.
    fn prune(&mut self, periods: &PeriodKeys) {
        let current = |p: &String| *p == periods.day || *p == periods.month;
        self.sent.retain(|_, period| current(period));
        self.retry.retain(|_, r| current(&r.period));
    }

    /// Whether a crossing just found must wait for its retry; if so it is found again later.
    fn must_wait(&mut self, alert: &Alert, now: Instant) -> bool {
        let slot = slot(alert);
        let waiting = self
            .retry
            .get(&slot)
            .is_some_and(|r| r.period == alert.period && r.at > now);
        if waiting {
            self.sent.remove(&slot);
        }
        waiting
    }

    /// The queue had no room: found again at the next scan.
    fn not_queued(&mut self, alert: &Alert) {
        self.forget(alert);
    }

    fn forget(&mut self, alert: &Alert) {
        let slot = slot(alert);
        if self.sent.get(&slot) == Some(&alert.period) {
            self.sent.remove(&slot);
        }
    }

    fn delivered(&mut self, alert: &Alert) {
        let slot = slot(alert);
        if self
            .retry
            .get(&slot)
            .is_some_and(|r| r.period == alert.period)
        {
            self.retry.remove(&slot);
        }
    }

    /// Not delivered: found again after the returned wait (30 s, doubling to 10 min).
    fn failed(&mut self, alert: &Alert, now: Instant) -> Duration {
        let slot = slot(alert);
        self.forget(alert);
        let backoff = match self.retry.get(&slot) {
            Some(r) if r.period == alert.period => (r.backoff * 2).min(MAX_RETRY_AFTER),
            _ => RETRY_AFTER,
        };
        self.retry.insert(
            slot,
            Retry {
                at: now + backoff,
                backoff,
                period: alert.period.clone(),
            },
        );
        backoff
    }
}

/// Runs the scan (and, with a webhook, the sender) until shutdown.
pub async fn run(state: Arc<AppState>, mut shutdown: ShutdownWatch) {
    let thresholds = state.config.alerts.thresholds.clone();
    let shared = Arc::new(parking_lot::Mutex::new(Deliveries {
        sent: already_sent(&state, &state.config.periods.at(Utc::now())).await,
        retry: HashMap::new(),
    }));
    let outbox = state.config.alerts.webhook_url.clone().map(|url| {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(
            Arc::clone(&state),
            Arc::clone(&shared),
            url,
            rx,
        ));
        tx
    });
    let mut shown: HashSet<(String, &'static str)> = HashSet::new();
    let mut last_full_warning: Option<Instant> = None;
    let mut tick = tokio::time::interval(state.config.alerts.scan_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let periods = state.config.periods.at(Utc::now());
        let read = async {
            let mut watched: Vec<Watched> = keys::list_with_limits(&state.db)
                .await?
                .iter()
                .map(Watched::key)
                .collect();
            watched.extend(
                teams::list(&state.db)
                    .await?
                    .iter()
                    .filter(|t| t.limits.each().iter().any(|(_, l)| l.is_some()))
                    .map(Watched::team),
            );
            let mut counters: HashMap<AccountId, Counters> =
                gate::all_counters(&state.db, &periods)
                    .await?
                    .into_iter()
                    .map(|(id, c)| (AccountId::Key(id), c))
                    .collect();
            counters.extend(
                gate::all_team_counters(&state.db, &periods)
                    .await?
                    .into_iter()
                    .map(|(id, c)| (AccountId::Team(id), c)),
            );
            Ok::<_, quota_engine::EngineError>((watched, counters))
        };
        let (all, counters) = match read.await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "alerts: cannot read usage; trying again at the next scan");
                continue;
            }
        };
        // Without a webhook nothing is sent, so nothing is remembered either.
        let mut scratch = Sent::new();
        let found = {
            let mut deliveries = shared.lock();
            deliveries.prune(&periods);
            let target = if outbox.is_some() {
                &mut deliveries.sent
            } else {
                &mut scratch
            };
            scan(&all, &counters, &periods, &thresholds, target)
        };
        update_gauge(&state, &found.ratios, &mut shown);
        let Some(outbox) = &outbox else { continue };
        let now = Instant::now();
        let mut full = 0usize;
        for alert in found.crossings {
            let mut deliveries = shared.lock();
            if deliveries.must_wait(&alert, now) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(alert)) = outbox.try_send(alert) {
                deliveries.not_queued(&alert);
                full += 1;
            }
        }
        if full > 0
            && last_full_warning.is_none_or(|at| now.duration_since(at) >= FULL_WARNING_EVERY)
        {
            last_full_warning = Some(now);
            tracing::warn!(crossings = full, "alerts: the delivery queue is full (the receiver is slow or down); these crossings are tried again at later scans");
        }
    }
}

/// Sets the gauge for every (key, limit) of this scan and removes the series of keys and
/// limits that are gone (deleted keys, cleared limits, rotated prefixes).
fn update_gauge(
    state: &AppState,
    ratios: &[(String, &'static str, f64)],
    shown: &mut HashSet<(String, &'static str)>,
) {
    let gauge = &state.metrics.key_usage_ratio;
    let mut now_shown = HashSet::with_capacity(ratios.len());
    for (prefix, limit, ratio) in ratios {
        gauge
            .with_label_values(&[prefix.as_str(), limit])
            .set(*ratio);
        now_shown.insert((prefix.clone(), *limit));
    }
    for (prefix, limit) in shown.difference(&now_shown) {
        let _ = gauge.remove_label_values(&[prefix.as_str(), limit]);
    }
    *shown = now_shown;
}

/// Delivers queued alerts one at a time, each with retries. A delivered alert is recorded in
/// the audit trail; one that is not is handed back to the scan for a later try.
async fn deliver_all(
    state: Arc<AppState>,
    shared: Arc<parking_lot::Mutex<Deliveries>>,
    url: url::Url,
    mut rx: mpsc::Receiver<Alert>,
) {
    let client = match webhook_client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "alerts: cannot build the HTTP client; no alerts are sent");
            return;
        }
    };
    while let Some(alert) = rx.recv().await {
        match deliver(&client, &url, &alert, ATTEMPTS, FIRST_BACKOFF).await {
            Ok(attempts) => {
                tracing::info!(key = ?alert.key_prefix, team = ?alert.team, limit = %alert.limit, threshold = alert.threshold, attempts, "alert sent");
                shared.lock().delivered(&alert);
                record(&state, &alert).await;
            }
            Err(e) => {
                let backoff = shared.lock().failed(&alert, Instant::now());
                tracing::warn!(key = ?alert.key_prefix, team = ?alert.team, limit = %alert.limit, threshold = alert.threshold, error = %e, retry_in_seconds = backoff.as_secs(), "alert not delivered after {ATTEMPTS} attempts; tried again later");
            }
        }
    }
}

/// The webhook's HTTP client: a timeout per try, and no redirects (a redirect would re-send
/// the alert wherever the receiver points, internal addresses included; a 3xx is a failed
/// delivery instead).
fn webhook_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("llm-quota/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// POSTs `alert` until the receiver answers 2xx: the attempts it took, or the last error
/// (without the URL, whose path is a secret).
async fn deliver(
    client: &reqwest::Client,
    url: &url::Url,
    alert: &Alert,
    attempts: u32,
    first_backoff: Duration,
) -> Result<u32, String> {
    let mut backoff = first_backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        match client.post(url.clone()).json(alert).send().await {
            Ok(answer) if answer.status().is_success() => return Ok(attempt),
            Ok(answer) => last = format!("the receiver answered {}", answer.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(last)
}

async fn record(state: &AppState, alert: &Alert) {
    let mut after = serde_json::json!({
        "limit": alert.limit,
        "threshold": alert.threshold,
        "used": alert.used,
        "limit_value": alert.limit_value,
        "period": alert.period,
        "delivered": true,
    });
    // A team's alert names the team in its values (entries name keys only).
    if let (AccountId::Team(team_id), Some(name)) = (alert.account, &alert.team) {
        after["team_id"] = team_id.into();
        after["team"] = name.as_str().into();
    }
    let key = match (alert.account, &alert.key_name) {
        (AccountId::Key(id), Some(name)) => Some((id, name.as_str())),
        _ => None,
    };
    let change = Change {
        client: CLIENT_GATEWAY,
        action: Action::AlertSent,
        key,
        before: None,
        after: Some(after),
    };
    if let Err(e) = audit::record(&state.db, change, Utc::now()).await {
        tracing::warn!(error = %e, "alerts: cannot record the alert in the audit trail");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use quota_engine::{Pacing, Periods};

    fn key(id: i64, limits: Limits) -> Watched {
        Watched::key(&ApiKey {
            id,
            name: format!("key{id}"),
            key_prefix: format!("sk-{id:08}"),
            is_active: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            expires_at: None,
            limits,
            pacing: Pacing::default(),
            allowed_models: None,
            allow_web_search: false,
            old_secret_valid_until: None,
            secret_valid_until: None,
            team: None,
        })
    }

    /// A GPU-time limit crosses like the others; its message reads in seconds.
    #[test]
    fn gpu_time_crossings_read_in_seconds() {
        let k = key(
            1,
            Limits {
                daily_gpu_ms: Some(3_600_000),
                ..Limits::default()
            },
        );
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let used = HashMap::from([(
            AccountId::Key(1),
            Counters {
                day_gpu_ms: 2_900_500,
                ..Counters::default()
            },
        )]);
        let out = scan(
            std::slice::from_ref(&k),
            &used,
            &periods,
            &[0.8],
            &mut Sent::new(),
        );
        assert_eq!(out.crossings.len(), 1);
        let a = &out.crossings[0];
        assert_eq!(
            (a.limit.as_str(), a.used, a.limit_value),
            ("daily_gpu_seconds", 2_900_500, 3_600_000)
        );
        assert!(
            a.text
                .contains("daily GPU-time quota: 2900.500 s of 3600.000 s of GPU time used"),
            "{}",
            a.text
        );
    }

    /// A team's limit crosses like a key's: the alert names the team (`team_` label, no key
    /// fields in the body), and the gauge, which is per key, gets no series for it.
    #[test]
    fn team_crossings_name_the_team() {
        let team = Watched {
            account: AccountId::Team(7),
            name: "data".into(),
            prefix: None,
            limits: Limits {
                monthly_tokens: Some(1_000),
                ..Default::default()
            },
        };
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let used = HashMap::from([(
            AccountId::Team(7),
            Counters {
                month_tokens: 950,
                ..Counters::default()
            },
        )]);
        let out = scan(&[team], &used, &periods, &[0.8, 1.0], &mut Sent::new());
        assert!(out.ratios.is_empty());
        assert_eq!(out.crossings.len(), 1);
        let a = &out.crossings[0];
        assert_eq!(a.limit, "team_monthly_tokens");
        assert!(
            a.text.starts_with("llm-quota: team \"data\" has crossed 80% of its monthly token quota: 950 of 1000 tokens used"),
            "{}",
            a.text
        );
        let body = serde_json::to_value(a).unwrap();
        assert_eq!(body["team"], "data");
        assert!(body.get("key_name").is_none() && body.get("key_prefix").is_none());
    }

    /// Each threshold is sent once per period: again in a new period, never twice in one.
    #[test]
    fn each_crossing_once_per_period() {
        let k = key(
            1,
            Limits {
                daily_requests: Some(10),
                monthly_tokens: Some(0),
                ..Limits::default()
            },
        );
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let mut sent = Sent::new();
        let used = |n: i64| {
            HashMap::from([(
                AccountId::Key(1),
                Counters {
                    day_requests: n,
                    ..Counters::default()
                },
            )])
        };
        let thresholds = [0.8, 1.0];
        let first = scan(
            std::slice::from_ref(&k),
            &used(7),
            &periods,
            &thresholds,
            &mut sent,
        );
        assert!(first.crossings.is_empty());
        assert_eq!(
            first.ratios,
            vec![("sk-00000001".into(), "daily_requests", 0.7)]
        );
        let second = scan(
            std::slice::from_ref(&k),
            &used(8),
            &periods,
            &thresholds,
            &mut sent,
        );
        assert_eq!(second.crossings.len(), 1);
        let a = &second.crossings[0];
        assert_eq!(
            (a.limit.as_str(), a.threshold, a.used, a.limit_value),
            ("daily_requests", 0.8, 8, 10)
        );
        assert_eq!(a.period, periods.day);
        assert!(
            a.text
                .contains("crossed 80% of its daily request quota: 8 of 10 requests used"),
            "{}",
            a.text
        );
        assert!(scan(
            std::slice::from_ref(&k),
            &used(9),
            &periods,
            &thresholds,
            &mut sent
        )
        .crossings
        .is_empty());
        // Jumping past 1.0 sends that one; 0.8 stays sent.
        let third = scan(
            std::slice::from_ref(&k),
            &used(12),
            &periods,
            &thresholds,
            &mut sent,
        );
        assert_eq!(
            third
                .crossings
                .iter()
                .map(|a| a.threshold)
                .collect::<Vec<_>>(),
            [1.0]
        );
        // A new day: both again.
        let mut next = periods.clone();
        next.day = "2099-01-01".into();
        let fourth = scan(&[k], &used(12), &next, &thresholds, &mut sent);
        assert_eq!(fourth.crossings.len(), 2);
    }

    /// A limit changed during a period gets crossings of its own.
    #[test]
    fn a_changed_limit_alerts_again() {
        let limits = |n| Limits {
            daily_requests: Some(n),
            ..Limits::default()
        };
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let used = |n: i64| {
            HashMap::from([(
                AccountId::Key(1),
                Counters {
                    day_requests: n,
                    ..Counters::default()
                },
            )])
        };
        let mut sent = Sent::new();
        let first = scan(
            &[key(1, limits(2))],
            &used(2),
            &periods,
            &[0.8, 1.0],
            &mut sent,
        );
        assert_eq!(first.crossings.len(), 2);
        let raised = scan(
            &[key(1, limits(10))],
            &used(9),
            &periods,
            &[0.8, 1.0],
            &mut sent,
        );
        assert_eq!(
            raised
                .crossings
                .iter()
                .map(|a| (a.limit_value, a.threshold))
                .collect::<Vec<_>>(),
            [(10, 0.8)]
        );
    }

    fn an_alert() -> Alert {
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let k = key(1, Limits::default());
        alert(
            &k,
            LimitKind::DailyTokens,
            0.8,
            8,
            10,
            &periods.day,
            periods.day_resets_at,
        )
    }

    fn client() -> reqwest::Client {
        webhook_client().unwrap()
    }

    /// A failed delivery's error never holds the webhook's path (Slack's secret).
    #[tokio::test]
    async fn delivery_errors_do_not_name_the_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url =
            url::Url::parse(&format!("http://127.0.0.1:{port}/services/T0/SECRETPATH")).unwrap();
        let e = deliver(&client(), &url, &an_alert(), 2, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(!e.contains("SECRETPATH") && !e.contains("services"), "{e}");
    }

    /// A redirect is not followed: it is a failed delivery.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            url::Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/internal\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let e = deliver(&client(), &url, &an_alert(), 1, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(e.contains("307"), "{e}");
    }

    /// The retry state across a period change: a late failure of one period's alert neither
    /// unmarks the next period's crossing nor makes it wait; a failure waits 30 s, then twice
    /// as long; pruning keeps only the current periods.
    #[test]
    fn retries_stay_in_their_period() {
        let periods = Periods::new(chrono_tz::UTC).at(Utc::now());
        let this_period = an_alert();
        let mut next_period = this_period.clone();
        next_period.period = "2099-01-02".into();
        let mut d = Deliveries::default();
        let now = Instant::now();
        d.sent
            .insert(slot(&next_period), next_period.period.clone());
        assert_eq!(d.failed(&this_period, now), RETRY_AFTER);
        assert_eq!(
            d.sent.get(&slot(&next_period)),
            Some(&next_period.period),
            "another period's stays sent"
        );
        assert!(
            !d.must_wait(&next_period, now),
            "one period's retry does not hold up another period's"
        );
        assert!(d.must_wait(&this_period, now));
        assert_eq!(d.failed(&this_period, now), RETRY_AFTER * 2);
        d.delivered(&next_period);
        assert!(
            d.retry.contains_key(&slot(&this_period)),
            "only its own period's retry goes"
        );
        // Pruning keeps only the current periods.
        d.sent.insert(slot(&this_period), periods.day.clone());
        d.prune(&periods);
        assert!(d.retry.is_empty() || d.retry.values().all(|r| r.period == periods.day));
        assert!(d
            .sent
            .values()
            .all(|p| *p == periods.day || *p == periods.month));
    }
}
