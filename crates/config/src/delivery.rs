//! How mail leaves: `[delivery]` (mode, default provider, retry), `[dns]`, `[egress]`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sluice_core::{ProviderConfig, RetryPolicy};
use std::net::SocketAddr;

/// Name resolution for domain verification and egress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Nameservers as `ip:port`, queried over UDP and TCP. Empty: the system resolver
    /// (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
}

/// The egress policy for destinations a tenant names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Address ranges opened to tenants beyond the public internet (CIDRs), e.g.
    /// `["10.1.2.0/24", "::1/128"]`. Loopback, private, link-local, CGNAT, multicast,
    /// unspecified and documentation ranges (and IPv6 forms embedding them) are closed
    /// unless listed here.
    pub allow: Vec<IpNet>,
}

/// `delivery.mode`: core's, so the config file, the run-time setting and the accept path
/// name the same two values.
pub use sluice_core::DeliveryMode;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub mode: DeliveryMode,
    pub default_provider: ProviderConfig,
    pub retry: RetryPolicy,
    /// Deliveries in flight at once per node.
    pub concurrency: usize,
    /// Deliveries in flight at once per node through one provider: a slow upstream holds
    /// only these; its other messages wait in the queue, untried.
    pub provider_concurrency: usize,
    /// ...and to one SMTP destination host (host:port), whichever providers point there.
    pub host_concurrency: usize,
    /// Most bytes of stored message bodies loaded for delivery at once (each provider is
    /// handed the whole message); a delivery waits for its share, and one larger body goes
    /// alone.
    pub max_bodies_in_memory_bytes: usize,
    /// Most messages one claim takes.
    pub batch_size: u32,
    /// How long a claim holds a message before another worker may take it.
    pub lease_secs: u64,
    /// How often an idle worker looks for due messages.
    pub poll_interval_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            mode: DeliveryMode::Async,
            default_provider: ProviderConfig::Log,
            retry: RetryPolicy::default(),
            concurrency: 64,
            provider_concurrency: 16,
            host_concurrency: 16,
            max_bodies_in_memory_bytes: 128 * 1024 * 1024,
            batch_size: 128,
            lease_secs: 300,
            poll_interval_ms: 250,
        }
    }
}
