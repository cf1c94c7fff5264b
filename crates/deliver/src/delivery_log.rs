//! The delivery log: one line per recipient per provider call, Postfix-style, appended to
//! `<data_dir>/delivery.log`. When the file would pass its cap (5 MB) it becomes
//! `delivery.log.1` (replacing the one before) and a new file starts, so the two hold the
//! last 5 to 10 MB and the panel shows the last 5 MB. Envelope addresses, provider,
//! verdict and the upstream's (sanitised) answer; never a body.
//!
//! Lines are gathered in memory and written by a thread of their own every 250 ms: a write
//! per delivery on the database's file system made every commit's fsync carry the log's
//! dirty pages too (ext4 orders data before the journal), and cost a tenth of the
//! throughput in the benchmark. The log is a record for people; the database is the truth,
//! so a crash may lose its last quarter second.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sluice_core::{DeliveryReport, Verdict};
use tracing::warn;

/// Where a file starts anew.
pub const DELIVERY_LOG_CAP: u64 = 5 * 1024 * 1024;

pub struct DeliveryLog {
    path: PathBuf,
    cap: u64,
    file: Mutex<Option<(File, u64)>>,
    /// Lines not yet written.
    pending: Mutex<String>,
}

/// How often the thread writes what gathered, and the most it holds meanwhile.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// One message's part of a line.
pub struct LoggedMessage<'a> {
    pub id: i64,
    pub account_id: i64,
    pub mail_from: &'a str,
}

/// The lines for one provider call, at `now_ms`: the provider's kind and its id (`default`
/// for `delivery.default_provider`).
pub fn format_lines(
    now_ms: i64,
    message: &LoggedMessage<'_>,
    provider_id: Option<i64>,
    report: &DeliveryReport,
) -> String {
    let provider_id = provider_id.map_or("default".to_string(), |id| id.to_string());
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut out = String::new();
    for result in &report.recipients {
        let status = match (report.captured, result.verdict) {
            (true, Verdict::Delivered) => "captured",
            (_, Verdict::Delivered) => "delivered",
            (_, Verdict::Transient) => "deferred",
            (_, Verdict::Permanent) => "failed",
        };
        let code = result.code.map_or("-".to_string(), |c| c.to_string());
        let response: String =
            sluice_core::text::sanitize_reply_text(&result.response, 300).replace('"', "'");
        out.push_str(&format!(
            "{time} message={} account={} from=<{}> to=<{}> provider={} provider_id={provider_id} status={status} code={code} response=\"{response}\"\n",
            message.id,
            message.account_id,
            message.mail_from,
            result.rcpt,
            report.provider.replace(char::is_whitespace, "_"),
        ));
    }
    out
}

impl DeliveryLog {
    /// The log at `path`, with its writing thread (which ends when the log is dropped).
    pub fn start(path: PathBuf) -> std::sync::Arc<Self> {
        let log = std::sync::Arc::new(DeliveryLog::with_cap(path, DELIVERY_LOG_CAP));
        let weak = std::sync::Arc::downgrade(&log);
        let spawned = std::thread::Builder::new()
            .name("delivery-log".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    match weak.upgrade() {
                        Some(log) => log.flush(),
                        None => return,
                    }
                }
            });
        if let Err(error) = spawned {
            warn!(%error, "delivery log thread not started; lines are written as they come");
        }
        log
    }

    /// A log that is written only by `flush` (tests, and `start`'s thread).
    pub fn with_cap(path: PathBuf, cap: u64) -> Self {
        DeliveryLog {
            path,
            cap,
            file: Mutex::new(None),
            pending: Mutex::new(String::new()),
        }
    }

    /// Writes what gathered.
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.write(&lines);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds `lines` to what the next flush writes. Beyond 4 MB waiting (the disk is stuck)
    /// lines are dropped rather than held.
    pub fn append(&self, lines: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() + lines.len() <= MAX_PENDING {
            pending.push_str(lines);
        }
    }

    /// Writes `lines` to the file, starting a new one at the cap; a failure is logged and
    /// otherwise ignored (delivery goes on).
    fn write(&self, lines: &str) {
        if lines.is_empty() {
            return;
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = self.append_locked(&mut file, lines.as_bytes()) {
            *file = None;
            warn!(%error, path = %self.path.display(), "delivery log not written");
        }
    }

    fn append_locked(&self, file: &mut Option<(File, u64)>, bytes: &[u8]) -> std::io::Result<()> {
        if file.is_none() {
            let opened = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let size = opened.metadata()?.len();
            *file = Some((opened, size));
        }
        let (_, size) = file.as_ref().expect("opened above");
        if *size > 0 && size + bytes.len() as u64 > self.cap {
            *file = None;
            std::fs::rename(&self.path, rotated(&self.path))?;
            let fresh = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            *file = Some((fresh, 0));
        }
        let (handle, size) = file.as_mut().expect("opened above");
        handle.write_all(bytes)?;
        *size += bytes.len() as u64;
        Ok(())
    }
}

impl Drop for DeliveryLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The previous file of a capped log.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// The last `limit` bytes of the log (the previous file's end, then the current file),
/// starting at a whole line.
pub fn read_tail(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let current = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    let mut out = Vec::new();
    if (current.len() as u64) < limit
        && let Ok(previous) = std::fs::read(rotated(path))
    {
        out = previous;
    }
    out.extend_from_slice(&current);
    if out.len() as u64 > limit {
        let start = out.len() - limit as usize;
        let line_start = out[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(out.len(), |i| start + i + 1);
        out.drain(..line_start);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::RecipientResult;

    fn report(captured: bool, verdict: Verdict) -> DeliveryReport {
        DeliveryReport {
            provider: "upstream one".into(),
            recipients: vec![RecipientResult {
                rcpt: "r@dest.test".into(),
                verdict,
                code: Some(451),
                response: "4.4.1 \"try\"\r\nlater".into(),
            }],
            captured,
            ..Default::default()
        }
    }

    #[test]
    fn a_line_per_recipient_with_status_and_answer() {
        let message = LoggedMessage {
            id: 17,
            account_id: 2,
            mail_from: "app@example.com",
        };
        let line = format_lines(0, &message, Some(4), &report(false, Verdict::Transient));
        assert_eq!(
            line,
            "1970-01-01T00:00:00Z message=17 account=2 from=<app@example.com> to=<r@dest.test> provider=upstream_one provider_id=4 status=deferred code=451 response=\"4.4.1 'try' later\"\n"
        );
        let captured = format_lines(0, &message, None, &report(true, Verdict::Delivered));
        assert!(captured.contains("provider_id=default status=captured"));
        assert!(
            format_lines(0, &message, None, &report(false, Verdict::Permanent))
                .contains("status=failed")
        );
    }

    #[test]
    fn the_file_rotates_at_its_cap_and_the_tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery.log");
        let log = DeliveryLog::with_cap(path.clone(), 100);
        for n in 0..12 {
            log.append(&format!("line {n:02} ..........\n")); // 20 bytes
            log.flush();
        }
        // 100 bytes per file: lines 10-11 in the current file, 05-09 in the previous one.
        let current = std::fs::read_to_string(&path).unwrap();
        assert_eq!(current, "line 10 ..........\nline 11 ..........\n");
        let previous = std::fs::read_to_string(rotated(&path)).unwrap();
        assert!(previous.starts_with("line 05") && previous.ends_with("line 09 ..........\n"));
        let tail = String::from_utf8(read_tail(&path, 70).unwrap()).unwrap();
        assert_eq!(
            tail,
            "line 09 ..........\nline 10 ..........\nline 11 ..........\n"
        );
        let all = String::from_utf8(read_tail(&path, 1000).unwrap()).unwrap();
        assert!(all.starts_with("line 05") && all.ends_with("line 11 ..........\n"));
        assert!(
            read_tail(&dir.path().join("none.log"), 10)
                .unwrap()
                .is_empty()
        );
    }
}
