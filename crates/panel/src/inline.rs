//! A message's inline images (`cid:` references to parts by Content-ID) for the sandboxed
//! HTML view: each reference is replaced by the part itself as a `data:` URL, so the frame
//! loads nothing (its policy stays `default-src 'none'; img-src data:`) and needs no
//! cookie (a sandboxed frame has an opaque origin: the panel's SameSite=Strict session
//! cookie would not go with a request from it). Pure: HTML and parts in, HTML out.

use base64::Engine;
use mail_parser::{Message, MimeHeaders};

/// Image types shown inline; anything else (SVG, HTML, ...) stays a dead `cid:` reference.
const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The part of `message` whose Content-ID is `cid` (with or without `<>`), when it is an
/// image of a type shown inline: its content type and bytes.
pub fn part_by_content_id<'a>(message: &'a Message<'_>, cid: &str) -> Option<(String, &'a [u8])> {
    let wanted = bare_id(cid);
    if wanted.is_empty() {
        return None;
    }
    message.parts.iter().find_map(|part| {
        let id = part.content_id().map(bare_id)?;
        if !id.eq_ignore_ascii_case(wanted) {
            return None;
        }
        let kind = part.content_type().map(|c| match &c.c_subtype {
            Some(sub) => format!("{}/{}", c.c_type, sub).to_ascii_lowercase(),
            None => c.c_type.to_ascii_lowercase(),
        })?;
        INLINE_TYPES
            .contains(&kind.as_str())
            .then(|| (kind, part.contents()))
    })
}

fn bare_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// `html` with every quoted `cid:` reference that `find` resolves replaced by a `data:`
/// URL of the part. References it does not resolve are left as they are.
pub fn inline_cid_images<'a>(
    html: &str,
    find: impl Fn(&str) -> Option<(String, &'a [u8])>,
) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = find_cid(rest) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        // `from` starts with the quote, then `cid:`.
        let quote = from.as_bytes()[0] as char;
        let value_start = 1 + "cid:".len();
        let value_len = from[value_start..].find(quote).unwrap_or(0);
        let id = &from[value_start..value_start + value_len];
        let decoded = percent_decode(id);
        match (value_len > 0).then(|| find(&decoded)).flatten() {
            Some((kind, bytes)) => {
                out.push(quote);
                out.push_str("data:");
                out.push_str(&kind);
                out.push_str(";base64,");
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
                rest = &from[value_start + value_len..];
            }
            None => {
                out.push_str(&from[..value_start]);
                rest = &from[value_start..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the next `"cid:` or `'cid:` (any case) starts.
fn find_cid(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    (0..bytes.len().saturating_sub(4)).find(|&i| {
        (bytes[i] == b'"' || bytes[i] == b'\'') && bytes[i + 1..].len() >= 4 && {
            let word = &bytes[i + 1..i + 5];
            word.eq_ignore_ascii_case(b"cid:")
        }
    })
}

/// `%XX` escapes in a `cid:` URL (RFC 2392) decoded; anything malformed kept as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    const MESSAGE: &str = "From: a@example.com\r\nTo: b@example.org\r\nSubject: logo\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/html\r\n\r\n<p><img src=\"cid:logo@x\"><img src='CID:logo%40x'>\
        <img src=\"cid:script@x\"><img src=\"cid:missing\"></p>\r\n\
        --b\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        iVBORw0KGgo=\r\n\
        --b\r\nContent-Type: image/svg+xml\r\nContent-ID: <script@x>\r\n\r\n<svg><script>1</script></svg>\r\n\
        --b--\r\n";

    #[test]
    fn cid_images_become_data_urls() {
        let message = MessageParser::default().parse(MESSAGE.as_bytes()).unwrap();
        let html = message.body_html(0).unwrap();
        let shown = inline_cid_images(&html, |cid| part_by_content_id(&message, cid));
        let png = "data:image/png;base64,iVBORw0KGgo=";
        assert!(shown.contains(&format!("src=\"{png}\"")), "{shown}");
        assert!(
            shown.contains(&format!("src='{png}'")),
            "escaped id: {shown}"
        );
        assert!(
            shown.contains("src=\"cid:script@x\""),
            "an SVG part is not inlined: {shown}"
        );
        assert!(shown.contains("src=\"cid:missing\""), "{shown}");
    }

    #[test]
    fn odd_html_is_left_alone() {
        let none = |_: &str| None;
        for html in [
            "",
            "\"",
            "'cid:",
            "\"cid:\"",
            "<a href=\"cid:x",
            "ünïcode 'cid:é'",
        ] {
            assert_eq!(inline_cid_images(html, none), html);
        }
    }
}
