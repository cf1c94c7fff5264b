//! The resolver against a real (local, authoritative) DNS server.

use sluice_deliver::dns::Resolver;
use sluice_testkit::DnsServer;

#[tokio::test]
async fn resolves_published_records_and_sees_changes_at_once() {
    let server = DnsServer::start();
    let resolver = Resolver::new(&[server.addr().parse().unwrap()]).unwrap();

    assert_eq!(
        resolver.lookup_txt("_sluice.acme.test").await.unwrap(),
        Vec::<String>::new()
    );
    server.publish("_sluice.acme.test", "TXT", &["sluice-verify=abc"]);
    assert_eq!(
        resolver.lookup_txt("_sluice.acme.test").await.unwrap(),
        vec!["sluice-verify=abc".to_string()]
    );
    // A long record arrives as several strings and is read joined.
    let long = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
    server.publish("s1._domainkey.acme.test", "TXT", &[&long]);
    assert_eq!(
        resolver
            .lookup_txt("s1._domainkey.acme.test")
            .await
            .unwrap(),
        vec![long]
    );

    server.publish("both.acme.test", "A", &["93.184.216.34", "127.0.0.1"]);
    server.publish("both.acme.test", "AAAA", &["::1"]);
    let mut ips = resolver.lookup_ip("both.acme.test").await.unwrap();
    ips.sort();
    assert_eq!(
        ips,
        vec![
            "93.184.216.34".parse::<std::net::IpAddr>().unwrap(),
            "127.0.0.1".parse().unwrap(),
            "::1".parse().unwrap()
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(resolver.lookup_ip("missing.acme.test").await.is_err());
    assert_eq!(
        resolver.lookup_ip("[::ffff:127.0.0.1]").await.unwrap(),
        vec!["::ffff:127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
}
