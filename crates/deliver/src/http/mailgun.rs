//! Mailgun `POST /v3/{domain}/messages.mime`: basic auth `api:{key}`, multipart with one
//! `to` field per envelope recipient and the raw MIME as the `message` file. Mailgun sends
//! to the `to` fields only, never to the message's own To/Cc headers; at most 1000 of them
//! per call.

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use sluice_core::{DeliveryReport, MailgunConfig, MailgunRegion};

use super::{
    Answer, client, in_batches, join, limits, literal_refusal, refused_report, report_for_answer,
    report_for_error,
};
use crate::egress::Egress;
use crate::{Deliverer, Outbound};

pub struct MailgunDeliverer {
    config: MailgunConfig,
    http: reqwest::Client,
    refused: Option<String>,
}

impl MailgunDeliverer {
    pub fn new(config: MailgunConfig, egress: &Egress) -> Self {
        let http = client(config.timeout_secs, egress);
        let mut deliverer = MailgunDeliverer {
            config,
            http,
            refused: None,
        };
        deliverer.refused = literal_refusal(egress, &[deliverer.base_url()]);
        deliverer
    }

    fn base_url(&self) -> &str {
        match (&self.config.base_url, self.config.region) {
            (Some(url), _) => url,
            (None, MailgunRegion::Us) => "https://api.mailgun.net",
            (None, MailgunRegion::Eu) => "https://api.eu.mailgun.net",
        }
    }
}

#[async_trait]
impl Deliverer for MailgunDeliverer {
    fn kind(&self) -> &'static str {
        "mailgun"
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        if let Some(why) = &self.refused {
            return refused_report("mailgun", &message.envelope.rcpt_to, why);
        }
        if message.body.whole().is_none() {
            return crate::whole_body_missing("mailgun", &message);
        }
        in_batches(&message.envelope.rcpt_to, limits::MAILGUN, |rcpts| {
            self.send_mime(&message, rcpts)
        })
        .await
    }
}

impl MailgunDeliverer {
    /// One messages.mime call for these recipients (at most [`limits::MAILGUN`]).
    async fn send_mime(&self, message: &Outbound<'_>, rcpts: &[String]) -> DeliveryReport {
        let mut form = Form::new();
        for rcpt in rcpts {
            form = form.text("to", rcpt.clone());
        }
        let mime = Part::bytes(message.body.whole().unwrap_or_default().to_vec())
            .file_name("message.mime")
            .mime_str("application/octet-stream")
            .expect("static mime type");
        form = form
            .text("v:sluice-message-id", message.id.to_string())
            .part("message", mime);
        let url = join(
            self.base_url(),
            &format!("/v3/{}/messages.mime", self.config.domain),
        );
        let sent = self
            .http
            .post(url)
            .basic_auth("api", Some(&self.config.api_key))
            .multipart(form)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let answer = Answer::read(response).await;
                let id = answer
                    .json_field("id")
                    .map(|id| id.trim_matches(['<', '>']).to_string());
                report_for_answer("mailgun", rcpts, &answer, id)
            }
            Err(error) => report_for_error("mailgun", rcpts, &error),
        }
    }
}
