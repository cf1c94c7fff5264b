//! `serve --dev`'s first-hour help: a fresh API key of the dev account at each start (keys
//! are stored hashed, so an old one cannot be shown again), the previous dev start's key
//! revoked, and a banner on stdout with the panel's URL and login and that key.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sluice_core::secret::new_secret;
use sluice_store::Store;

/// Where the id of the key the last dev start made is kept (only its id, not the key).
fn id_file(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-api-key.id")
}

/// Revokes the key the previous dev start made (if any) and makes a new one for the dev
/// account; returns it.
pub async fn fresh_dev_key(store: &dyn Store, data_dir: &Path) -> anyhow::Result<String> {
    let account = store
        .account_by_email(sluice_config::DEV_ACCOUNT_EMAIL)
        .await?
        .context("the dev account is missing")?;
    let file = id_file(data_dir);
    let now = crate::account::now_ms();
    if let Some(previous) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|id| id.trim().parse::<i64>().ok())
    {
        store.revoke_api_key(account.id, previous, now).await?;
    }
    let key = new_secret("sk", rand::random());
    let id = store
        .add_api_key(account.id, &key.prefix, &key.hash, now)
        .await
        .context("storing the dev API key")?;
    std::fs::write(&file, id.to_string()).with_context(|| format!("writing {}", file.display()))?;
    Ok(key.value)
}

/// What `serve --dev` prints at start: where the panel is, how to log in, the API key.
pub fn banner(config: &sluice_config::Config, admin: (&str, &str), api_key: &str) -> String {
    let scheme = if config.panel.tls { "https" } else { "http" };
    let panel = config
        .panel
        .listen
        .map(|addr| format!("{scheme}://{addr}"))
        .unwrap_or_else(|| "(panel.listen is not set)".into());
    let api = config
        .http
        .listen
        .map(|addr| format!("http://{addr}/api/v1"))
        .unwrap_or_else(|| "(http.listen is not set)".into());
    let pop3 = [
        config.pop3.listen.map(|addr| format!("{addr} (STLS)")),
        config.pop3.tls_listen.map(|addr| format!("{addr} (TLS)")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let pop3 = match pop3.is_empty() {
        true => String::new(),
        false => format!(
            "  POP3:    {}  (captured mail; log in as {} / {})\n",
            pop3.join(", "),
            sluice_config::DEV_ACCOUNT_EMAIL,
            sluice_config::DEV_ACCOUNT_PASSWORD,
        ),
    };
    format!(
        "Sluice dev mode\n  panel:   {panel}  (log in as {} / {})\n  API:     {api}\n{pop3}  \
         API key: {api_key}  (account {}; made at this start, the previous one revoked)\n  \
         export API_KEY={api_key}\n",
        admin.0,
        admin.1,
        sluice_config::DEV_ACCOUNT_EMAIL,
    )
}
