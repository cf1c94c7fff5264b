//! Email services reached over HTTPS. Each answer is classified the same way: 2xx delivered;
//! 408, 429, 5xx, timeouts and connection errors transient (honouring Retry-After); other 4xx
//! permanent, 401/403 with an event saying the provider's credentials are wrong.

pub mod mailgun;
pub mod mime;
pub mod msgraph;
pub mod sendgrid;
pub mod ses;

use std::future::Future;
use std::time::{Duration, SystemTime};

use sluice_core::text::sanitize_reply_text;
use sluice_core::{DeliveryReport, Verdict};

use crate::egress::Egress;

/// The HTTP client every service shares: bounded timeouts, our user agent, no redirects
/// (an API that redirects a POST is misconfigured, not something to follow), names
/// resolved through the egress policy when a tenant named the service's URL.
pub fn client(timeout_secs: u64, egress: &Egress) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(timeout_secs.clamp(1, 10)))
        .redirect(reqwest::redirect::Policy::none());
    egress
        .http_client(builder)
        .build()
        .expect("reqwest client builds with static settings")
}

/// Why the egress policy refuses one of a deliverer's URLs written with an IP-literal
/// host (reqwest connects to those without asking the resolver). Decided once per
/// deliverer: its URLs and the policy change only with a rebuild.
pub fn literal_refusal(egress: &Egress, urls: &[&str]) -> Option<String> {
    urls.iter()
        .find_map(|url| egress.check_url(url).err())
        .map(|error| error.to_string())
}

/// The report when the egress policy refused the service's address: nothing was sent.
/// Transient, as Postfix defers on a configuration error: the operator may open the range
/// or the tenant fix the URL, and the message's retry limit still ends it.
pub fn refused_report(provider: &str, rcpts: &[String], why: &str) -> DeliveryReport {
    let text = sanitize_reply_text(&format!("not sent: {why}"), 300);
    DeliveryReport::uniform(provider, rcpts, Verdict::Transient, None, &text)
}

/// What an HTTP status means for the message.
pub fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Transient,
        _ => Verdict::Permanent,
    }
}

/// Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP date.
pub fn retry_after_secs(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |d| d.as_secs()))
}

/// An HTTP answer, read whole (bodies of these APIs are small; capped anyway).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(8 * 1024)]).into_owned();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A JSON field of the body, when the body is JSON.
    pub fn json_field(&self, field: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        value.get(field)?.as_str().map(str::to_string)
    }
}

/// The report for a whole-message answer: every recipient shares the verdict.
pub fn report_for_answer(
    provider: &str,
    rcpts: &[String],
    answer: &Answer,
    provider_message_id: Option<String>,
) -> DeliveryReport {
    let verdict = classify_status(answer.status);
    let excerpt = sanitize_reply_text(&answer.body, 300);
    let response = format!("HTTP {} {}", answer.status, excerpt)
        .trim_end()
        .to_string();
    let mut report =
        DeliveryReport::uniform(provider, rcpts, verdict, Some(answer.status), &response);
    if verdict == Verdict::Delivered {
        report.provider_message_id = provider_message_id;
    }
    if verdict == Verdict::Transient {
        report.retry_after_secs = answer
            .header("retry-after")
            .and_then(|v| retry_after_secs(v, SystemTime::now()));
    }
    if matches!(answer.status, 401 | 403) {
        report.events.push((
            "provider_auth_failed".into(),
            format!("{provider} refused our credentials ({response})"),
        ));
    }
    report
}

/// The report when no answer came: timeouts and connection errors are transient.
pub fn report_for_error(
    provider: &str,
    rcpts: &[String],
    error: &reqwest::Error,
) -> DeliveryReport {
    if let Some(refused) = crate::egress::refusal_in(error) {
        return refused_report(provider, rcpts, &refused.to_string());
    }
    let what = if error.is_timeout() {
        "timed out waiting for the service"
    } else if error.is_connect() {
        "could not connect to the service"
    } else {
        "the request to the service failed"
    };
    DeliveryReport::uniform(provider, rcpts, Verdict::Transient, None, what)
}

/// Recipients per call that each service documents (To + Cc + Bcc together):
/// SES v2 SendEmail 50 ("divide your recipient list into groups of 50 or fewer");
/// SendGrid v3 mail send 1000 ("a limit of 1000 total recipients (to + cc + bcc) per
/// request", and 1000 personalizations); Mailgun 1000 recipients per message;
/// Microsoft Graph sendMail: Exchange Online's recipient limit, 500 per message by default.
pub mod limits {
    pub const SES: usize = 50;
    pub const SENDGRID: usize = 1000;
    pub const MAILGUN: usize = 1000;
    pub const MSGRAPH: usize = 500;
}

/// Delivers to `rcpts` in calls of at most `limit` recipients, one after the other, and
/// merges the reports: each recipient keeps the result of its own call. Once a call's
/// credentials are refused (401/403), the recipients left get that result without a call.
pub async fn in_batches<'a, F, Fut>(
    rcpts: &'a [String],
    limit: usize,
    mut call: F,
) -> DeliveryReport
where
    F: FnMut(&'a [String]) -> Fut,
    Fut: Future<Output = DeliveryReport>,
{
    let mut merged: Option<DeliveryReport> = None;
    for batch in rcpts.chunks(limit.max(1)) {
        if let Some(done) = merged.as_mut()
            && done
                .events
                .iter()
                .any(|(kind, _)| kind == "provider_auth_failed")
            && let Some(refused) = done.recipients.last().cloned()
        {
            done.recipients
                .extend(batch.iter().map(|rcpt| sluice_core::RecipientResult {
                    rcpt: rcpt.clone(),
                    ..refused.clone()
                }));
            continue;
        }
        let report = call(batch).await;
        merged = Some(match merged {
            None => report,
            Some(done) => merge(done, report),
        });
    }
    merged.unwrap_or_default()
}

/// Two calls' reports as one attempt's: results side by side, the longest Retry-After,
/// the first provider message id (the attempt row has room for one), events once each.
pub(crate) fn merge(mut into: DeliveryReport, next: DeliveryReport) -> DeliveryReport {
    into.recipients.extend(next.recipients);
    into.captured |= next.captured;
    into.provider_message_id = into.provider_message_id.or(next.provider_message_id);
    into.retry_after_secs = into.retry_after_secs.max(next.retry_after_secs);
    for event in next.events {
        if !into.events.contains(&event) {
            into.events.push(event);
        }
    }
    into
}

/// Joins a base URL and a path without doubling the slash.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let table = [
            (200, Verdict::Delivered),
            (202, Verdict::Delivered),
            (400, Verdict::Permanent),
            (401, Verdict::Permanent),
            (403, Verdict::Permanent),
            (404, Verdict::Permanent),
            (408, Verdict::Transient),
            (413, Verdict::Permanent),
            (429, Verdict::Transient),
            (500, Verdict::Transient),
            (503, Verdict::Transient),
        ];
        for (status, verdict) in table {
            assert_eq!(classify_status(status), verdict, "{status}");
        }
    }

    fn uniform(rcpts: &[String], verdict: Verdict, code: u16) -> DeliveryReport {
        DeliveryReport::uniform("ses", rcpts, verdict, Some(code), "HTTP")
    }

    #[tokio::test]
    async fn batches_keep_each_recipients_own_result() {
        let rcpts: Vec<String> = (0..120).map(|n| format!("r{n}@x.test")).collect();
        let mut sizes = Vec::new();
        let report = in_batches(&rcpts, 50, |batch| {
            sizes.push(batch.len());
            let verdict = if sizes.len() == 2 {
                Verdict::Permanent
            } else {
                Verdict::Delivered
            };
            let mut report = uniform(batch, verdict, if sizes.len() == 2 { 400 } else { 200 });
            report.retry_after_secs = Some(sizes.len() as u64);
            report.provider_message_id = Some(format!("id-{}", sizes.len()));
            async move { report }
        })
        .await;
        assert_eq!(sizes, vec![50, 50, 20]);
        let got: Vec<&str> = report.recipients.iter().map(|r| r.rcpt.as_str()).collect();
        assert_eq!(got, rcpts.iter().map(String::as_str).collect::<Vec<_>>());
        let failed: Vec<usize> = (0..120)
            .filter(|n| report.recipients[*n].verdict == Verdict::Permanent)
            .collect();
        assert_eq!(failed, (50..100).collect::<Vec<_>>());
        assert_eq!(report.retry_after_secs, Some(3));
        assert_eq!(report.provider_message_id.as_deref(), Some("id-1"));
    }

    #[tokio::test]
    async fn refused_credentials_stop_the_batches() {
        let rcpts: Vec<String> = (0..120).map(|n| format!("r{n}@x.test")).collect();
        let mut calls = 0;
        let report = in_batches(&rcpts, 50, |batch| {
            calls += 1;
            let mut report = uniform(batch, Verdict::Permanent, 403);
            report
                .events
                .push(("provider_auth_failed".into(), "no".into()));
            async move { report }
        })
        .await;
        assert_eq!(calls, 1);
        assert_eq!(report.recipients.len(), 120);
        assert!(report.recipients.iter().all(|r| r.code == Some(403)));
        assert_eq!(report.events.len(), 1);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after_secs("120", now), Some(120));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after_secs(&later, now), Some(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after_secs(&earlier, now), Some(0));
        assert_eq!(retry_after_secs("soon", now), None);
    }
}
