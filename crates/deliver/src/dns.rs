//! The one resolver: sender-domain verification (TXT, SPF, DKIM, DMARC) and the egress
//! policy's name resolution both go through it, so tests point both at one local server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DnsError {
    /// The name has no record of the asked type (NXDOMAIN or an empty answer).
    #[error("no {0} record for {1}")]
    NotFound(&'static str, String),
    /// The resolver could not get an answer (timeout, SERVFAIL, no server).
    #[error("DNS lookup of {name} failed: {reason}")]
    Failed { name: String, reason: String },
}

/// A cheap-to-clone handle on one resolver.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<TokioResolver>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    /// `nameservers` empty: the system's (`/etc/resolv.conf`). Otherwise each `ip:port`
    /// over UDP and TCP. Answers are not cached beyond a lookup, so a record a tenant just
    /// published is seen by the next check.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Resolver, DnsError> {
        let failed = |e: &dyn std::fmt::Display| DnsError::Failed {
            name: "resolver".into(),
            reason: e.to_string(),
        };
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| failed(&e))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.attempts = 1;
        options.timeout = std::time::Duration::from_secs(3);
        let inner = builder.build().map_err(|e| failed(&e))?;
        Ok(Resolver {
            inner: Arc::new(inner),
        })
    }

    /// Every address `host` resolves to (A and AAAA). An IP literal answers itself.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(vec![ip]);
        }
        let fqdn = absolute(host);
        match self.inner.lookup_ip(fqdn.as_str()).await {
            Ok(found) => {
                let ips: Vec<IpAddr> = found.iter().collect();
                if ips.is_empty() {
                    Err(DnsError::NotFound("A/AAAA", host.into()))
                } else {
                    Ok(ips)
                }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                Err(DnsError::NotFound("A/AAAA", host.into()))
            }
            Err(e) => Err(DnsError::Failed {
                name: host.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// The TXT records at `name`, each one's strings joined (as SPF and DKIM read them).
    pub async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = absolute(name);
        match self.inner.txt_lookup(fqdn.as_str()).await {
            Ok(found) => Ok(found
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(DnsError::Failed {
                name: name.into(),
                reason: e.to_string(),
            }),
        }
    }
}

/// A name with its final dot, so no search domain is tried.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}
