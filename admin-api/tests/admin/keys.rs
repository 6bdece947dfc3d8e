//! `/api/api-keys…`: shapes, status codes, validation and hooks.

use axum::http::{header, Method, StatusCode};
use chrono::{Days, Utc};
use quota_engine::usage_log::{self, UsageRecord};
use quota_engine::{keys, GateDecision, Payer};
use serde_json::{json, Value};

use crate::support::{harness, Harness};

const KEY_FIELDS: [&str; 22] = [
    "id",
    "name",
    "key_prefix",
    "is_active",
    "created_at",
    "expires_at",
    "daily_token_limit",
    "monthly_token_limit",
    "daily_request_limit",
    "monthly_request_limit",
    "daily_gpu_seconds_limit",
    "monthly_gpu_seconds_limit",
    "requests_per_minute",
    "tokens_per_minute",
    "max_parallel_requests",
    "priority",
    "allowed_models",
    "allow_web_search",
    "team",
    "usage",
    "in_flight",
    "key",
];

fn assert_key_object(v: &Value, with_plaintext: bool) {
    let object = v.as_object().unwrap();
    let expected: Vec<&str> = KEY_FIELDS
        .iter()
        .copied()
        .filter(|f| with_plaintext || *f != "key")
        .collect();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = expected.clone();
    want.sort_unstable();
    assert_eq!(keys, want, "{v}");
    assert!(v["in_flight"]["requests"].is_i64() && v["in_flight"]["reserved_tokens"].is_i64());
    for period in ["day", "month"] {
        let usage = &v["usage"][period];
        assert!(
            usage["period"].is_string()
                && usage["requests"].is_i64()
                && usage["tokens"].is_i64()
                && usage["gpu_seconds"].is_number()
        );
    }
}

async fn key_id(h: &Harness, body: Value) -> i64 {
    h.create_key(body).await["id"].as_i64().unwrap()
}

/// Create answers 201 with the key object plus the plaintext `key` (and `Location`); no later
/// answer (list, get, activate, edit) ever contains it again.
#[tokio::test]
async fn create_shows_the_key_once() {
    let h = harness().await;
    let answer = h
        .call(
            Method::POST,
            "/api/api-keys",
            Some(json!({
                "name": "alice",
                "expires_at": "2027-01-31T00:00:00+01:00",
                "daily_token_limit": 10000,
                "monthly_request_limit": 0,
                "allowed_models": ["llama3"]
            })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let created = answer.json();
    assert_key_object(&created, true);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        answer.header(header::LOCATION),
        Some(format!("/api/api-keys/{id}").as_str())
    );
    let plaintext = created["key"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("sk-") && plaintext.len() >= 35);
    assert!(plaintext.starts_with(created["key_prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "alice");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["expires_at"], "2027-01-31T00:00:00+01:00");
    assert_eq!(created["daily_token_limit"], 10000);
    assert_eq!(created["monthly_token_limit"], Value::Null);
    assert_eq!(created["monthly_request_limit"], 0);
    assert_eq!(created["allowed_models"], json!(["llama3"]));
    assert!(
        created["created_at"].as_str().unwrap().ends_with("+01:00")
            || created["created_at"].as_str().unwrap().ends_with("+02:00")
    );
    assert_eq!(h.hooks.key_changes.lock().as_slice(), &[id]);

    let stored = keys::find_by_hash(&h.db, &keys::hash_key(&plaintext), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        stored.map(|k| k.id),
        Some(id),
        "the plaintext is the stored key"
    );

    for answer in [
        h.get("/api/api-keys").await,
        h.get(&format!("/api/api-keys/{id}")).await,
        h.call(Method::PUT, &format!("/api/api-keys/{id}/activate"), None)
            .await,
        h.call(
            Method::PATCH,
            &format!("/api/api-keys/{id}"),
            Some(json!({"name": "bob"})),
        )
        .await,
    ] {
        assert_eq!(answer.status, StatusCode::OK);
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(!text.contains(&plaintext), "{text}");
        assert!(!text.contains("\"key\""), "{text}");
        assert!(!text.contains(&keys::hash_key(&plaintext)), "{text}");
    }
}

/// The list holds every key, oldest first, with its usage in the current day and month.
#[tokio::test]
async fn list_with_current_usage() {
    let h = harness().await;
    let first = key_id(&h, json!({"name": "first"})).await;
    let second = key_id(&h, json!({"name": "second", "daily_request_limit": 5})).await;
    let periods = h.periods.at(Utc::now());
    let limits = keys::get(&h.db, second).await.unwrap().limits;
    let ledger = quota_engine::Ledger::new(h.db.clone(), Default::default());
    for _ in 0..2 {
        let decision = ledger
            .admit(
                &Payer::key(second, limits),
                &quota_engine::Ask {
                    prompt_tokens: 7,
                    ..Default::default()
                },
                &periods,
            )
            .await
            .unwrap();
        assert!(matches!(decision, GateDecision::Admitted(_)));
    }
    ledger.flush().await.unwrap();
    let answer = h.get("/api/api-keys").await;
    assert_eq!(answer.status, StatusCode::OK);
    let list = answer.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    list.iter().for_each(|k| assert_key_object(k, false));
    assert_eq!(list[0]["id"], first);
    assert_eq!(list[1]["id"], second);
    assert_eq!(list[0]["usage"]["day"]["requests"], 0);
    assert_eq!(list[1]["usage"]["day"]["requests"], 2);
    assert_eq!(list[1]["usage"]["day"]["tokens"], 14);
    assert_eq!(list[1]["usage"]["month"]["requests"], 2);
    assert_eq!(list[1]["usage"]["day"]["period"], periods.day);
    assert_eq!(list[1]["usage"]["month"]["period"], periods.month);
}

/// Invalid fields are 422 with a message that starts with the field's name.
#[tokio::test]
async fn create_validation_names_the_field() {
    let h = harness().await;
    for (body, field) in [
        (
            json!({"name": "a", "daily_token_limit": -1}),
            "daily_token_limit",
        ),
        (
            json!({"name": "a", "monthly_token_limit": 1.5}),
            "monthly_token_limit",
        ),
        (
            json!({"name": "a", "daily_request_limit": "10"}),
            "daily_request_limit",
        ),
        (
            json!({"name": "a", "monthly_request_limit": true}),
            "monthly_request_limit",
        ),
        (
            json!({"name": "a", "daily_gpu_seconds_limit": 1.0005}),
            "daily_gpu_seconds_limit",
        ),
        (
            json!({"name": "a", "monthly_gpu_seconds_limit": -0.5}),
            "monthly_gpu_seconds_limit",
        ),
        (
            json!({"name": "a", "expires_at": "2027-01-31"}),
            "expires_at",
        ),
        (json!({"name": "a", "expires_at": 5}), "expires_at"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"name": null}), "name"),
        (json!({}), "name"),
        (
            json!({"name": "a", "allowed_models": [""]}),
            "allowed_models",
        ),
        (
            json!({"name": "a", "allowed_models": "llama3"}),
            "allowed_models",
        ),
        (
            json!({"name": "a", "allowed_models": [1]}),
            "allowed_models[0]",
        ),
        (json!({"name": "a", "daily_tokens": 5}), "daily_tokens"),
    ] {
        let answer = h
            .call(Method::POST, "/api/api-keys", Some(body.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = answer.error();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{body}: {message}"
        );
    }
    let typo = h
        .call(
            Method::POST,
            "/api/api-keys",
            Some(json!({"name": "a", "daily_tokens": 5})),
        )
        .await;
    assert!(
        typo.error()
            .starts_with("daily_tokens: unknown field; expected one of `name`"),
        "{}",
        typo.error()
    );
    assert!(h.hooks.key_changes.lock().is_empty());
    assert_eq!(h.get("/api/api-keys").await.json(), json!([]));
}

/// Bodies that are not JSON are 400 with a JSON error; a JSON non-object is 422.
#[tokio::test]
async fn malformed_json_is_400() {
    let h = harness().await;
    let id = key_id(&h, json!({"name": "a"})).await;
    for (method, path) in [
        (Method::POST, "/api/api-keys".to_string()),
        (Method::PATCH, format!("/api/api-keys/{id}/quota")),
        (Method::PATCH, format!("/api/api-keys/{id}")),
        (Method::PUT, "/api/settings".to_string()),
    ] {
        for body in ["{", "{\"name\": \"a\",}", "nope", ""] {
            let answer = h.call_raw(method.clone(), &path, body).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{method} {path} {body:?}"
            );
            assert!(!answer.error().is_empty());
        }
        let answer = h.call_raw(method.clone(), &path, "[1, 2]").await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.error().starts_with("body: "));
    }
}

/// Deactivate and activate flip `is_active`, answer the key object and tell the gateway.
#[tokio::test]
async fn deactivate_and_activate() {
    let h = harness().await;
    let id = key_id(&h, json!({"name": "a"})).await;
    let answer = h
        .call(Method::PUT, &format!("/api/api-keys/{id}/deactivate"), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_key_object(&answer.json(), false);
    assert_eq!(answer.json()["is_active"], false);
    assert!(!keys::get(&h.db, id).await.unwrap().is_active);
    let answer = h
        .call(Method::PUT, &format!("/api/api-keys/{id}/activate"), None)
        .await;
    assert_eq!(answer.json()["is_active"], true);
    assert_eq!(h.hooks.key_changes.lock().as_slice(), &[id, id, id]);
}

/// PATCH quota sets the limits it names, `null` makes one unlimited, the rest stay.
#[tokio::test]
async fn patch_quota() {
    let h = harness().await;
    let id = key_id(
        &h,
        json!({"name": "a", "daily_token_limit": 100, "monthly_token_limit": 1000, "daily_request_limit": 10}),
    )
    .await;
    let path = format!("/api/api-keys/{id}/quota");
    let answer = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"daily_token_limit": 0, "monthly_token_limit": null, "monthly_request_limit": 50,
                        "daily_gpu_seconds_limit": 90.5, "monthly_gpu_seconds_limit": 7200})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let key = answer.json();
    assert_key_object(&key, false);
    assert_eq!(key["daily_gpu_seconds_limit"], 90.5);
    assert_eq!(key["monthly_gpu_seconds_limit"], 7200.0);
    assert_eq!(key["daily_token_limit"], 0);
    assert_eq!(key["monthly_token_limit"], Value::Null);
    assert_eq!(key["daily_request_limit"], 10);
    assert_eq!(key["monthly_request_limit"], 50);
    assert_eq!(h.hooks.key_changes.lock().last(), Some(&id));

    for (body, field) in [
        (json!({"daily_request_limit": -1}), "daily_request_limit"),
        (json!({"daily_token_limit": 1.5}), "daily_token_limit"),
        (json!({"monthly_token_limit": "10"}), "monthly_token_limit"),
        (
            json!({"daily_gpu_seconds_limit": 0.0001}),
            "daily_gpu_seconds_limit",
        ),
        (json!({"name": "x"}), "name"),
    ] {
        let answer = h.call(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            answer.error().starts_with(&format!("{field}: ")),
            "{}",
            answer.error()
        );
    }
    let limits = keys::get(&h.db, id).await.unwrap().limits;
    assert_eq!(
        limits.daily_tokens,
        Some(0),
        "a refused patch changes nothing"
    );
    assert_eq!(limits.daily_requests, Some(10));
    assert_eq!(
        limits.daily_gpu_ms,
        Some(90_500),
        "GPU limits are kept in milliseconds"
    );
}

/// PATCH key edits name, expiry and allowed models; `null` clears expiry and allow-list, but
/// a `null` name is 422.
#[tokio::test]
async fn patch_key() {
    let h = harness().await;
    let id = key_id(&h, json!({"name": "a", "allowed_models": ["x"]})).await;
    let path = format!("/api/api-keys/{id}");
    let answer = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": " renamed ", "expires_at": "2027-06-01T12:00:00Z"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let key = answer.json();
    assert_eq!(key["name"], "renamed");
    assert_eq!(
        key["expires_at"], "2027-06-01T14:00:00+02:00",
        "shown in the operator's zone"
    );
    assert_eq!(key["allowed_models"], json!(["x"]));

    let key = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"expires_at": null, "allowed_models": null})),
        )
        .await
        .json();
    assert_eq!(key["expires_at"], Value::Null);
    assert_eq!(key["allowed_models"], Value::Null);
    assert_eq!(key["name"], "renamed");
    assert_eq!(key["allow_web_search"], false, "off unless asked for");

    let key = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"allow_web_search": true})),
        )
        .await
        .json();
    assert_eq!(key["allow_web_search"], true);

    for (body, field) in [
        (json!({"allow_web_search": null}), "allow_web_search"),
        (json!({"name": null}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"expires_at": "soon"}), "expires_at"),
        (json!({"allowed_models": [" "]}), "allowed_models"),
        (json!({"daily_token_limit": 5}), "daily_token_limit"),
    ] {
        let answer = h.call(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            answer.error().starts_with(&format!("{field}: ")),
            "{}",
            answer.error()
        );
    }
    assert_eq!(h.hooks.key_changes.lock().as_slice(), &[id, id, id, id]);
}

/// DELETE answers 204 without a body, removes the key and its usage, and tells the gateway;
/// a second DELETE is 404.
#[tokio::test]
async fn delete_key() {
    let h = harness().await;
    let id = key_id(&h, json!({"name": "a"})).await;
    let keep = key_id(&h, json!({"name": "b"})).await;
    let answer = h
        .call(Method::DELETE, &format!("/api/api-keys/{id}"), None)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
    assert_eq!(h.hooks.key_changes.lock().as_slice(), &[id, keep, id]);
    assert_eq!(
        h.get(&format!("/api/api-keys/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let list = h.get("/api/api-keys").await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let again = h
        .call(Method::DELETE, &format!("/api/api-keys/{id}"), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

/// Every per-key endpoint answers 404 with a JSON error for an unknown or non-numeric id, and
/// calls no hook.
#[tokio::test]
async fn unknown_ids_are_404() {
    let h = harness().await;
    for id in ["999", "abc", "-1"] {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::PATCH, "", Some(json!({"name": "x"}))),
            (Method::DELETE, "", None),
            (Method::PUT, "/activate", None),
            (Method::PUT, "/deactivate", None),
            (
                Method::PATCH,
                "/quota",
                Some(json!({"daily_token_limit": 1})),
            ),
            (Method::GET, "/usage", None),
        ] {
            let path = format!("/api/api-keys/{id}{suffix}");
            let answer = h.call(method.clone(), &path, body).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert!(
                answer.error().starts_with("no API key with id"),
                "{}",
                answer.error()
            );
        }
    }
    assert!(h.hooks.key_changes.lock().is_empty());
}

/// The usage series has one entry per day of the operator's zone, oldest first, ending today,
/// with zeros on days without requests; `days` defaults to 30 and is bounded.
#[tokio::test]
async fn usage_series_is_zero_filled() {
    let h = harness().await;
    let id = key_id(&h, json!({"name": "a"})).await;
    let other = key_id(&h, json!({"name": "b"})).await;
    let now = Utc::now();
    let today = now.with_timezone(&h.periods.tz()).date_naive();
    let label = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let two_days_ago = today - Days::new(2);
    let record = |key_id, day: String, prompt, completion| UsageRecord {
        key_id,
        team_id: None,
        day,
        model: "llama3".into(),
        prompt_tokens: prompt,
        completion_tokens: completion,
        gpu: Default::default(),
    };
    usage_log::add(
        &h.db,
        &[
            record(id, label(today), 10, 20),
            record(id, label(today), 1, 2),
            record(id, label(two_days_ago), 5, 6),
            record(other, label(today), 100, 100),
        ],
    )
    .await
    .unwrap();

    let answer = h.get(&format!("/api/api-keys/{id}/usage?days=3")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!([
            {"date": label(two_days_ago), "requests": 1, "prompt_tokens": 5, "completion_tokens": 6, "gpu_seconds": 0.0, "load_seconds": 0.0, "prompt_eval_seconds": 0.0, "eval_seconds": 0.0},
            {"date": label(today - Days::new(1)), "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "gpu_seconds": 0.0, "load_seconds": 0.0, "prompt_eval_seconds": 0.0, "eval_seconds": 0.0},
            {"date": label(today), "requests": 2, "prompt_tokens": 11, "completion_tokens": 22, "gpu_seconds": 0.0, "load_seconds": 0.0, "prompt_eval_seconds": 0.0, "eval_seconds": 0.0},
        ])
    );

    let default = h.get(&format!("/api/api-keys/{id}/usage")).await.json();
    let days = default.as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["date"], label(today));
    assert_eq!(days[0]["date"], label(today - Days::new(29)));
    assert_eq!(
        h.get(&format!("/api/api-keys/{id}/usage?days=366"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        366
    );
    for bad in ["0", "367", "x", "-3"] {
        let answer = h.get(&format!("/api/api-keys/{id}/usage?days={bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(answer.error().starts_with("days: "));
    }
}
