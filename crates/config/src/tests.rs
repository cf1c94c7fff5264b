use super::*;
use std::io::Write;
use std::net::SocketAddr;

/// Every test that reads `SLUICE_*` variables runs inside a `figment::Jail`: jails take
/// turns, so one test's variables never leak into another's load.
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature, not ours
fn example_file_matches_the_defaults() {
    figment::Jail::expect_with(|_jail| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
        let config = load(Config::default(), Some(&path)).expect("sluice.example.toml loads");
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&config).unwrap(),
            toml::to_string(&defaults).unwrap(),
            "sluice.example.toml must list the defaults"
        );
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature, not ours
fn file_then_env_override() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "data_dir = \"/tmp/x\"\n[smtp]\nmax_connections = 5\n[delivery.default_provider]\ntype = \"smtp\"\nhost = \"mx.test\"\nsecurity = \"tls\""
    )
    .unwrap();
    figment::Jail::expect_with(|jail| {
        jail.set_env("SLUICE_SMTP__MAX_RECIPIENTS", "7");
        jail.set_env("SLUICE_API__RATE_LIMIT_PER_MINUTE", "9");
        jail.set_env("SLUICE_SECRETS__MASTER_KEY", "ab");
        // Not config keys: ignored, not refused.
        jail.set_env("SLUICE_TEST_DATABASE_URL", "postgres://x/y");
        jail.set_env("SLUICE_CONFIG", "/etc/sluice.toml");
        let config = load(Config::default(), Some(file.path())).unwrap();
        assert_eq!(config.smtp.max_connections, 5);
        assert_eq!(config.smtp.max_recipients, 7);
        assert_eq!(config.api.rate_limit_per_minute, 9);
        assert_eq!(config.secrets.master_key, "ab");
        match &config.delivery.default_provider {
            ProviderConfig::Smtp(smtp) => assert_eq!(smtp.port(), 465),
            other => panic!("{other:?}"),
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature, not ours
fn unknown_keys_and_unsafe_plain_listener_are_refused() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[smtp]\nmax_conections = 5").unwrap();
    figment::Jail::expect_with(|_jail| {
        assert!(load(Config::default(), Some(file.path())).is_err());
        Ok(())
    });

    let mut config = Config::default();
    config.smtp.listeners.push(ListenerConfig {
        addr: "127.0.0.1:2525".parse().unwrap(),
        tls: ListenerTls::None,
        auth: ListenerAuth::None,
    });
    assert!(
        config.validate().is_err(),
        "auth=none without trusted networks"
    );
    config.smtp.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
    config.smtp.trusted_account = "a@b.c".into();
    assert!(config.validate().is_ok());
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature
fn unknown_keys_in_a_config_section_are_still_refused() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SLUICE_SMTP__MAX_CONECTIONS", "7");
        assert!(load(Config::default(), None).is_err());
        Ok(())
    });
}

#[test]
fn webhook_public_web_url_must_be_an_absolute_http_url() {
    for bad in [
        "javascript:alert(1)",
        "app.example.com",
        "//app.example.com",
        "https://",
        "https://app.example.com/\"><script>",
        "ftp://app.example.com",
    ] {
        let mut config = Config::default();
        config.webhook.public_web_url = bad.into();
        let error = config.validate().expect_err(bad).to_string();
        assert!(error.contains("webhook.public_web_url"), "{bad}: {error}");
    }
    for good in ["", "https://app.example.com", "http://127.0.0.1:8080/app/"] {
        let mut config = Config::default();
        config.webhook.public_web_url = good.into();
        assert!(config.validate().is_ok(), "{good}");
    }
}

/// Every address a config listens on.
fn listen_addrs(config: &Config) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = config.smtp.listeners.iter().map(|l| l.addr).collect();
    addrs.extend(config.http.listen);
    addrs.extend(config.panel.listen);
    addrs.extend(config.webhook.listen);
    addrs.extend(config.pop3.listen);
    addrs.extend(config.pop3.tls_listen);
    addrs
}

#[test]
fn dev_defaults_stay_on_loopback_and_the_container_variant_binds_every_interface() {
    let trusts = |config: &Config, ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        config.smtp.trusted_networks.iter().any(|n| n.contains(&ip))
    };
    let loopback = dev_defaults();
    assert_eq!(loopback.validate().map_err(|e| e.to_string()), Ok(()));
    let addrs = listen_addrs(&loopback);
    assert_eq!(addrs.len(), 8, "{addrs:?}");
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    assert!(trusts(&loopback, "127.0.0.1"));
    assert!(
        !trusts(&loopback, "10.88.0.1"),
        "a developer's machine trusts loopback only"
    );
    assert!(!loopback.panel.allow_public_bind);

    let container = dev_defaults_on(DevNetwork::Container);
    assert_eq!(container.validate().map_err(|e| e.to_string()), Ok(()));
    let ports = |c: &Config| listen_addrs(c).iter().map(|a| a.port()).collect::<Vec<_>>();
    assert_eq!(
        ports(&container),
        ports(&loopback),
        "the same ports either way"
    );
    assert!(
        listen_addrs(&container)
            .iter()
            .all(|a| a.ip().is_unspecified()),
        "{:?}",
        listen_addrs(&container)
    );
    // A mapped port's client arrives from the engine's bridge gateway.
    for gateway in ["10.88.0.1", "172.17.0.1", "192.168.65.1", "127.0.0.1"] {
        assert!(trusts(&container, gateway), "{gateway}");
    }
    for outside in ["8.8.8.8", "100.64.0.1", "172.32.0.1"] {
        assert!(!trusts(&container, outside), "{outside}");
    }
    assert_eq!(container.egress.allow, container.smtp.trusted_networks);
    assert_eq!(container.data_dir, loopback.data_dir);
}

/// The container image's config file loads and validates (and stays free of typos).
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature, not ours
fn container_image_config_loads() {
    figment::Jail::expect_with(|_jail| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/container/sluice.toml");
        let config = load(Config::default(), Some(&path)).expect("deploy/container/sluice.toml");
        assert_eq!(config.data_dir, Path::new("/var/lib/sluice"));
        assert!(
            listen_addrs(&config)
                .iter()
                .all(|a| a.ip().is_unspecified() && a.port() > 1024)
        );
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature, not ours
fn pop3_is_off_unless_configured_and_its_limits_are_checked() {
    let config = Config::default();
    assert_eq!((config.pop3.listen, config.pop3.tls_listen), (None, None));
    figment::Jail::expect_with(|_jail| {
        let config = load_str(
            Config::default(),
            "[pop3]\nlisten = \"127.0.0.1:1110\"\ntls_listen = \"127.0.0.1:1995\"",
        )
        .expect("the issue's [pop3] keys load");
        assert_eq!(config.pop3.listen, Some("127.0.0.1:1110".parse().unwrap()));
        assert_eq!(
            config.pop3.tls_listen,
            Some("127.0.0.1:1995".parse().unwrap())
        );
        for bad in [
            "[pop3]\nmax_connections = 0",
            "[pop3]\nidle_timeout_secs = 0",
            "[pop3]\nlisten = \"127.0.0.1:1110\"\ntls_listen = \"127.0.0.1:1110\"",
            "[pop3]\nlisten_tls = \"127.0.0.1:1995\"",
        ] {
            assert!(load_str(Config::default(), bad).is_err(), "{bad}");
        }
        Ok(())
    });
}
