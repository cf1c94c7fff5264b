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
    sluice_worker::Dispatcher::new(
        store,
        Arc::new(sluice_core::sealed::MasterKey::from_hex(&"11".repeat(32)).unwrap()),
        Arc::new(sluice_deliver::LogDeliverer),
        "test.invalid".into(),
        loopback_open(),
        std::time::Duration::ZERO,
    )
}

/// The real accept path (group commit, monthly limit), delivering through `log`.
pub fn acceptor(store: Arc<dyn Store>) -> sluice_worker::Acceptor {
    let (committer, _task) = sluice_store::QueueCommitter::start(
        store.clone(),
        sluice_store::GroupCommitConfig {
            max_batch: 8,
            max_wait: std::time::Duration::ZERO,
        },
    );
    sluice_worker::Acceptor::new(
        committer,
        store.clone(),
        log_dispatcher(store),
        sluice_worker::DeliveryMode::Async,
        Default::default(),
        Arc::new(tokio::sync::Notify::new()),
        "test".into(),
        std::time::Duration::from_secs(60),
        Default::default(),
        std::time::Duration::ZERO,
    )
}
