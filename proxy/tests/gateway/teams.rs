//! Teams through the real binary: one budget shared by several keys, created with the admin
//! API and the CLI; a team's request limit holds for any number of concurrent requests from
//! any of its keys (one instance on SQLite, two sharing PostgreSQL); refusals name the team
//! with `team_*` metric labels; a team's allowed models narrow its keys'; `/v1/quota` shows the
//! team; a team's keys take their turns in the fair queue together; a team with keys cannot
//! be deleted.

use std::sync::Arc;
use std::time::Duration;

use fake_ollama::{FakeConfig, FakeOllama};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{fake, fresh_postgres_schema, metric, Db, Gateway, Options};

async fn admin(gw: &Gateway, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", gw.admin))
        .bearer_auth("test-password")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn create_team(gw: &Gateway, body: Value) -> i64 {
    let (status, team) = admin(gw, reqwest::Method::POST, "/api/teams", body).await;
    assert_eq!(status, 201, "{team}");
    team["id"].as_i64().unwrap()
}

fn generate(gw: &Gateway, key: &str) -> reqwest::RequestBuilder {
    gw.post(
        "/api/generate",
        key,
        json!({"model": "llama3", "prompt": "hi", "stream": false}),
    )
}

/// 30 concurrent requests spread over three unlimited keys of a team with
/// `daily_request_limit: 5`: exactly 5 pass, the rest are 429 naming the team.
async fn burst(gws: &[&Gateway], keys: &[String]) -> (usize, Vec<String>) {
    let mut tasks = Vec::new();
    for i in 0..30 {
        let req = generate(gws[i % gws.len()], &keys[i % keys.len()]);
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let (mut ok, mut refusals) = (0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (429, body) => refusals.push(body),
            (other, body) => panic!("unexpected {other}: {body}"),
        }
    }
    (ok, refusals)
}

#[tokio::test]
async fn exactly_the_team_limit_passes_on_one_instance() {
    let fake = fake();
    let gw = Gateway::start(&fake.url(), Options::default()).await;
    create_team(&gw, json!({"name": "data", "daily_request_limit": 5})).await;
    let keys: Vec<String> = (0..3).map(|_| gw.create_key(&["--team", "data"])).collect();
    let (ok, refusals) = burst(&[&gw], &keys).await;
    assert_eq!(ok, 5);
    assert_eq!(refusals.len(), 25);
    assert!(
        refusals[0].contains("team \\\"data\\\" daily request quota exceeded (limit 5, used 5)"),
        "{}",
        refusals[0]
    );
    let text = gw.metrics_text().await;
    let refused: f64 = keys
        .iter()
        .filter_map(|k| {
            metric(
                &text,
                "llm_quota_quota_rejections_total",
                &[("api_key", &k[..11]), ("limit", "team_daily_requests")],
            )
        })
        .sum();
    assert_eq!(refused, 25.0, "{text}");
    let teams = gw.admin_json("/api/teams").await;
    assert_eq!(teams[0]["key_count"], 3);
    assert_eq!(teams[0]["usage"]["day"]["requests"], 5);
    // The key object names its team.
    let listed = gw.admin_json("/api/api-keys").await;
    assert_eq!(listed[0]["team"]["name"], "data");
}

#[tokio::test]
async fn exactly_the_team_limit_passes_across_two_instances() {
    let Some(_) = crate::support::postgres_url() else {
        eprintln!("TEST_DATABASE_URL not set: the two-instance team test is skipped");
        return;
    };
    let fake = fake();
    let url = fresh_postgres_schema().await;
    let a = Gateway::start(
        &fake.url(),
        Options {
            db: Db::Shared(url.clone()),
            ..Default::default()
        },
    )
    .await;
    let b = Gateway::start(
        &fake.url(),
        Options {
            db: Db::Shared(url),
            ..Default::default()
        },
    )
    .await;
    create_team(&a, json!({"name": "data", "daily_request_limit": 5})).await;
    let keys: Vec<String> = (0..3).map(|_| a.create_key(&["--team", "data"])).collect();
    let (ok, refusals) = burst(&[&a, &b], &keys).await;
    assert_eq!(ok, 5, "{refusals:?}");
    assert_eq!(refusals.len(), 25);
}

/// A team's allowed models narrow its keys'; `/v1/quota` shows the team's name and room,
/// never the other keys; moving a key out of the team frees it of the team's limits;
/// deleting a team with keys is refused with 409, and a name is unique.
#[tokio::test]
async fn team_rules_quota_and_lifecycle() {
    let fake = fake();
    let gw = Gateway::start(&fake.url(), Options::default()).await;
    let team = create_team(
        &gw,
        json!({"name": "ops", "monthly_token_limit": 100000, "allowed_models": ["other"]}),
    )
    .await;
    let key = gw.create_key(&["--team", "ops"]);
    let refused = generate(&gw, &key).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("not allowed for team \\\"ops\\\""), "{body}");
    let (status, _) = admin(
        &gw,
        reqwest::Method::PATCH,
        &format!("/api/teams/{team}"),
        json!({"allowed_models": ["llama3"]}),
    )
    .await;
    assert_eq!(status, 200);
    let ok = generate(&gw, &key).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the team's new models apply at once");
    let _ = ok.bytes().await;
    // Usage reaches the counters with the next flush.
    let mut quota = Value::Null;
    for _ in 0..200 {
        quota = gw
            .get("/v1/quota", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if quota["team"]["remaining"]["month"]["tokens"] != 100_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(quota["team"]["name"], "ops");
    let left = quota["team"]["remaining"]["month"]["tokens"]
        .as_i64()
        .unwrap();
    assert!(left < 100_000 && left > 99_000, "{quota}");
    assert!(quota["team"].get("keys").is_none());

    let (status, body) = admin(
        &gw,
        reqwest::Method::DELETE,
        &format!("/api/teams/{team}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("still has 1 key"),
        "{body}"
    );
    let (status, body) = admin(
        &gw,
        reqwest::Method::POST,
        "/api/teams",
        json!({"name": "ops"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin(
        &gw,
        reqwest::Method::POST,
        "/api/teams",
        json!({"name": "x", "priority": 11}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("priority"),
        "{body}"
    );

    // Out of the team: the key's own (unlimited) budget only.
    let (status, moved) = admin(
        &gw,
        reqwest::Method::PATCH,
        "/api/api-keys/1",
        json!({"team_id": null}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["team"], Value::Null);
    let (status, _) = admin(
        &gw,
        reqwest::Method::DELETE,
        &format!("/api/teams/{team}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let quota: Value = gw
        .get("/v1/quota", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quota["team"], Value::Null);
    // The audit trail has the team's whole life.
    let audit = gw.admin_json("/api/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["team.created", "team.edited", "team.deleted"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    // Usage grouped by team keeps the usage of the time the key was in it.
    // The usage log is written off the request path, within a second or so.
    let mut rows = Value::Null;
    for _ in 0..500 {
        rows = gw.admin_json("/api/usage?group_by=team").await;
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rows[0]["team_id"], team, "{rows}");
    assert_eq!(rows[0]["requests"], 1, "{rows}");
}

/// A team of five keys with 20 requests waiting for a one-slot host against a lone key with
/// one: the lone key is served second or third (the team takes its turns as one).
#[tokio::test]
async fn a_team_takes_its_turns_together() {
    let fake = FakeOllama::start(FakeConfig {
        chunks: 5,
        chunk_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    let gw = Gateway::start(
        "",
        Options {
            yaml: format!(
                "ollama:\n  urls:\n    - url: {}\n      max_concurrency: 1\n",
                fake.url()
            ),
            ..Default::default()
        },
    )
    .await;
    create_team(&gw, json!({"name": "crowd"})).await;
    let members: Vec<String> = (0..5)
        .map(|_| gw.create_key(&["--team", "crowd"]))
        .collect();
    let lone = gw.create_key(&[]);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let send = |key: &str, label: &'static str| {
        let request = gw.post(
            "/api/chat",
            key,
            json!({"model": "llama3", "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        );
        let finished = Arc::clone(&finished);
        tokio::spawn(async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            finished.lock().push(label);
            status
        })
    };
    let mut tasks: Vec<_> = (0..20).map(|i| send(&members[i % 5], "team")).collect();
    wait_for_waiting(&gw, 19).await;
    tasks.push(send(&lone, "lone"));
    wait_for_waiting(&gw, 20).await;
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let order = finished.lock().clone();
    let at = order.iter().position(|l| *l == "lone").unwrap();
    assert!(at <= 2, "the lone key finished {}th: {order:?}", at + 1);
}

async fn wait_for_waiting(gw: &Gateway, n: i64) {
    for _ in 0..400 {
        let queue = gw.admin_json("/api/queue").await;
        let waiting: i64 = queue["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["waiting"].as_i64().unwrap())
            .sum();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never {n} requests waiting");
}

/// The CLI: teams create/list/update/delete and keys create --team NAME.
#[tokio::test]
async fn teams_from_the_command_line() {
    let fake = fake();
    let gw = Gateway::start(&fake.url(), Options::default()).await;
    let (code, out, err) = gw.cli(&[
        "teams",
        "create",
        "--name",
        "data",
        "--monthly-tokens",
        "20000000",
        "--daily-gpu-seconds",
        "36000",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created team 1 (\"data\")"), "{out}");
    let (code, _, err) = gw.cli(&["keys", "create", "--name", "n", "--team", "data"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = gw.cli(&["keys", "create", "--name", "n", "--team", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no team named \"nope\""), "{err}");
    let (code, out, _) = gw.cli(&["teams", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("data") && out.contains("0/20000000") && out.contains("0.000/36000.000"),
        "{out}"
    );
    let (code, out, err) = gw.cli(&[
        "teams",
        "update",
        "data",
        "--monthly-tokens",
        "none",
        "--priority",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("updated team 1"), "{out}");
    let (_, json_out, _) = gw.cli(&["teams", "list", "--json"]);
    let listed: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(listed[0]["monthly_token_limit"], Value::Null);
    assert_eq!(listed[0]["priority"], 3);
    assert_eq!(listed[0]["key_count"], 1);
    let (code, _, err) = gw.cli(&["teams", "delete", "data"]);
    assert_eq!(code, 2);
    assert!(err.contains("still has 1 key"), "{err}");
    let (_, out, _) = gw.cli(&["keys", "list"]);
    assert!(out.contains("TEAM") && out.contains("data"), "{out}");
}

/// A team's usage crossing a threshold of its limit sends one alert naming the team (its
/// `team_` label, no key fields), recorded in the audit trail; a restarted gateway does not
/// send it again.
#[tokio::test]
async fn team_thresholds_alert_once() {
    let receiver = crate::team::Receiver::default();
    let hook = receiver.start().await;
    let upstream = fake();
    let gw = Gateway::start(
        &upstream.url(),
        crate::team::alerting_to(hook.clone(), Db::Sqlite),
    )
    .await;
    create_team(&gw, json!({"name": "data", "daily_request_limit": 5})).await;
    let a = gw.create_key(&["--team", "data"]);
    let b = gw.create_key(&["--team", "data"]);
    for key in [&a, &b, &a, &b] {
        let r = generate(&gw, key).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let alerts = receiver.wait_for(1).await;
    let alert = &alerts[0];
    assert_eq!(alert["team"], "data", "{alert}");
    assert_eq!(alert["limit"], "team_daily_requests");
    assert_eq!(
        (alert["used"].as_i64(), alert["limit_value"].as_i64()),
        (Some(4), Some(5))
    );
    assert!(alert.get("key_name").is_none(), "{alert}");
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("team \"data\" has crossed 80% of its daily request quota"),
        "{alert}"
    );
    let trail = gw.admin_json("/api/audit").await;
    let sent: Vec<&Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "alert.sent")
        .collect();
    assert_eq!(sent.len(), 1, "{trail}");
    assert_eq!(sent[0]["after"]["team"], "data");
    let mut gw = gw;
    gw.terminate();
    let _again = Gateway::start(
        &upstream.url(),
        crate::team::alerting_to(hook, Db::Shared(gw.database_url.clone())),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.alerts.lock().len(),
        1,
        "a restart repeated the team's alert"
    );
}
