//! The providers an account can configure through the API: the settings each type takes
//! (checked by deserialising into the type's struct) and which of those settings are
//! secrets (write-only, sealed at rest). The types themselves: `provider_type`.

use serde::Deserialize;
use serde_json::Value;

use crate::ProviderConfig;
pub use crate::provider_type::ProviderType;

/// Shown in place of a secret that is set.
pub const MASK: &str = "********";

/// A type named by a caller; the error names the types there are.
pub fn parse_type(text: &str) -> Result<ProviderType, String> {
    text.parse().map_err(|_| {
        let names: Vec<&str> = ProviderType::ALL.iter().map(|t| t.as_str()).collect();
        format!("provider_type {text:?} is not one of {}", names.join(", "))
    })
}

/// Checks `settings` (secrets included) against the type; the error names the problem.
pub fn check_settings(provider_type: ProviderType, settings: &Value) -> Result<(), String> {
    let config = provider_config(provider_type, settings)?;
    if let ProviderConfig::Smtp(smtp) = &config
        && smtp.host.trim().is_empty()
    {
        return Err("host must not be empty".into());
    }
    if let ProviderConfig::Smtp(smtp) = &config
        && let Some(name) = &smtp.from_name
    {
        crate::provider::check_sender_name(name)?;
    }
    Ok(())
}

/// The typed config of a provider from its type and its settings (secrets merged in).
pub fn provider_config(
    provider_type: ProviderType,
    settings: &Value,
) -> Result<ProviderConfig, String> {
    let Value::Object(map) = settings else {
        return Err("settings must be an object".into());
    };
    // Unit variants of a tagged enum would ignore extra fields.
    let takes_none = !provider_type.takes_settings();
    if let Some(field) = map.keys().find(|k| *k == "type" || takes_none) {
        return Err(format!("unknown field `{field}`"));
    }
    let mut tagged = map.clone();
    tagged.insert("type".into(), Value::String(provider_type.as_str().into()));
    ProviderConfig::deserialize(Value::Object(tagged)).map_err(|e| e.to_string())
}

/// The typed config of a stored provider: its public settings with its sealed secrets
/// opened by `key` and merged in. The error says what is wrong (never a secret).
pub fn open_config(
    key: &crate::sealed::MasterKey,
    provider_type: ProviderType,
    public: &Value,
    sealed_secrets: &str,
) -> Result<ProviderConfig, String> {
    let opened = key
        .open(sealed_secrets)
        .map_err(|_| "its secrets do not open with this node's master key".to_string())?;
    let secrets: Value = serde_json::from_slice(&opened)
        .map_err(|_| "its stored secrets are malformed".to_string())?;
    provider_config(
        provider_type,
        &merge_secrets(provider_type, public, &secrets),
    )
}

/// Splits settings into (public settings, secret settings).
pub fn split_secrets(provider_type: ProviderType, settings: &Value) -> (Value, Value) {
    let mut public = settings.clone();
    let mut secrets = serde_json::Map::new();
    if let Value::Object(map) = &mut public {
        for field in provider_type.secret_fields() {
            if let Some(value) = map.remove(*field) {
                secrets.insert(field.to_string(), value);
            }
        }
    }
    (public, Value::Object(secrets))
}

/// Public settings with every set secret shown as [`MASK`].
pub fn masked(provider_type: ProviderType, public: &Value, secrets: &Value) -> Value {
    let mut shown = public.clone();
    if let (Value::Object(map), Value::Object(set)) = (&mut shown, secrets) {
        for field in provider_type.secret_fields() {
            if set.contains_key(*field) {
                map.insert(field.to_string(), Value::String(MASK.into()));
            }
        }
    }
    shown
}

/// For an update: secrets left out or sent back as [`MASK`] keep their stored value.
pub fn merge_secrets(
    provider_type: ProviderType,
    new_settings: &Value,
    old_secrets: &Value,
) -> Value {
    let mut merged = new_settings.clone();
    if let (Value::Object(map), Value::Object(old)) = (&mut merged, old_secrets) {
        for field in provider_type.secret_fields() {
            let keep = match map.get(*field) {
                None => true,
                Some(Value::String(s)) => s == MASK,
                Some(_) => false,
            };
            if keep {
                match old.get(*field) {
                    Some(value) => map.insert(field.to_string(), value.clone()),
                    None => map.remove(*field),
                };
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A type named as a caller names it, then its settings.
    fn check(provider_type: &str, settings: &Value) -> Result<(), String> {
        check_settings(parse_type(provider_type)?, settings)
    }

    #[test]
    fn settings_are_checked_per_type() {
        assert!(check("sendgrid", &json!({ "api_key": "k" })).is_ok());
        assert!(
            check("sendgrid", &json!({}))
                .unwrap_err()
                .contains("api_key")
        );
        assert!(check("sendgrid", &json!({ "api_key": "k", "x": 1 })).is_err());
        assert!(
            check(
                "mailgun",
                &json!({ "domain": "d", "api_key": "k", "region": "mars" })
            )
            .is_err()
        );
        assert!(check("smtp", &json!({ "host": "mx.test", "security": "tls" })).is_ok());
        assert!(check("smtp", &json!({ "host": "" })).is_err());
        assert!(check("log", &json!({})).is_ok());
        assert!(check("log", &json!({ "a": 1 })).is_err());
        assert!(check("pigeon", &json!({})).is_err());
    }

    #[test]
    fn secrets_are_split_masked_and_kept() {
        let settings = json!({ "host": "mx.test", "username": "u", "password": "p" });
        let (public, secrets) = split_secrets(ProviderType::Smtp, &settings);
        assert_eq!(public, json!({ "host": "mx.test", "username": "u" }));
        assert_eq!(secrets, json!({ "password": "p" }));
        assert_eq!(
            masked(ProviderType::Smtp, &public, &secrets)["password"],
            MASK
        );
        let update = json!({ "host": "mx2.test", "password": MASK });
        assert_eq!(
            merge_secrets(ProviderType::Smtp, &update, &secrets)["password"],
            "p"
        );
        let replaced = json!({ "host": "mx2.test", "password": "new" });
        assert_eq!(
            merge_secrets(ProviderType::Smtp, &replaced, &secrets)["password"],
            "new"
        );
    }
}
