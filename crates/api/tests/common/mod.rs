//! The in-process accept path the API tests share: the real group commit and Acceptor,
//! delivering through `log`, with loopback opened for tenants the way `--dev` opens it.
// Each test file uses the part it needs.
#![allow(dead_code)]

use std::sync::Arc;

use sluice_store::Store;

/// `[egress] allow` opening loopback, as the test harness and `serve --dev` do.
pub fn loopback_open() -> sluice_deliver::egress::EgressPolicy {
    let resolver = sluice_deliver::dns::Resolver::new(&[]).unwrap();
    let allow = ["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    sluice_deliver::egress::EgressPolicy::new(resolver, &allow)
}

/// A Dispatcher that delivers through `log`, reading every account setting afresh.
pub fn log_dispatcher(store: Arc<dyn Store>) -> Arc<sluice_worker::Dispatcher> {
    sluice_worker::Dispatcher::new(sluice_worker::DispatcherSettings {
        store,
        master_key: Arc::new(sluice_core::sealed::MasterKey::from_hex(&"11".repeat(32)).unwrap()),
        default: Arc::new(sluice_deliver::LogDeliverer),
        hello_name: "test.invalid".into(),
        tenant_egress: loopback_open(),
        cache_ttl: std::time::Duration::ZERO,
        slots: Default::default(),
        delivery_log: None,
    })
}

/// The real accept path (group commit, monthly limit), delivering through `log`.
pub fn acceptor(store: Arc<dyn Store>) -> sluice_accept::Acceptor {
    let (committer, _task) = sluice_store::QueueCommitter::start(
        store.clone(),
        sluice_store::GroupCommitConfig {
            max_batch: 8,
            max_wait: std::time::Duration::ZERO,
        },
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    sluice_accept::Acceptor::new(sluice_accept::AcceptorSettings {
        committer,
        store: store.clone(),
        mode: sluice_accept::DeliveryMode::Async,
        wake: wake.clone(),
        staging: Default::default(),
        cache_ttl: std::time::Duration::ZERO,
        account_status: Arc::new(sluice_store::ttl_cache::TtlCache::new(
            std::time::Duration::ZERO,
        )),
        sync: sluice_worker::SyncDelivery {
            store: store.clone(),
            dispatcher: log_dispatcher(store),
            retry: Default::default(),
            staging: Default::default(),
            wake,
            owner: "test".into(),
            lease: std::time::Duration::from_secs(60),
        },
        handoff: None,
        inline_body_bytes: 4096,
        reserve: None,
    })
}
