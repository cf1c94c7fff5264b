//! A small tokenizer over an email's HTML for the capture checks: the start tags used, the
//! CSS in `style` attributes and `<style>` blocks (declarations, at-rules, pseudo-classes in
//! selectors), and the `href`/`src` URLs. Not an HTML parser: it only has to find what a
//! mail client would see, and never fails (bad markup is skipped).

/// What a scan found.
#[derive(Debug, Default, PartialEq)]
pub struct HtmlUsage {
    /// Start tag names (lowercase), one entry per occurrence.
    pub elements: Vec<String>,
    /// CSS declarations `(property, value)`, lowercase, `!important` removed.
    pub declarations: Vec<(String, String)>,
    /// At-rule names without `@` (`media`, `font-face`), lowercase.
    pub at_rules: Vec<String>,
    /// Pseudo-classes and pseudo-elements in selectors (`:hover`, `::before`), lowercase.
    pub pseudos: Vec<String>,
    /// `href` and `src` attribute values, entity-decoded, in document order.
    pub urls: Vec<String>,
}

/// Scans HTML.
pub fn scan_html(html: &str) -> HtmlUsage {
    let mut usage = HtmlUsage::default();
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut at = 0;
    while let Some(offset) = lower[at..].find('<') {
        let start = at + offset;
        let rest = &lower[start..];
        if rest.starts_with("<!--") {
            at = skip_past(&lower, start + 4, "-->");
            continue;
        }
        let next = bytes.get(start + 1).copied().unwrap_or(b' ');
        if matches!(next, b'!' | b'?' | b'/') {
            at = skip_past(&lower, start + 1, ">");
            continue;
        }
        if !next.is_ascii_alphabetic() {
            at = start + 1;
            continue;
        }
        let (name, attributes, end) = start_tag(html, start + 1);
        for (attribute, value) in &attributes {
            match attribute.as_str() {
                "style" => css_declarations(value, &mut usage),
                "href" | "src" => usage.urls.push(decode_entities(value)),
                _ => {}
            }
        }
        at = end;
        if name == "style" || name == "script" {
            let close = format!("</{name}");
            let body_end = lower[at..].find(&close).map_or(lower.len(), |i| at + i);
            if name == "style" {
                stylesheet(&html[at..body_end], &mut usage);
            }
            at = skip_past(&lower, body_end, ">");
        }
        usage.elements.push(name);
    }
    usage
}

/// The index just past `needle` at or after `from`, or the end.
fn skip_past(haystack: &str, from: usize, needle: &str) -> usize {
    match haystack.get(from..).and_then(|tail| tail.find(needle)) {
        Some(i) => from + i + needle.len(),
        None => haystack.len(),
    }
}

/// A start tag from just after its `<`: the lowercase name, the attributes (names
/// lowercase, values raw) and the index just past its `>`.
fn start_tag(html: &str, from: usize) -> (String, Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut i = from;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || b"-:".contains(&bytes[i])) {
        i += 1;
    }
    let name = html[from..i].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (name, attributes, i);
        }
        if bytes[i] == b'>' {
            return (name, attributes, i + 1);
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=>/".contains(&bytes[i]) {
            i += 1;
        }
        let attribute = html[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            attributes.push((attribute, String::new()));
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let value_start = i + 1;
                let value_end = html[value_start..]
                    .find(quote as char)
                    .map_or(html.len(), |j| value_start + j);
                i = (value_end + 1).min(html.len());
                &html[value_start..value_end]
            }
            _ => {
                let value_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                &html[value_start..i]
            }
        };
        attributes.push((attribute, value.to_string()));
    }
}

/// The few entities that appear in URLs.
fn decode_entities(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A stylesheet: preludes before `{` are selectors or at-rules; text ended by `;` or `}`
/// is a declaration (or an at-rule statement such as `@import`).
pub fn stylesheet(css: &str, usage: &mut HtmlUsage) {
    let css = strip_comments(css);
    let mut buffer = String::new();
    for c in css.chars() {
        match c {
            '{' => {
                prelude(buffer.trim(), usage);
                buffer.clear();
            }
            ';' | '}' => {
                statement(buffer.trim(), usage);
                buffer.clear();
            }
            _ => buffer.push(c),
        }
    }
    statement(buffer.trim(), usage);
}

fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = match rest[start + 2..].find("*/") {
            Some(end) => &rest[start + 2 + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn at_rule_name(text: &str) -> Option<String> {
    let name: String = text
        .strip_prefix('@')?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

fn prelude(text: &str, usage: &mut HtmlUsage) {
    if let Some(name) = at_rule_name(text) {
        usage.at_rules.push(name);
        return;
    }
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b':' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] == b':' {
            i += 1;
        }
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
            i += 1;
        }
        if i > start + 1 && bytes[i - 1] != b':' {
            usage.pseudos.push(lower[start..i].to_string());
        }
    }
}

fn statement(text: &str, usage: &mut HtmlUsage) {
    if text.is_empty() {
        return;
    }
    if let Some(name) = at_rule_name(text) {
        usage.at_rules.push(name);
        return;
    }
    declaration(text, usage);
}

/// The declarations of a `style` attribute.
pub fn css_declarations(style: &str, usage: &mut HtmlUsage) {
    for text in strip_comments(&decode_entities(style)).split(';') {
        declaration(text, usage);
    }
}

fn declaration(text: &str, usage: &mut HtmlUsage) {
    let Some((property, value)) = text.split_once(':') else {
        return;
    };
    let property = property.trim().to_ascii_lowercase();
    if property.is_empty() || property.contains(char::is_whitespace) {
        return;
    }
    let value = value.trim().to_ascii_lowercase();
    let value = value.trim_end_matches("!important").trim().to_string();
    usage.declarations.push((property, value));
}

/// The http(s) URLs in plain text, ended by whitespace or a delimiter, without trailing
/// punctuation.
pub fn text_urls(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut urls = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find("http") {
        let start = at + found;
        let tail = &lower[start..];
        if !(tail.starts_with("http://") || tail.starts_with("https://")) {
            at = start + 4;
            continue;
        }
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || "<>\"'()[]{}".contains(c))
            .map_or(text.len(), |i| start + i);
        let url = text[start..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
        if url.len() > "https://".len() {
            urls.push(url.to_string());
        }
        at = end.max(start + 4);
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_attributes_and_inline_styles() {
        let usage = scan_html(
            "<!-- <form> --><DIV Style=\"display: FLEX !important; color:red\" data-x>\
             <a href='https://a.test/x?a=1&amp;b=2'>x</a><img src=cid:logo alt=\"<svg>\"></div>",
        );
        assert_eq!(usage.elements, strings(&["div", "a", "img"]));
        assert_eq!(
            usage.declarations,
            vec![
                ("display".into(), "flex".into()),
                ("color".into(), "red".into())
            ]
        );
        assert_eq!(
            usage.urls,
            strings(&["https://a.test/x?a=1&b=2", "cid:logo"])
        );
    }

    #[test]
    fn style_block_rules_at_rules_and_pseudos() {
        let usage = scan_html(
            "<style>/* a{position:x} */ @import url(x.css); @media (max-width:600px){\
             .a:hover, p::before {display:grid; --main: #fff} } @font-face{font-family:X}</style>\
             <p>a:hover is text</p><script>if (a<b) { x: 1 }</script>",
        );
        assert_eq!(usage.elements, strings(&["style", "p", "script"]));
        assert_eq!(usage.at_rules, strings(&["import", "media", "font-face"]));
        assert_eq!(usage.pseudos, strings(&[":hover", "::before"]));
        assert_eq!(
            usage.declarations,
            vec![
                ("display".into(), "grid".into()),
                ("--main".into(), "#fff".into()),
                ("font-family".into(), "x".into())
            ]
        );
    }

    #[test]
    fn broken_markup_does_not_panic() {
        for html in [
            "<",
            "<a",
            "<a href=",
            "<a href=\"x",
            "<style>",
            "<!--",
            "<é é=é>",
            "<<>>",
        ] {
            scan_html(html);
        }
        assert_eq!(scan_html("<a href=\"x").urls, strings(&["x"]));
    }

    #[test]
    fn urls_in_text() {
        assert_eq!(
            text_urls("See https://a.test/x. Or (http://b.test/y?z=1), httpx://no HTTPS://C.test"),
            strings(&["https://a.test/x", "http://b.test/y?z=1", "HTTPS://C.test"])
        );
        assert!(text_urls("http:// and https://").is_empty());
    }
}
