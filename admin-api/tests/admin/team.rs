//! The usage report (JSON and CSV), the audit trail of every admin action, and key rotation.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use chrono::Utc;
use quota_engine::keys;
use quota_engine::usage_log::{self, UsageRecord};
use serde_json::{json, Value};

use crate::support::{harness, request, Harness, PASSWORD};

async fn new_key(h: &Harness, body: Value) -> (i64, String) {
    let created = h.create_key(body).await;
    (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

fn today(h: &Harness) -> String {
    Utc::now()
        .with_timezone(&h.periods.tz())
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

/// The report's rows as JSON and as CSV are the same, the CSV is RFC 4180 with a header row
/// and a file name, and its sums match the usage written.
/// A record with GPU time: 1.5 s, of which Ollama reported 0.25 s loading and 1.125 s
/// generating.
fn with_gpu(mut record: UsageRecord) -> UsageRecord {
    record.gpu = quota_engine::usage_log::GpuTime {
        gpu_ms: 1_500,
        load_ms: 250,
        prompt_eval_ms: 0,
        eval_ms: 1_125,
    };
    record
}

#[tokio::test]
async fn usage_report_json_and_csv_agree() {
    let h = harness().await;
    let (a, _) = new_key(&h, json!({"name": "alice, \"ops\""})).await;
    let (b, _) = new_key(&h, json!({"name": "bob"})).await;
    let day = today(&h);
    let rec = |key_id, model: &str, p, c| UsageRecord {
        key_id,
        team_id: None,
        day: day.clone(),
        model: model.into(),
        prompt_tokens: p,
        completion_tokens: c,
        gpu: Default::default(),
    };
    usage_log::add(
        &h.db,
        &[
            with_gpu(rec(a, "llama3", 3, 4)),
            rec(a, "llama3", 1, 1),
            rec(b, "qwen3", 2, 2),
        ],
    )
    .await
    .unwrap();

    let json_rows = h.get("/api/usage?group_by=key,model").await;
    assert_eq!(json_rows.status, StatusCode::OK);
    assert_eq!(
        json_rows.json(),
        json!([
            {"key_id": a, "key_name": "alice, \"ops\"", "team_id": null, "team_name": null, "model": "llama3", "date": null, "requests": 2, "prompt_tokens": 4, "completion_tokens": 5,
              "gpu_seconds": 1.5, "load_seconds": 0.25, "prompt_eval_seconds": 0.0, "eval_seconds": 1.125},
            {"key_id": b, "key_name": "bob", "team_id": null, "team_name": null, "model": "qwen3", "date": null, "requests": 1, "prompt_tokens": 2, "completion_tokens": 2, "gpu_seconds": 0.0, "load_seconds": 0.0, "prompt_eval_seconds": 0.0, "eval_seconds": 0.0},
        ])
    );

    let csv = h.get("/api/usage?group_by=key,model&format=csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.header(header::CONTENT_TYPE),
        Some("text/csv; charset=utf-8")
    );
    let disposition = csv.header(header::CONTENT_DISPOSITION).unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"llm-quota-usage-"),
        "{disposition}"
    );
    assert_eq!(
        std::str::from_utf8(&csv.body).unwrap(),
        format!(
            "key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,\
             gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name\r\n\
             {a},\"alice, \"\"ops\"\"\",llama3,,2,4,5,1.500,0.250,0.000,1.125,,\r\n\
             {b},bob,qwen3,,1,2,2,0.000,0.000,0.000,0.000,,\r\n"
        )
    );
    // Accept: text/csv does the same.
    let accept = request(
        Method::GET,
        "/api/usage?group_by=key,model",
        "127.0.0.1:50000",
    )
    .header(header::AUTHORIZATION, format!("Bearer {PASSWORD}"))
    .header(header::ACCEPT, "text/csv")
    .body(Body::empty())
    .unwrap();
    assert_eq!(h.send(accept).await.body, csv.body);

    let total = h.get("/api/usage?group_by=").await.json();
    assert_eq!(
        total,
        json!([{"key_id": null, "key_name": null, "team_id": null, "team_name": null, "model": null, "date": null, "requests": 3, "prompt_tokens": 6, "completion_tokens": 7,
                "gpu_seconds": 1.5, "load_seconds": 0.25, "prompt_eval_seconds": 0.0, "eval_seconds": 1.125}])
    );
    for (query, field) in [
        ("from=2026-02-30", "from: "),
        ("from=2026-12-02&to=2026-12-01", "to: "),
        ("group_by=user", "group_by: "),
        ("format=pdf", "format: "),
    ] {
        let answer = h.get(&format!("/api/usage?{query}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(
            answer.error().starts_with(field),
            "{query}: {}",
            answer.error()
        );
    }
}

/// Every admin action lands in the audit trail with the client, the key, the changed fields
/// before and after, and never a secret; `before` pages and `key_id` filters.
#[tokio::test]
async fn every_admin_action_is_audited_without_secrets() {
    let h = harness().await;
    let (id, secret) = new_key(&h, json!({"name": "team", "daily_token_limit": 100})).await;
    let call = |method, path: String, body| {
        let h = &h;
        async move {
            let answer = h.call(method, &path, body).await;
            assert!(answer.status.is_success(), "{path}: {:?}", answer.body);
            answer
        }
    };
    call(
        Method::PATCH,
        format!("/api/api-keys/{id}"),
        Some(json!({"name": "team-a"})),
    )
    .await;
    call(
        Method::PATCH,
        format!("/api/api-keys/{id}/quota"),
        Some(json!({"daily_token_limit": 500, "priority": 3, "daily_gpu_seconds_limit": 90.5})),
    )
    .await;
    call(Method::PUT, format!("/api/api-keys/{id}/deactivate"), None).await;
    call(Method::PUT, format!("/api/api-keys/{id}/activate"), None).await;
    let rotated = call(
        Method::POST,
        format!("/api/api-keys/{id}/rotate"),
        Some(json!({"grace_seconds": 60})),
    )
    .await
    .json();
    let new_secret = rotated["key"].as_str().unwrap().to_owned();
    call(
        Method::PUT,
        "/api/settings".into(),
        Some(json!({"default_model": "qwen3"})),
    )
    .await;
    call(Method::DELETE, format!("/api/api-keys/{id}"), None).await;

    let trail = h.get("/api/audit").await;
    assert_eq!(trail.status, StatusCode::OK);
    let text = String::from_utf8(trail.body.to_vec()).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains(&new_secret),
        "a secret in the trail: {text}"
    );
    assert!(
        !text.contains(&keys::hash_key(&secret)),
        "a digest in the trail"
    );
    let entries = trail.json();
    let entries = entries.as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key.deleted",
            "settings.changed",
            "key.rotated",
            "key.activated",
            "key.deactivated",
            "key.limits_changed",
            "key.edited",
            "key.created"
        ]
    );
    for e in entries {
        assert_eq!(e["client"], "127.0.0.1", "{e}");
        if e["action"] != "settings.changed" {
            assert_eq!(e["key_id"], id, "{e}");
        }
    }
    let by = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();
    assert_eq!(by("key.edited")["before"], json!({"name": "team"}));
    assert_eq!(by("key.edited")["after"], json!({"name": "team-a"}));
    assert_eq!(
        by("key.limits_changed")["before"],
        json!({"daily_token_limit": 100, "priority": 1, "daily_gpu_seconds_limit": null})
    );
    assert_eq!(
        by("key.limits_changed")["after"],
        json!({"daily_token_limit": 500, "priority": 3, "daily_gpu_seconds_limit": 90.5})
    );
    assert_eq!(by("key.deactivated")["after"], json!({"is_active": false}));
    assert_eq!(by("key.activated")["after"], json!({"is_active": true}));
    assert_eq!(by("key.rotated")["before"]["key_prefix"], secret[..11]);
    assert_eq!(by("key.rotated")["after"]["key_prefix"], new_secret[..11]);
    // Instants in the operator's zone, like every other timestamp of the admin API.
    let until = by("key.rotated")["after"]["old_secret_valid_until"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = by("key.rotated")["at"].as_str().unwrap().to_owned();
    let offset = &at[at.len() - 6..];
    assert!(until.ends_with(offset), "{until} vs {offset}");
    assert_eq!(
        by("settings.changed")["before"],
        json!({"default_model": null})
    );
    assert_eq!(
        by("settings.changed")["after"],
        json!({"default_model": "qwen3"})
    );
    assert_eq!(by("key.created")["before"], Value::Null);
    assert_eq!(by("key.created")["after"]["daily_token_limit"], 100);
    assert_eq!(by("key.deleted")["before"]["name"], "team-a");
    assert_eq!(by("key.deleted")["after"], Value::Null);

    // Paging: two at a time, by the last id, reaches every entry once.
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let page = h.get(&format!("/api/audit?limit=2{before}")).await.json();
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        before = format!("&before={}", page.last().unwrap()["id"]);
        seen.extend(page.into_iter().map(|e| e["id"].as_i64().unwrap()));
    }
    let all: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all);
    let of_key = h.get(&format!("/api/audit?key_id={id}")).await.json();
    assert_eq!(of_key.as_array().unwrap().len(), 7);
    let bad = h.get("/api/audit?limit=0").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.error().starts_with("limit: "));
}

/// Rotation returns a new secret once and keeps the key; the body is optional; the grace
/// period shows on the key object; bad input is a 422 naming the field.
#[tokio::test]
async fn rotate_endpoint() {
    let h = harness().await;
    let (id, old) = new_key(&h, json!({"name": "r", "daily_request_limit": 9})).await;
    let answer = h
        .call(Method::POST, &format!("/api/api-keys/{id}/rotate"), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let body = answer.json();
    let new = body["key"].as_str().unwrap();
    assert!(new.starts_with("sk-") && new != old);
    assert_eq!(body["id"], id);
    assert_eq!(body["daily_request_limit"], 9);
    assert_eq!(body["key_prefix"], new[..11]);
    assert_eq!(body["old_secret_valid_until"], Value::Null);
    let now = Utc::now();
    let by_old = keys::find_by_hash(&h.db, &keys::hash_key(&old), now)
        .await
        .unwrap()
        .unwrap();
    assert!(by_old.is_rotated_out(now), "the old secret stops at once");
    assert_eq!(h.hooks.key_changes.lock().last(), Some(&id));

    let graced = h
        .call(
            Method::POST,
            &format!("/api/api-keys/{id}/rotate"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await
        .json();
    assert!(graced["old_secret_valid_until"].is_string(), "{graced}");
    let shown = h.get(&format!("/api/api-keys/{id}")).await.json();
    assert!(
        shown.get("old_secret_valid_until").is_none(),
        "not a key object field"
    );
    assert!(shown.get("key").is_none(), "the secret is shown once");

    for (body, status) in [
        (
            json!({"grace_seconds": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"grace_seconds": 2_592_001}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"grace": 1}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let answer = h
            .call(
                Method::POST,
                &format!("/api/api-keys/{id}/rotate"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, status, "{body}");
        assert!(
            answer.error().contains("grace"),
            "{body}: {}",
            answer.error()
        );
    }
    let missing = h.call(Method::POST, "/api/api-keys/999/rotate", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
