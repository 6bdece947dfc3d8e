//! GPU time: the seconds a host spends on a counted request (from sending it until its answer
//! ends) times the host's `gpu_weight`, per model, key and host; Ollama's `load_duration`
//! kept apart.

use std::time::Duration;

use fake_ollama::FakeConfig;

use crate::support::{fake_with, metric, weighted, Gateway};

const CHUNKS: usize = 5;
const CHUNK_DELAY: Duration = Duration::from_millis(60);

/// A host with `gpu_weight: 2`: two streamed chats, each of which the fake makes last at least
/// `CHUNKS × CHUNK_DELAY`, are charged at least twice that each and at most twice the time
/// the gateway held them (its request-duration sum); the fake's `load_duration` (1 ms a
/// request) is summed exactly.
#[tokio::test]
async fn host_time_times_gpu_weight() {
    let host = fake_with(FakeConfig {
        chunks: CHUNKS,
        chunk_delay: CHUNK_DELAY,
        ..Default::default()
    });
    let gw = Gateway::start("", weighted(&host, 2.0)).await;
    let key = gw.create_key(&[]);
    for _ in 0..2 {
        let answer = gw.chat_hi(&key).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap();
    }
    let prefix = &key[..11];
    let upstream = host.url();
    let mut text = String::new();
    let labels = [
        ("model", "llama3"),
        ("api_key", prefix),
        ("upstream", upstream.as_str()),
    ];
    let slept = 2.0 * CHUNKS as f64 * CHUNK_DELAY.as_secs_f64();
    // The answer's last byte reaches the client just before the gateway's logging runs, and
    // the GPU counters move after its settlement: wait for both requests in them (a GPU time
    // or load time that never gets there fails below).
    for _ in 0..200 {
        text = gw.metrics_text().await;
        let requests = metric(&text, "llm_quota_requests_total", &[("route", "/api/chat")]);
        let gpu = metric(&text, "llm_quota_gpu_seconds_total", &labels);
        let load = metric(
            &text,
            "llm_quota_model_load_seconds_total",
            &[("model", "llama3"), ("upstream", upstream.as_str())],
        );
        if requests == Some(2.0)
            && gpu.is_some_and(|g| g >= 2.0 * slept)
            && load.is_some_and(|l| l > 0.0015)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let gpu = metric(&text, "llm_quota_gpu_seconds_total", &labels).expect("gpu seconds");
    let held = metric(
        &text,
        "llm_quota_request_duration_seconds_sum",
        &[("route", "/api/chat")],
    )
    .expect("request durations");
    assert!(
        gpu >= 2.0 * slept,
        "GPU time {gpu} s < 2 × the host's {slept} s"
    );
    // (Each request's GPU time is rounded to the millisecond.)
    assert!(
        gpu <= 2.0 * held + 0.002,
        "GPU time {gpu} s > 2 × the {held} s the gateway held the requests"
    );
    let load = metric(
        &text,
        "llm_quota_model_load_seconds_total",
        &[("model", "llama3"), ("upstream", upstream.as_str())],
    )
    .expect("load seconds");
    assert!((load - 0.002).abs() < 1e-9, "load seconds {load}");

    // The usage report: the same GPU time to the millisecond, Ollama's load time apart.
    // The usage log is written every 100 ms: wait for both requests.
    let mut rows = serde_json::Value::Null;
    for _ in 0..200 {
        rows = gw.admin_json("/api/usage?group_by=key").await;
        if rows[0]["requests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let row = &rows[0];
    assert_eq!(row["requests"], 2);
    let reported = row["gpu_seconds"].as_f64().unwrap();
    assert!(
        (reported - gpu).abs() <= 0.002,
        "report {reported} s against the metric's {gpu} s"
    );
    assert_eq!(row["load_seconds"].as_f64(), Some(0.002));
    let csv = gw.admin_text("/api/usage?group_by=key&format=csv").await;
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(
            ",gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name"
        ),
        "{header}"
    );
    assert!(csv.lines().nth(1).unwrap().contains(",0.002,"), "{csv}");
}
