//! The SPAMC/SPAMD protocol (SpamAssassin's `spamd`), the part the capture sandbox's spam
//! check speaks: a `REPORT` request for one message, and the answer read into a score, a
//! threshold and the rules that fired. Pure: the caller does the connection.

use serde::Serialize;

/// The request bytes for `message` (`REPORT`: the verdict and the rules' table).
pub fn report_request(message: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "REPORT SPAMC/1.5\r\nContent-length: {}\r\nUser: sluice\r\n\r\n",
        message.len()
    )
    .into_bytes();
    request.extend_from_slice(message);
    request
}

/// What spamd made of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpamReport {
    pub is_spam: bool,
    pub score: f64,
    pub threshold: f64,
    pub rules: Vec<SpamRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpamRule {
    pub name: String,
    pub score: f64,
    pub description: String,
}

/// Reads spamd's answer to a `REPORT`; the error says what was wrong with it.
pub fn parse_report(answer: &[u8]) -> Result<SpamReport, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let mut parts = status.split_whitespace();
    if !parts.next().is_some_and(|p| p.starts_with("SPAMD/")) {
        return Err(format!("not a spamd answer: {:?}", cut(status)));
    }
    if parts.next() != Some("0") {
        return Err(format!("spamd refused the message: {:?}", cut(status)));
    }
    let spam_line = lines
        .find_map(|l| l.strip_prefix("Spam:"))
        .ok_or("spamd's answer has no Spam: line")?;
    // `Spam: True ; 15.2 / 5.0`
    let (verdict, numbers) = spam_line
        .split_once(';')
        .ok_or("spamd's Spam: line has no score")?;
    let (score, threshold) = numbers
        .split_once('/')
        .ok_or("spamd's Spam: line has no threshold")?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("not a number in the Spam: line: {:?}", cut(s)))
    };
    Ok(SpamReport {
        is_spam: verdict.trim().eq_ignore_ascii_case("true")
            || verdict.trim().eq_ignore_ascii_case("yes"),
        score: number(score)?,
        threshold: number(threshold)?,
        rules: rules_of(body),
    })
}

/// The rules of a report's table: ` pts rule name  description` rows after the dashes,
/// a description's continuation lines joined to it.
fn rules_of(report: &str) -> Vec<SpamRule> {
    let mut rules: Vec<SpamRule> = Vec::new();
    let mut in_table = false;
    for line in report.lines() {
        if line.trim_start().starts_with("----") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let mut fields = trimmed.splitn(3, char::is_whitespace);
        let score = fields.next().and_then(|s| s.parse::<f64>().ok());
        let name = fields.next().filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
        match (score, name) {
            (Some(score), Some(name)) => rules.push(SpamRule {
                name: name.to_string(),
                score,
                description: fields.next().unwrap_or_default().trim().to_string(),
            }),
            _ => {
                if let Some(last) = rules.last_mut() {
                    last.description.push(' ');
                    last.description.push_str(trimmed);
                }
            }
        }
    }
    rules
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "SPAMD/1.1 0 EX_OK\r\nContent-length: 412\r\nSpam: True ; 7.4 / 5.0\r\n\r\n\
Spam detection software, running on the system \"relay\", has\n\
identified this incoming email as possible spam.\n\n\
Content analysis details:   (7.4 points, 5.0 required)\n\n\
 pts rule name              description\n\
---- ---------------------- --------------------------------------------------\n\
 2.5 MISSING_DATE           Missing Date: header\n\
 1.4 MISSING_MID            Missing Message-Id: header\n\
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP\n\
 3.5 GTUBE_LIKE             Looks like the test string for\n\
                            unsolicited bulk email\n";

    #[test]
    fn a_report_has_the_verdict_score_and_rules() {
        let report = parse_report(REPORT.as_bytes()).unwrap();
        assert!(report.is_spam);
        assert_eq!((report.score, report.threshold), (7.4, 5.0));
        let names: Vec<&str> = report.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["MISSING_DATE", "MISSING_MID", "NO_RELAYS", "GTUBE_LIKE"]
        );
        assert_eq!(report.rules[0].score, 2.5);
        assert_eq!(report.rules[0].description, "Missing Date: header");
        assert_eq!(
            report.rules[3].description,
            "Looks like the test string for unsolicited bulk email"
        );
    }

    #[test]
    fn a_clean_message_and_broken_answers() {
        let clean = parse_report(b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.1 / 5.0\r\n\r\n").unwrap();
        assert!(!clean.is_spam);
        assert!(clean.rules.is_empty());
        assert!(parse_report(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(
            parse_report(b"SPAMD/1.1 76 Bad header line\r\n\r\n")
                .unwrap_err()
                .contains("refused")
        );
        assert!(parse_report(b"SPAMD/1.1 0 EX_OK\r\n\r\n").is_err());
        assert!(parse_report(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; x / 5\r\n\r\n").is_err());
    }

    #[test]
    fn the_request_carries_the_length() {
        let request = report_request(b"Subject: x\r\n\r\nhi\r\n");
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("REPORT SPAMC/1.5\r\nContent-length: 18\r\n"));
        assert!(text.ends_with("\r\n\r\nSubject: x\r\n\r\nhi\r\n"));
    }
}
