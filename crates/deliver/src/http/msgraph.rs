//! Microsoft Graph `POST /v1.0/users/{sender}/sendMail` with the MIME message base64 in a
//! `text/plain` body. The token comes from the client-credentials grant, is cached until a
//! minute before it expires, and is fetched again once if Graph answers 401. Graph takes
//! no envelope: it sends to whoever the MIME's To, Cc and Bcc name, so each call gets the
//! message rewritten for exactly its envelope recipients ([`mime::for_envelope`]), at most
//! 500 of them (Exchange Online's recipient limit per message).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use sluice_core::{DeliveryReport, MsGraphConfig, Verdict};
use tokio::sync::Mutex;

use super::{
    Answer, client, in_batches, join, limits, literal_refusal, mime, refused_report,
    report_for_answer, report_for_error,
};
use crate::egress::Egress;
use crate::{Deliverer, Outbound};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";
/// A token is not used in its last minute.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

pub struct MsGraphDeliverer {
    config: MsGraphConfig,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    refused: Option<String>,
}

/// Why no token was had.
enum TokenError {
    /// The service answered: its answer decides the verdict.
    Refused(Answer),
    Failed(reqwest::Error),
}

impl MsGraphDeliverer {
    pub fn new(config: MsGraphConfig, egress: &Egress) -> Self {
        let http = client(config.timeout_secs, egress);
        let authority = config.authority_url.as_deref().unwrap_or(DEFAULT_AUTHORITY);
        let graph = config.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH);
        let refused = literal_refusal(egress, &[authority, graph]);
        MsGraphDeliverer {
            config,
            http,
            token: Mutex::new(None),
            refused,
        }
    }

    async fn token(&self, fresh: bool) -> Result<String, TokenError> {
        let mut cached = self.token.lock().await;
        if !fresh
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let authority = self
            .config
            .authority_url
            .as_deref()
            .unwrap_or(DEFAULT_AUTHORITY);
        let url = join(
            authority,
            &format!("/{}/oauth2/v2.0/token", self.config.tenant_id),
        );
        let form = [
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ];
        let response = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(TokenError::Failed)?;
        let answer = Answer::read(response).await;
        let parsed: Option<(String, u64)> = (answer.status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(&answer.body).ok())
            .flatten()
            .and_then(|v| {
                Some((
                    v.get("access_token")?.as_str()?.to_string(),
                    v.get("expires_in")?.as_u64()?,
                ))
            });
        let Some((token, expires_in)) = parsed else {
            return Err(TokenError::Refused(answer));
        };
        let until = Instant::now() + Duration::from_secs(expires_in).saturating_sub(EXPIRY_MARGIN);
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    async fn send_mail(&self, token: &str, body: &str) -> Result<Answer, reqwest::Error> {
        let graph = self.config.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH);
        let url = join(
            graph,
            &format!("/v1.0/users/{}/sendMail", self.config.sender),
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
            .await?;
        Ok(Answer::read(response).await)
    }
}

#[async_trait]
impl Deliverer for MsGraphDeliverer {
    fn kind(&self) -> &'static str {
        "msgraph"
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        if let Some(why) = &self.refused {
            return refused_report("msgraph", &message.envelope.rcpt_to, why);
        }
        if message.body.whole().is_none() {
            return crate::whole_body_missing("msgraph", &message);
        }
        let message_id = message
            .body
            .whole()
            .and_then(mime::parse_header_block)
            .and_then(|m| m.message_id().map(str::to_string));
        // Graph reads the recipients from the headers: an address no header carries
        // safely is refused rather than sent where a parser would misread it.
        let (writable, misread): (Vec<String>, Vec<String>) = message
            .envelope
            .rcpt_to
            .iter()
            .cloned()
            .partition(|r| mime::writable_in_header(r));
        let refused = (!misread.is_empty()).then(|| {
            DeliveryReport::uniform(
                "msgraph",
                &misread,
                Verdict::Permanent,
                None,
                "5.1.3 Microsoft Graph reads recipients from the message's headers, and this \
                 address looks like an encoded word there (=? in its local part)",
            )
        });
        if writable.is_empty() {
            return refused.unwrap_or_default();
        }
        let sent = in_batches(&writable, limits::MSGRAPH, |rcpts| {
            self.send_to(&message, rcpts, message_id.clone())
        })
        .await;
        match refused {
            Some(refused) => super::merge(sent, refused),
            None => sent,
        }
    }
}

impl MsGraphDeliverer {
    /// One sendMail of the message rewritten for exactly these recipients (Graph sends to
    /// whoever its headers name: see [`mime::for_envelope`]).
    async fn send_to(
        &self,
        message: &Outbound<'_>,
        rcpts: &[String],
        message_id: Option<String>,
    ) -> DeliveryReport {
        let Ok(mime) = mime::for_envelope(message.body.whole().unwrap_or_default(), rcpts) else {
            return DeliveryReport::uniform(
                "msgraph",
                rcpts,
                Verdict::Permanent,
                None,
                "5.6.0 Microsoft Graph reads recipients from the message's headers, and this \
                 message's header could not be rewritten so that it names only the envelope \
                 recipients",
            );
        };
        let body = base64::engine::general_purpose::STANDARD.encode(&mime);
        let mut fresh = false;
        loop {
            let token = match self.token(fresh).await {
                Ok(token) => token,
                Err(TokenError::Failed(error)) => {
                    return report_for_error("msgraph", rcpts, &error);
                }
                Err(TokenError::Refused(answer)) if answer.status < 300 => return unusable(rcpts),
                Err(TokenError::Refused(answer)) => {
                    let mut report = report_for_answer("msgraph", rcpts, &answer, None);
                    // The token endpoint answers 400/401 for a wrong client id or secret.
                    if matches!(answer.status, 400 | 401)
                        && answer.body.contains("invalid_client")
                        && report.events.is_empty()
                    {
                        report.events.push((
                            "provider_auth_failed".into(),
                            "msgraph refused our client credentials".into(),
                        ));
                    }
                    return report;
                }
            };
            match self.send_mail(&token, &body).await {
                Ok(answer) if answer.status == 401 && !fresh => {
                    fresh = true;
                    continue;
                }
                Ok(answer) => {
                    return report_for_answer("msgraph", rcpts, &answer, message_id);
                }
                Err(error) => return report_for_error("msgraph", rcpts, &error),
            }
        }
    }
}

/// A 2xx token answer without a token: the service misbehaved, try again later.
fn unusable(rcpts: &[String]) -> DeliveryReport {
    DeliveryReport::uniform(
        "msgraph",
        rcpts,
        Verdict::Transient,
        None,
        "the token answer could not be read",
    )
}
