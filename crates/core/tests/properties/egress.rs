//! `egress::check` against an independent list of the ranges closed by default: a closed
//! address is refused unless an opened range holds it, in every IPv6 form that embeds it;
//! anything else passes; opening a range opens only what it holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use sluice_core::egress::check;

/// IPv4 ranges closed by default (RFC 6890 special-purpose, and more).
const CLOSED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16", // link-local, cloud metadata (169.254.169.254) among it
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 ranges closed by default whatever they embed.
const CLOSED_V6: &[&str] = &[
    "::/96",          // unspecified, loopback, IPv4-compatible
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard-only
    "2001:db8::/32",
    "2001:2::/48",
    "fc00::/7", // unique local, AWS's IPv6 metadata fd00:ec2::254 among it
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "3fff::/20",
];

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

fn closed_v4(ip: Ipv4Addr) -> bool {
    nets(CLOSED_V4).iter().any(|n| n.contains(&IpAddr::V4(ip)))
}

/// The IPv4 addresses an IPv6 address carries (NAT64, 6to4, Teredo server and client).
fn embedded(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let low = (u128::from(ip) & 0xffff_ffff) as u32;
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![Ipv4Addr::from(low)],
        [0x2002, hi, lo, ..] => vec![Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))],
        [0x2001, 0, hi, lo, ..] => vec![
            Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)),
            Ipv4Addr::from(!low),
        ],
        _ => Vec::new(),
    }
}

/// Closed by default, by the reference lists.
fn closed(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => closed_v4(v4),
        IpAddr::V6(v6) => {
            nets(CLOSED_V6).iter().any(|n| n.contains(&IpAddr::V6(v6)))
                || embedded(v6).into_iter().any(closed_v4)
        }
    }
}

fn mapped(v4: Ipv4Addr) -> IpAddr {
    IpAddr::V6(v4.to_ipv6_mapped())
}

/// The IPv6 forms that carry `v4`: mapped, compatible, NAT64, 6to4, Teredo (server and
/// client), with arbitrary other bits where the form leaves some.
fn forms(v4: Ipv4Addr, noise: u128) -> Vec<IpAddr> {
    let bits = u128::from(u32::from(v4));
    let [hi, lo] = [(u32::from(v4) >> 16) as u16, u32::from(v4) as u16];
    let noise80 = noise & ((1u128 << 80) - 1);
    let noise64 = noise & ((1u128 << 64) - 1);
    let noise32 = noise & 0xffff_ffff;
    vec![
        mapped(v4),
        IpAddr::V6(Ipv6Addr::from(bits)),
        IpAddr::V6(Ipv6Addr::from((0x0064_ff9bu128 << 96) | bits)),
        IpAddr::V6(Ipv6Addr::from(
            (0x2002u128 << 112) | (u128::from(hi) << 96) | (u128::from(lo) << 80) | noise80,
        )),
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0000u128 << 96) | (bits << 64) | noise64,
        )),
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0000u128 << 96)
                | (noise32 << 64)
                | (((noise >> 32) & 0xffff_ffff) << 32)
                | u128::from(!u32::from(v4)),
        )),
    ]
}

/// Addresses spread over the interesting places, not only uniformly.
fn any_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (proptest::sample::select(CLOSED_V4.to_vec()), any::<u32>()).prop_map(|(net, r)| {
            let net: Ipv4Net = net.parse().unwrap();
            let host = r & !u32::from(net.netmask());
            Ipv4Addr::from(u32::from(net.network()) | host)
        }),
        Just(Ipv4Addr::new(169, 254, 169, 254)),
        Just(Ipv4Addr::new(255, 255, 255, 255)),
        Just(Ipv4Addr::new(8, 8, 8, 8)),
    ]
}

fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        (proptest::sample::select(CLOSED_V6.to_vec()), any::<u128>()).prop_map(|(net, r)| {
            let net: Ipv6Net = net.parse().unwrap();
            let host = r & !u128::from(net.netmask());
            Ipv6Addr::from(u128::from(net.network()) | host)
        }),
        (any_v4(), any::<u128>(), 0usize..6).prop_map(|(v4, noise, i)| {
            match forms(v4, noise)[i] {
                IpAddr::V6(v6) => v6,
                IpAddr::V4(_) => unreachable!(),
            }
        }),
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
        Just("2606:4700::1111".parse().unwrap()),
    ]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![any_v4().prop_map(IpAddr::V4), any_v6().prop_map(IpAddr::V6)]
}

fn any_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any_v4(), 0u8..=32)
            .prop_map(|(ip, len)| IpNet::V4(Ipv4Net::new(ip, len).unwrap().trunc())),
        (any_v6(), 0u8..=128)
            .prop_map(|(ip, len)| IpNet::V6(Ipv6Net::new(ip, len).unwrap().trunc())),
        proptest::sample::select(CLOSED_V4.to_vec()).prop_map(|n| n.parse().unwrap()),
    ]
}

proptest! {
    #![proptest_config(crate::config())]

    /// With nothing opened: closed ranges refused, everything else allowed.
    #[test]
    fn the_default_policy_refuses_exactly_the_closed_ranges(ip in any_ip()) {
        prop_assert_eq!(check(ip, &[]).is_err(), closed(ip), "{}", ip);
        if let Err(refused) = check(ip, &[]) {
            prop_assert_eq!(refused.ip, ip);
        }
    }

    /// A closed IPv4 address is refused in every IPv6 form that embeds it, and an open
    /// one is not refused for its IPv4-mapped form (which the kernel treats as IPv4).
    #[test]
    fn embedded_forms_of_a_closed_address_are_refused(v4 in any_v4(), noise in any::<u128>()) {
        let all = forms(v4, noise);
        if closed_v4(v4) {
            for form in &all {
                prop_assert!(check(*form, &[]).is_err(), "{} embeds {}", form, v4);
            }
        } else {
            prop_assert!(check(IpAddr::V4(v4), &[]).is_ok());
            prop_assert!(check(mapped(v4), &[]).is_ok());
        }
    }

    /// With ranges opened: allowed exactly when an opened range holds the address (its
    /// IPv4 form when mapped) or it is not closed; opening never refuses anything.
    #[test]
    fn opened_ranges_open_exactly_what_they_hold(
        ip in any_ip(),
        allow in proptest::collection::vec(any_net(), 0..4),
    ) {
        let judged = ip.to_canonical();
        let opened = allow.iter().any(|n| n.contains(&judged));
        prop_assert_eq!(check(ip, &allow).is_ok(), opened || !closed(ip), "{} under {:?}", ip, allow);
        if check(ip, &[]).is_ok() {
            prop_assert!(check(ip, &allow).is_ok());
        }
    }

    /// Opening an IPv4 range opens its mapped forms but none of the other embeddings.
    #[test]
    fn an_opened_ipv4_range_does_not_open_other_embeddings(
        v4 in any_v4(),
        noise in any::<u128>(),
    ) {
        prop_assume!(closed_v4(v4));
        let allow = vec![IpNet::V4(Ipv4Net::new(v4, 32).unwrap())];
        let all = forms(v4, noise);
        prop_assert!(check(IpAddr::V4(v4), &allow).is_ok());
        prop_assert!(check(all[0], &allow).is_ok());
        for form in &all[1..] {
            prop_assert_eq!(check(*form, &allow).is_err(), closed(*form), "{}", form);
        }
    }
}
