//! The egress implementation against real parts: a local authoritative DNS server, a real
//! listener that counts the connections it gets, real reqwest clients.

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use sluice_deliver::dns::Resolver;
use sluice_deliver::egress::{Egress, EgressError, EgressPolicy};
use sluice_testkit::DnsServer;

/// A listener on 127.0.0.1 that counts the connections made to it.
struct Listener {
    socket: TcpListener,
    port: u16,
}

impl Listener {
    fn start() -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let port = socket.local_addr().unwrap().port();
        Listener { socket, port }
    }

    /// Connections accepted so far (a refused destination must leave this at 0).
    fn connections(&self) -> usize {
        let mut n = 0;
        while self.socket.accept().is_ok() {
            n += 1;
        }
        n
    }
}

fn policy(dns: &DnsServer, allow: &[&str]) -> EgressPolicy {
    let resolver = Resolver::new(&[dns.addr().parse().unwrap()]).unwrap();
    let allow: Vec<ipnet::IpNet> = allow.iter().map(|n| n.parse().unwrap()).collect();
    EgressPolicy::new(resolver, &allow)
}

fn refused_ip(error: &EgressError) -> Option<IpAddr> {
    error.refused().map(|r| r.ip)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn names_are_judged_by_every_address_they_resolve_to() {
    let dns = DnsServer::start();
    dns.publish("public.egress.test", "A", &["93.184.216.34"]);
    dns.publish("loop.egress.test", "A", &["127.0.0.1"]);
    dns.publish("both.egress.test", "A", &["93.184.216.34", "127.0.0.1"]);
    dns.publish(
        "six.egress.test",
        "AAAA",
        &["2606:4700:4700::1111", "::ffff:7f00:1"],
    );
    dns.publish("metadata.egress.test", "A", &["169.254.169.254"]);
    dns.publish("nat64.egress.test", "AAAA", &["64:ff9b::a00:1"]);
    let closed = policy(&dns, &[]);

    assert_eq!(
        closed.resolve("public.egress.test").await.unwrap(),
        vec!["93.184.216.34".parse::<IpAddr>().unwrap()]
    );
    for (name, refused) in [
        ("loop.egress.test", "127.0.0.1"),
        ("both.egress.test", "127.0.0.1"),
        ("six.egress.test", "::ffff:127.0.0.1"),
        ("metadata.egress.test", "169.254.169.254"),
        ("nat64.egress.test", "64:ff9b::a00:1"),
    ] {
        let error = closed.resolve(name).await.unwrap_err();
        assert_eq!(refused_ip(&error), Some(refused.parse().unwrap()), "{name}");
        assert!(error.to_string().contains(name), "{error}");
    }
    // Unresolvable: not a refusal, so it may be saved; a connection still fails.
    let missing = closed.resolve("missing.egress.test").await.unwrap_err();
    assert!(matches!(missing, EgressError::Dns(_)), "{missing}");
    assert!(closed.check_when_saved("missing.egress.test").await.is_ok());
    assert!(closed.check_when_saved("both.egress.test").await.is_err());
    assert!(closed.check_when_saved("public.egress.test").await.is_ok());

    // Opening loopback opens the names that resolve there, not the link-local one.
    let open = policy(&dns, &["127.0.0.0/8"]);
    assert_eq!(open.resolve("both.egress.test").await.unwrap().len(), 2);
    assert!(open.resolve("six.egress.test").await.is_ok());
    assert!(open.resolve("metadata.egress.test").await.is_err());
}

#[tokio::test]
async fn a_refused_destination_gets_no_connection_and_an_opened_one_does() {
    let dns = DnsServer::start();
    dns.publish("loop.egress.test", "A", &["127.0.0.1"]);
    let listener = Listener::start();
    let closed = Egress::Policed(policy(&dns, &[]));
    for host in [
        "127.0.0.1",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "loop.egress.test",
    ] {
        let error = closed
            .connect_tcp(host, listener.port, SECOND)
            .await
            .unwrap_err();
        assert!(error.refused().is_some(), "{host}: {error}");
    }
    assert_eq!(listener.connections(), 0);

    // Trusted (the operator's own destination) and opened ranges connect.
    Egress::Trusted
        .connect_tcp("127.0.0.1", listener.port, SECOND)
        .await
        .unwrap();
    let open = Egress::Policed(policy(&dns, &["127.0.0.0/8"]));
    for host in ["127.0.0.1", "loop.egress.test", "[::ffff:127.0.0.1]"] {
        open.connect_tcp(host, listener.port, SECOND)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    // Give the kernel a moment to queue the last accept.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(listener.connections(), 4);
}

#[tokio::test]
async fn http_clients_check_literal_urls_and_resolve_names_through_the_policy() {
    let dns = DnsServer::start();
    dns.publish("hook.egress.test", "A", &["127.0.0.1"]);
    dns.publish("both.egress.test", "A", &["93.184.216.34", "127.0.0.1"]);
    let listener = Listener::start();
    let port = listener.port;
    let closed = Egress::Policed(policy(&dns, &[]));
    // Literal hosts as URL parsers read them: every one of these is 127.0.0.1.
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::127.0.0.1]:{port}/"),
        format!("http://[64:ff9b::7f00:1]:{port}/"),
        format!("http://[2002:7f00:1::]:{port}/"),
    ] {
        let error = closed.check_url(&url).unwrap_err();
        assert!(error.refused().is_some(), "{url}: {error}");
    }
    // Names: the client's resolver refuses them, the error says why.
    let client = closed
        .http_client(reqwest::Client::builder())
        .build()
        .unwrap();
    for name in ["hook.egress.test", "both.egress.test"] {
        let url = format!("http://{name}:{port}/");
        assert!(closed.check_url(&url).is_ok(), "names are the resolver's");
        let error = client.get(&url).send().await.unwrap_err();
        let refusal = sluice_deliver::egress::refusal_in(&error)
            .unwrap_or_else(|| panic!("{url}: {error:?}"));
        assert!(refusal.to_string().contains(name), "{refusal}");
    }
    assert_eq!(listener.connections(), 0);

    // Opened: the same name connects (the listener sees the request).
    let open = Egress::Policed(policy(&dns, &["127.0.0.0/8"]));
    let client = open
        .http_client(reqwest::Client::builder().timeout(Duration::from_millis(300)))
        .build()
        .unwrap();
    assert!(open.check_url(&format!("http://127.0.0.1:{port}/")).is_ok());
    // Nobody answers the request; the connection is what counts.
    let _ = client
        .get(format!("http://hook.egress.test:{port}/"))
        .send()
        .await;
    assert_eq!(listener.connections(), 1);
}
