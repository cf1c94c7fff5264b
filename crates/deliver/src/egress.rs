//! The one egress implementation every outbound client goes through (SMTP deliveries and
//! tests, the email services' HTTP APIs, tenants' event webhooks, IMAP/POP3 checks, SNS
//! fetches).
//!
//! For a tenant's destination ([`Egress::Policed`]): the name is resolved with the one
//! [`Resolver`] (`[dns] nameservers`), **every** address it resolves to is checked against
//! [`sluice_core::egress`] (one closed address refuses the name), and the connection is
//! made to the addresses checked, never to a second lookup's answer, so there is no DNS
//! rebinding window. reqwest clients get the same through a [`reqwest::dns::Resolve`];
//! reqwest skips the resolver for IP-literal URLs, so those are checked by
//! [`Egress::check_url`] before the request, and no client follows redirects.
//!
//! Destinations the operator configured and system providers an admin made are
//! [`Egress::Trusted`]: resolved and connected as before, unchecked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sluice_core::egress::{self, Refused};
use thiserror::Error;
use tokio::net::TcpStream;

use crate::dns::{DnsError, Resolver};

#[derive(Debug, Error)]
pub enum EgressError {
    /// The destination is closed to tenants.
    #[error("destination {host} refused: {refused}")]
    Refused { host: String, refused: Refused },
    /// The name did not resolve.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// Every checked address was tried; the last error.
    #[error("connection to {host} failed: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
}

impl EgressError {
    /// The policy's refusal, if that is what this is.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            EgressError::Refused { refused, .. } => Some(refused),
            _ => None,
        }
    }
}

/// The policy for tenants' destinations: the resolver and the ranges the operator opened.
#[derive(Clone)]
pub struct EgressPolicy {
    resolver: Resolver,
    allow: Arc<[IpNet]>,
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressPolicy")
            .field("allow", &self.allow)
            .finish()
    }
}

impl EgressPolicy {
    pub fn new(resolver: Resolver, allow: &[IpNet]) -> EgressPolicy {
        EgressPolicy {
            resolver,
            allow: allow.into(),
        }
    }

    /// The same policy with more ranges opened (the deprecated
    /// `event_webhooks.allow_private_targets` for webhooks).
    pub fn opening(&self, more: &[IpNet]) -> EgressPolicy {
        let allow: Vec<IpNet> = self.allow.iter().chain(more).copied().collect();
        EgressPolicy {
            resolver: self.resolver.clone(),
            allow: allow.into(),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        egress::check(ip, &self.allow)
    }

    /// Every address `host` resolves to, each checked; one closed address refuses all.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, EgressError> {
        let ips = self.resolver.lookup_ip(host).await?;
        for ip in &ips {
            self.check_ip(*ip).map_err(|refused| EgressError::Refused {
                host: host.to_string(),
                refused,
            })?;
        }
        Ok(ips)
    }

    /// The check when a tenant saves a destination: a literal is judged; a name that
    /// resolves now is judged by every address; a name that does not resolve (yet) may be
    /// saved, since it is checked again at every connection.
    pub async fn check_when_saved(&self, host: &str) -> Result<(), EgressError> {
        match self.resolve(host).await {
            Err(EgressError::Dns(_)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// [`EgressPolicy::check_when_saved`] for a URL's host.
    pub async fn check_url_when_saved(&self, url: &reqwest::Url) -> Result<(), EgressError> {
        match url.host_str() {
            Some(host) => self.check_when_saved(host).await,
            None => Ok(()),
        }
    }
}

/// How a destination is reached: checked (a tenant named it) or trusted (the operator or an
/// admin did).
#[derive(Clone, Debug)]
pub enum Egress {
    Trusted,
    Policed(EgressPolicy),
}

impl Egress {
    /// A TCP connection to `host:port`: for a policed destination to one of the addresses
    /// checked (tried in order), within `timeout` in all.
    pub async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, EgressError> {
        let connect = async {
            let policy = match self {
                Egress::Trusted => {
                    return TcpStream::connect((host, port)).await.map_err(|source| {
                        EgressError::Connect {
                            host: host.to_string(),
                            source,
                        }
                    });
                }
                Egress::Policed(policy) => policy,
            };
            let ips = policy.resolve(host).await?;
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
            for ip in ips {
                match TcpStream::connect(SocketAddr::new(ip, port)).await {
                    Ok(stream) => return Ok(stream),
                    Err(error) => last = error,
                }
            }
            Err(EgressError::Connect {
                host: host.to_string(),
                source: last,
            })
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(EgressError::Connect {
                host: host.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            }),
        }
    }

    /// A reqwest client that resolves through the policy (and uses no proxy from the
    /// environment, which would connect to the destination unchecked). Redirects are the
    /// caller's to turn off.
    pub fn http_client(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match self {
            Egress::Trusted => builder,
            Egress::Policed(policy) => builder
                .no_proxy()
                .dns_resolver(Arc::new(PolicedResolver(policy.clone()))),
        }
    }

    /// Checks a URL whose host is an IP literal (reqwest does not resolve those); names are
    /// checked by the client's resolver when it connects.
    pub fn check_url(&self, url: &str) -> Result<(), EgressError> {
        let Egress::Policed(policy) = self else {
            return Ok(());
        };
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Ok(());
        };
        match parsed.host_str().and_then(egress::ip_literal) {
            Some(ip) => policy.check_ip(ip).map_err(|refused| EgressError::Refused {
                host: parsed.host_str().unwrap_or_default().to_string(),
                refused,
            }),
            None => Ok(()),
        }
    }
}

/// reqwest's resolver for policed clients: the addresses returned are the ones checked.
struct PolicedResolver(EgressPolicy);

impl reqwest::dns::Resolve for PolicedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let ips = policy.resolve(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The egress refusal somewhere in an error's causes (a reqwest error whose resolver
/// refused the name).
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<EgressError>()
            && found.refused().is_some()
        {
            return Some(found);
        }
        cause = current.source();
    }
    None
}
