//! What a message goes through: providers, routing rules, templates and DKIM keys.

use async_trait::async_trait;
use sluice_core::AccountId;

use crate::StoreError;
use crate::types::*;

/// Providers, routing rules, templates and DKIM keys.
#[async_trait]
pub trait RoutingStore: Send + Sync {
    async fn create_provider(
        &self,
        provider: &NewProvider,
        now_ms: i64,
    ) -> Result<ProviderRow, StoreError>;

    async fn provider(&self, id: i64) -> Result<Option<ProviderRow>, StoreError>;

    /// One account's providers, or all for `None`, by priority then id.
    async fn list_providers(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<ProviderRow>, StoreError>;

    /// The providers a message of the account may go through: its own and the system-wide.
    async fn routing_providers(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<ProviderRow>, StoreError>;

    /// Replaces every field but the id, account and creation time.
    async fn replace_provider(
        &self,
        id: i64,
        provider: &NewProvider,
        now_ms: i64,
    ) -> Result<Option<ProviderRow>, StoreError>;

    /// False when no such provider; a provider that rules use cannot be deleted (Conflict).
    async fn delete_provider(&self, id: i64) -> Result<bool, StoreError>;

    async fn create_rule(&self, rule: &NewRule, now_ms: i64) -> Result<RuleRow, StoreError>;

    async fn rule(&self, id: i64) -> Result<Option<RuleRow>, StoreError>;

    async fn list_rules(&self, account_id: Option<AccountId>) -> Result<Vec<RuleRow>, StoreError>;

    async fn replace_rule(
        &self,
        id: i64,
        rule: &NewRule,
        now_ms: i64,
    ) -> Result<Option<RuleRow>, StoreError>;

    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError>;

    async fn create_template(
        &self,
        t: &NewTemplate,
        now_ms: i64,
    ) -> Result<TemplateRow, StoreError>;

    async fn template(&self, id: i64) -> Result<Option<TemplateRow>, StoreError>;

    /// The account's template of that name, else the system-wide one.
    async fn template_by_name(
        &self,
        account_id: Option<AccountId>,
        name: &str,
    ) -> Result<Option<TemplateRow>, StoreError>;

    /// The account's templates and the system-wide ones (`None`: every template).
    async fn list_templates(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<TemplateRow>, StoreError>;

    async fn replace_template(
        &self,
        id: i64,
        t: &NewTemplate,
        now_ms: i64,
    ) -> Result<Option<TemplateRow>, StoreError>;

    async fn delete_template(&self, id: i64) -> Result<bool, StoreError>;

    /// Conflict when the domain already has a key with this selector.
    async fn create_dkim_key(
        &self,
        key: &NewDkimKey,
        now_ms: i64,
    ) -> Result<DkimKeyRow, StoreError>;

    async fn dkim_key(&self, id: i64) -> Result<Option<DkimKeyRow>, StoreError>;

    /// Oldest first; `account_id` None lists every account's keys.
    async fn list_dkim_keys(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<DkimKeyRow>, StoreError>;

    async fn delete_dkim_key(&self, id: i64) -> Result<bool, StoreError>;
}

/// Implements [`RoutingStore`] for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_routing_sql {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::routing::RoutingStore for $store {
            async fn create_provider(
                &self,
                p: &NewProvider,
                now_ms: i64,
            ) -> Result<ProviderRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO providers (account_id, name, provider_type, config, secrets, enabled, \
                     priority, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     RETURNING *",
                )
                .bind(p.account_id)
                .bind(&p.name)
                .bind(p.provider_type.as_str())
                .bind(p.config.to_string())
                .bind(&p.secrets)
                .bind(p.enabled)
                .bind(p.priority)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                $crate::rows::provider_from_row(&row)
            }

            async fn provider(&self, id: i64) -> Result<Option<ProviderRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM providers WHERE id = $1",
                    id,
                    $crate::rows::provider_from_row,
                )
                .await
            }

            async fn list_providers(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<ProviderRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM providers WHERE (account_id = $1 OR $1 IS NULL) \
                     ORDER BY priority, id",
                    account_id,
                    $crate::rows::provider_from_row,
                )
                .await
            }

            async fn routing_providers(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<ProviderRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM providers WHERE account_id = $1 OR account_id IS NULL \
                     ORDER BY priority, id",
                    account_id,
                    $crate::rows::provider_from_row,
                )
                .await
            }

            async fn replace_provider(
                &self,
                id: i64,
                p: &NewProvider,
                now_ms: i64,
            ) -> Result<Option<ProviderRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE providers SET name = $1, provider_type = $2, config = $3, secrets = $4, \
                     enabled = $5, priority = $6, updated_at = $7 WHERE id = $8 RETURNING *",
                )
                .bind(&p.name)
                .bind(p.provider_type.as_str())
                .bind(p.config.to_string())
                .bind(&p.secrets)
                .bind(p.enabled)
                .bind(p.priority)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::provider_from_row).transpose()
            }

            async fn delete_provider(&self, id: i64) -> Result<bool, StoreError> {
                let in_use: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM routing_rules WHERE provider_id = $1",
                )
                .bind(id)
                .fetch_one(&self.read)
                .await?;
                if in_use > 0 {
                    return Err(StoreError::Conflict("routing rules use this provider".into()));
                }
                self.delete_by_id("DELETE FROM providers WHERE id = $1", id).await
            }

            async fn create_rule(&self, r: &NewRule, now_ms: i64) -> Result<RuleRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO routing_rules (account_id, name, priority, conditions, provider_id, \
                     fallbacks, enabled, created_at, updated_at, split) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
                     RETURNING *",
                )
                .bind(r.account_id)
                .bind(&r.name)
                .bind(r.priority)
                .bind(r.conditions.to_string())
                .bind(r.provider_id)
                .bind(json(&r.fallbacks))
                .bind(r.enabled)
                .bind(now_ms)
                .bind(json(&r.split))
                .fetch_one(&self.write)
                .await?;
                $crate::rows::rule_from_row(&row)
            }

            async fn rule(&self, id: i64) -> Result<Option<RuleRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM routing_rules WHERE id = $1",
                    id,
                    $crate::rows::rule_from_row,
                )
                .await
            }

            async fn list_rules(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<RuleRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM routing_rules WHERE (account_id = $1 OR $1 IS NULL) \
                     ORDER BY priority, id",
                    account_id,
                    $crate::rows::rule_from_row,
                )
                .await
            }

            async fn replace_rule(
                &self,
                id: i64,
                r: &NewRule,
                now_ms: i64,
            ) -> Result<Option<RuleRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE routing_rules SET name = $1, priority = $2, conditions = $3, \
                     provider_id = $4, fallbacks = $5, enabled = $6, updated_at = $7, split = $9 \
                     WHERE id = $8 RETURNING *",
                )
                .bind(&r.name)
                .bind(r.priority)
                .bind(r.conditions.to_string())
                .bind(r.provider_id)
                .bind(json(&r.fallbacks))
                .bind(r.enabled)
                .bind(now_ms)
                .bind(id)
                .bind(json(&r.split))
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::rule_from_row).transpose()
            }

            async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM routing_rules WHERE id = $1", id).await
            }

            async fn create_template(
                &self,
                t: &NewTemplate,
                now_ms: i64,
            ) -> Result<TemplateRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO templates (account_id, name, subject, text_body, html_body, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
                )
                .bind(t.account_id)
                .bind(&t.name)
                .bind(&t.subject)
                .bind(&t.text_body)
                .bind(&t.html_body)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                $crate::rows::template_from_row(&row)
            }

            async fn template(&self, id: i64) -> Result<Option<TemplateRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM templates WHERE id = $1",
                    id,
                    $crate::rows::template_from_row,
                )
                .await
            }

            async fn template_by_name(
                &self,
                account_id: Option<AccountId>,
                name: &str,
            ) -> Result<Option<TemplateRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT * FROM templates WHERE name = $1 AND (account_id = $2 OR account_id IS NULL) \
                     ORDER BY account_id IS NULL LIMIT 1",
                )
                .bind(name)
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map($crate::rows::template_from_row).transpose()
            }

            async fn list_templates(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<TemplateRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM templates WHERE (account_id = $1 OR account_id IS NULL OR $1 IS NULL) \
                     ORDER BY name, id",
                    account_id,
                    $crate::rows::template_from_row,
                )
                .await
            }

            async fn replace_template(
                &self,
                id: i64,
                t: &NewTemplate,
                now_ms: i64,
            ) -> Result<Option<TemplateRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE templates SET name = $1, subject = $2, text_body = $3, html_body = $4, \
                     updated_at = $5 WHERE id = $6 RETURNING *",
                )
                .bind(&t.name)
                .bind(&t.subject)
                .bind(&t.text_body)
                .bind(&t.html_body)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::template_from_row).transpose()
            }

            async fn delete_template(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM templates WHERE id = $1", id).await
            }

            async fn create_dkim_key(
                &self,
                key: &NewDkimKey,
                now_ms: i64,
            ) -> Result<DkimKeyRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO dkim_keys (account_id, domain, selector, algorithm, private_key, dns_record, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                )
                .bind(key.account_id)
                .bind(key.domain.to_ascii_lowercase())
                .bind(&key.selector)
                .bind(&key.algorithm)
                .bind(&key.private_key)
                .bind(&key.dns_record)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                $crate::rows::dkim_key_from_row(&row)
            }

            async fn dkim_key(&self, id: i64) -> Result<Option<DkimKeyRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM dkim_keys WHERE id = $1",
                    id,
                    $crate::rows::dkim_key_from_row,
                )
                .await
            }

            async fn list_dkim_keys(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<DkimKeyRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM dkim_keys WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                    account_id,
                    $crate::rows::dkim_key_from_row,
                )
                .await
            }

            async fn delete_dkim_key(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM dkim_keys WHERE id = $1", id).await
            }
        }
    };
}

pub(crate) use impl_routing_sql;
