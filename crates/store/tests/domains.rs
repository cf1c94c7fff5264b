//! Sender domains in the store, on SQLite and on PostgreSQL (`SLUICE_TEST_DATABASE_URL`):
//! an account's allowed domains are its verified `domains` rows; DNS verifies a domain for
//! one account only, an admin may vouch for it on several; an upgrade from before
//! migration 0017 keeps every listed domain verified.

use std::sync::Arc;

use sluice_store::{AccountUpdate, NewAccount, OpenOptions, Store};
use sluice_testkit::postgres::TempDatabase;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the backend's storage alive for the test.
#[allow(dead_code)]
enum Holder {
    Dir(tempfile::TempDir),
    Pg(TempDatabase),
}

/// An empty database's URL; `None` when PostgreSQL tests are skipped.
async fn database(backend: Backend) -> Option<(Holder, String)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            Some((Holder::Dir(dir), url))
        }
        Backend::Postgres => {
            let db = tokio::task::spawn_blocking(TempDatabase::create)
                .await
                .unwrap()?;
            let url = db.url.clone();
            Some((Holder::Pg(db), url))
        }
    }
}

fn account(email: &str, domains: &[&str]) -> NewAccount {
    NewAccount {
        name: email.into(),
        email: email.into(),
        password_hash: "x".into(),
        allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    a_domain_is_usable_once_verified_and_dns_verifies_it_for_one_account_only,
    an_admins_list_of_allowed_domains_is_exactly_what_is_verified,
    an_upgrade_keeps_every_listed_domain_verified,
);

async fn a_domain_is_usable_once_verified_and_dns_verifies_it_for_one_account_only(
    backend: Backend,
) {
    let Some((_holder, url)) = database(backend).await else {
        return;
    };
    let store: Arc<dyn Store> = sluice_store::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    let a = store
        .create_account(account("a@a.test", &[]), 1)
        .await
        .unwrap();
    let b = store
        .create_account(account("b@b.test", &[]), 1)
        .await
        .unwrap();

    // Added: not usable yet, a token to publish.
    let (row, added) = store
        .create_domain(a.id, "Acme.Test", None, 2)
        .await
        .unwrap();
    assert!(added);
    assert_eq!(row.domain, "acme.test");
    assert!(!row.verified);
    assert_eq!(row.token.len(), 32);
    assert!(
        store
            .account(a.id)
            .await
            .unwrap()
            .unwrap()
            .allowed_domains
            .is_empty()
    );
    let again = store.create_domain(a.id, "acme.test", None, 3).await;
    assert!(matches!(again, Err(sluice_store::StoreError::Conflict(_))));

    // B adds the same name: another row, another token.
    let (b_row, _) = store
        .create_domain(b.id, "acme.test", None, 3)
        .await
        .unwrap();
    assert_ne!(b_row.token, row.token);

    // DNS verifies it for A; then no longer for B.
    let verified = store
        .verify_domain_by_dns(row.id, 4)
        .await
        .unwrap()
        .unwrap();
    assert!(verified.verified);
    assert_eq!(verified.verified_how.as_deref(), Some("dns"));
    assert_eq!(verified.verified_at, Some(4));
    assert_eq!(
        store.account(a.id).await.unwrap().unwrap().allowed_domains,
        vec!["acme.test"]
    );
    assert!(
        store
            .account(a.id)
            .await
            .unwrap()
            .unwrap()
            .policy()
            .allows_sender("x@acme.test")
    );
    assert!(
        store
            .verify_domain_by_dns(b_row.id, 5)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.domain(b_row.id).await.unwrap().unwrap().verified);
    assert!(
        store
            .domain_verified_elsewhere(b.id, "acme.test")
            .await
            .unwrap()
    );
    assert!(
        !store
            .domain_verified_elsewhere(a.id, "acme.test")
            .await
            .unwrap()
    );
    assert!(
        store
            .account(b.id)
            .await
            .unwrap()
            .unwrap()
            .allowed_domains
            .is_empty()
    );

    // An admin vouches for B too: B's row becomes verified, nothing new is added.
    let (vouched, added) = store
        .create_domain(b.id, "acme.test", Some("admin"), 6)
        .await
        .unwrap();
    assert!(!added);
    assert_eq!(vouched.id, b_row.id);
    assert_eq!(vouched.verified_how.as_deref(), Some("admin"));
    assert_eq!(
        store.account(b.id).await.unwrap().unwrap().allowed_domains,
        vec!["acme.test"]
    );

    // Checks are kept on the row; listing is per account or all.
    let checks = serde_json::json!({"spf": {"status": "ok", "detail": "v=spf1 -all"}});
    let checked = store
        .record_domain_checks(row.id, &checks, 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((checked.checks, checked.checked_at), (checks, Some(7)));
    assert_eq!(store.list_domains(Some(a.id)).await.unwrap().len(), 1);
    assert_eq!(store.list_domains(None).await.unwrap().len(), 2);

    // Removed: no longer usable.
    assert!(store.delete_domain(row.id).await.unwrap());
    assert!(!store.delete_domain(row.id).await.unwrap());
    assert!(
        store
            .account(a.id)
            .await
            .unwrap()
            .unwrap()
            .allowed_domains
            .is_empty()
    );
    let listed = store.list_accounts(0, 10).await.unwrap();
    let domains: Vec<_> = listed.iter().map(|a| a.allowed_domains.clone()).collect();
    assert_eq!(domains, vec![vec![], vec!["acme.test".to_string()]]);
}

async fn an_admins_list_of_allowed_domains_is_exactly_what_is_verified(backend: Backend) {
    let Some((_holder, url)) = database(backend).await else {
        return;
    };
    let store = sluice_store::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    // Created by an operator or admin with domains: verified by `admin`.
    let a = store
        .create_account(account("a@a.test", &["One.Test", "two.test"]), 1)
        .await
        .unwrap();
    assert_eq!(a.allowed_domains, vec!["one.test", "two.test"]);
    let rows = store.list_domains(Some(a.id)).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.verified_how.as_deref() == Some("admin"))
    );
    // An unverified row the admin then lists becomes verified.
    let (three, _) = store
        .create_domain(a.id, "three.test", None, 2)
        .await
        .unwrap();
    let update = AccountUpdate {
        allowed_domains: Some(vec!["two.test".into(), "three.test".into()]),
        ..Default::default()
    };
    let updated = store
        .update_account(a.id, &update, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.allowed_domains, vec!["three.test", "two.test"]);
    assert!(store.domain(three.id).await.unwrap().unwrap().verified);
    // one.test is no longer verified but keeps its row and token (DNS may verify it again).
    let one = store
        .list_domains(Some(a.id))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.domain == "one.test")
        .unwrap();
    assert!(!one.verified);
    assert_eq!(one.verified_how, None);
    // An update without the list leaves the domains alone.
    let name = AccountUpdate {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let renamed = store.update_account(a.id, &name, 4).await.unwrap().unwrap();
    assert_eq!(renamed.allowed_domains, vec!["three.test", "two.test"]);
}

async fn an_upgrade_keeps_every_listed_domain_verified(backend: Backend) {
    let Some((_holder, url)) = database(backend).await else {
        return;
    };
    // The schema as it was before 0017, with an account that listed its domains.
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let migrator = sqlx::migrate::Migrator::new(migrations).await.unwrap();
    let listed = r#"["Legacy.test","legacy.test","other.test"]"#;
    let insert = "INSERT INTO accounts (name, email, password_hash, allowed_domains, status, created_at, updated_at) \
                  VALUES ('old', 'old@legacy.test', 'x', $1, 'active', 5, 5)";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            migrator.run_to(16, &pool).await.unwrap();
            sqlx::query(insert)
                .bind(listed)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            migrator.run_to(16, &pool).await.unwrap();
            sqlx::query(insert)
                .bind(listed)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }

    // Opening the store runs 0017: the account keeps sending from what it listed.
    let store = sluice_store::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    let old = store
        .account_by_email("old@legacy.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.allowed_domains, vec!["legacy.test", "other.test"]);
    let policy = old.policy();
    assert!(policy.allows_sender("billing@legacy.test"));
    assert!(policy.allows_sender("x@other.test"));
    assert!(!policy.allows_sender("x@elsewhere.test"));
    let rows = store.list_domains(Some(old.id)).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(row.verified);
        assert_eq!(row.verified_how.as_deref(), Some("migration"));
        assert_eq!(row.token.len(), 32, "{}", row.token);
    }
    assert_ne!(rows[0].token, rows[1].token);
}
