//! Starting `llm-quota serve` with every port 0 and learning where it listens: the binary
//! prints one line, `llm-quota: proxy on http://A, admin on http://B, metrics on http://C`,
//! once its listeners are bound.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The line `serve` prints once it listens starts with this.
pub const LISTENING_PREFIX: &str = "llm-quota: proxy on ";

/// Where a started gateway listens (`http://host:port` each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listening {
    pub proxy: String,
    pub admin: String,
    pub metrics: String,
}

impl Listening {
    /// Parses the line `serve` prints once it listens.
    pub fn parse(line: &str) -> Option<Listening> {
        let mut urls = line
            .strip_prefix(LISTENING_PREFIX)?
            .split("http://")
            .skip(1)
            .map(|s| format!("http://{}", s.split([',', ' ']).next().unwrap_or_default()));
        Some(Listening {
            proxy: urls.next()?,
            admin: urls.next()?,
            metrics: urls.next()?,
        })
    }
}

/// Every listener of the gateway on 127.0.0.1, port 0 (the system picks free ports).
pub fn on_free_ports(cmd: &mut Command) -> &mut Command {
    cmd.env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", "0")
        .env("ADMIN_PORT", "0")
        .env("METRICS_PORT", "0")
}

/// Spawns `cmd` (an `llm-quota serve` command) with its stdout piped, and waits for the line
/// that says where it listens; the rest of its stdout is drained in the background so the
/// child never blocks on a full pipe. Blocking: async callers run it on a blocking thread.
pub fn spawn(mut cmd: Command) -> io::Result<(Child, Listening)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let Some(stdout) = child.stdout.take() else {
        return Err(io::Error::other("no stdout"));
    };
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            let status = child.wait()?;
            return Err(io::Error::other(format!(
                "llm-quota exited ({status}) before it listened"
            )));
        }
        if let Some(listening) = Listening::parse(line.trim()) {
            std::thread::spawn(move || for _ in reader.lines() {});
            return Ok((child, listening));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three addresses of the line `serve` prints.
    #[test]
    fn parses_the_listening_line() {
        let line = "llm-quota: proxy on http://127.0.0.1:1, admin on http://127.0.0.1:2, metrics on http://127.0.0.1:3";
        assert_eq!(
            Listening::parse(line),
            Some(Listening {
                proxy: "http://127.0.0.1:1".into(),
                admin: "http://127.0.0.1:2".into(),
                metrics: "http://127.0.0.1:3".into(),
            })
        );
        assert_eq!(Listening::parse("something else"), None);
    }
}
