//! Tenants' event webhooks: POST each message event to the endpoints that subscribed to
//! it, signed `Sluice-Signature: t=<unix>,v1=<hex hmac_sha256(secret, t + "." + body)>`,
//! from the durable outbox the store fills with the event (so nothing is lost across
//! restarts), claimed under a lease, retried with backoff, every attempt kept. Endpoints
//! are tenants' destinations: every connection goes through the egress policy, and a
//! refused endpoint's post is recorded as failed (not retried) with no connection made.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_core::sealed::MasterKey;
use sluice_core::{RetryDecision, RetryPolicy};
use sluice_deliver::egress::{Egress, EgressPolicy};
use sluice_store::{DueWebhook, WebhookAttemptRecord, WebhookStore};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::now_ms;

#[derive(Debug, Clone)]
pub struct EventWebhookConfig {
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub batch_size: u32,
    pub retry: RetryPolicy,
}

pub struct EventWebhookSender {
    store: Arc<dyn WebhookStore>,
    master_key: Arc<MasterKey>,
    http: reqwest::Client,
    egress: Egress,
    config: EventWebhookConfig,
    owner: String,
}

/// Why a post did not succeed: its status (if any) and what went wrong; `refused` when the
/// egress policy refused the endpoint (no retry: nothing will change until its URL or the
/// policy does).
struct Failed {
    status: Option<u16>,
    error: String,
    refused: bool,
}

impl Failed {
    fn new(status: Option<u16>, error: impl Into<String>) -> Failed {
        Failed {
            status,
            error: error.into(),
            refused: false,
        }
    }
}

/// The `Sluice-Signature` header value for a body sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The JSON body posted for one event.
pub fn payload(due: &DueWebhook) -> Value {
    // A captured message's event carries the message parsed (kept as the event's detail).
    if due.kind == "message.captured" {
        let data: Value = serde_json::from_str(&due.detail).unwrap_or_else(|_| json!({}));
        return json!({
            "id": due.id,
            "type": due.kind,
            "created_at": due.event_at,
            "data": data,
        });
    }
    json!({
        "id": due.id,
        "type": due.kind,
        "created_at": due.event_at,
        "data": {
            "message_id": due.message_id,
            "account_id": due.account_id,
            "detail": due.detail,
            "from": due.mail_from,
            "to": due.rcpt_to,
            "status": due.message_status,
            "tags": due.tags,
        },
    })
}

impl EventWebhookSender {
    pub fn new(
        store: Arc<dyn WebhookStore>,
        master_key: Arc<MasterKey>,
        config: EventWebhookConfig,
        owner: String,
        egress: EgressPolicy,
    ) -> Arc<Self> {
        let egress = Egress::Policed(egress);
        let builder = reqwest::Client::builder()
            .user_agent(concat!("sluice-webhooks/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        let http = egress
            .http_client(builder)
            .build()
            .expect("static client settings");
        Arc::new(EventWebhookSender {
            store,
            master_key,
            http,
            egress,
            config,
            owner,
        })
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let lease_ms = (self.config.timeout.as_millis() as i64 + 5_000) * 2;
        while !*shutdown.borrow() {
            let due = match self
                .store
                .claim_webhook_deliveries(&self.owner, now_ms(), lease_ms, self.config.batch_size)
                .await
            {
                Ok(due) => due,
                Err(error) => {
                    warn!(%error, "claiming event webhooks failed");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut posts = tokio::task::JoinSet::new();
            for d in due {
                let this = self.clone();
                posts.spawn(async move { this.post(d).await });
            }
            while posts.join_next().await.is_some() {}
        }
        info!("event webhook sender stopped");
    }

    async fn post(&self, due: DueWebhook) {
        let started_at = now_ms();
        let outcome = match self.master_key.open(&due.secret) {
            Ok(secret) => self.send(&due, &secret).await,
            Err(_) => Err(Failed::new(
                None,
                "the endpoint's secret does not open with this node's master key",
            )),
        };
        let finished_at = now_ms();
        let (status_code, error) = match &outcome {
            Ok(code) => (Some(*code), None),
            Err(failed) => (failed.status, Some(failed.error.clone())),
        };
        let delivered = outcome.is_ok();
        let refused = outcome.as_ref().is_err_and(|failed| failed.refused);
        if refused {
            warn!(delivery_id = due.id, error = ?error, "event webhook endpoint refused by the egress policy");
        }
        let next_attempt_at = if delivered || refused {
            None
        } else {
            let jitter: f64 = rand::rng().random();
            match self.config.retry.next_attempt(
                due.attempts + 1,
                due.created_at,
                finished_at,
                jitter,
            ) {
                RetryDecision::RetryAt(at) => Some(at),
                RetryDecision::GiveUp => None,
            }
        };
        metrics::counter!("sluice_event_webhooks_total", "delivered" => delivered.to_string())
            .increment(1);
        let record = WebhookAttemptRecord {
            delivery_id: due.id,
            lease_owner: self.owner.clone(),
            status_code,
            error,
            delivered,
            next_attempt_at,
            started_at,
            finished_at,
        };
        if let Err(error) = self.store.record_webhook_attempt(&record).await {
            warn!(%error, delivery_id = due.id, "recording an event webhook attempt failed");
        }
    }

    /// Ok(status) for a 2xx; otherwise the status (if any) and what went wrong.
    async fn send(&self, due: &DueWebhook, secret: &[u8]) -> Result<u16, Failed> {
        if let Err(refused) = self.egress.check_url(&due.url) {
            return Err(Failed {
                status: None,
                error: format!("not sent: {refused}"),
                refused: true,
            });
        }
        let body = payload(due).to_string();
        let timestamp = now_ms() / 1000;
        let answer = self
            .http
            .post(&due.url)
            .header("content-type", "application/json")
            .header(
                "sluice-signature",
                signature_header(secret, timestamp, body.as_bytes()),
            )
            .header("sluice-delivery-id", due.id.to_string())
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
            Ok(response) => {
                let code = response.status().as_u16();
                Err(Failed::new(Some(code), format!("HTTP {code}")))
            }
            Err(error) => match sluice_deliver::egress::refusal_in(&error) {
                Some(refused) => Err(Failed {
                    status: None,
                    error: format!("not sent: {refused}"),
                    refused: true,
                }),
                None if error.is_timeout() => Err(Failed::new(None, "timed out")),
                None => Err(Failed::new(None, "could not connect")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature_header(b"secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
