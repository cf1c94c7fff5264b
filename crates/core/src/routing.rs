//! Routing rules' conditions: what a rule may test. Checked when a rule is saved; evaluated
//! by the router (issue E).

use serde::{Deserialize, Serialize};

use crate::Source;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConditions {
    /// Glob on the envelope sender: `*@billing.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Recipient domains, lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl RuleConditions {
    /// Parses and checks conditions; the error says what is wrong.
    pub fn parse(value: &serde_json::Value) -> Result<RuleConditions, String> {
        let conditions: RuleConditions =
            serde_json::from_value(value.clone()).map_err(|e| format!("conditions: {e}"))?;
        if let Some(glob) = &conditions.sender
            && (glob.is_empty() || glob.len() > 254 || glob.chars().any(char::is_whitespace))
        {
            return Err("conditions.sender must be a glob without spaces".into());
        }
        if let Some(domains) = &conditions.recipient_domains {
            if domains.is_empty() {
                return Err("conditions.recipient_domains must not be empty".into());
            }
            for domain in domains {
                if crate::validate_mailbox(&format!("x@{domain}")).is_err() {
                    return Err(format!(
                        "conditions.recipient_domains: {domain:?} is not a domain"
                    ));
                }
            }
        }
        if let Some(header) = &conditions.header {
            let valid_name = !header.name.is_empty()
                && header
                    .name
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != ':');
            if !valid_name {
                return Err("conditions.header.name is not a header name".into());
            }
            match (&header.equals, &header.regex) {
                (Some(_), None) => {}
                (None, Some(pattern)) => {
                    regex::Regex::new(pattern)
                        .map_err(|e| format!("conditions.header.regex: {e}"))?;
                }
                _ => return Err("conditions.header needs exactly one of equals, regex".into()),
            }
        }
        if let (Some(min), Some(max)) = (conditions.min_size, conditions.max_size)
            && min > max
        {
            return Err("conditions.min_size is above max_size".into());
        }
        if conditions.min_size.is_some_and(|n| n < 0) || conditions.max_size.is_some_and(|n| n < 0)
        {
            return Err("conditions sizes must be 0 or more".into());
        }
        Ok(conditions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_table() {
        let good = [
            json!({}),
            json!({ "sender": "*@billing.example.com", "source": "smtp" }),
            json!({ "recipient_domains": ["gmail.com"], "max_size": 1000 }),
            json!({ "header": { "name": "X-Priority", "regex": "^[12]$" } }),
        ];
        for value in good {
            assert!(RuleConditions::parse(&value).is_ok(), "{value}");
        }
        let bad = [
            json!({ "colour": "red" }),
            json!({ "sender": "a b" }),
            json!({ "recipient_domains": [] }),
            json!({ "recipient_domains": ["not a domain"] }),
            json!({ "header": { "name": "X", "regex": "(" } }),
            json!({ "header": { "name": "X", "equals": "a", "regex": "a" } }),
            json!({ "header": { "name": "Bad:Name", "equals": "a" } }),
            json!({ "min_size": 10, "max_size": 5 }),
            json!({ "source": "carrier-pigeon" }),
        ];
        for value in bad {
            assert!(RuleConditions::parse(&value).is_err(), "{value}");
        }
    }
}
