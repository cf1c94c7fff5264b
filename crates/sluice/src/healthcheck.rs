//! `sluice healthcheck`: the container image's `HEALTHCHECK` (a slim image has no curl).
//! One `GET` over plain HTTP/1.1; healthy only on a `200` within the timeout.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Args, Clone, Debug)]
pub struct HealthcheckArgs {
    /// What to ask: an `http://host:port/path` URL (the HTTP listener's liveness endpoint).
    #[arg(
        long,
        env = "SLUICE_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:2580/healthz"
    )]
    url: String,
    /// Seconds for the whole check.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Where to connect and what to ask for, from an `http://` URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url must start with http:// (got {url})");
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        bail!("--url needs a host (and no user info): {url}");
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        path: path.to_string(),
    })
}

/// The status code of an HTTP/1.x status line.
fn status_of(response: &[u8]) -> Option<u16> {
    let line = response.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

async fn check(target: &Target) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(&target.authority)
        .await
        .with_context(|| format!("connecting to {}", target.authority))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: sluice-healthcheck\r\n\r\n",
        target.path, target.authority
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // The status line is all that matters; a small cap keeps a misbehaving peer cheap.
    let mut chunk = [0u8; 1024];
    while response.len() < 8192 {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if response.contains(&b'\n') {
            break;
        }
    }
    status_of(&response).context("no HTTP status line in the answer")
}

pub async fn run(args: HealthcheckArgs) -> anyhow::Result<()> {
    let target = parse_url(&args.url)?;
    let status = tokio::time::timeout(Duration::from_secs(args.timeout), check(&target))
        .await
        .with_context(|| format!("no answer from {} within {} s", args.url, args.timeout))??;
    if status != 200 {
        bail!("{} answered {status}", args.url);
    }
    println!("healthy: {} answered 200", args.url);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_address_and_path() {
        let t = parse_url("http://127.0.0.1:2580/healthz").unwrap();
        assert_eq!(t.authority, "127.0.0.1:2580");
        assert_eq!(t.path, "/healthz");
        assert_eq!(parse_url("http://ingress").unwrap().authority, "ingress:80");
        assert_eq!(
            parse_url("http://[::1]:2580/x").unwrap().authority,
            "[::1]:2580"
        );
        assert_eq!(parse_url("http://[::1]/x").unwrap().authority, "[::1]:80");
        for bad in ["https://a/", "ftp://a", "http:///x", "http://u@a/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.1 503 Service Unavailable\r\nx"),
            Some(503)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let args = HealthcheckArgs {
            url: format!("http://127.0.0.1:{port}/healthz"),
            timeout: 2,
        };
        assert!(run(args).await.is_err());
    }
}
