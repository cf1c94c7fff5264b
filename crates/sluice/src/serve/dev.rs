//! `serve --dev`: the dev account (sandboxed, its domain verified) and the dev admin.

use sluice_store::Store;
use tracing::{info, warn};

pub(super) const DEV_ADMIN_EMAIL: &str = "admin@example.com";
pub(super) const DEV_ADMIN_PASSWORD: &str = "dev-admin";

pub(super) async fn ensure_dev_account(store: &dyn Store) -> anyhow::Result<()> {
    use sluice_config::{DEV_ACCOUNT_DOMAIN, DEV_ACCOUNT_EMAIL, DEV_ACCOUNT_PASSWORD};
    match store.account_by_email(DEV_ACCOUNT_EMAIL).await? {
        None => {
            let created = crate::account::create(
                store,
                "Development",
                DEV_ACCOUNT_EMAIL,
                DEV_ACCOUNT_PASSWORD,
                &[DEV_ACCOUNT_DOMAIN.to_string()],
                true,
            )
            .await?;
            info!(
                account = created.id,
                "created dev account {DEV_ACCOUNT_EMAIL} in sandbox mode (its password is in the README)"
            );
        }
        // The dev flow stays one command: its domain is verified (as an admin would).
        Some(account)
            if !account
                .allowed_domains
                .iter()
                .any(|d| d == DEV_ACCOUNT_DOMAIN) =>
        {
            store
                .create_domain(
                    account.id,
                    DEV_ACCOUNT_DOMAIN,
                    Some("admin"),
                    crate::account::now_ms(),
                )
                .await?;
        }
        Some(_) => {}
    }
    // The dev account captures everything it sends until someone turns that off on purpose.
    if let Some(account) = store.account_by_email(DEV_ACCOUNT_EMAIL).await? {
        if crate::account::keep_sandboxed(store, account.id).await? {
            info!(
                account = account.id,
                "dev account {DEV_ACCOUNT_EMAIL} put in sandbox mode"
            );
        } else if !account.sandbox {
            warn!(
                account = account.id,
                "dev account {DEV_ACCOUNT_EMAIL} is not in sandbox mode (turned off on purpose): its mail goes to its providers"
            );
        }
    }
    // A system admin for the web panel and the API's user login.
    if store.user_by_email(DEV_ADMIN_EMAIL).await?.is_none() {
        let id = crate::account::create_admin(store, DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD).await?;
        info!(
            user = id,
            "created dev admin {DEV_ADMIN_EMAIL} (its password is in the README)"
        );
    }
    Ok(())
}
