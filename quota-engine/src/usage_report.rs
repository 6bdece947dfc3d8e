//! Usage reports: requests and tokens over a range of days (of `APP_TZ`), summed by any subset
//! of key, model, day and team (the key's team when the usage was written), read from `usage_daily` (one row per key, day and model) with one
//! `GROUP BY` statement.
//!
//! The range is read through `idx_usage_daily_day`, so a report over a month touches only that
//! month's rows; docs/performance.md has the time for a month of ten million requests.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Statement, Value};

use crate::usage_log::GpuTime;
use crate::Result;

/// What rows are summed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub key: bool,
    pub model: bool,
    pub day: bool,
    pub team: bool,
}

impl GroupBy {
    /// Every dimension: one row per key, model and day.
    pub const ALL: GroupBy = GroupBy {
        key: true,
        model: true,
        day: true,
        team: false,
    };

    /// Parses `key,model,day,team` (any subset, any order; empty = a grand total).
    pub fn parse(text: &str) -> std::result::Result<GroupBy, String> {
        let mut group = GroupBy::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "key" => group.key = true,
                "model" => group.model = true,
                "day" => group.day = true,
                "team" => group.team = true,
                other => {
                    return Err(format!(
                        "unknown dimension {other:?}; use any of key, model, day, team, \
                         comma-separated"
                    ))
                }
            }
        }
        Ok(group)
    }
}

/// One row of a report; a dimension not grouped by is `None`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReportRow {
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    /// Grouped by team: the team (`None` for usage of keys in no team).
    pub team_id: Option<i64>,
    pub team_name: Option<String>,
    pub model: Option<String>,
    pub date: Option<String>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub gpu: GpuTime,
}

/// Usage from `from` to `to` (inclusive) summed by `group`, ordered by day, key id and model.
/// Groups without requests are left out; keys deleted since are gone with their usage. With
/// `team_id`, only the usage written while keys belonged to that team.
pub async fn report(
    db: &impl ConnectionTrait,
    from: NaiveDate,
    to: NaiveDate,
    group: GroupBy,
    team_id: Option<i64>,
) -> Result<Vec<ReportRow>> {
    let mut select = Vec::new();
    let mut group_cols = Vec::new();
    let mut order = Vec::new();
    if group.day {
        select.push("u.day AS day");
        group_cols.push("u.day");
        order.push("u.day");
    }
    if group.key {
        select.push("u.key_id AS key_id, k.name AS key_name");
        group_cols.push("u.key_id, k.name");
        order.push("u.key_id");
    }
    if group.team {
        select.push("u.team_id AS team_id, t.name AS team_name");
        group_cols.push("u.team_id, t.name");
        order.push("t.name");
    }
    if group.model {
        select.push("u.model AS model");
        group_cols.push("u.model");
        order.push("u.model");
    }
    // PostgreSQL sums BIGINT into NUMERIC; the cast keeps every backend's answer an integer.
    select.push(
        "CAST(SUM(u.requests) AS BIGINT) AS requests, \
         CAST(SUM(u.prompt_tokens) AS BIGINT) AS prompt_tokens, \
         CAST(SUM(u.completion_tokens) AS BIGINT) AS completion_tokens, \
         CAST(SUM(u.gpu_ms) AS BIGINT) AS gpu_ms, \
         CAST(SUM(u.load_ms) AS BIGINT) AS load_ms, \
         CAST(SUM(u.prompt_eval_ms) AS BIGINT) AS prompt_eval_ms, \
         CAST(SUM(u.eval_ms) AS BIGINT) AS eval_ms",
    );
    let mut sql = format!(
        "SELECT {} FROM usage_daily u LEFT JOIN api_keys k ON k.id = u.key_id \
         LEFT JOIN teams t ON t.id = u.team_id \
         WHERE u.day >= $1 AND u.day <= $2",
        select.join(", ")
    );
    let label = |d: NaiveDate| Value::from(d.format("%Y-%m-%d").to_string());
    let mut values = vec![label(from), label(to)];
    if let Some(team_id) = team_id {
        values.push(team_id.into());
        sql.push_str(" AND u.team_id = $3");
    }
    if !group_cols.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", group_cols.join(", ")));
    }
    sql.push_str(" HAVING SUM(u.requests) > 0");
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    let rows = db
        .query_all(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let text = |name: &str, grouped: bool| -> Result<Option<String>> {
                Ok(if grouped {
                    row.try_get::<Option<String>>("", name)?
                } else {
                    None
                })
            };
            Ok(ReportRow {
                key_id: if group.key {
                    Some(row.try_get::<i64>("", "key_id")?)
                } else {
                    None
                },
                key_name: text("key_name", group.key)?,
                team_id: if group.team {
                    row.try_get::<Option<i64>>("", "team_id")?
                } else {
                    None
                },
                team_name: text("team_name", group.team)?,
                model: text("model", group.model)?,
                date: text("day", group.day)?,
                requests: row.try_get::<i64>("", "requests")?,
                prompt_tokens: row.try_get::<i64>("", "prompt_tokens")?,
                completion_tokens: row.try_get::<i64>("", "completion_tokens")?,
                gpu: GpuTime {
                    gpu_ms: row.try_get::<i64>("", "gpu_ms")?,
                    load_ms: row.try_get::<i64>("", "load_ms")?,
                    prompt_eval_ms: row.try_get::<i64>("", "prompt_eval_ms")?,
                    eval_ms: row.try_get::<i64>("", "eval_ms")?,
                },
            })
        })
        .collect()
}

/// The report as CSV (RFC 4180: a header row, CRLF line ends, fields quoted when they hold a
/// comma, a quote or a line break; `None` is an empty field).
pub fn to_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from(
        "key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,\
         gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name\r\n",
    );
    for row in rows {
        let fields = [
            row.key_id.map(|v| v.to_string()).unwrap_or_default(),
            csv_field(row.key_name.as_deref().unwrap_or_default()),
            csv_field(row.model.as_deref().unwrap_or_default()),
            row.date.clone().unwrap_or_default(),
            row.requests.to_string(),
            row.prompt_tokens.to_string(),
            row.completion_tokens.to_string(),
            seconds(row.gpu.gpu_ms),
            seconds(row.gpu.load_ms),
            seconds(row.gpu.prompt_eval_ms),
            seconds(row.gpu.eval_ms),
            row.team_id.map(|v| v.to_string()).unwrap_or_default(),
            csv_field(row.team_name.as_deref().unwrap_or_default()),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Milliseconds as seconds with 3 decimals (`1.234`), exactly.
pub fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// One CSV field. A leading `=`, `+`, `-` or `@` is also quoted, with a `'` before it, so a
/// key name cannot run as a formula in a spreadsheet (OWASP's advice on CSV injection).
fn csv_field(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@']);
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if formula || text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_parses_any_subset() {
        assert_eq!(GroupBy::parse("day, key ,model"), Ok(GroupBy::ALL));
        assert_eq!(GroupBy::parse(""), Ok(GroupBy::default()));
        assert_eq!(
            GroupBy::parse("model"),
            Ok(GroupBy {
                model: true,
                ..Default::default()
            })
        );
        assert!(GroupBy::parse("key,user")
            .is_err_and(|e| e.contains("\"user\"") && e.contains("key, model, day, team")));
    }

    /// Commas, quotes and line breaks are quoted; formulas are defused; nulls are empty.
    #[test]
    fn csv_quoting() {
        let rows = [ReportRow {
            key_id: Some(1),
            key_name: Some("a, \"b\"\nc".into()),
            team_id: Some(2),
            team_name: Some("@data".into()),
            model: Some("=HYPERLINK(1)".into()),
            date: None,
            requests: 2,
            prompt_tokens: 3,
            completion_tokens: 4,
            gpu: GpuTime {
                gpu_ms: 12_345,
                load_ms: 7,
                prompt_eval_ms: 0,
                eval_ms: 1_000,
            },
        }];
        assert_eq!(
            to_csv(&rows),
            "key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,\
             gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name\r\n\
             1,\"a, \"\"b\"\"\nc\",\"'=HYPERLINK(1)\",,2,3,4,12.345,0.007,0.000,1.000,2,\"'@data\"\r\n"
        );
    }

    /// Milliseconds print as seconds with three decimals, exactly.
    #[test]
    fn seconds_from_milliseconds() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(61_234), "61.234");
        assert_eq!(seconds(-5), "-0.005");
    }
}
