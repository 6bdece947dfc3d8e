//! `/api/usage` (usage over a range of days, grouped by key, model and day, as JSON or CSV)
//! and `/api/audit` (the audit trail, newest first, paged by id).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate, Utc};
use quota_engine::audit;
use quota_engine::usage_report::{self, GroupBy};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::{AuditEntryView, UsageRowView};
use crate::AdminState;

/// The longest range one report covers.
const MAX_REPORT_DAYS: i64 = 366;
/// Audit entries per page when `limit` is left out, and the most one page holds.
const DEFAULT_AUDIT_PAGE: u64 = 50;
const MAX_AUDIT_PAGE: u64 = 500;

pub fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/usage", get(usage))
        .route("/api/audit", get(audit_page))
}

/// The query's parameters by name (the last one wins when a name repeats).
fn params(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn day_param(params: &[(String, String)], name: &str) -> ApiResult<Option<NaiveDate>> {
    param(params, name)
        .map(|raw| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
                ApiError::invalid(name, format!("must be a day as YYYY-MM-DD, got {raw:?}"))
            })
        })
        .transpose()
}

/// What `/api/usage` was asked for.
#[derive(Debug, PartialEq, Eq)]
struct ReportQuery {
    from: NaiveDate,
    to: NaiveDate,
    group: GroupBy,
    /// Only usage written while keys belonged to this team.
    team_id: Option<i64>,
    csv: bool,
}

/// `from` defaults to the first day of `today`'s month, `to` to `today`; `group_by` to every
/// dimension; CSV when `format=csv` or the client accepts `text/csv` (and not JSON first).
fn report_query(
    query: Option<&str>,
    accept: Option<&str>,
    today: NaiveDate,
) -> ApiResult<ReportQuery> {
    let params = params(query);
    let to = day_param(&params, "to")?.unwrap_or(today);
    let from = day_param(&params, "from")?.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
    if to < from {
        return Err(ApiError::invalid(
            "to",
            format!("must not be before from ({from}), got {to}"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_REPORT_DAYS {
        return Err(ApiError::invalid(
            "to",
            format!("a report covers at most {MAX_REPORT_DAYS} days; this range has {days}"),
        ));
    }
    let group = match param(&params, "group_by") {
        None => GroupBy::ALL,
        Some(text) => GroupBy::parse(text).map_err(|e| ApiError::invalid("group_by", e))?,
    };
    let csv = match param(&params, "format") {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("must be json or csv, got {other:?}"),
            ))
        }
        None => accept.is_some_and(prefers_csv),
    };
    let team_id = param(&params, "team_id")
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                ApiError::invalid("team_id", format!("must be a team id, got {raw:?}"))
            })
        })
        .transpose()?;
    Ok(ReportQuery {
        from,
        to,
        group,
        team_id,
        csv,
    })
}

/// Whether an `Accept` header names `text/csv` before any JSON type.
fn prefers_csv(accept: &str) -> bool {
    for media in accept.split(',') {
        let media = media.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("text/csv") {
            return true;
        }
        if media.eq_ignore_ascii_case("application/json") {
            return false;
        }
    }
    false
}

/// Requests and tokens per key, model, day and team (any subset), over a range of days of the
/// operator's zone. JSON rows, or CSV with `Accept: text/csv` or `format=csv`.
#[utoipa::path(get, path = "/api/usage", operation_id = "usage_report", tag = "usage",
    params(
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD (default: the first day of this month)"),
        ("to" = Option<String>, Query, description = "last day, YYYY-MM-DD, inclusive (default: today); at most 366 days after from"),
        ("group_by" = Option<String>, Query, description = "comma-separated subset of key, model, day, team (default: key, model, day; empty: one total row)"),
        ("team_id" = Option<i64>, Query, description = "only usage of keys while they belonged to this team"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, description = "rows ordered by day, key id and model; dimensions not grouped by are null. As CSV: a header row, RFC 4180 quoting, an attachment file name",
            content((Vec<UsageRowView> = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 422, description = "a parameter is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn usage(
    State(state): State<Arc<AdminState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let today = Utc::now().with_timezone(&state.periods.tz()).date_naive();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let q = report_query(query.as_deref(), accept, today)?;
    let rows = usage_report::report(&state.db, q.from, q.to, q.group, q.team_id).await?;
    if !q.csv {
        let rows: Vec<UsageRowView> = rows.into_iter().map(Into::into).collect();
        return Ok(Json(rows).into_response());
    }
    let file = format!(
        "attachment; filename=\"llm-quota-usage-{}_{}.csv\"",
        q.from, q.to
    );
    let mut response = usage_report::to_csv(&rows).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `limit` 1–500 (default 50), `before` and `key_id` ids.
fn audit_query(query: Option<&str>) -> ApiResult<audit::Page> {
    let params = params(query);
    let limit = match param(&params, "limit") {
        None => DEFAULT_AUDIT_PAGE,
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be an integer from 1 to {MAX_AUDIT_PAGE}, got {raw:?}"),
                )
            })?,
    };
    let id = |name: &str| -> ApiResult<Option<i64>> {
        param(&params, name)
            .map(|raw| {
                raw.trim().parse::<i64>().map_err(|_| {
                    ApiError::invalid(name, format!("must be an entry or key id, got {raw:?}"))
                })
            })
            .transpose()
    };
    Ok(audit::Page {
        limit,
        before: id("before")?,
        key_id: id("key_id")?,
        action: None,
    })
}

/// The audit trail, newest first: every admin change with who made it and the fields before
/// and after, and every usage alert sent. Page with `before` = the last `id` received.
#[utoipa::path(get, path = "/api/audit", operation_id = "audit_trail", tag = "audit",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 500, description = "entries per page, 1 to 500 (default 50)"),
        ("before" = Option<i64>, Query, description = "only entries older than this id (the last id of the previous page)"),
        ("key_id" = Option<i64>, Query, description = "only entries about this key"),
    ),
    responses(
        (status = 200, description = "entries, newest first; fewer than `limit` on the last page", body = Vec<AuditEntryView>),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 422, description = "a parameter is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn audit_page(
    State(state): State<Arc<AdminState>>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<AuditEntryView>>> {
    let page = audit_query(query.as_deref())?;
    let tz = state.periods.tz();
    let entries = audit::page(&state.db, page).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntryView::new(e, tz))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// Defaults: this month to today, every dimension, JSON.
    #[test]
    fn report_defaults() {
        let q = report_query(None, None, day("2026-12-17"));
        assert!(
            matches!(q, Ok(ReportQuery { from, to, group: GroupBy::ALL, csv: false, team_id: None })
            if from == day("2026-12-01") && to == day("2026-12-17"))
        );
        let q = report_query(
            Some("to=2026-11-30&group_by="),
            Some("text/csv"),
            day("2026-12-17"),
        );
        assert!(matches!(q, Ok(ReportQuery { from, csv: true, group, .. })
            if from == day("2026-11-01") && group == GroupBy::default()));
    }

    #[test]
    fn report_rejects_bad_input_naming_the_parameter() {
        let today = day("2026-12-17");
        for (query, field) in [
            ("from=2026-13-01", "from: "),
            ("to=yesterday", "to: "),
            ("from=2026-12-02&to=2026-12-01", "to: "),
            ("from=2025-01-01&to=2026-12-01", "to: "),
            ("group_by=user", "group_by: "),
            ("format=xml", "format: "),
        ] {
            assert!(
                matches!(report_query(Some(query), None, today), Err(ApiError::Unprocessable(m)) if m.starts_with(field)),
                "{query}"
            );
        }
    }

    #[test]
    fn accept_header() {
        assert!(prefers_csv("text/csv"));
        assert!(prefers_csv("text/csv;q=0.9, application/json"));
        assert!(!prefers_csv("application/json, text/csv"));
        assert!(!prefers_csv("*/*"));
    }

    #[test]
    fn audit_paging_parameters() {
        assert!(matches!(
            audit_query(None),
            Ok(audit::Page {
                limit: 50,
                before: None,
                key_id: None,
                ..
            })
        ));
        assert!(matches!(
            audit_query(Some("limit=2&before=10&key_id=3")),
            Ok(audit::Page {
                limit: 2,
                before: Some(10),
                key_id: Some(3),
                ..
            })
        ));
        for bad in ["limit=0", "limit=501", "before=x", "key_id=1.5"] {
            assert!(
                matches!(audit_query(Some(bad)), Err(ApiError::Unprocessable(_))),
                "{bad}"
            );
        }
    }
}
