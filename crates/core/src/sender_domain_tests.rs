//! Tables for the sender-domain records.

use super::*;

fn txt(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[test]
fn domains_an_account_may_name() {
    let good = [
        ("acme.test", "acme.test"),
        ("Acme.Test.", "acme.test"),
        (" mail.acme.test ", "mail.acme.test"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c1.example", "a-b.c1.example"),
    ];
    for (input, want) in good {
        assert_eq!(normalize_domain(input).as_deref(), Ok(want), "{input}");
    }
    let bad = [
        "",
        ".",
        "com",
        "bücher.example",
        "-a.example",
        "a-.example",
        "a..example",
        "a_b.example",
        "[127.0.0.1]",
        "127.0.0.1",
        "a b.example",
        "a@b.example",
    ];
    for input in bad {
        assert!(normalize_domain(input).is_err(), "{input:?} accepted");
    }
    assert!(normalize_domain(&format!("{}.example", "a".repeat(64))).is_err());
    assert!(normalize_domain(&format!("{}.example", vec!["a".repeat(60); 5].join("."))).is_err());
}

#[test]
fn ownership_is_the_exact_token() {
    let token = "0123abcd";
    let table: [(&[&str], bool); 6] = [
        (&["sluice-verify=0123abcd"], true),
        (&["v=spf1 -all", " sluice-verify=0123abcd "], true),
        (&["sluice-verify=0123abc"], false),
        (&["sluice-verify=0123abcde"], false),
        (&["0123abcd"], false),
        (&[], false),
    ];
    for (values, want) in table {
        assert_eq!(proves_ownership(token, &txt(values)), want, "{values:?}");
    }
    assert_eq!(verification_name("acme.test"), "_sluice.acme.test");
    assert_eq!(verification_value("t"), "sluice-verify=t");
}

#[test]
fn spf_table() {
    use CheckStatus::*;
    let table: [(&[&str], CheckStatus); 16] = [
        (&[], Missing),
        (&["google-site-verification=x"], Missing),
        (&["v=spf1 -all"], Ok),
        (&["V=SPF1 include:_spf.example.net ~all"], Ok),
        (
            &["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.acme.test/24 -all"],
            Ok,
        ),
        (&["v=spf1 redirect=_spf.acme.test"], Ok),
        (&["v=spf1 a exp=explain.acme.test -all", "other text"], Ok),
        (&["v=spf1"], Ok),
        (&["v=spf1 -all", "v=spf1 +all"], Invalid),
        (&["v=spf1 ip4:300.1.1.1 -all"], Invalid),
        (&["v=spf1 ip4:192.0.2.1/33 -all"], Invalid),
        (&["v=spf1 include -all"], Invalid),
        (&["v=spf1 bogus -all"], Invalid),
        (&["v=spf1 ++all"], Invalid),
        (&["v=spf1 redirect="], Invalid),
        (
            &[
                "v=spf1 include:a.t include:b.t include:c.t include:d.t include:e.t include:f.t a mx ptr exists:x.t redirect=y.t",
            ],
            Invalid,
        ),
    ];
    for (values, want) in table {
        let check = spf_check(&txt(values));
        assert_eq!(check.status, want, "{values:?}: {}", check.detail);
    }
    // Not an SPF record: v=spf10.
    assert_eq!(spf_check(&txt(&["v=spf10 -all"])).status, Missing);
}

#[test]
fn dmarc_table() {
    use CheckStatus::*;
    let table: [(&[&str], CheckStatus); 9] = [
        (&[], Missing),
        (&["v=spf1 -all"], Missing),
        (&["v=DMARC1; p=reject; rua=mailto:d@acme.test"], Ok),
        (&["v=DMARC1;p=none"], Ok),
        (&["v=DMARC1; p=quarantine; pct=50;"], Ok),
        (&["v=DMARC1; rua=mailto:d@acme.test"], Invalid),
        (&["v=DMARC1; p=block"], Invalid),
        (&["v=DMARC1; p=none", "v=DMARC1; p=reject"], Invalid),
        (&["v=DMARC1; p"], Invalid),
    ];
    for (values, want) in table {
        let check = dmarc_check(&txt(values));
        assert_eq!(check.status, want, "{values:?}: {}", check.detail);
    }
    assert_eq!(
        dmarc_check(&txt(&["p=reject; v=DMARC1"])).status,
        Missing,
        "a record must start with v=DMARC1"
    );
}

#[test]
fn dkim_table() {
    use CheckStatus::*;
    let name = "s1._domainkey.acme.test";
    let expected = "v=DKIM1; k=rsa; p=MIIBIjANBgkq";
    let table: [(&[&str], CheckStatus); 8] = [
        (&[], Missing),
        (&["v=DKIM1; k=rsa; p=MIIBIjANBgkq"], Ok),
        (&["v=DKIM1; k=rsa; p=MIIBIj ANBgkq"], Ok),
        (&["k=rsa; p=MIIBIjANBgkq"], Ok),
        (&["v=DKIM1; k=rsa; p=OTHERKEY"], Invalid),
        (&["v=DKIM1; k=rsa; p="], Invalid),
        (&["v=DKIM2; p=MIIBIjANBgkq"], Invalid),
        (
            &["v=DKIM1; p=MIIBIjANBgkq", "v=DKIM1; p=MIIBIjANBgkq"],
            Invalid,
        ),
    ];
    for (values, want) in table {
        let check = dkim_check(name, expected, &txt(values));
        assert_eq!(check.status, want, "{values:?}: {}", check.detail);
    }
    assert_eq!(dkim_check(name, "garbage", &txt(&["p=x"])).status, Invalid);
    assert_eq!(dkim_public_key("v=DKIM1; p=ab cd"), Some("abcd".into()));
}

#[test]
fn dkim_summary_of_keys() {
    use CheckStatus::*;
    assert_eq!(dkim_summary("acme.test", vec![]).status, Missing);
    let ok = Check::ok("a");
    let missing = Check::missing("b");
    let invalid = Check::invalid("c");
    assert_eq!(dkim_summary("d", vec![ok.clone(), ok.clone()]).status, Ok);
    assert_eq!(
        dkim_summary("d", vec![ok.clone(), missing.clone()]),
        missing
    );
    assert_eq!(
        dkim_summary("d", vec![missing.clone(), invalid.clone(), ok]),
        invalid
    );
}
