//! Amazon SES v2 `POST /v2/email/outbound-emails` with `Content.Raw.Data`, signed with
//! SigV4 (service `ses`). The envelope recipients go in `Destination.ToAddresses`; SES
//! sends the raw message to them as it is, and only to them (the headers' addresses are
//! not used when a Destination is given). At most 50 recipients per call.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use serde_json::json;
use sluice_core::{DeliveryReport, SesConfig, Verdict};

use super::{
    Answer, client, in_batches, join, limits, literal_refusal, refused_report, report_for_answer,
    report_for_error,
};
use crate::egress::Egress;
use crate::{Deliverer, Outbound};

pub struct SesDeliverer {
    config: SesConfig,
    http: reqwest::Client,
    refused: Option<String>,
}

impl SesDeliverer {
    pub fn new(config: SesConfig, egress: &Egress) -> Self {
        let http = client(config.timeout_secs, egress);
        let mut deliverer = SesDeliverer {
            config,
            http,
            refused: None,
        };
        deliverer.refused = literal_refusal(egress, &[&deliverer.endpoint()]);
        deliverer
    }

    fn endpoint(&self) -> String {
        self.config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://email.{}.amazonaws.com", self.config.region))
    }
}

/// The JSON body of a SendEmail call for this message.
pub fn send_email_payload(
    message: &Outbound<'_>,
    rcpts: &[String],
    configuration_set: Option<&str>,
) -> Vec<u8> {
    let mut payload = json!({
        "FromEmailAddress": message.envelope.mail_from,
        "Destination": { "ToAddresses": rcpts },
        "Content": { "Raw": { "Data": base64::engine::general_purpose::STANDARD.encode(message.body.whole().unwrap_or_default()) } },
        "EmailTags": [{ "Name": "sluice_message_id", "Value": message.id.to_string() }],
    });
    if let Some(set) = configuration_set {
        payload["ConfigurationSetName"] = json!(set);
    }
    payload.to_string().into_bytes()
}

/// The headers that sign a request: `x-amz-date` and `authorization` (SigV4).
pub fn sigv4_headers(
    config: &SesConfig,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    at: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = Credentials::new(
        &config.access_key_id,
        &config.secret_access_key,
        None,
        None,
        "sluice-provider",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&config.region)
        .name("ses")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

#[async_trait]
impl Deliverer for SesDeliverer {
    fn kind(&self) -> &'static str {
        "ses"
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        if let Some(why) = &self.refused {
            return refused_report("ses", &message.envelope.rcpt_to, why);
        }
        if message.body.whole().is_none() {
            return crate::whole_body_missing("ses", &message);
        }
        in_batches(&message.envelope.rcpt_to, limits::SES, |rcpts| {
            self.send_email(&message, rcpts)
        })
        .await
    }
}

impl SesDeliverer {
    /// One SendEmail call for these recipients (at most [`limits::SES`]).
    async fn send_email(&self, message: &Outbound<'_>, rcpts: &[String]) -> DeliveryReport {
        let body = send_email_payload(message, rcpts, self.config.configuration_set.as_deref());
        let url = join(&self.endpoint(), "/v2/email/outbound-emails");
        let Some(host) = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(|h| (h.to_string(), u.port())))
            .map(|(h, port)| port.map_or(h.clone(), |p| format!("{h}:{p}")))
        else {
            return DeliveryReport::uniform(
                "ses",
                rcpts,
                Verdict::Permanent,
                None,
                "the SES endpoint is not a URL",
            );
        };
        let content_type = ("content-type", "application/json");
        let signed = sigv4_headers(
            &self.config,
            &url,
            &[("host", host.as_str()), content_type],
            &body,
            SystemTime::now(),
        );
        let signed = match signed {
            Ok(headers) => headers,
            Err(error) => {
                tracing::warn!(%error, "SigV4 signing failed");
                return DeliveryReport::uniform(
                    "ses",
                    rcpts,
                    Verdict::Permanent,
                    None,
                    "the request could not be signed",
                );
            }
        };
        let mut request = self
            .http
            .post(url)
            .header(content_type.0, content_type.1)
            .body(body);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let answer = Answer::read(response).await;
                let id = answer.json_field("MessageId");
                report_for_answer("ses", rcpts, &answer, id)
            }
            Err(error) => report_for_error("ses", rcpts, &error),
        }
    }
}
