//! `plain-pingora`: the benchmark's baseline, a bare Pingora reverse proxy (same Pingora
//! version and thread count as the gateway) with one fixed upstream and no other logic than
//! rewriting `Host`. What llm-quota adds is measured against this, not against nginx.

use std::net::{SocketAddr, ToSocketAddrs as _};

use anyhow::Context as _;
use async_trait::async_trait;
use clap::Parser;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};

#[derive(Debug, Parser)]
#[command(name = "plain-pingora")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Upstream `host:port` (an `http://` prefix is accepted).
    #[arg(long)]
    upstream: String,
    /// Worker threads (default: the available parallelism, like llm-quota's `proxy.threads`).
    #[arg(long)]
    threads: Option<usize>,
}

struct Plain {
    peer: HttpPeer,
    authority: String,
}

#[async_trait]
impl ProxyHttp for Plain {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        _: &mut Session,
        req: &mut RequestHeader,
        _: &mut (),
    ) -> pingora::Result<()> {
        req.insert_header("host", self.authority.as_str())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let authority = args
        .upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let addr: SocketAddr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the upstream {authority}"))?
        .next()
        .with_context(|| format!("the upstream {authority} resolved to no address"))?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    });
    let conf = ServerConf {
        threads: threads.max(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let plain = Plain {
        peer: HttpPeer::new(addr, false, String::new()),
        authority,
    };
    let mut proxy = http_proxy_service(&server.configuration, plain);
    proxy.add_tcp(&args.listen);
    server.add_service(proxy);
    server.run(RunArgs::default());
    Ok(())
}
