//! Starting and stopping the processes under test: the fake Ollama, the gateway (on SQLite or
//! PostgreSQL), nginx and the plain Pingora baseline.
//!
//! Binaries are resolved to absolute paths before anything is spawned: the gateway runs in a
//! temporary working directory, where a relative path would not resolve.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

const BUILD_HINT: &str =
    "build it with `cargo build --release -p llm-quota -p fake-ollama -p llm-quota-bench`";

pub struct Proc {
    child: Child,
    pub pid: u32,
    pub addr: String,
    pub url: String,
    pub key: String,
    /// The gateway's admin API (`host:port`).
    pub admin_addr: String,
    /// The gateway's database and working directory (for running its CLI).
    pub database_url: String,
    pub workdir: Option<PathBuf>,
    /// Stopped with SIGTERM and waited for (nginx: its master stops its workers, which a
    /// SIGKILL of the master would leave running), instead of SIGKILL.
    graceful: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    fn new(child: Child, graceful: bool, dir: Option<tempfile::TempDir>) -> Proc {
        Proc {
            pid: child.id(),
            child,
            addr: String::new(),
            url: String::new(),
            key: String::new(),
            admin_addr: String::new(),
            database_url: String::new(),
            workdir: dir.as_ref().map(|d| d.path().to_owned()),
            graceful,
            _dir: dir,
        }
    }

    fn set_addr(&mut self, addr: String) {
        self.url = format!("http://{addr}");
        self.addr = addr;
    }

    /// Waits until `self.addr` accepts connections, failing early when the process exits.
    fn wait_for_port(&mut self) -> anyhow::Result<()> {
        for _ in 0..400 {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the process exited ({status}) before listening on {}",
                    self.addr
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("{} never accepted connections", self.addr)
    }

    /// SIGTERM, then waits up to 15 s for the exit (the gateway waits out its grace period,
    /// 5 s by default, even when idle); true when it exited.
    pub fn stop_gracefully(&mut self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return true,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // exited and reaped already: its pid may be another process's now
        }
        if self.graceful && self.stop_gracefully() {
            return;
        }
        // Children first (nginx workers), so none is left orphaned.
        for pid in children_of(self.pid) {
            // SAFETY: kill(2), no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Direct children of `parent`, from /proc.
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// The absolute path of a binary: `given` (relative to the current directory), else the first
/// of `defaults` that exists. Fails with the build command when none does.
pub fn resolve_bin(
    given: Option<&Path>,
    defaults: &[PathBuf],
    flag: &str,
) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("no current directory")?;
    let candidates: Vec<PathBuf> = match given {
        Some(p) => vec![cwd.join(p)],
        None => defaults.iter().map(|p| cwd.join(p)).collect(),
    };
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "cannot find {} ({}): {BUILD_HINT}, or pass {flag} PATH",
        tried.join(" nor "),
        if given.is_some() {
            format!("given with {flag}")
        } else {
            "default".to_owned()
        }
    )
}

/// `name` in the directory of the running executable (`target/release/` for a release build).
pub fn next_to_exe(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name))
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The fake Ollama on one thread; `chunk_delay` is slept before each streamed content chunk
/// (its `--delay-ms`).
pub fn start_fake(bin: &Path, chunk_delay: Duration) -> anyhow::Result<Proc> {
    let child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .arg("--delay-ms")
        .arg(chunk_delay.as_millis().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}: {BUILD_HINT}", bin.display()))?;
    let mut proc = Proc::new(child, false, None);
    let line = first_line_with(&mut proc.child, "listening on http://")?;
    proc.set_addr(line.trim_start_matches("listening on http://").to_owned());
    Ok(proc)
}

/// Where a gateway keeps its state.
pub enum Db<'a> {
    /// A fresh SQLite file in the gateway's temporary directory.
    Sqlite,
    /// A database URL (several gateways may share it).
    Url(&'a str),
}

/// Whether the bench key gets a GPU-time limit (`--no-gpu-limit` turns it off).
pub static GPU_LIMIT: AtomicBool = AtomicBool::new(true);
/// Whether the bench key belongs to a team with limits of its own (`--team`): every request is
/// then admitted, extended and settled against the key and the team.
pub static TEAM: AtomicBool = AtomicBool::new(false);

/// Starts `llm-quota serve` against `upstream` (an `http://` URL). With `key: None`, a key with
/// huge daily limits is created first (`llm-quota keys create`); pass the key of a gateway on
/// the same database to reuse it.
pub fn start_gateway(
    bin: &Path,
    upstream: &str,
    db: Db<'_>,
    key: Option<&str>,
) -> anyhow::Result<Proc> {
    let dir = tempfile::tempdir()?;
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}/bench.db", dir.path().display()),
        Db::Url(url) => url.to_owned(),
    };
    let env = |cmd: &mut Command| {
        cmd.current_dir(dir.path())
            .env("DATABASE_URL", &database_url)
            .env("OLLAMA_URL", upstream)
            .env("ADMIN_PASSWORD", "bench")
            .env("LOG_LEVEL", "warn");
        test_kit::serve::on_free_ports(cmd);
    };
    let key = match key {
        Some(k) => k.to_owned(),
        None => {
            let team = TEAM.load(Ordering::Relaxed);
            if team {
                let mut teams = Command::new(bin);
                env(&mut teams);
                let out = teams
                    .args([
                        "teams",
                        "create",
                        "--name",
                        "bench",
                        "--daily-requests",
                        "1000000000000",
                        "--daily-tokens",
                        "1000000000000000",
                        "--daily-gpu-seconds",
                        "1000000000",
                    ])
                    .output()
                    .with_context(|| format!("cannot run {}: {BUILD_HINT}", bin.display()))?;
                if !out.status.success() {
                    bail!(
                        "team creation failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
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
                // Far from the limit, but every request reserves and settles GPU time.
                .args(if GPU_LIMIT.load(Ordering::Relaxed) {
                    &["--daily-gpu-seconds", "1000000000"][..]
                } else {
                    &[]
                })
                .args(if team { &["--team", "bench"][..] } else { &[] })
                .output()
                .with_context(|| format!("cannot run {}: {BUILD_HINT}", bin.display()))?;
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
            key
        }
    };
    let mut serve = Command::new(bin);
    env(&mut serve);
    serve.arg("serve");
    let (child, listening) = test_kit::serve::spawn(serve)
        .with_context(|| format!("cannot run {}: {BUILD_HINT}", bin.display()))?;
    let mut proc = Proc::new(child, false, Some(dir));
    proc.key = key;
    proc.database_url = database_url;
    let host_port = |url: &str| url.trim_start_matches("http://").to_owned();
    proc.admin_addr = host_port(&listening.admin);
    proc.set_addr(host_port(&listening.proxy));
    proc.wait_for_port()?;
    Ok(proc)
}

/// Runs `llm-quota ARGS` against a gateway's database; its stdout.
pub fn gateway_cli(bin: &Path, gateway: &Proc, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(bin);
    if let Some(dir) = &gateway.workdir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .env("DATABASE_URL", &gateway.database_url)
        .env("LOG_LEVEL", "warn")
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "llm-quota {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Open file descriptors of a process, from /proc.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The plain Pingora baseline (`plain-pingora`) in front of `upstream` (`host:port`).
pub fn start_plain_pingora(bin: &Path, upstream: &str, threads: usize) -> anyhow::Result<Proc> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let child = Command::new(bin)
        .arg("--listen")
        .arg(&addr)
        .arg("--upstream")
        .arg(upstream)
        .arg("--threads")
        .arg(threads.to_string())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}: {BUILD_HINT}", bin.display()))?;
    let mut proc = Proc::new(child, false, None);
    proc.set_addr(addr);
    proc.wait_for_port()?;
    Ok(proc)
}

/// nginx-light with a plain reverse-proxy config (keep-alive upstream, no buffering), or None
/// when nginx is not installed. `keepalive_requests` is raised (downstream and upstream) from
/// its default of 1000, after which nginx closes a keep-alive connection: the benchmark's
/// connections would otherwise be reopened every 1000 requests, which the other targets do not
/// do. It runs in the foreground (`daemon off`) and is stopped with
/// SIGTERM, on which its master stops the workers and waits for them before exiting.
pub fn start_nginx(upstream: &str, workers: usize) -> anyhow::Result<Option<Proc>> {
    let Ok(nginx) = which("nginx") else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let conf = format!(
        "worker_processes {workers};\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 75s;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n\
           upstream ollama {{ server {upstream}; keepalive 128; keepalive_requests 1000000; keepalive_timeout 75s; }}\n\
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
    let mut proc = Proc::new(child, true, Some(dir));
    proc.set_addr(format!("127.0.0.1:{port}"));
    proc.wait_for_port()?;
    Ok(Some(proc))
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

/// Resident memory of a process, from /proc.
pub fn rss_mib(pid: u32) -> Option<u64> {
    Some(status_kib(pid, "VmRSS")? / 1024)
}

/// A `kB` field of /proc/PID/status: `VmRSS` (resident now), `VmHWM` (the resident peak since
/// the process started).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `needed` (up to the hard limit, and
/// the hard limit too when allowed), before the processes under test are spawned: they inherit
/// it. Returns the soft limit now in force; fails when it stays below `needed`. (Linux:
/// `rlim_t` is `u64`.)
pub fn raise_nofile(needed: u64) -> anyhow::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < needed {
        let wanted = libc::rlimit {
            rlim_cur: needed,
            rlim_max: lim.rlim_max.max(needed),
        };
        // SAFETY: setrlimit(2) reads the rlimit we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            lim = wanted;
        } else {
            // not allowed to raise the hard limit: go as far as it allows
            let capped = libc::rlimit {
                rlim_cur: lim.rlim_max.min(needed),
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } == 0 {
                lim = capped;
            }
        }
    }
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < needed {
        bail!(
            "the open-file limit is {} (hard {}), {needed} are needed: raise it (`ulimit -n \
             {needed}` as root, or fewer --streams)",
            lim.rlim_cur,
            lim.rlim_max
        );
    }
    Ok(lim.rlim_cur)
}
