use chrono::NaiveDate;
use quota_engine::usage_log::{self, DailyUsage, GpuTime, UsageRecord};
use quota_engine::usage_report::{self, GroupBy};
use quota_engine::{keys, settings, NewKey};

use crate::support::{at, databases};

fn record(key_id: i64, day: &str, prompt: i64, completion: i64) -> UsageRecord {
    crate::support::usage_record(key_id, day, "llama3", prompt, completion)
}

use crate::support::new_key;

/// GPU time and Ollama's breakdown are summed per key, day and model like tokens, on both
/// databases, into the per-day series and the report.
#[tokio::test]
async fn gpu_time_is_summed() {
    for t in databases().await {
        let key = new_key(&t.db, "g").await;
        let gpu = |gpu_ms, load_ms| GpuTime {
            gpu_ms,
            load_ms,
            prompt_eval_ms: 10,
            eval_ms: 100,
        };
        let mut first = record(key.id, "2026-11-29", 1, 2);
        first.gpu = gpu(1_500, 700);
        let mut second = record(key.id, "2026-11-29", 1, 2);
        second.gpu = gpu(2_250, 0);
        usage_log::add(&t.db, &[first]).await.unwrap();
        usage_log::add(&t.db, &[second]).await.unwrap();
        let want = GpuTime {
            gpu_ms: 3_750,
            load_ms: 700,
            prompt_eval_ms: 20,
            eval_ms: 200,
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let series = usage_log::daily_series(&t.db, key.id, day, 1)
            .await
            .unwrap();
        assert_eq!(series[0].gpu, want, "{}", t.name);
        let rows = usage_report::report(&t.db, day, day, GroupBy::ALL, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{}", t.name);
        assert_eq!(rows[0].gpu, want, "{}", t.name);
    }
}

/// Records queued through the sink reach the log, and the per-day series sums them with zeros
/// for quiet days.
#[tokio::test]
async fn usage_log_and_daily_series() {
    for t in databases().await {
        let key = new_key(&t.db, "u").await;
        let (sink, queue) = usage_log::queue(16);
        let writer = tokio::spawn(queue.run(t.db.clone(), std::future::pending()));
        assert!(sink.record(record(key.id, "2026-11-27", 5, 7)));
        assert!(sink.record(record(key.id, "2026-11-29", 1, 2)));
        assert!(sink.record(record(key.id, "2026-11-29", 3, 4)));
        drop(sink);
        writer.await.unwrap();
        let series = usage_log::daily_series(
            &t.db,
            key.id,
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            3,
        )
        .await
        .unwrap();
        let day = |date: &str, requests, prompt_tokens, completion_tokens| DailyUsage {
            date: date.into(),
            requests,
            prompt_tokens,
            completion_tokens,
            gpu: Default::default(),
        };
        assert_eq!(
            series,
            vec![
                day("2026-11-27", 1, 5, 7),
                day("2026-11-28", 0, 0, 0),
                day("2026-11-29", 2, 4, 6)
            ],
            "{}",
            t.name
        );
        assert!(keys::delete(&t.db, key.id).await.unwrap());
        let after = usage_log::daily_series(
            &t.db,
            key.id,
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            3,
        )
        .await
        .unwrap();
        assert!(
            after.iter().all(|d| d.requests == 0),
            "deleting a key deletes its usage"
        );
    }
}

/// Overrides are stored, read back, replaced and cleared.
#[tokio::test]
async fn settings_overrides() {
    for t in databases().await {
        let now = at("2026-11-29T10:00:00Z");
        assert_eq!(
            settings::load(&t.db).await.unwrap(),
            settings::Overrides::default()
        );
        settings::set(
            &t.db,
            settings::DEFAULT_MODEL,
            Some(serde_json::json!("qwen3")),
            now,
        )
        .await
        .unwrap();
        settings::set(
            &t.db,
            settings::OLLAMA_URLS,
            Some(serde_json::json!(["http://a:1", "http://b:2"])),
            now,
        )
        .await
        .unwrap();
        settings::set(
            &t.db,
            settings::DEFAULT_MODEL,
            Some(serde_json::json!("llama3")),
            now,
        )
        .await
        .unwrap();
        let o = settings::load(&t.db).await.unwrap();
        assert_eq!(o.default_model.as_deref(), Some("llama3"));
        assert_eq!(
            o.ollama_urls,
            Some(vec!["http://a:1".to_string(), "http://b:2".to_string()])
        );
        settings::set(&t.db, settings::DEFAULT_MODEL, None, now)
            .await
            .unwrap();
        assert_eq!(settings::load(&t.db).await.unwrap().default_model, None);
        assert!(settings::set(&t.db, "nope", None, now).await.is_err());
    }
}

/// A key deleted while its last records wait in the queue does not hold up everyone else's:
/// its records are dropped (its usage went with it), the others land.
#[tokio::test]
async fn records_of_a_deleted_key_do_not_block_the_others() {
    for t in databases().await {
        let new = |name: &str| NewKey {
            name: name.into(),
            ..Default::default()
        };
        let (gone, _) = keys::create(&t.db, &new("gone"), at("2026-11-01T00:00:00Z"))
            .await
            .unwrap();
        let (kept, _) = keys::create(&t.db, &new("kept"), at("2026-11-01T00:00:00Z"))
            .await
            .unwrap();
        let (sink, mut queue) = usage_log::queue(16);
        assert!(sink.record(record(gone.id, "2026-11-29", 5, 5)));
        assert!(sink.record(record(kept.id, "2026-11-29", 1, 2)));
        assert!(keys::delete(&t.db, gone.id).await.unwrap());
        queue.drain(&t.db).await;
        let series = usage_log::daily_series(
            &t.db,
            kept.id,
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            1,
        )
        .await
        .unwrap();
        assert_eq!(series[0].requests, 1, "{}", t.name);
        assert_eq!(series[0].completion_tokens, 2, "{}", t.name);
    }
}
