//! Accounts from the command line: password hashing and the first API key.

use anyhow::Context;
use rand::RngCore;
use sluice_core::secret::{self, new_secret};
use sluice_store::{NewAccount, NewUser, Store};

pub struct Created {
    pub id: i64,
    pub api_key: String,
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(secret::hash_password(password)?)
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

pub async fn create(
    store: &dyn Store,
    name: &str,
    email: &str,
    password: &str,
    domains: &[String],
    sandbox: bool,
) -> anyhow::Result<Created> {
    if sluice_core::validate_mailbox(email).is_err() {
        anyhow::bail!("--email must be an email address");
    }
    if password.is_empty() {
        anyhow::bail!("--password must not be empty");
    }
    // The operator acts as an admin: each domain is added verified (`admin`).
    let domains = domains
        .iter()
        .map(|d| sluice_core::sender_domain::normalize_domain(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--domain: {e}"))?;
    let now = now_ms();
    let account = store
        .create_account(
            NewAccount {
                name: name.to_string(),
                email: email.to_string(),
                password_hash: hash_password(password)?,
                allowed_domains: domains,
            },
            now,
        )
        .await
        .context("creating the account")?;
    // Before the account has an API key: nothing it sends leaves.
    if sandbox {
        let update = sluice_store::AccountUpdate {
            sandbox: Some(true),
            ..Default::default()
        };
        store
            .update_account(account.id, &update, now)
            .await
            .context("putting the account in sandbox mode")?;
    }
    let key = new_secret("sk", random_bytes());
    store
        .add_api_key(account.id, &key.prefix, &key.hash, now)
        .await
        .context("storing the API key")?;
    Ok(Created {
        id: account.id,
        api_key: key.value,
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Puts an existing account in sandbox mode, unless someone turned it off on purpose (an
/// audited `sandbox_off`): `serve --dev` keeps the dev account capturing. True when it
/// changed.
pub async fn keep_sandboxed(store: &dyn Store, id: i64) -> anyhow::Result<bool> {
    let Some(account) = store.account(id).await? else {
        return Ok(false);
    };
    if account.sandbox {
        return Ok(false);
    }
    let turned_off = store
        .list_audit(&sluice_store::AuditFilter {
            account_id: Some(id),
            action: Some("sandbox_off".into()),
            target_type: Some("account".into()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    if !turned_off.is_empty() {
        return Ok(false);
    }
    let now = now_ms();
    let update = sluice_store::AccountUpdate {
        sandbox: Some(true),
        ..Default::default()
    };
    store
        .update_account(id, &update, now)
        .await
        .context("putting the account in sandbox mode")?;
    let entry = sluice_store::AuditEntry {
        account_id: Some(id),
        actor: "cli".into(),
        action: "sandbox_on".into(),
        target_type: "account".into(),
        target_id: id.to_string(),
        changes: serde_json::json!({ "sandbox": true, "by": "serve --dev" }),
        source_ip: None,
    };
    store.add_audit(&entry, now).await?;
    Ok(true)
}

/// Changes an account's monthly message limit.
pub async fn set_monthly_limit(store: &dyn Store, id: i64, limit: i64) -> anyhow::Result<()> {
    if limit < 0 {
        anyhow::bail!("--monthly-limit must be 0 or more");
    }
    let update = sluice_store::AccountUpdate {
        monthly_limit: Some(limit),
        ..Default::default()
    };
    store
        .update_account(id, &update, now_ms())
        .await
        .context("setting the monthly limit")?;
    Ok(())
}

/// `sluice admin create`: a system administrator for the API and the panel.
pub async fn create_admin(store: &dyn Store, email: &str, password: &str) -> anyhow::Result<i64> {
    if sluice_core::validate_mailbox(email).is_err() {
        anyhow::bail!("--email must be an email address");
    }
    if password.len() < 8 {
        anyhow::bail!("--password must have at least 8 characters");
    }
    let user = store
        .create_user(
            NewUser {
                account_id: None,
                email: email.to_string(),
                password_hash: hash_password(password)?,
                role: "admin".into(),
            },
            now_ms(),
        )
        .await
        .context("creating the admin")?;
    Ok(user.id)
}
