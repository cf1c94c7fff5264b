use super::*;

use Closed::*;

/// `(host as a tenant writes it, closed as what, through which embedding)`; `None`: open.
type Row = (&'static str, Option<(Closed, Option<Embedding>)>);

const fn shut(closed: Closed) -> Option<(Closed, Option<Embedding>)> {
    Some((closed, None))
}

const fn via(closed: Closed, form: Embedding) -> Option<(Closed, Option<Embedding>)> {
    Some((closed, Some(form)))
}

const IPV4: &[Row] = &[
    ("127.0.0.1", shut(Loopback)),
    ("127.255.255.254", shut(Loopback)),
    ("10.0.0.1", shut(Private)),
    ("10.255.255.255", shut(Private)),
    ("172.16.0.1", shut(Private)),
    ("172.31.255.255", shut(Private)),
    ("172.15.255.255", None),
    ("172.32.0.1", None),
    ("192.168.1.1", shut(Private)),
    ("192.167.255.255", None),
    ("169.254.169.254", shut(LinkLocal)),
    ("169.254.0.1", shut(LinkLocal)),
    ("100.64.0.1", shut(SharedCgnat)),
    ("100.127.255.255", shut(SharedCgnat)),
    ("100.63.255.255", None),
    ("100.128.0.1", None),
    ("224.0.0.1", shut(Multicast)),
    ("239.255.255.250", shut(Multicast)),
    ("0.0.0.0", shut(Unspecified)),
    ("0.1.2.3", shut(ThisNetwork)),
    ("255.255.255.255", shut(Broadcast)),
    ("192.0.2.1", shut(Documentation)),
    ("198.51.100.7", shut(Documentation)),
    ("203.0.113.9", shut(Documentation)),
    ("192.0.0.8", shut(ProtocolAssignments)),
    ("198.18.0.1", shut(Benchmarking)),
    ("198.19.255.255", shut(Benchmarking)),
    ("198.20.0.1", None),
    ("240.0.0.1", shut(Reserved)),
    ("250.1.2.3", shut(Reserved)),
    ("8.8.8.8", None),
    ("93.184.216.34", None),
    ("1.1.1.1", None),
];

const IPV6: &[Row] = &[
    ("[::1]", shut(Loopback)),
    ("::1", shut(Loopback)),
    ("[0:0:0:0:0:0:0:1]", shut(Loopback)),
    ("[::]", shut(Unspecified)),
    // IPv4-mapped: judged as the IPv4 address the kernel connects to.
    ("[::ffff:127.0.0.1]", via(Loopback, Embedding::Mapped)),
    ("[::ffff:7f00:1]", via(Loopback, Embedding::Mapped)),
    (
        "[0:0:0:0:0:ffff:127.0.0.1]",
        via(Loopback, Embedding::Mapped),
    ),
    (
        "[0000:0000:0000:0000:0000:ffff:7f00:0001]",
        via(Loopback, Embedding::Mapped),
    ),
    ("[::FFFF:127.0.0.1]", via(Loopback, Embedding::Mapped)),
    (
        "[::ffff:169.254.169.254]",
        via(LinkLocal, Embedding::Mapped),
    ),
    ("[::ffff:a9fe:a9fe]", via(LinkLocal, Embedding::Mapped)),
    ("[::ffff:10.0.0.1]", via(Private, Embedding::Mapped)),
    ("[::ffff:0.0.0.0]", via(Unspecified, Embedding::Mapped)),
    ("[::ffff:8.8.8.8]", None),
    // IPv4-compatible (deprecated): closed whatever it embeds.
    ("[::127.0.0.1]", via(Loopback, Embedding::Compatible)),
    ("[::7f00:1]", via(Loopback, Embedding::Compatible)),
    ("[::10.1.2.3]", via(Private, Embedding::Compatible)),
    ("[::8.8.8.8]", via(Reserved, Embedding::Compatible)),
    // NAT64.
    ("[64:ff9b::7f00:1]", via(Loopback, Embedding::Nat64)),
    ("[64:ff9b::127.0.0.1]", via(Loopback, Embedding::Nat64)),
    ("[64:ff9b::a9fe:a9fe]", via(LinkLocal, Embedding::Nat64)),
    ("[64:ff9b::c0a8:1]", via(Private, Embedding::Nat64)),
    ("[64:ff9b::808:808]", None),
    ("[64:ff9b:1::a00:1]", shut(LocalNat64)),
    // 6to4: the IPv4 address in bits 16..48.
    ("[2002:7f00:1::]", via(Loopback, Embedding::SixToFour)),
    (
        "[2002:7f00:0001:0:0:0:0:1]",
        via(Loopback, Embedding::SixToFour),
    ),
    ("[2002:a00:1::1]", via(Private, Embedding::SixToFour)),
    ("[2002:c0a8:101::]", via(Private, Embedding::SixToFour)),
    ("[2002:a9fe:a9fe::]", via(LinkLocal, Embedding::SixToFour)),
    ("[2002:808:808::1]", None),
    // Teredo: server in bits 32..64, client inverted in the last 32 bits.
    ("[2001:0:7f00:1::]", via(Loopback, Embedding::TeredoServer)),
    (
        "[2001:0:808:808::80ff:fffe]",
        via(Loopback, Embedding::TeredoClient),
    ),
    (
        "[2001:0:808:808::f5ff:fffe]",
        via(Private, Embedding::TeredoClient),
    ),
    // RFC 4380's own example: client 192.0.2.45.
    (
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
        via(Documentation, Embedding::TeredoClient),
    ),
    ("[2001:0:808:808:0:0:f7f7:f7f7]", None),
    ("[2001:db8::1]", shut(Documentation)),
    ("[3fff::1]", shut(Documentation)),
    ("[2001:2::1]", shut(Benchmarking)),
    ("[fc00::1]", shut(Private)),
    ("[fd12:3456::1]", shut(Private)),
    ("[fe80::1]", shut(LinkLocal)),
    ("[febf::1]", shut(LinkLocal)),
    ("[fec0::1]", shut(SiteLocal)),
    ("[feff::1]", shut(SiteLocal)),
    ("[ff02::1]", shut(Multicast)),
    ("[ff0e::fb]", shut(Multicast)),
    ("[100::1]", shut(Discard)),
    ("[100:0:0:1::1]", None),
    ("[2606:4700:4700::1111]", None),
    ("[2a00:1450:4001::1]", None),
];

fn judged(host: &str, allow: &[IpNet]) -> Result<(), Refused> {
    let ip = ip_literal(host).unwrap_or_else(|| panic!("{host} is not a literal"));
    check(ip, allow)
}

fn expected_of(result: Result<(), Refused>) -> Option<(Closed, Option<Embedding>)> {
    result
        .err()
        .map(|refused| (refused.closed, refused.embedded.map(|(form, _)| form)))
}

#[test]
fn every_address_form_is_judged_by_the_default_policy() {
    for (host, expected) in IPV4.iter().chain(IPV6) {
        assert_eq!(expected_of(judged(host, &[])), *expected, "{host}");
    }
}

#[test]
fn a_refusal_names_the_address_the_range_and_the_embedded_address() {
    let refused = judged("[::ffff:7f00:1]", &[]).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "::ffff:127.0.0.1 embeds IPv4-mapped address 127.0.0.1, which is loopback (closed by the egress policy)"
    );
    let refused = judged("[2001:0:808:808::80ff:fffe]", &[]).unwrap_err();
    assert_eq!(
        refused.embedded,
        Some((Embedding::TeredoClient, Ipv4Addr::LOCALHOST))
    );
    assert_eq!(
        judged("169.254.169.254", &[]).unwrap_err().to_string(),
        "169.254.169.254 is link-local (closed by the egress policy)"
    );
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn opened_ranges_open_exactly_what_they_list() {
    let loopback_v4 = nets(&["127.0.0.0/8"]);
    let table: &[(&str, bool)] = &[
        ("127.0.0.1", true),
        ("127.1.2.3", true),
        // The same address to the kernel.
        ("[::ffff:127.0.0.1]", true),
        ("[::ffff:7f00:1]", true),
        // Not listed: other families and forms stay closed.
        ("[::1]", false),
        ("[::127.0.0.1]", false),
        ("[64:ff9b::7f00:1]", false),
        ("[2002:7f00:1::]", false),
        ("10.0.0.1", false),
        ("169.254.169.254", false),
        ("8.8.8.8", true),
    ];
    for (host, open) in table {
        assert_eq!(judged(host, &loopback_v4).is_ok(), *open, "{host}");
    }

    let one_subnet = nets(&["10.1.2.0/24"]);
    for (host, open) in [
        ("10.1.2.7", true),
        ("10.1.2.255", true),
        ("10.1.3.1", false),
        ("10.1.1.255", false),
        ("192.168.0.1", false),
    ] {
        assert_eq!(judged(host, &one_subnet).is_ok(), open, "{host}");
    }

    let v6_loopback = nets(&["::1/128"]);
    assert!(judged("[::1]", &v6_loopback).is_ok());
    assert!(judged("127.0.0.1", &v6_loopback).is_err());

    let six_to_four = nets(&["2002:7f00:1::/48"]);
    assert!(judged("[2002:7f00:1::5]", &six_to_four).is_ok());
    assert!(judged("[2002:7f00:2::5]", &six_to_four).is_err());
}

#[test]
fn the_deprecated_private_alias_opens_private_ranges_only() {
    let private = private_ranges();
    for host in [
        "127.0.0.1",
        "10.9.8.7",
        "172.20.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.1.1",
        "[::ffff:169.254.169.254]",
        "[::1]",
        "[fd00::1]",
        "[fe80::1]",
    ] {
        assert!(judged(host, &private).is_ok(), "{host}");
    }
    for host in [
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",
        "255.255.255.255",
        "[ff02::1]",
        "[2001:db8::1]",
    ] {
        assert!(judged(host, &private).is_err(), "{host}");
    }
}

#[test]
fn literals_are_read_with_or_without_brackets() {
    assert_eq!(ip_literal("[::1]"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(ip_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(
        ip_literal("127.0.0.1"),
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    );
    assert_eq!(ip_literal("[127.0.0.1"), None);
    assert_eq!(ip_literal("mail.example.com"), None);
    assert_eq!(ip_literal("2130706433"), None);
}
