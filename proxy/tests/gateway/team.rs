//! Running it for a team, through the real binary: key rotation with a grace period, the usage
//! report against the key objects, and usage alerts to a local webhook receiver.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{fake, postgres_url, Db, Gateway, Options};

const PASSWORD: &str = "test-password";

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": false})
}

async fn status(gw: &Gateway, key: &str) -> u16 {
    gw.post("/api/chat", key, chat("llama3"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `key` is refused with 401 (a change made elsewhere reaches the key cache
/// within seconds); returns the refusal's body and how many requests were served meanwhile.
async fn until_refused(gw: &Gateway, key: &str) -> (String, i64) {
    for served in 0..200 {
        let r = gw
            .post("/api/chat", key, chat("llama3"))
            .send()
            .await
            .unwrap();
        if r.status() == 401 {
            return (r.text().await.unwrap(), served);
        }
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the old secret was never refused");
}

/// A rotation keeps the key's id, limits and usage; the old secret works through the grace
/// period and then gets 401 naming the rotation; a rotation from the CLI without grace stops
/// the previous secret too.
#[tokio::test]
async fn rotated_secret_stops_after_its_grace_period() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let old = gw.create_key(&["--daily-requests", "100"]);
    assert_eq!(status(&gw, &old).await, 200);
    let rotated: Value = gw
        .client
        .post(format!("{}/api/api-keys/1/rotate", gw.admin))
        .bearer_auth(PASSWORD)
        .json(&json!({"grace_seconds": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["id"], 1);
    assert_eq!(rotated["daily_request_limit"], 100);
    assert_eq!(status(&gw, &new).await, 200);
    let (refusal, during_grace) = until_refused(&gw, &old).await;
    assert!(refusal.contains("rotated"), "{refusal}");
    assert_eq!(status(&gw, &new).await, 200);
    // One key all along: every request of both secrets is on its counters.
    let served = 3 + during_grace;
    gw.wait_for_counters(1, |c| c.day_requests == served).await;
    let key = gw.admin_json("/api/api-keys/1").await;
    assert_eq!(key["usage"]["day"]["requests"], served);

    let (code, out, err) = gw.cli(&["keys", "rotate", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no longer works"), "{err}");
    let newest = out.lines().last().unwrap().to_owned();
    assert!(newest.starts_with("sk-") && newest != new);
    let (refusal, _) = until_refused(&gw, &new).await;
    assert!(refusal.contains("rotated"), "{refusal}");
    assert_eq!(status(&gw, &newest).await, 200);
    let (code, _, err) = gw.cli(&["keys", "rotate", "1", "--grace", "31d"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most 30d"), "{err}");
    let trail = gw.admin_json("/api/audit?key_id=1").await;
    let clients: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client"].as_str().unwrap())
        .collect();
    assert_eq!(
        clients,
        ["cli", "127.0.0.1", "cli"],
        "rotate (cli), rotate (admin), create (cli)"
    );
}

/// The report's sums per key equal the key objects' usage, on SQLite and PostgreSQL, and the
/// per-model split adds up to the same.
#[tokio::test]
async fn usage_report_matches_the_key_objects() {
    let mut dbs = vec![Db::Sqlite];
    if postgres_url().is_some() {
        dbs.push(Db::Postgres);
    }
    for db in dbs {
        let upstream = fake();
        let gw = Gateway::start(
            &upstream.url(),
            Options {
                db: db.clone(),
                ..Options::default()
            },
        )
        .await;
        let a = gw.create_key(&[]);
        let b = gw.create_key(&[]);
        for (key, model, n) in [(&a, "llama3", 3), (&a, "qwen3:0.6b", 2), (&b, "llama3", 1)] {
            for _ in 0..n {
                let r = gw.post("/api/chat", key, chat(model)).send().await.unwrap();
                assert_eq!(r.status(), 200, "{db:?}");
            }
        }
        gw.wait_for_counters(1, |c| c.day_requests == 5).await;
        gw.wait_for_counters(2, |c| c.day_requests == 1).await;
        let mut report = Value::Null;
        for _ in 0..100 {
            report = gw.admin_json("/api/usage?group_by=key").await;
            let requests: i64 = report
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["requests"].as_i64().unwrap())
                .sum();
            if requests == 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for id in [1, 2] {
            let key = gw.admin_json(&format!("/api/api-keys/{id}")).await;
            let row = report
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["key_id"] == id)
                .unwrap_or_else(|| panic!("{db:?}: no row for key {id}: {report}"));
            assert_eq!(row["requests"], key["usage"]["day"]["requests"], "{db:?}");
            let tokens =
                row["prompt_tokens"].as_i64().unwrap() + row["completion_tokens"].as_i64().unwrap();
            assert_eq!(
                tokens,
                key["usage"]["day"]["tokens"].as_i64().unwrap(),
                "{db:?}"
            );
        }
        let by_model = gw.admin_json("/api/usage?group_by=key,model,day").await;
        let rows = by_model.as_array().unwrap();
        assert_eq!(rows.len(), 3, "{db:?}: {by_model}");
        assert_eq!(
            rows.iter()
                .filter(|r| r["key_id"] == 1)
                .map(|r| r["requests"].as_i64().unwrap())
                .sum::<i64>(),
            5
        );
    }
}

/// A local receiver of webhook POSTs.
#[derive(Clone, Default)]
pub struct Receiver {
    pub alerts: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub async fn start(&self) -> String {
        let alerts = Arc::clone(&self.alerts);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let alerts = Arc::clone(&alerts);
                async move {
                    alerts.lock().push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            if self.alerts.lock().len() >= n {
                return self.alerts.lock().clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} alerts, got {:?}", self.alerts.lock());
    }
}

/// A gateway in front of a fake Ollama that sends its alerts to `hook`.
async fn gateway_alerting_to(hook: String) -> (fake_ollama::FakeOllama, Gateway) {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), alerting_to(hook, Db::Sqlite)).await;
    (upstream, gw)
}

/// Alerts to `hook`, usage compared with the limits every second.
pub fn alerting_to(hook: String, db: Db) -> Options {
    Options {
        db,
        env: vec![("ALERT_WEBHOOK_URL".into(), hook)],
        yaml: "alerts:\n  scan_interval_seconds: 1\n".into(),
    }
}

/// One alert per threshold crossing, with the documented fields and a text line; refused
/// requests past the limit send nothing more; each alert is in the audit trail; the usage
/// ratio is exported.
#[tokio::test]
async fn one_alert_per_threshold_crossing() {
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let (upstream, gw) = gateway_alerting_to(hook.clone()).await;
    let key = gw.create_key(&["--daily-requests", "5"]);
    for _ in 0..4 {
        assert_eq!(status(&gw, &key).await, 200);
    }
    let first = receiver.wait_for(1).await;
    let alert = &first[0];
    assert_eq!(alert["limit"], "daily_requests");
    assert_eq!(alert["threshold"], 0.8);
    assert_eq!(alert["used"], 4);
    assert_eq!(alert["limit_value"], 5);
    assert_eq!(alert["key_name"], "test");
    assert_eq!(alert["key_prefix"], key[..11]);
    assert!(alert["period"].as_str().unwrap().len() == 10, "{alert}");
    assert!(alert["resets_at"].is_string());
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("80% of its daily request quota"),
        "{alert}"
    );

    assert_eq!(status(&gw, &key).await, 200);
    for _ in 0..3 {
        assert_eq!(status(&gw, &key).await, 429);
    }
    let both = receiver.wait_for(2).await;
    assert_eq!(both[1]["threshold"], 1.0);
    assert_eq!(both[1]["used"], 5);
    // Several scans later (one a second) there is still one alert per crossing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.alerts.lock().len(), 2);

    let trail = gw.admin_json("/api/audit?key_id=1").await;
    let sent: Vec<&Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "alert.sent")
        .collect();
    assert_eq!(sent.len(), 2, "{trail}");
    assert_eq!(sent[0]["client"], "gateway");
    assert_eq!(sent[0]["after"]["delivered"], true);
    let metrics = gw.metrics_text().await;
    let series = format!(
        "llm_quota_key_usage_ratio{{api_key=\"{}\",limit=\"daily_requests\"}} 1",
        &key[..11]
    );
    assert!(metrics.contains(&series), "{series} not in:\n{metrics}");
    // A restarted gateway reads the trail and does not send these crossings again.
    let mut gw = gw;
    gw.terminate();
    let again = Gateway::start(
        &upstream.url(),
        alerting_to(hook, Db::Shared(gw.database_url.clone())),
    )
    .await;
    assert_eq!(status(&again, &key).await, 429);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.alerts.lock().len(), 2, "a restart repeated alerts");
}

/// A receiver that accepts connections and never answers holds up nothing: requests are
/// answered and refused as usual while alerts wait for it.
#[tokio::test]
async fn a_hanging_receiver_does_not_slow_requests() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            held.lock().push(stream); // never read, never answered
        }
    });
    let (_upstream, gw) = gateway_alerting_to(hook).await;
    let key = gw.create_key(&["--daily-requests", "2"]);
    assert_eq!(status(&gw, &key).await, 200);
    assert_eq!(status(&gw, &key).await, 200);
    for _ in 0..100 {
        if !accepted.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !accepted.lock().is_empty(),
        "the gateway never tried the receiver"
    );
    // The receiver holds an alert; requests still get their answers.
    for _ in 0..5 {
        assert_eq!(status(&gw, &key).await, 429);
    }
    let other = gw.create_key(&[]);
    for _ in 0..5 {
        assert_eq!(status(&gw, &other).await, 200);
    }
}
