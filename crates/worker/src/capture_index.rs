//! The capture indexer: each captured message is parsed once (`ParsedMessage`, the same
//! JSON `GET /messages/{id}/parsed` answers) into its `captured_mail` row (subject,
//! addresses, text, tags, attachment mark: what the inbox lists and search reads), with its
//! `message.captured` event in the same transaction (posted to the tenant's event
//! webhooks). It follows the store rather than the worker that captured the mail, so mail
//! captured on any node, or before a crash, is indexed all the same; several nodes may run
//! it (a row already written is skipped, and makes no second event).

use std::sync::Arc;
use std::time::Duration;

use sluice_api_dto::parsed::{ParsedMessage, StoredFacts};
use sluice_store::{CapturedMail, Store, StoreError, UnindexedCapture};
use tokio::sync::{Notify, watch};
use tracing::warn;

/// Messages parsed per round (each read whole, one at a time).
const BATCH: u32 = 32;
/// The index keeps at most this much of a message's text.
pub const INDEXED_TEXT_CAP: usize = 64 * 1024;

pub struct CaptureIndexer {
    store: Arc<dyn Store>,
    /// Off when bodies are encrypted at rest: the index would hold their text in the clear.
    index_body_text: bool,
    poll: Duration,
    wake: Arc<Notify>,
}

impl CaptureIndexer {
    pub fn new(store: Arc<dyn Store>, index_body_text: bool, poll: Duration) -> Arc<Self> {
        Arc::new(CaptureIndexer {
            store,
            index_body_text,
            poll,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Wakes the indexer now (this node just captured mail) instead of at its next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.index_pending().await {
                warn!(%error, "indexing captured mail failed; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Indexes every captured message not indexed yet. How many were new.
    pub async fn index_pending(&self) -> Result<u64, StoreError> {
        let mut indexed = 0;
        loop {
            let pending = self.store.unindexed_captures(BATCH).await?;
            if pending.is_empty() {
                return Ok(indexed);
            }
            let mut rows = Vec::with_capacity(pending.len());
            for message in pending {
                rows.push(self.row_of(message).await);
            }
            let new = self.store.index_captures(&rows, crate::now_ms()).await?;
            indexed += new;
            if new == 0 {
                // Another node indexed them first, or they left `captured` meanwhile.
                return Ok(indexed);
            }
        }
    }

    async fn row_of(&self, message: UnindexedCapture) -> CapturedMail {
        let storage = self.store.body_storage();
        let raw = match sluice_core::body::read_whole(storage.as_deref(), &message.body).await {
            Ok(raw) => raw,
            Err(error) => {
                // Still indexed (envelope and tags), so it is listed and not read again
                // and again; its body answers the error where it is read.
                warn!(%error, message_id = message.id, "captured body not readable for the index");
                Vec::new()
            }
        };
        let parsed = ParsedMessage::parse(
            &raw,
            StoredFacts {
                id: message.id,
                account_id: message.account_id,
                received_at: message.created_at,
                mail_from: message.mail_from,
                rcpt_to: message.rcpt_to,
                tags: message.tags,
            },
        );
        captured_row(&parsed, self.index_body_text)
    }
}

/// The index row of a parsed message.
pub fn captured_row(parsed: &ParsedMessage, index_body_text: bool) -> CapturedMail {
    let body_text = match index_body_text {
        false => String::new(),
        true => {
            let text = match (&parsed.text, &parsed.html) {
                (Some(text), _) => text.clone(),
                (None, Some(html)) => text_of_html(html),
                (None, None) => String::new(),
            };
            cut(text, INDEXED_TEXT_CAP)
        }
    };
    let from = parsed.from.iter().cloned().collect::<Vec<_>>();
    CapturedMail {
        message_id: parsed.id,
        account_id: parsed.account_id,
        subject: parsed.subject.clone().unwrap_or_default(),
        from_text: format!(
            "{} {}",
            ParsedMessage::addresses_text(&from),
            parsed.envelope.mail_from
        ),
        to_text: format!(
            "{} {}",
            ParsedMessage::addresses_text(&parsed.to),
            parsed.envelope.rcpt_to.join(" ")
        ),
        cc_text: ParsedMessage::addresses_text(&parsed.cc),
        body_text,
        tags: parsed.tags.clone(),
        has_attachments: parsed
            .attachments
            .iter()
            .any(|a| a.disposition == "attachment" || a.content_id.is_none()),
        event_detail: serde_json::to_string(parsed).unwrap_or_else(|_| "{}".into()),
    }
}

/// The words of an HTML body: tags dropped, script and style content dropped.
fn text_of_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let after = &rest[open..];
        let lower: String = after
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let skip_to = if lower.starts_with("<script") {
            "</script"
        } else if lower.starts_with("<style") {
            "</style"
        } else {
            ""
        };
        let after = if skip_to.is_empty() {
            after
        } else {
            match after.to_ascii_lowercase().find(skip_to) {
                Some(end) => &after[end..],
                None => "",
            }
        };
        rest = match after.find('>') {
            Some(close) => &after[close + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn cut(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let mut at = cap;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[u8]) -> ParsedMessage {
        ParsedMessage::parse(
            raw,
            StoredFacts {
                id: 5,
                account_id: 2,
                received_at: 0,
                mail_from: "bounce@app.example".into(),
                rcpt_to: vec!["dev+qa@example.org".into()],
                tags: vec![],
            },
        )
    }

    #[test]
    fn the_row_has_header_and_envelope_addresses_and_the_html_words() {
        let p = parsed(
            b"From: App <app@example.com>\r\nTo: Dev <dev@example.org>\r\nSubject: Hi\r\n\
Content-Type: text/html\r\n\r\n<html><style>p{color:red}</style><p>Hello&nbsp;<b>world</b></p>\
<script>alert(1)</script></html>\r\n",
        );
        let row = captured_row(&p, true);
        assert_eq!(row.subject, "Hi");
        assert!(row.from_text.contains("app@example.com"));
        assert!(row.from_text.contains("bounce@app.example"));
        assert!(row.to_text.contains("dev+qa@example.org"));
        let words = sluice_core::capture_query::words_of(&row.body_text);
        assert_eq!(words, ["hello", "world"]);
        assert_eq!(row.tags, ["qa"]);
        assert!(!row.has_attachments);
        let event: serde_json::Value = serde_json::from_str(&row.event_detail).unwrap();
        assert_eq!(event["id"], 5);
        assert_eq!(event["subject"], "Hi");
        // Encrypted bodies: no text in the index.
        assert_eq!(captured_row(&p, false).body_text, "");
    }

    #[test]
    fn an_unterminated_tag_or_script_ends_the_text() {
        assert_eq!(text_of_html("a <b"), "a  ");
        assert_eq!(text_of_html("a <script>x"), "a  ");
        assert_eq!(cut("ééé".into(), 3), "é");
    }
}
