//! The capture indexer: each captured message is parsed once (`ParsedMessage`, the same
//! JSON `GET /messages/{id}/parsed` answers) into its `captured_mail` row (subject,
//! addresses, text, tags, attachment mark: what the inbox lists and search reads), with its
//! `message.captured` event in the same transaction (posted to the tenant's event
//! webhooks). It follows the store rather than the worker that captured the mail, so mail
//! captured on any node, or before a crash, is indexed all the same; several nodes may run
//! it (a row already written is skipped, and makes no second event).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_api_dto::parsed::{ParsedMessage, StoredFacts};
use sluice_store::{CapturedMail, Store, StoreError, UnindexedCapture};
use tokio::sync::{Notify, watch};
use tracing::warn;

/// Messages parsed per round (each read whole, one at a time).
const BATCH: u32 = 32;
/// The index keeps at most this much of a message's text.
pub const INDEXED_TEXT_CAP: usize = 64 * 1024;
/// How long a body that cannot be read is retried before the message is indexed from its
/// envelope alone (listed, searchable by address and tag, its event posted without text).
pub const UNREADABLE_GIVE_UP_MS: i64 = 10 * 60 * 1000;

/// Unreadable bodies tracked at once.
const MAX_TRACKED_FAILURES: usize = 10_000;

/// What to do with a captured message whose body could not be read just now.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Leave it unindexed: the next round reads it again (a passing storage fault must
    /// not leave an empty index row and an event without the message, for good).
    Retry,
    /// Unreadable for [`UNREADABLE_GIVE_UP_MS`]: index the envelope.
    IndexEnvelope,
}

/// `first_failed_ms`: when its body first failed to read.
pub fn on_unreadable(first_failed_ms: i64, now_ms: i64) -> Unreadable {
    match now_ms - first_failed_ms >= UNREADABLE_GIVE_UP_MS {
        true => Unreadable::IndexEnvelope,
        false => Unreadable::Retry,
    }
}

pub struct CaptureIndexer {
    store: Arc<dyn Store>,
    /// Off when bodies are encrypted at rest: the index would hold their text in the clear.
    index_body_text: bool,
    poll: Duration,
    wake: Arc<Notify>,
    /// Messages whose body failed to read, and since when.
    unreadable: Mutex<HashMap<sluice_core::MessageId, i64>>,
}

impl CaptureIndexer {
    pub fn new(store: Arc<dyn Store>, index_body_text: bool, poll: Duration) -> Arc<Self> {
        Arc::new(CaptureIndexer {
            store,
            index_body_text,
            poll,
            wake: Arc::new(Notify::new()),
            unreadable: Mutex::new(HashMap::new()),
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

    /// Indexes every captured message not indexed yet. How many were new. Messages whose
    /// body cannot be read just now are passed over (the next round tries them again), so
    /// they never hold up the mail behind them.
    pub async fn index_pending(&self) -> Result<u64, StoreError> {
        let mut indexed = 0;
        let mut after = 0;
        loop {
            let pending = self.store.unindexed_captures(after, BATCH).await?;
            let Some(last) = pending.last().map(|m| m.id) else {
                return Ok(indexed);
            };
            after = last;
            let mut rows = Vec::with_capacity(pending.len());
            for message in pending {
                rows.extend(self.row_of(message).await);
            }
            if !rows.is_empty() {
                // A row another node wrote first, or whose message changed meanwhile
                // (released, deleted, tagged by hand) is skipped; the latter come round again.
                indexed += self.store.index_captures(&rows, crate::now_ms()).await?;
            }
        }
    }

    /// The message's index row; `None` while its body cannot be read (see [`on_unreadable`]).
    async fn row_of(&self, message: UnindexedCapture) -> Option<CapturedMail> {
        let storage = self.store.body_storage();
        let raw = match sluice_core::body::read_whole(storage.as_deref(), &message.body).await {
            Ok(raw) => {
                self.forget_failure(message.id);
                raw
            }
            Err(error) => {
                let now = crate::now_ms();
                let (first, new) = self.first_failure(message.id, now);
                if on_unreadable(first, now) == Unreadable::Retry {
                    if new {
                        warn!(%error, message_id = message.id, "captured body not readable for the index; trying again for 10 minutes");
                    }
                    return None;
                }
                warn!(%error, message_id = message.id, "captured body unreadable for 10 minutes; indexing its envelope");
                self.forget_failure(message.id);
                Vec::new()
            }
        };
        let sender_tags = message.tags.clone();
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
        let mut row = captured_row(&parsed, self.index_body_text);
        row.sender_tags = sender_tags;
        Some(row)
    }

    /// When `id`'s body first failed to read (now, if this is the first time), and whether
    /// this is the first time.
    fn first_failure(&self, id: sluice_core::MessageId, now: i64) -> (i64, bool) {
        match self.unreadable.lock() {
            Ok(mut failing) => {
                if let Some(first) = failing.get(&id) {
                    return (*first, false);
                }
                // Messages deleted while failing are never read again: bound what is kept
                // (the others' ten minutes start over).
                if failing.len() >= MAX_TRACKED_FAILURES {
                    failing.clear();
                }
                failing.insert(id, now);
                (now, true)
            }
            Err(_) => (now, true),
        }
    }

    fn forget_failure(&self, id: sluice_core::MessageId) {
        if let Ok(mut failing) = self.unreadable.lock() {
            failing.remove(&id);
        }
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
        // The caller sets them: the parsed message holds only the tags it adds up to.
        sender_tags: Vec::new(),
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
    fn an_unreadable_body_is_retried_for_ten_minutes_then_its_envelope_is_indexed() {
        let t = 1_800_000_000_000;
        assert_eq!(on_unreadable(t, t), Unreadable::Retry);
        assert_eq!(
            on_unreadable(t, t + UNREADABLE_GIVE_UP_MS - 1),
            Unreadable::Retry
        );
        assert_eq!(
            on_unreadable(t, t + UNREADABLE_GIVE_UP_MS),
            Unreadable::IndexEnvelope
        );
    }

    #[test]
    fn an_unterminated_tag_or_script_ends_the_text() {
        assert_eq!(text_of_html("a <b"), "a  ");
        assert_eq!(text_of_html("a <script>x"), "a  ");
        assert_eq!(cut("ééé".into(), 3), "é");
    }
}
