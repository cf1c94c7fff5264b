//! `--dev`: the built-in configuration of a development node and its account.
//!
//! `--dev-container` (env `SLUICE_DEV_CONTAINER`, set in the image) is
//! `DevNetwork::Container`: the dev listeners on 0.0.0.0, the plain port trusting the
//! private ranges as well as loopback.

use crate::Config;
use crate::smtp::{ListenerAuth, ListenerConfig, ListenerTls};
use ipnet::IpNet;
use sluice_core::ProviderConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `serve --dev` listens and whom it trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevNetwork {
    /// A developer's machine: loopback only (the default).
    Loopback,
    /// Inside a container (`--dev-container`, set in the image): every interface, so `-p`
    /// port mappings reach it; the plain port trusts loopback and the private ranges a
    /// container engine's bridge uses (a mapped port's client arrives from the bridge's
    /// gateway: 10.88.0.1 under podman, 172.17.0.1 under Docker), and those ranges are
    /// opened to egress, since a developer's upstream on the host is reached through them.
    Container,
}

impl DevNetwork {
    /// The address the listeners bind.
    fn bind_ip(self) -> &'static str {
        match self {
            DevNetwork::Loopback => "127.0.0.1",
            DevNetwork::Container => "0.0.0.0",
        }
    }

    /// Clients of the plain port, and destinations opened to egress.
    fn local_networks(self) -> Vec<IpNet> {
        let mut nets = vec!["127.0.0.0/8", "::1/128"];
        if self == DevNetwork::Container {
            nets.extend(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]);
        }
        nets.into_iter().map(|n| n.parse().unwrap()).collect()
    }
}

/// The defaults `serve --dev` starts from: everything on loopback, unprivileged ports,
/// state under `./data`, mail captured instead of sent.
pub fn dev_defaults() -> Config {
    dev_defaults_on(DevNetwork::Loopback)
}

/// `serve --dev`'s defaults on the given network (see [`DevNetwork`]); the same ports and
/// state either way.
pub fn dev_defaults_on(network: DevNetwork) -> Config {
    let mut config = Config {
        data_dir: PathBuf::from("./data"),
        ..Config::default()
    };
    let ip = network.bind_ip();
    let addr = |port: u16| -> SocketAddr { format!("{ip}:{port}").parse().unwrap() };
    config.smtp.listeners = vec![
        ListenerConfig {
            addr: addr(2587),
            tls: ListenerTls::Starttls,
            auth: ListenerAuth::Required,
        },
        ListenerConfig {
            addr: addr(2465),
            tls: ListenerTls::Implicit,
            auth: ListenerAuth::Required,
        },
        ListenerConfig {
            addr: addr(2525),
            tls: ListenerTls::None,
            auth: ListenerAuth::None,
        },
    ];
    config.smtp.trusted_networks = network.local_networks();
    config.smtp.trusted_account = DEV_ACCOUNT_EMAIL.into();
    config.delivery.default_provider = ProviderConfig::Capture;
    config.http.listen = Some(addr(2580));
    config.panel.listen = Some(addr(2581));
    // Only a container's own interfaces are "public" here: the engine's port mapping is
    // what exposes it, as the person running it chose.
    config.panel.allow_public_bind = network == DevNetwork::Container;
    config.webhook.listen = Some(addr(2555));
    // The capture sandbox in a mail client: POP3 with STLS, and over implicit TLS.
    config.pop3.listen = Some(addr(2110));
    config.pop3.tls_listen = Some(addr(2995));
    // A developer's upstreams and webhook receivers run on this machine: loopback is opened
    // through the same setting an operator would use, not a special case.
    config.egress.allow = network.local_networks();
    // A person reads these logs in a terminal.
    config.logging.format = "text".into();
    config
}

pub const DEV_ACCOUNT_EMAIL: &str = "dev@example.com";

pub const DEV_ACCOUNT_PASSWORD: &str = "dev";

pub const DEV_ACCOUNT_DOMAIN: &str = "example.com";
