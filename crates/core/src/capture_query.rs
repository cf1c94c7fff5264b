//! The capture inbox's search terms (`GET /api/v1/messages?q=`): `from:`, `to:`,
//! `subject:`, `tag:` (each a case-insensitive substring of that field), `has:attachment`,
//! `is:unread` / `is:read`, `before:` / `after:` a `YYYY-MM-DD` day (UTC; after is inclusive,
//! before exclusive, as mail clients' search has it), and free words, each the prefix of a
//! word anywhere in the subject, addresses, text or tags. A value may be quoted
//! (`subject:"weekly report"`). Pure: the store turns it into SQL.

/// One parsed search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureQuery {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub subject: Vec<String>,
    pub tags: Vec<String>,
    pub has_attachment: bool,
    /// `Some(false)`: only unread; `Some(true)`: only read.
    pub read: Option<bool>,
    /// Created before this unix ms (the start of the `before:` day).
    pub before_ms: Option<i64>,
    /// Created at or after this unix ms (the start of the `after:` day).
    pub after_ms: Option<i64>,
    /// Letters-and-digits words, lower case, each matched as a word prefix.
    pub words: Vec<String>,
}

/// A search that cannot be run; the message names the term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// At most this many terms, and this many characters in all.
pub const MAX_TERMS: usize = 16;
pub const MAX_QUERY_CHARS: usize = 500;

impl CaptureQuery {
    pub fn parse(text: &str) -> Result<CaptureQuery, QueryError> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError(format!(
                "q is at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let terms = split_terms(text)?;
        if terms.len() > MAX_TERMS {
            return Err(QueryError(format!("q has at most {MAX_TERMS} terms")));
        }
        let mut query = CaptureQuery::default();
        for (key, value) in terms {
            let value_lower = value.to_lowercase();
            match key.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => query.words.extend(words_of(&value)),
                Some("from") => query.from.push(non_empty("from", value_lower)?),
                Some("to") => query.to.push(non_empty("to", value_lower)?),
                Some("subject") => query.subject.push(non_empty("subject", value_lower)?),
                Some("tag") => query.tags.push(non_empty("tag", value_lower)?),
                Some("has") if value_lower == "attachment" || value_lower == "attachments" => {
                    query.has_attachment = true
                }
                Some("is") if value_lower == "unread" => query.read = Some(false),
                Some("is") if value_lower == "read" => query.read = Some(true),
                Some("before") => query.before_ms = Some(day_start_ms("before", &value)?),
                Some("after") => query.after_ms = Some(day_start_ms("after", &value)?),
                Some(key @ ("has" | "is")) => {
                    return Err(QueryError(format!(
                        "{key}:{value} is not a search term (has:attachment, is:unread, is:read)"
                    )));
                }
                // An unknown `key:` is a word with a colon in it (a time, a URL): its words.
                Some(_) => query
                    .words
                    .extend(words_of(&format!("{}:{value}", key.unwrap_or_default()))),
            }
        }
        Ok(query)
    }

    pub fn is_empty(&self) -> bool {
        *self == CaptureQuery::default()
    }
}

fn non_empty(key: &str, value: String) -> Result<String, QueryError> {
    if value.is_empty() {
        Err(QueryError(format!("{key}: needs a value")))
    } else {
        Ok(value)
    }
}

/// The lower-case letters-and-digits words of `text` (how both backends split text).
pub fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `(key, value)` terms: `key:value`, `key:"quoted value"`, `"quoted words"`, `word`.
fn split_terms(text: &str) -> Result<Vec<(Option<String>, String)>, QueryError> {
    let mut terms = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(terms);
        }
        let mut key = None;
        let mut value = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c == '"' {
                chars.next();
                quoted = true;
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    value.push(c);
                }
                if !closed {
                    return Err(QueryError("q has an unclosed quote".into()));
                }
                continue;
            }
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == ':' && key.is_none() && !quoted && !value.is_empty() {
                key = Some(std::mem::take(&mut value));
            } else {
                value.push(c);
            }
        }
        terms.push((key, value));
    }
}

/// The start (unix ms, UTC) of a `YYYY-MM-DD` day.
fn day_start_ms(key: &str, value: &str) -> Result<i64, QueryError> {
    let bad = || QueryError(format!("{key}: takes a day as YYYY-MM-DD, not {value:?}"));
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1..=days_in_month).contains(&d) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of `message::month_of`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> CaptureQuery {
        CaptureQuery::parse(text).unwrap()
    }

    #[test]
    fn terms_go_to_their_fields() {
        let parsed = q(
            r#"from:Alice@Example.com to:bob subject:"Weekly Report" tag:signup has:attachment is:unread invoice 42"#,
        );
        assert_eq!(parsed.from, ["alice@example.com"]);
        assert_eq!(parsed.to, ["bob"]);
        assert_eq!(parsed.subject, ["weekly report"]);
        assert_eq!(parsed.tags, ["signup"]);
        assert!(parsed.has_attachment);
        assert_eq!(parsed.read, Some(false));
        assert_eq!(parsed.words, ["invoice", "42"]);
        assert_eq!(q("is:read").read, Some(true));
    }

    #[test]
    fn free_text_is_split_into_words_like_the_index() {
        assert_eq!(q("Grüße, o'brien!").words, ["grüße", "o", "brien"]);
        assert_eq!(q(r#""two words""#).words, ["two", "words"]);
        // A colon that is no search key stays part of the words.
        assert_eq!(q("at 10:30").words, ["at", "10", "30"]);
        assert!(q("   ").is_empty());
    }

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(q("after:1970-01-01").after_ms, Some(0));
        assert_eq!(q("before:1970-01-02").before_ms, Some(86_400_000));
        assert_eq!(q("after:2026-12-04").after_ms, Some(1_796_342_400_000));
        assert_eq!(q("before:2024-02-29").before_ms, Some(1_709_164_800_000));
        let december = q("after:2026-12-01").after_ms.unwrap();
        assert_eq!(crate::message::month_of(december), "2026-12");
        assert_eq!(crate::message::month_of(december - 1), "2026-11");
    }

    #[test]
    fn bad_terms_are_refused_with_their_name() {
        for (text, says) in [
            ("before:2026-13-01", "before:"),
            ("after:2023-02-29", "after:"),
            ("after:yesterday", "after:"),
            ("has:spam", "has:spam"),
            ("is:flagged", "is:flagged"),
            ("from:", "from:"),
            ("subject:\"open", "unclosed"),
        ] {
            let error = CaptureQuery::parse(text).unwrap_err();
            assert!(error.0.contains(says), "{text}: {error}");
        }
        let long = "a ".repeat(17);
        assert!(CaptureQuery::parse(&long).is_err());
        assert!(CaptureQuery::parse(&"x".repeat(501)).is_err());
    }
}
