//! The egress policy: may a tenant's destination be connected to at this address?
//!
//! Closed unless the operator opens them (`[egress] allow`): loopback, private, link-local,
//! CGNAT, multicast, unspecified, broadcast, documentation, benchmarking and reserved
//! ranges, and the IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
//! NAT64, 6to4, Teredo), whose embedded address is checked by the same IPv4 rules.
//!
//! An IPv4-mapped address (`::ffff:a.b.c.d`) *is* its IPv4 address to the kernel, so it is
//! judged (and opened) as that address. Other embedding forms are opened only by a range
//! that lists the IPv6 address itself: opening `127.0.0.0/8` does not open
//! `2002:7f00:1::`. Pure: no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is closed to tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Unspecified,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
    ThisNetwork,
    ProtocolAssignments,
    SiteLocal,
    Discard,
    LocalNat64,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Loopback => "loopback",
            Closed::Private => "private",
            Closed::LinkLocal => "link-local",
            Closed::SharedCgnat => "shared address space (CGNAT)",
            Closed::Multicast => "multicast",
            Closed::Unspecified => "unspecified",
            Closed::Broadcast => "broadcast",
            Closed::Documentation => "documentation",
            Closed::Benchmarking => "benchmarking",
            Closed::Reserved => "reserved",
            Closed::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Closed::ProtocolAssignments => "IETF protocol assignments",
            Closed::SiteLocal => "site-local",
            Closed::Discard => "discard-only",
            Closed::LocalNat64 => "local-use NAT64",
        }
    }
}

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    Mapped,
    Compatible,
    Nat64,
    SixToFour,
    TeredoServer,
    TeredoClient,
}

impl Embedding {
    pub fn as_str(self) -> &'static str {
        match self {
            Embedding::Mapped => "IPv4-mapped",
            Embedding::Compatible => "IPv4-compatible",
            Embedding::Nat64 => "NAT64",
            Embedding::SixToFour => "6to4",
            Embedding::TeredoServer => "Teredo server",
            Embedding::TeredoClient => "Teredo client",
        }
    }
}

/// A refusal: the address asked about, why, and the embedded IPv4 address that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub ip: IpAddr,
    pub closed: Closed,
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some((form, v4)) => write!(
                f,
                "{} embeds {} address {v4}, which is {} (closed by the egress policy)",
                self.ip,
                form.as_str(),
                self.closed.as_str()
            ),
            None => write!(
                f,
                "{} is {} (closed by the egress policy)",
                self.ip,
                self.closed.as_str()
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// Whether a tenant's destination may be reached at `ip`, given the ranges the operator
/// opened.
pub fn check(ip: IpAddr, allow: &[IpNet]) -> Result<(), Refused> {
    let judged = ip.to_canonical();
    if allow.iter().any(|net| net.contains(&judged)) {
        return Ok(());
    }
    let (closed, embedded) = match judged {
        IpAddr::V4(v4) => match closed_v4(v4) {
            Some(closed) => {
                let mapped = (judged != ip).then_some((Embedding::Mapped, v4));
                (closed, mapped)
            }
            None => return Ok(()),
        },
        IpAddr::V6(v6) => match closed_v6(v6) {
            Some(found) => found,
            None => return Ok(()),
        },
    };
    Err(Refused {
        ip,
        closed,
        embedded,
    })
}

/// The address a host written as an IP literal names (`127.0.0.1`, `[::1]`, `::1`).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None => host,
    };
    bare.parse().ok()
}

/// The ranges `[event_webhooks] allow_private_targets` opens for webhooks: loopback,
/// private, link-local and CGNAT, both families.
pub fn private_ranges() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    .into_iter()
    .map(|net| net.parse().expect("static CIDR"))
    .collect()
}

fn closed_v4(ip: Ipv4Addr) -> Option<Closed> {
    let [a, b, c, _] = ip.octets();
    let closed = if ip.is_unspecified() {
        Closed::Unspecified
    } else if a == 0 {
        Closed::ThisNetwork
    } else if a == 127 {
        Closed::Loopback
    } else if a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168) {
        Closed::Private
    } else if a == 169 && b == 254 {
        Closed::LinkLocal
    } else if a == 100 && (64..=127).contains(&b) {
        Closed::SharedCgnat
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        Closed::Documentation
    } else if (a, b, c) == (192, 0, 0) {
        Closed::ProtocolAssignments
    } else if a == 198 && (b == 18 || b == 19) {
        Closed::Benchmarking
    } else if (224..=239).contains(&a) {
        Closed::Multicast
    } else if ip.is_broadcast() {
        Closed::Broadcast
    } else if a >= 240 {
        Closed::Reserved
    } else {
        return None;
    };
    Some(closed)
}

fn closed_v6(ip: Ipv6Addr) -> Option<(Closed, Option<(Embedding, Ipv4Addr)>)> {
    let s = ip.segments();
    let low_v4 = Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    let embedded = |form: Embedding, v4: Ipv4Addr| closed_v4(v4).map(|c| (c, Some((form, v4))));
    if ip.is_unspecified() {
        return Some((Closed::Unspecified, None));
    }
    if ip.is_loopback() {
        return Some((Closed::Loopback, None));
    }
    match s {
        // ::a.b.c.d (IPv4-compatible, deprecated): nothing public lives there.
        [0, 0, 0, 0, 0, 0, _, _] => {
            return embedded(Embedding::Compatible, low_v4).or(Some((
                Closed::Reserved,
                Some((Embedding::Compatible, low_v4)),
            )));
        }
        // NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return embedded(Embedding::Nat64, low_v4),
        [0x64, 0xff9b, 1, ..] => return Some((Closed::LocalNat64, None)),
        [0x100, 0, 0, 0, ..] => return Some((Closed::Discard, None)),
        // Teredo: server IPv4 in bits 32..64, client IPv4 inverted in the last 32.
        [0x2001, 0, server_hi, server_lo, _, _, _, _] => {
            let server = Ipv4Addr::from((u32::from(server_hi) << 16) | u32::from(server_lo));
            let client = Ipv4Addr::from(!((u128::from(ip) & 0xffff_ffff) as u32));
            return embedded(Embedding::TeredoServer, server)
                .or_else(|| embedded(Embedding::TeredoClient, client));
        }
        [0x2001, 0x0db8, ..] => return Some((Closed::Documentation, None)),
        [0x2001, 0x0002, 0, ..] => return Some((Closed::Benchmarking, None)),
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return embedded(Embedding::SixToFour, v4);
        }
        _ => {}
    }
    let first = s[0];
    let closed = if first & 0xfe00 == 0xfc00 {
        Closed::Private
    } else if first & 0xffc0 == 0xfe80 {
        Closed::LinkLocal
    } else if first & 0xffc0 == 0xfec0 {
        Closed::SiteLocal
    } else if first & 0xff00 == 0xff00 {
        Closed::Multicast
    } else if first == 0x3fff && s[1] & 0xf000 == 0 {
        Closed::Documentation
    } else {
        return None;
    };
    Some((closed, None))
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
