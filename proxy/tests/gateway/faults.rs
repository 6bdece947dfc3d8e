//! Faults through the real binary: an Ollama host that accepts and never answers (on both
//! body paths), and clients whose request body breaks off or is malformed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Gateway, Options};

/// An "Ollama" that answers its health checks (`GET /api/tags`, `GET /api/ps`) and reads
/// every POST without ever answering it. Returns its URL.
async fn silent_ollama() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    if buf[..n].starts_with(b"GET ") {
                        let body =
                            r#"{"models":[{"name":"llama3:latest","model":"llama3:latest"}]}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    // A POST: keep reading (its body), never answer.
                }
            });
        }
    });
    url
}

/// A host that accepts a request and never answers gets 504 after `ollama.read_timeout_seconds`
/// on both body paths (small bodies through Pingora's loop, 200 KiB ones through the
/// gateway's own), and the request is refunded: it consumes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_host_is_a_timeout_on_both_body_paths() {
    let upstream = silent_ollama().await;
    let gw = Gateway::start(
        &upstream,
        Options {
            yaml: "ollama:\n  read_timeout_seconds: 1\n".into(),
            ..Default::default()
        },
    )
    .await;
    let key = gw.create_key(&["--daily-requests", "10"]);
    for padding in [0, 200 * 1024] {
        let body = json!({"model": "llama3", "stream": false,
            "messages": [{"role": "user", "content": "hi", "images": ["A".repeat(padding)]}]});
        let started = std::time::Instant::now();
        let r = gw.post("/api/chat", &key, body).send().await.unwrap();
        assert_eq!(r.status(), 504, "padding {padding}");
        let answer: Value = r.json().await.unwrap();
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("did not answer in time"));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "padding {padding}"
        );
    }
    let c = gw.wait_for_counters(1, |c| c.day_requests == 0).await;
    assert_eq!((c.day_requests, c.day_tokens), (0, 0));
}

/// Sends raw bytes to the proxy, closes the sending half, and returns the answer's text.
fn raw_exchange(proxy: &str, request: &[u8]) -> String {
    let addr = proxy.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A body shorter than its `Content-Length`, and broken chunked encoding, are the client's
/// fault: 400 with a message that says so, never "no Ollama host is reachable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_request_bodies_are_the_clients_fault() {
    let upstream = crate::support::fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let short = format!(
        "POST /api/chat HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":\"llama3\""
    );
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n"
    );
    for (name, request) in [("short", short), ("chunked", chunked)] {
        let proxy = gw.proxy.clone();
        let answer = tokio::task::spawn_blocking(move || raw_exchange(&proxy, request.as_bytes()))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
        assert!(
            answer.contains("incomplete or malformed"),
            "{name}: {answer}"
        );
    }
    assert_eq!(gw.counters(1).await.day_requests, 0);
}

/// Counted fields of a type the meter cannot count (messages as a string, a numeric prompt)
/// are refused with 400 naming the field, before anything reaches Ollama.
#[tokio::test]
async fn counted_fields_of_the_wrong_type_are_400() {
    let upstream = crate::support::fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    for (path, body, field) in [
        (
            "/api/chat",
            json!({"model": "llama3", "messages": "hello"}),
            "messages",
        ),
        (
            "/api/generate",
            json!({"model": "llama3", "prompt": 42}),
            "prompt",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3", "messages": "hello"}),
            "messages",
        ),
    ] {
        let r = gw.post(path, &key, body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains(&format!("`{field}`")), "{path}: {text}");
    }
    assert!(upstream.requests().iter().all(|r| r.method != "POST"));
}

/// An error answer the gateway writes itself (here a 429) carries the same CORS headers as a
/// proxied answer, so a browser client can read its `Retry-After`.
#[tokio::test]
async fn error_answers_expose_retry_after_to_browsers() {
    let upstream = crate::support::fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-requests", "0"]);
    let r = gw
        .post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "messages": []}),
        )
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        header("access-control-allow-origin"),
        "http://localhost:5173"
    );
    assert!(header("access-control-expose-headers").contains("retry-after"));
    assert!(!header("retry-after").is_empty());
}

/// A TCP forwarder to PostgreSQL that can be broken (every connection closed, new ones
/// refused) and restored: PostgreSQL going away and coming back, as the gateway sees it.
struct Breakable {
    addr: std::net::SocketAddr,
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Breakable {
    async fn to(target: std::net::SocketAddr) -> Breakable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, l) = (broken.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if b.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        });
        Breakable {
            addr,
            broken,
            links,
        }
    }

    fn break_all(&self) {
        self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.broken
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// PostgreSQL goes away: requests the ledger can admit from memory still pass at first, and
/// their usage is kept; once it cannot be written for a while, admission fails closed with
/// 503 and a message that says why (fast, not after a long pool timeout). When PostgreSQL
/// is back the gateway recovers by itself, and every request it admitted is in the usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_fails_closed_and_recovers_with_nothing_lost() {
    let Some(base) = crate::support::postgres_url() else {
        return;
    };
    let url = crate::support::fresh_postgres_schema().await;
    let pg: std::net::SocketAddr = base
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .parse()
        .unwrap();
    let forwarder = Breakable::to(pg).await;
    let via = url.replacen(&pg.to_string(), &forwarder.addr.to_string(), 1);
    let upstream = crate::support::fake();
    let gw = Gateway::start(
        &upstream.url(),
        Options {
            db: crate::support::Db::Shared(via),
            ..Default::default()
        },
    )
    .await;
    let key = gw.create_key(&["--daily-requests", "1000"]);
    let chat = || {
        gw.post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
    };
    assert_eq!(chat().await.unwrap().status(), 200);
    forwarder.break_all();
    let mut served = 1;
    let mut refusal = None;
    for _ in 0..100 {
        let r = chat().await.unwrap();
        match r.status().as_u16() {
            200 => served += 1,
            503 => {
                refusal = Some(r.text().await.unwrap());
                break;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refusal = refusal.expect("admission never failed closed while usage could not land");
    assert!(
        refusal.contains("quota database is unavailable"),
        "{refusal}"
    );
    forwarder.restore();
    let mut back = false;
    for _ in 0..100 {
        if chat().await.unwrap().status() == 200 {
            served += 1;
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the gateway did not recover once PostgreSQL was back");
    gw.wait_for_counters(1, |c| c.day_requests == served).await;
}

/// A small tmpfs, mounted for one test and unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a message) where mounting is not allowed.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.dir.path().join("fill")).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.path().join("fill")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The SQLite file's disk fills up while requests run: every request answered 200 is in the
/// usage at the end (after space is back, read by a fresh connection while the gateway runs and
/// after it stopped), none is lost or counted twice; while usage cannot be written for long,
/// admission fails closed with 503. Skipped, with a message, where a tmpfs cannot be mounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_sqlite_disk_loses_no_usage() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let database_url = format!("sqlite://{}/gw.db", disk.dir.path().display());
    let upstream = crate::support::fake();
    let mut gw = Gateway::start(
        &upstream.url(),
        Options {
            db: crate::support::Db::Shared(database_url),
            ..Default::default()
        },
    )
    .await;
    let key = gw.create_key(&[]);
    let chat = || {
        gw.post(
            "/api/chat",
            &key,
            json!({"model": "llama3", "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
    };
    let mut served = 0;
    let mut refused = 0;
    let mut tally = |status: u16, body: String| match status {
        200 => served += 1,
        503 => {
            assert!(body.contains("quota database is unavailable"), "{body}");
            refused += 1;
        }
        other => panic!("unexpected {other}: {body}"),
    };
    for _ in 0..10 {
        let r = chat().await.unwrap();
        tally(r.status().as_u16(), r.text().await.unwrap());
    }
    disk.fill();
    // Long enough for the once-a-second WAL checkpoints to need room the disk lacks.
    for _ in 0..150 {
        let r = chat().await.unwrap();
        tally(r.status().as_u16(), r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    disk.free();
    for _ in 0..20 {
        let r = chat().await.unwrap();
        tally(r.status().as_u16(), r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 10, "served {served}, refused {refused}");
    // What this instance's pool sees is what is in the file: the counters agree with a
    // fresh connection before and after the gateway stops.
    gw.wait_for_counters(1, |c| c.day_requests == served).await;
    gw.terminate();
    assert_eq!(
        gw.counters(1).await.day_requests,
        served,
        "refused {refused}"
    );
}
