//! Rows read back into the store's types, written once for both backends. A column is
//! read through [`Columns`], which `SqliteRow` and `PgRow` implement alike; what a column
//! holds is decoded here and nowhere else.

use serde::de::DeserializeOwned;
use sqlx::postgres::{PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, Type};

use sluice_core::Envelope;

use crate::StoreError;
use crate::types::*;

/// A Rust type both backends decode a column into.
pub(crate) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// The columns of one row, by name.
pub(crate) trait Columns {
    fn col<T: Column>(&self, name: &str) -> Result<T, StoreError>;

    /// A column holding one of a kind's names (`core`'s `FromStr`): an unknown name is
    /// `StoreError::Corrupt`, never a default.
    fn kind<T>(&self, name: &str) -> Result<T, StoreError>
    where
        T: std::str::FromStr<Err = sluice_core::UnknownKind>,
    {
        Ok(self.col::<String>(name)?.parse()?)
    }

    /// A column holding JSON text.
    fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        Ok(serde_json::from_str(&self.col::<String>(name)?)?)
    }
}

impl Columns for SqliteRow {
    fn col<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.try_get(name)?)
    }
}

impl Columns for PgRow {
    fn col<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.try_get(name)?)
    }
}

pub(crate) fn account_from_row(row: &impl Columns) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.col("id")?,
        name: row.col("name")?,
        email: row.col("email")?,
        password_hash: row.col("password_hash")?,
        // Filled from the verified rows of `domains` (`with_domains`).
        allowed_domains: Vec::new(),
        status: row.kind("status")?,
        monthly_limit: row.col("monthly_limit")?,
        allow_any_local_part: row.col("allow_any_local_part")?,
        sandbox: row.col("sandbox")?,
        capture_retention_count: row.col("capture_retention_count")?,
        capture_retention_days: row.col("capture_retention_days")?,
        capture_release_allowlist: row
            .col::<Option<String>>("capture_release_allowlist")?
            .map(|list| serde_json::from_str(&list))
            .transpose()?,
        capture_chaos: row
            .col::<Option<String>>("capture_chaos")?
            .map(|rules| serde_json::from_str(&rules))
            .transpose()?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

pub(crate) fn api_key_from_row(row: &impl Columns) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        prefix: row.col("prefix")?,
        created_at: row.col("created_at")?,
        revoked_at: row.col("revoked_at")?,
        sandbox: row.col("sandbox")?,
    })
}

pub(crate) fn credential_from_row(row: &impl Columns) -> Result<SmtpCredential, StoreError> {
    Ok(SmtpCredential {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        username: row.col("username")?,
        password_hash: row.col("password_hash")?,
        created_at: row.col("created_at")?,
        revoked_at: row.col("revoked_at")?,
        sandbox: row.col("sandbox")?,
    })
}

pub(crate) fn provider_from_row(row: &impl Columns) -> Result<ProviderRow, StoreError> {
    Ok(ProviderRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        name: row.col("name")?,
        provider_type: row.kind("provider_type")?,
        config: row.json("config")?,
        secrets: row.col("secrets")?,
        enabled: row.col("enabled")?,
        priority: row.col("priority")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

pub(crate) fn dkim_key_from_row(row: &impl Columns) -> Result<DkimKeyRow, StoreError> {
    Ok(DkimKeyRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        domain: row.col("domain")?,
        selector: row.col("selector")?,
        algorithm: row.col("algorithm")?,
        private_key: row.col("private_key")?,
        dns_record: row.col("dns_record")?,
        enabled: row.col("enabled")?,
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn rule_from_row(row: &impl Columns) -> Result<RuleRow, StoreError> {
    Ok(RuleRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        name: row.col("name")?,
        priority: row.col("priority")?,
        conditions: row.json("conditions")?,
        provider_id: row.col("provider_id")?,
        fallbacks: row.json("fallbacks")?,
        split: row.json("split")?,
        enabled: row.col("enabled")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

pub(crate) fn template_from_row(row: &impl Columns) -> Result<TemplateRow, StoreError> {
    Ok(TemplateRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        name: row.col("name")?,
        subject: row.col("subject")?,
        text_body: row.col("text_body")?,
        html_body: row.col("html_body")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

pub(crate) fn suppression_from_row(row: &impl Columns) -> Result<SuppressionRow, StoreError> {
    Ok(SuppressionRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        address: row.col("address")?,
        reason: row.kind("reason")?,
        source: row.col("source")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
    })
}

pub(crate) fn user_from_row(row: &impl Columns) -> Result<User, StoreError> {
    Ok(User {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        email: row.col("email")?,
        password_hash: row.col("password_hash")?,
        role: row.kind("role")?,
        status: row.kind("status")?,
        failed_logins: row.col("failed_logins")?,
        first_failed_at: row.col("first_failed_at")?,
        locked_until: row.col("locked_until")?,
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn mailbox_server_from_row(
    row: &impl Columns,
) -> Result<crate::MailboxServerRow, StoreError> {
    Ok(crate::MailboxServerRow {
        id: row.col("id")?,
        name: row.col("name")?,
        protocol: row.col("protocol")?,
        host: row.col("host")?,
        port: row.col("port")?,
        security: row.col("security")?,
        username: row.col("username")?,
        password_sealed: row.col("password_sealed")?,
        skip_tls_verify: row.col("skip_tls_verify")?,
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn webhook_endpoint_from_row(
    row: &impl Columns,
) -> Result<WebhookEndpointRow, StoreError> {
    Ok(WebhookEndpointRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        url: row.col("url")?,
        events: row.json("events")?,
        secret: row.col("secret")?,
        enabled: row.col("enabled")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

pub(crate) fn domain_from_row(row: &impl Columns) -> Result<DomainRow, StoreError> {
    Ok(DomainRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        domain: row.col("domain")?,
        token: row.col("token")?,
        verified: row.col("verified")?,
        verified_at: row.col("verified_at")?,
        verified_how: row.col("verified_how")?,
        checks: row.json("checks")?,
        checked_at: row.col("checked_at")?,
        created_at: row.col("created_at")?,
    })
}

/// A message row with its body opened.
pub(crate) fn message_record_from_row(
    row: &impl Columns,
    bodies: &crate::BodyCodec,
) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        source: row.kind("source")?,
        mail_from: row.col("mail_from")?,
        rcpt_to: row.json("rcpt_to")?,
        pending_rcpt: row.json("pending_rcpt")?,
        status: row.kind("status")?,
        attempts: row.col::<i64>("attempts")? as u32,
        next_attempt_at: row.col("next_attempt_at")?,
        last_error: row.col("last_error")?,
        size: row.col("size")?,
        body: stored_body(row, bodies)?,
        created_at: row.col("created_at")?,
        body_purged_at: row.col("body_purged_at")?,
        tags: row.json("tags")?,
    })
}

pub(crate) fn message_summary_from_row(row: &impl Columns) -> Result<MessageSummary, StoreError> {
    Ok(MessageSummary {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        source: row.kind("source")?,
        mail_from: row.col("mail_from")?,
        rcpt_to: row.json("rcpt_to")?,
        status: row.kind("status")?,
        attempts: row.col::<i64>("attempts")? as u32,
        size: row.col("size")?,
        last_error: row.col("last_error")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        subject: row.col("subject")?,
        has_attachments: row.col::<Option<bool>>("has_attachments")?.unwrap_or(false),
        tags: row.json("tags")?,
        read: row.col::<Option<i64>>("seen_at")?.is_some(),
        released: row.col::<Option<i64>>("released_at")?.is_some(),
    })
}

/// A claimed message: `rcpt_to` is its pending recipients, the body opened.
pub(crate) fn claimed_from_row(
    row: &impl Columns,
    bodies: &crate::BodyCodec,
) -> Result<ClaimedMessage, StoreError> {
    Ok(ClaimedMessage {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        envelope: Envelope {
            mail_from: row.col("mail_from")?,
            rcpt_to: row.json("pending_rcpt")?,
            smtputf8: row.col("smtputf8")?,
            eight_bit: row.col("eight_bit")?,
        },
        body: stored_body(row, bodies)?,
        attempts: row.col::<i64>("attempts")? as u32,
        created_at: row.col("created_at")?,
        max_attempts: row
            .col::<Option<i64>>("max_attempts")?
            .map(|n| n.clamp(0, u32::MAX as i64) as u32),
        source: row.kind("source")?,
        tags: row.json("tags")?,
        release_provider_id: row.col("release_provider_id")?,
        sandbox: row.col("sandbox")?,
    })
}

pub(crate) fn session_from_row(row: &impl Columns) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: row.col("id")?,
        user_id: row.col("user_id")?,
        expires_at: row.col("expires_at")?,
        revoked_at: row.col("revoked_at")?,
        kind: row.kind("kind")?,
    })
}

pub(crate) fn idempotency_from_row(
    row: &impl Columns,
) -> Result<sluice_core::idempotency::IdempotencyRecord, StoreError> {
    let answer: Option<String> = row.col("answer")?;
    Ok(sluice_core::idempotency::IdempotencyRecord {
        request_hash: row.col("request_hash")?,
        message_id: row.col("message_id")?,
        answer: answer
            .as_deref()
            .and_then(sluice_core::idempotency::SendAnswer::parse),
        created_at: row.col("created_at")?,
    })
}

/// A row's body: the whole message in `body`, or its head there and the content in the
/// body store (`body_ref`).
fn stored_body(
    row: &impl Columns,
    bodies: &crate::BodyCodec,
) -> Result<sluice_core::MessageBody, StoreError> {
    let head = bodies.open(row.col("body")?)?;
    let Some(reference) = row.col::<Option<Vec<u8>>>("body_ref")? else {
        return Ok(sluice_core::MessageBody::Inline(head));
    };
    let size: i64 = row.col("size")?;
    Ok(sluice_core::MessageBody::Stored(sluice_core::StoredBody {
        len: (size as u64).saturating_sub(head.len() as u64),
        head,
        reference,
    }))
}
