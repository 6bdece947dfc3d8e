use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_ollama::{FakeConfig, FakeOllama};
use quota_engine::{db, gate::Counters, DatabaseConnection, DatabaseUrl, Periods};

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-quota");

/// Which database a gateway runs on.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    /// A fresh schema in `TEST_DATABASE_URL`.
    Postgres,
    /// The same database as another gateway (a second instance).
    Shared(String),
}

/// Test options.
pub struct Options {
    pub db: Db,
    pub yaml: String,
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            db: Db::Sqlite,
            yaml: String::new(),
            env: Vec::new(),
        }
    }
}

/// A running gateway (the real binary) and what it needs.
pub struct Gateway {
    child: Child,
    pub proxy: String,
    pub admin: String,
    pub metrics: String,
    pub database_url: String,
    upstream: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

pub use test_kit::postgres::test_database_url as postgres_url;

pub async fn fresh_postgres_schema() -> String {
    let base = postgres_url().expect("TEST_DATABASE_URL");
    test_kit::postgres::fresh_schema_url(&base, "gw")
        .await
        .expect("TEST_DATABASE_URL unreachable")
}

/// `llm-quota serve` with the test's configuration in `dir` (ports 0, quiet logs).
fn serve_command(
    dir: &std::path::Path,
    database_url: &str,
    upstream: &str,
    options: &Options,
) -> Command {
    let yaml_path = dir.join("test.yaml");
    std::fs::write(
        &yaml_path,
        format!(
            "proxy:\n  threads: 1\n  grace_period_seconds: 0\n{}",
            options.yaml
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--config")
        .arg(&yaml_path)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ADMIN_PASSWORD", "test-password")
        .env("DATABASE_URL", database_url)
        .env("APP_TZ", "Europe/Berlin")
        .env("LOG_LEVEL", "warn")
        .stderr(Stdio::inherit());
    test_kit::serve::on_free_ports(&mut cmd);
    cmd.envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Empty: the test's YAML names the upstreams (e.g. with a max_concurrency).
    if !upstream.is_empty() {
        cmd.env("OLLAMA_URL", upstream);
    }
    cmd
}

impl Gateway {
    /// Starts the binary against `upstream` and waits until it answers /healthz.
    pub async fn start(upstream: &str, options: Options) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match &options.db {
            Db::Sqlite => format!("sqlite://{}/data/gw.db", dir.path().display()),
            Db::Postgres => fresh_postgres_schema().await,
            Db::Shared(url) => url.clone(),
        };
        let cmd = serve_command(dir.path(), &database_url, upstream, &options);
        let (child, listening) = tokio::task::spawn_blocking(move || test_kit::serve::spawn(cmd))
            .await
            .unwrap()
            .expect("start llm-quota");
        let gateway = Gateway {
            child,
            proxy: listening.proxy,
            admin: listening.admin,
            metrics: listening.metrics,
            database_url,
            upstream: upstream.to_owned(),
            dir,
            client: reqwest::Client::new(),
        };
        for _ in 0..200 {
            if let Ok(r) = gateway
                .client
                .get(format!("{}/healthz", gateway.proxy))
                .send()
                .await
            {
                if r.status() == 200 {
                    return gateway;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("llm-quota did not become healthy");
    }

    /// Runs `llm-quota ARGS` against this gateway's database; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("APP_TZ", "Europe/Berlin")
            .env("LOG_LEVEL", "warn")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Creates a key through the CLI; returns the plaintext.
    pub fn create_key(&self, args: &[&str]) -> String {
        let mut all = vec!["keys", "create", "--name", "test"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = self.cli(&all);
        assert_eq!(code, 0, "{stderr}");
        stdout.lines().last().unwrap().to_owned()
    }

    pub async fn db(&self) -> DatabaseConnection {
        db::connect(&DatabaseUrl::parse(&self.database_url).unwrap())
            .await
            .unwrap()
    }

    /// The key's counters now (keys are numbered from 1 in creation order).
    pub async fn counters(&self, key_id: i64) -> Counters {
        let periods = Periods::from_name("Europe/Berlin")
            .unwrap()
            .at(chrono::Utc::now());
        let db = self.db().await;
        quota_engine::gate::current_counters(&db, key_id, &periods)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Polls until `check` holds for the key's counters (the commit runs after the response).
    pub async fn wait_for_counters(
        &self,
        key_id: i64,
        check: impl Fn(&Counters) -> bool,
    ) -> Counters {
        let mut last = Counters::default();
        for _ in 0..400 {
            last = self.counters(key_id).await;
            if check(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("counters never reached the expected state: {last:?}");
    }

    pub fn post(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.proxy))
            .bearer_auth(key)
            .json(&body)
    }

    /// A streamed native chat of one short message to `llama3`.
    pub fn chat_hi(&self, key: &str) -> reqwest::RequestBuilder {
        self.post(
            "/api/chat",
            key,
            serde_json::json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}),
        )
    }

    /// `GET` on the proxy with `key`.
    pub fn get(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.proxy))
            .bearer_auth(key)
    }

    /// `GET` on the admin API with the admin password.
    async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.admin))
            .bearer_auth("test-password")
            .send()
            .await
            .unwrap()
    }

    /// `GET` on the admin API with the admin password; the JSON answer.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_get(path).await.json().await.unwrap()
    }

    /// `GET` on the admin API with the admin password; the answer as text.
    pub async fn admin_text(&self, path: &str) -> String {
        self.admin_get(path).await.text().await.unwrap()
    }

    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Gateway {
    /// `kill -9`: the process dies at once, flushing nothing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits until the process has exited (its shutdown work done).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status} after SIGTERM");
    }

    /// Runs a second `serve` on this gateway's database and configuration (in a folder of its
    /// own); returns its exit code and stderr. Panics if it is still running after 30 s.
    pub async fn serve_again(&self) -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = serve_command(
            dir.path(),
            &self.database_url,
            &self.upstream,
            &Options::default(),
        );
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
                    .unwrap();
                return (status.code().unwrap_or(-1), stderr);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("the second serve kept running");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fake() -> FakeOllama {
    FakeOllama::start(FakeConfig::default()).unwrap()
}

pub fn fake_with(config: FakeConfig) -> FakeOllama {
    FakeOllama::start(config).unwrap()
}

/// Options for a gateway in front of `host` alone, with that host's `gpu_weight`.
pub fn weighted(host: &FakeOllama, gpu_weight: f64) -> Options {
    Options {
        yaml: format!(
            "ollama:\n  urls:\n    - {{url: {}, gpu_weight: {gpu_weight:?}}}\n",
            host.url()
        ),
        ..Default::default()
    }
}

/// cl100k_base count, as the gateway counts.
pub fn tokens(text: &str) -> i64 {
    llm_quota::dialect::count_tokens(text) as i64
}

/// Sends `counts[i]` concurrent requests to `gws[i]`, all at once; returns (200s, 429s).
pub async fn split_burst(gws: &[&Gateway], key: &str, counts: &[usize]) -> (usize, usize) {
    let mut tasks = Vec::new();
    for (gw, &n) in gws.iter().zip(counts) {
        for _ in 0..n {
            let req = gw.post(
                "/api/generate",
                key,
                serde_json::json!({"model": "llama3", "prompt": "hi", "stream": false}),
            );
            tasks.push(tokio::spawn(async move {
                req.send().await.unwrap().status().as_u16()
            }));
        }
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited)
}

/// The value of the sample `name{labels…}` in a Prometheus exposition (all of `labels` must
/// be among the sample's labels).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
}
