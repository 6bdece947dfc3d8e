//! Starting and stopping the processes under test: the fake Ollama, the gateway, nginx.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

pub struct Proc {
    child: Child,
    pub pid: u32,
    pub addr: String,
    pub url: String,
    pub key: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_line_with(child: &mut Child, prefix: &str) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("process exited before printing {prefix:?}");
        }
        if line.starts_with(prefix) {
            std::thread::spawn(move || for _ in reader.lines() {});
            return Ok(line.trim().to_owned());
        }
    }
}

pub fn start_fake(bin: &str) -> anyhow::Result<Proc> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {bin} (cargo build --release -p fake-ollama)"))?;
    let line = first_line_with(&mut child, "listening on http://")?;
    let addr = line.trim_start_matches("listening on http://").to_owned();
    Ok(Proc {
        pid: child.id(),
        child,
        url: format!("http://{addr}"),
        addr,
        key: String::new(),
        _dir: None,
    })
}

pub fn start_gateway(bin: &str, upstream: &str) -> anyhow::Result<Proc> {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let env = |cmd: &mut Command| {
        cmd.current_dir(dir.path())
            .env("DATABASE_URL", &db)
            .env("OLLAMA_URL", upstream)
            .env("ADMIN_PASSWORD", "bench")
            .env("PROXY_HOST", "127.0.0.1")
            .env("PROXY_PORT", "0")
            .env("ADMIN_PORT", "0")
            .env("METRICS_PORT", "0")
            .env("LOG_LEVEL", "warn");
    };
    let mut create = Command::new(bin);
    env(&mut create);
    let out = create
        .args([
            "keys",
            "create",
            "--name",
            "bench",
            "--daily-requests",
            "1000000000000",
            "--daily-tokens",
            "1000000000000000",
        ])
        .output()
        .with_context(|| format!("cannot run {bin} (cargo build --release -p llm-quota)"))?;
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    if !key.starts_with("sk-") {
        bail!(
            "key creation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut serve = Command::new(bin);
    env(&mut serve);
    let mut child = serve.arg("serve").stdout(Stdio::piped()).spawn()?;
    let line = first_line_with(&mut child, "llm-quota: proxy on http://")?;
    let addr = line
        .trim_start_matches("llm-quota: proxy on http://")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned();
    wait_for_port(&addr)?;
    Ok(Proc {
        pid: child.id(),
        child,
        url: format!("http://{addr}"),
        addr,
        key,
        _dir: Some(dir),
    })
}

/// nginx-light with a plain reverse-proxy config (keep-alive upstream, no buffering), or None
/// when nginx is not installed.
pub fn start_nginx(upstream: &str) -> anyhow::Result<Option<Proc>> {
    let Ok(nginx) = which("nginx") else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = format!(
        "worker_processes 2;\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
           upstream ollama {{ server {upstream}; keepalive 128; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://ollama;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
        d = dir.path().display()
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .spawn()?;
    let addr = format!("127.0.0.1:{port}");
    wait_for_port(&addr)?;
    Ok(Some(Proc {
        pid: child.id(),
        child,
        url: format!("http://{addr}"),
        addr,
        key: String::new(),
        _dir: Some(dir),
    }))
}

fn which(name: &str) -> anyhow::Result<String> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = format!("{dir}/{name}");
        if std::path::Path::new(&p).is_file() {
            return Ok(p);
        }
    }
    bail!("{name} not found")
}

fn wait_for_port(addr: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("{addr} never accepted connections")
}

/// Resident memory of a process, from /proc.
pub fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024)
}
