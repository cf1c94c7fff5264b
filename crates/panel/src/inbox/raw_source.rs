//! A message's raw source cut into spans for simple highlighting in the inbox's Raw tab:
//! header names, header values (folded lines included), MIME boundary lines and body text.
//! The header sections are the message's own and each MIME part's (the lines after a
//! boundary up to the first empty line). Pure: text in, spans out; the template escapes
//! each span's text and gives it a class by its kind.

use serde::Serialize;

/// What a span of the raw source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// `Subject:` (the name and its colon).
    Name,
    /// What follows a header's colon, and its folded continuation lines.
    Value,
    /// `--boundary` and `--boundary--` lines of a multipart body.
    Boundary,
    /// Everything else: bodies, the empty line ending a header section, stray lines.
    Body,
}

/// One run of the source of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub kind: SpanKind,
    pub text: String,
}

/// At most this many bytes are cut into spans; the rest is one body span (a large message
/// stays a page, not a million elements).
pub const HIGHLIGHT_LIMIT: usize = 256 * 1024;

/// `raw` as spans, in order; joining their texts gives `raw` back. Adjacent spans of the
/// same kind are merged.
pub fn highlight(raw: &str) -> Vec<Span> {
    let (head, tail) = match raw.len() > HIGHLIGHT_LIMIT {
        true => raw.split_at(floor_char_boundary(raw, HIGHLIGHT_LIMIT)),
        false => (raw, ""),
    };
    let boundaries = boundaries_in(head);
    let mut spans: Vec<Span> = Vec::new();
    let mut push = |kind: SpanKind, text: &str| {
        if text.is_empty() {
            return;
        }
        match spans.last_mut() {
            Some(last) if last.kind == kind => last.text.push_str(text),
            _ => spans.push(Span {
                kind,
                text: text.to_string(),
            }),
        }
    };
    let mut in_headers = true;
    for line in head.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if let Some(closing) = boundary_line(content, &boundaries) {
            push(SpanKind::Boundary, line);
            in_headers = !closing;
            continue;
        }
        if !in_headers {
            push(SpanKind::Body, line);
            continue;
        }
        if content.is_empty() {
            in_headers = false;
            push(SpanKind::Body, line);
        } else if content.starts_with([' ', '\t']) {
            push(SpanKind::Value, line);
        } else if let Some(colon) = header_name_end(content) {
            push(SpanKind::Name, &line[..=colon]);
            push(SpanKind::Value, &line[colon + 1..]);
        } else {
            push(SpanKind::Body, line);
        }
    }
    push(SpanKind::Body, tail);
    spans
}

/// Where a header line's name ends (the colon's index), when it starts with a field name
/// (RFC 5322: printable ASCII but the colon, at least one).
fn header_name_end(line: &str) -> Option<usize> {
    let colon = line.find(':')?;
    (colon > 0 && line[..colon].bytes().all(|b| (33..=126).contains(&b))).then_some(colon)
}

/// `Some(closing)` when `line` is `--b` or `--b--` for one of `boundaries`.
fn boundary_line(line: &str, boundaries: &[String]) -> Option<bool> {
    let rest = line.strip_prefix("--")?.trim_end_matches([' ', '\t']);
    boundaries.iter().find_map(|b| {
        let after = rest.strip_prefix(b.as_str())?;
        match after {
            "" => Some(false),
            "--" => Some(true),
            _ => None,
        }
    })
}

/// Every `boundary=` parameter in `raw`, quoted or not.
fn boundaries_in(raw: &str) -> Vec<String> {
    let lower = raw.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("boundary=") {
        let start = from + at + "boundary=".len();
        let value = &raw[start..];
        let boundary = match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or_default(),
            None => value
                .split([';', '\r', '\n', ' ', '\t'])
                .next()
                .unwrap_or_default(),
        };
        if !boundary.is_empty() && !found.iter().any(|b: &String| b == boundary) {
            found.push(boundary.to_string());
        }
        from = start;
    }
    found
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::SpanKind::{Body, Boundary, Name, Value};
    use super::*;

    fn spans(raw: &str) -> Vec<(SpanKind, &str)> {
        let cut = highlight(raw);
        let joined: String = cut.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, raw, "the spans give the source back");
        // Leak-free comparison: borrow the texts back out of `raw` by position.
        let mut at = 0;
        cut.iter()
            .map(|s| {
                let text = &raw[at..at + s.text.len()];
                at += s.text.len();
                (s.kind, text)
            })
            .collect()
    }

    #[test]
    fn headers_then_body() {
        let table: &[(&str, &[(SpanKind, &str)])] = &[
            ("", &[]),
            (
                "Subject: hi\r\n\r\nbody\r\n",
                &[
                    (Name, "Subject:"),
                    (Value, " hi\r\n"),
                    (Body, "\r\nbody\r\n"),
                ],
            ),
            (
                "To: a@x,\r\n b@y\r\nX-A:1\n\nb",
                &[
                    (Name, "To:"),
                    (Value, " a@x,\r\n b@y\r\n"),
                    (Name, "X-A:"),
                    (Value, "1\n"),
                    (Body, "\nb"),
                ],
            ),
            // Not a header: a space before the colon, or no colon at all.
            (
                "Bad line\r\nX Y: z\r\n",
                &[(Body, "Bad line\r\nX Y: z\r\n")],
            ),
            // A header-like line in the body stays body.
            (
                "A: 1\r\n\r\nB: 2\r\n",
                &[(Name, "A:"), (Value, " 1\r\n"), (Body, "\r\nB: 2\r\n")],
            ),
        ];
        for (raw, want) in table {
            assert_eq!(spans(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn boundaries_and_part_headers() {
        let raw = "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n\
            --b1\r\nContent-Type: text/plain\r\n\r\n--b1x is text\r\n--b1\r\n\r\npart two\r\n--b1--\r\nepilogue\r\n";
        assert_eq!(
            spans(raw),
            vec![
                (Name, "Content-Type:"),
                (Value, " multipart/mixed; boundary=\"b1\"\r\n"),
                (Body, "\r\npreamble\r\n"),
                (Boundary, "--b1\r\n"),
                (Name, "Content-Type:"),
                (Value, " text/plain\r\n"),
                (Body, "\r\n--b1x is text\r\n"),
                (Boundary, "--b1\r\n"),
                (Body, "\r\npart two\r\n"),
                (Boundary, "--b1--\r\n"),
                (Body, "epilogue\r\n"),
            ]
        );
    }

    #[test]
    fn unquoted_and_nested_boundaries() {
        assert_eq!(
            boundaries_in(
                "Content-Type: multipart/mixed; BOUNDARY=outer;x\r\n a; boundary=\"in ner\"\r\n boundary=outer"
            ),
            vec!["outer".to_string(), "in ner".to_string()]
        );
        assert_eq!(boundary_line("--in ner--", &["in ner".into()]), Some(true));
        assert_eq!(boundary_line("--outer ", &["outer".into()]), Some(false));
        assert_eq!(boundary_line("-outer", &["outer".into()]), None);
        assert_eq!(boundary_line("--", &["outer".into()]), None);
    }

    #[test]
    fn a_large_source_is_cut_once_on_a_char_boundary() {
        let raw = format!("A: b\r\n\r\n{}", "é".repeat(HIGHLIGHT_LIMIT));
        let cut = highlight(&raw);
        assert_eq!(cut.iter().map(|s| s.text.len()).sum::<usize>(), raw.len());
        assert_eq!(cut.len(), 3, "name, value, one body span");
    }
}
