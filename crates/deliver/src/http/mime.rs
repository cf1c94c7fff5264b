//! What the services that do not take an envelope need to know from the message itself,
//! and the message as such a service must get it so that only envelope recipients receive it.

use base64::Engine;
use mail_parser::{Address, Message, MessageParser};

/// Addresses of an address header, lower case.
pub fn addresses(header: Option<&Address<'_>>) -> Vec<String> {
    header
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Every recipient the message's To, Cc and Bcc fields name: all of them, not only the last
/// of each kind (mail-parser's `to()`).
pub fn header_recipients(message: &Message<'_>) -> Vec<String> {
    message
        .all_to()
        .chain(message.all_cc())
        .chain(message.all_bcc())
        .flat_map(|list| addresses(Some(list)))
        .collect()
}

/// The message's header block parsed, the body left alone (what recipients a service reads
/// from it, without decoding every part).
pub fn parse_header_block(body: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse_headers(body)
}

pub fn parse(body: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(body)
}

/// For services that read recipients from the headers (Graph): envelope recipients the
/// headers do not name (`named`, from [`header_recipients`]) are added as a `Bcc` field,
/// which the service strips when it sends.
pub fn with_envelope_bcc(body: &[u8], named: &[String], rcpts: &[String]) -> Vec<u8> {
    let missing: Vec<&str> = rcpts
        .iter()
        .filter(|r| !named.contains(&r.to_ascii_lowercase()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return body.to_vec();
    }
    let mut out = format!("Bcc: {}\r\n", missing.join(", ")).into_bytes();
    out.extend_from_slice(&body[orphan_lines_end(body)..]);
    out
}

/// Where the lines that begin with a space or tab at the very start of a message end: they
/// continue no field, and before them a new field would take them in (a `Bcc` put first
/// would gain their addresses), so they are dropped.
fn orphan_lines_end(body: &[u8]) -> usize {
    let mut at = 0;
    while matches!(body.get(at), Some(b' ' | b'\t')) {
        at = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |i| at + i + 1);
    }
    at
}

/// Display name (when there is one) by lower-case address, from To, Cc and Bcc.
pub fn display_names(message: &Message<'_>) -> Vec<(String, String)> {
    [message.to(), message.cc(), message.bcc()]
        .into_iter()
        .flatten()
        .flat_map(|list| list.iter())
        .filter_map(|a| Some((a.address()?.to_ascii_lowercase(), a.name()?.to_string())))
        .filter(|(_, name)| !name.trim().is_empty())
        .collect()
}

/// For services that send to whoever the headers name (Graph): the message as it must go
/// to exactly `rcpts`. When the To, Cc and Bcc fields name only envelope recipients, the
/// message is left as it is and the envelope recipients they do not name are added as a
/// `Bcc` field (see [`with_envelope_bcc`]). When they name anyone else (a list address, a
/// recipient routed elsewhere or suppressed), those fields are rewritten: To and Cc keep
/// the envelope recipients they name, with their display names, Bcc fields go, and every
/// envelope recipient not named is put in a new `Bcc` field, which the service strips.
///
/// The result is read back with a lenient parser before it is returned: when that parser
/// finds anyone else in To, Cc or Bcc (a header the rewrite and the parser read in
/// different ways), the answer is [`HeaderUnsafe`] and the caller refuses the message
/// rather than send it where it must not go.
pub fn for_envelope(body: &[u8], rcpts: &[String]) -> Result<Vec<u8>, HeaderUnsafe> {
    names_only(rewrite_for_envelope(body, rcpts), rcpts)
}

/// `out` when a lenient parser reads no one but `rcpts` from its To, Cc and Bcc.
fn names_only(out: Vec<u8>, rcpts: &[String]) -> Result<Vec<u8>, HeaderUnsafe> {
    let wanted: Vec<String> = rcpts.iter().map(|r| r.to_ascii_lowercase()).collect();
    let parsed = parse_header_block(&out).ok_or(HeaderUnsafe)?;
    // Anything with an `@` counts: a service may deliver to what our own check would call
    // malformed (`x@host.`, `a..b@x`).
    let stranger = header_recipients(&parsed)
        .into_iter()
        .filter(|address| address.contains('@'))
        .any(|address| !wanted.contains(&address));
    if stranger {
        return Err(HeaderUnsafe);
    }
    Ok(out)
}

/// The header block of a message could not be rewritten so that a parser reads only the
/// envelope recipients from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderUnsafe;

/// [`for_envelope`] without the read-back check: public for the `mime_convert` fuzz
/// target, which holds the rewrite itself to the invariant the check enforces.
#[doc(hidden)]
pub fn rewrite_for_envelope(body: &[u8], rcpts: &[String]) -> Vec<u8> {
    // Addresses no header can carry unambiguously are left out; the caller refuses them.
    let rcpts: Vec<String> = rcpts
        .iter()
        .filter(|r| writable_in_header(r))
        .cloned()
        .collect();
    let rcpts = rcpts.as_slice();
    let wanted: Vec<String> = rcpts.iter().map(|r| r.to_ascii_lowercase()).collect();
    let (head, rest) = body.split_at(header_end(body));
    let fields = header_fields(head);
    let mut named = Vec::new();
    // The message as a whole may read otherwise than its fields one by one (an address an
    // encoded word spans, read only where the field ends the input): anyone else the
    // whole reading names calls for the rewrite too.
    let mut stranger = parse_header_block(body).is_some_and(|whole| {
        header_recipients(&whole)
            .iter()
            .any(|address| !wanted.contains(address))
    });
    for field in &fields {
        // A field without a proper name is one parsers read in different ways (mail-parser
        // takes `:cc: x` for a Cc): rewrite, which drops it.
        stranger |= !well_named(field);
        if let Some(kind) = recipient_field(field) {
            for (address, _) in field_addresses(field, kind) {
                stranger |= !wanted.contains(&address);
                named.push(address);
            }
        }
    }
    if !stranger {
        return with_envelope_bcc(body, &named, rcpts);
    }
    let mut placed: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(body.len() + 64);
    for field in &fields {
        match recipient_field(field) {
            None if !well_named(field) => {}
            None => out.extend_from_slice(field),
            Some(RecipientField::Bcc) => {}
            Some(kind) => {
                let kept: Vec<(String, Option<String>)> = field_addresses(field, kind)
                    .into_iter()
                    .filter(|(address, _)| wanted.contains(address) && !placed.contains(address))
                    .collect();
                if kept.is_empty() {
                    continue;
                }
                let name = if kind == RecipientField::To {
                    "To"
                } else {
                    "Cc"
                };
                out.extend_from_slice(address_field(name, &kept).as_bytes());
                placed.extend(kept.into_iter().map(|(address, _)| address));
            }
        }
    }
    out.extend_from_slice(rest);
    with_envelope_bcc(&out, &placed, rcpts)
}

/// Whether a service that reads recipients from the headers reads `address` back as
/// itself. A local part holding `=?` is valid (RFC 5321) but looks like an RFC 2047
/// encoded word: parsers that decode those leniently inside an address (mail-parser, in
/// `<>` and quotes too) read `=?x?q?J=C?=B=t@est` as `b=t@est`, so no header carries it
/// safely. Found by fuzzing (`mime_convert`).
pub fn writable_in_header(address: &str) -> bool {
    !address
        .rsplit_once('@')
        .is_some_and(|(local, _)| local.contains("=?"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecipientField {
    To,
    Cc,
    Bcc,
}

/// RFC 5322 `field-name ":"`, on the field's first line: one or more printable ASCII
/// characters but the colon, then spaces or tabs at most (RFC 5322's obsolete syntax). A
/// name folded onto the next line (`Cc\r\n :cC: x`) is not one: mail-parser reads a name
/// out of it that we would not.
fn field_name(field: &[u8]) -> Option<&[u8]> {
    let colon = field.iter().position(|b| *b == b':')?;
    let name = &field[..colon];
    let name = &name[..name.len()
        - name
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()];
    (!name.is_empty() && name.iter().all(|b| (33..=126).contains(b))).then_some(name)
}

fn well_named(field: &[u8]) -> bool {
    field_name(field).is_some()
}

/// To, Cc or Bcc, for a well-named field only (the others are dropped in a rewrite).
fn recipient_field(field: &[u8]) -> Option<RecipientField> {
    let name = field_name(field)?.to_ascii_lowercase();
    match name.as_slice() {
        b"to" => Some(RecipientField::To),
        b"cc" => Some(RecipientField::Cc),
        b"bcc" => Some(RecipientField::Bcc),
        _ => None,
    }
}

/// The offset where the header block ends (after the last field's line end), or the
/// whole message when it has no body.
fn header_end(body: &[u8]) -> usize {
    let mut at = 0;
    while at < body.len() {
        let line_end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |i| at + i + 1);
        let line = &body[at..line_end];
        if line == b"\r\n" || line == b"\n" {
            return at;
        }
        at = line_end;
    }
    body.len()
}

/// The fields of a header block, each with its continuation lines and line end.
fn header_fields(head: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < head.len() {
        let line_end = memchr::memchr(b'\n', &head[at..]).map_or(head.len(), |i| at + i + 1);
        match (head[at], fields.last_mut()) {
            (b' ' | b'\t', Some(last)) => last.1 = line_end,
            _ => fields.push((at, line_end)),
        }
        at = line_end;
    }
    fields.into_iter().map(|(a, b)| &head[a..b]).collect()
}

/// The addresses of one To / Cc / Bcc field: (lower-case address, display name).
fn field_addresses(field: &[u8], kind: RecipientField) -> Vec<(String, Option<String>)> {
    let mut alone = field.to_vec();
    if !alone.ends_with(b"\n") {
        alone.extend_from_slice(b"\r\n");
    }
    alone.extend_from_slice(b"\r\n");
    let Some(parsed) = MessageParser::default().parse(&alone) else {
        return Vec::new();
    };
    let list = match kind {
        RecipientField::To => parsed.to(),
        RecipientField::Cc => parsed.cc(),
        RecipientField::Bcc => parsed.bcc(),
    };
    list.map(|list| {
        list.iter()
            .filter_map(|a| {
                let name = a
                    .name()
                    .filter(|n| !n.trim().is_empty())
                    .map(str::to_string);
                Some((a.address()?.to_ascii_lowercase(), name))
            })
            .collect()
    })
    .unwrap_or_default()
}

/// `Name: a, "B" <b>` folded one address a line; names quoted, or RFC 2047 encoded when
/// they are not printable ASCII.
fn address_field(name: &str, addresses: &[(String, Option<String>)]) -> String {
    let rendered: Vec<String> = addresses
        .iter()
        .map(|(address, display)| match display {
            None => address.clone(),
            Some(display) => format!("{} <{address}>", phrase(display)),
        })
        .collect();
    format!("{name}: {}\r\n", rendered.join(",\r\n "))
}

fn phrase(display: &str) -> String {
    if display.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let escaped = display.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\"");
    }
    // Encoded words of at most 45 bytes of text each (under 75 characters encoded).
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in display.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpts(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    /// The addresses the service would send to: every To, Cc and Bcc of the result.
    fn receivers(body: &[u8]) -> Vec<String> {
        let mut all = header_recipients(&parse(body).unwrap());
        all.sort();
        all
    }

    /// Found by `fuzz/fuzz_targets/mime_convert.rs` (a run of an hour, 2026-12-04): an
    /// envelope recipient whose local part looks like an RFC 2047 encoded word
    /// (`=?utse-4?q?J=C?=B=t@est` is a valid mailbox) was written into the Bcc field, and
    /// a parser that decodes encoded words leniently read it as `b=t@est`: Graph would have
    /// sent to an address that is not an envelope recipient. No header form reads back
    /// right (bare, quoted, in `<>`), so it is left out and the provider refuses it.
    #[test]
    fn a_recipient_that_looks_like_an_encoded_word_is_never_written() {
        let crash = b"=?utse-4?q?J=C?=B=t@est, new@>, other@elsewhere.test\r\n\
c C:=?u\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\
\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\
\xff\xffC:=;uuf-8?q?J=y\r\n";
        let nl = crash.iter().position(|b| *b == b'\n').unwrap();
        let envelope = rcpts(&["=?utse-4?q?J=C?=B=t@est", "other@elsewhere.test"]);
        assert!(!writable_in_header(&envelope[0]) && writable_in_header(&envelope[1]));
        let bodies: [&[u8]; 3] = [
            &crash[nl + 1..],
            b"To: other@elsewhere.test\r\nSubject: s\r\n\r\nx\r\n",
            b"To: =?utse-4?q?J=C?=B=t@est, stranger@x.test\r\n\r\nx\r\n",
        ];
        for body in bodies {
            let out = for_envelope(body, &envelope).unwrap();
            assert_eq!(
                receivers(&out),
                vec!["other@elsewhere.test"],
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    /// Found by `fuzz/fuzz_targets/mime_convert.rs` (CI's 20 s run, 2026-12-04): a field
    /// name folded onto the next line (`Ccwhere.test\r\n :cC: ...`) passed for a proper name
    /// once the fold was trimmed, so the field was kept; mail-parser reads a Cc out of it.
    /// A name must now sit on the field's first line, and such a field is dropped.
    #[test]
    fn a_field_name_folded_onto_the_next_line_is_dropped() {
        let body = b"Ccwhere.test\r\n :cC:=?u\xff\xff: =?ua@x.testt, new@tx.test, xcheaders s\r\n\
\r\nbody\r\n";
        let out = for_envelope(body, &rcpts(&["ANN@x.test", "j@x"])).unwrap();
        assert_eq!(receivers(&out), vec!["ann@x.test", "j@x"]);
        assert_eq!(out, b"Bcc: ANN@x.test, j@x\r\n\r\nbody\r\n");
        // Spaces or tabs before the colon are still a name (RFC 5322's obsolete syntax).
        let body = b"To \t: a@x.test\r\nSubject : s\r\n\r\nbody\r\n";
        assert_eq!(for_envelope(body, &rcpts(&["a@x.test"])), Ok(body.to_vec()));
    }

    /// Found by `mime_convert` (a random run, 2026-12-04): `Cc: =?utf-7?q?Je+37BCrg.nj@x.test?=`
    /// ending the input names an address when the whole message is parsed and none when
    /// the field is parsed alone, so the field was kept as naming no one else.
    #[test]
    fn a_field_the_whole_message_reads_otherwise_is_rewritten() {
        let body = b"Cc: =?utf-7?q?Je+37BCrg.nj@x.test?=(@+s+)+++";
        assert_eq!(receivers(body).len(), 1, "the whole message names one");
        let out = for_envelope(body, &rcpts(&["a@xere.test"])).unwrap();
        assert_eq!(out, b"Bcc: a@xere.test\r\n");
        assert_eq!(receivers(&out), vec!["a@xere.test"]);
    }

    /// The read-back check: a header a parser reads anyone else from is refused, whatever
    /// the rewrite got wrong (here, the field the rewrite once kept by mistake).
    #[test]
    fn a_result_naming_anyone_else_is_refused() {
        let wrong = b"Bcc: ann@x.test\r\nCcwhere.test\r\n :cC: stranger@x.test\r\n\r\nbody\r\n";
        assert_eq!(
            names_only(wrong.to_vec(), &rcpts(&["ann@x.test"])),
            Err(HeaderUnsafe)
        );
        // Every To, Cc and Bcc field is read, not only the last of each kind; anything with
        // an `@` counts, well-formed or not.
        for wrong in [
            &b"To: stranger@x.test\r\nTo: ann@x.test\r\n\r\nbody\r\n"[..],
            b"Cc: stranger@x.test\r\nCc: ann@x.test\r\nBcc: x@y\r\nBcc: ann@x.test\r\n\r\nb\r\n",
            b"To: ann@x.test, stranger@host.\r\n\r\nbody\r\n",
        ] {
            assert_eq!(
                names_only(wrong.to_vec(), &rcpts(&["ann@x.test"])),
                Err(HeaderUnsafe),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
        let right = b"Bcc: ann@x.test\r\n\r\nbody\r\n";
        assert_eq!(
            names_only(right.to_vec(), &rcpts(&["ANN@x.test"])),
            Ok(right.to_vec())
        );
    }

    #[test]
    fn a_list_address_in_to_receives_nothing() {
        let body = b"From: List <list@example.com>\r\nTo: Newsletter <newsletter@example.com>\r\n\
Subject: Issue 7\r\n\r\nhello\r\n";
        let out = for_envelope(body, &rcpts(&["subscriber@example.org"])).unwrap();
        assert_eq!(receivers(&out), vec!["subscriber@example.org"]);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("newsletter@"), "{text}");
        assert!(
            text.ends_with("Subject: Issue 7\r\n\r\nhello\r\n"),
            "{text}"
        );
    }

    #[test]
    fn named_envelope_recipients_keep_their_place_and_names() {
        let body = "To: Ann Example <ann@x.test>, other@elsewhere.test\r\nCc: =?utf-8?q?J=C3=BCrgen?= <j@x.test>,\r\n gone@x.test\r\n\
Bcc: secret@x.test, hid@x.test\r\nSubject: s\r\n\r\nbody\r\n"
            .as_bytes();
        let out = for_envelope(
            body,
            &rcpts(&["ANN@x.test", "j@x.test", "hid@x.test", "new@x.test"]),
        )
        .unwrap();
        assert_eq!(
            receivers(&out),
            vec!["ann@x.test", "hid@x.test", "j@x.test", "new@x.test"]
        );
        let parsed = parse(&out).unwrap();
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(
            (to.name(), to.address()),
            (Some("Ann Example"), Some("ann@x.test"))
        );
        let cc = parsed.cc().unwrap().first().unwrap();
        assert_eq!(cc.name(), Some("Jürgen"));
        assert_eq!(parsed.subject(), Some("s"));
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("secret@") && !text.contains("gone@") && !text.contains("other@"));
    }

    #[test]
    fn every_to_field_is_rewritten_not_only_the_last() {
        let body = b"To: stranger@x.test\r\nTo: Ann <ann@x.test>\r\nSubject: s\r\n\r\nhi\r\n";
        let out = for_envelope(body, &rcpts(&["ann@x.test"])).unwrap();
        assert_eq!(receivers(&out), vec!["ann@x.test"]);
        assert!(!String::from_utf8_lossy(&out).contains("stranger"));
    }

    #[test]
    fn headers_naming_only_envelope_recipients_are_left_alone() {
        let body = b"To: A <a@x.test>\r\nSubject: s\r\n\r\nhi\r\n";
        let out = for_envelope(body, &rcpts(&["a@x.test", "b@x.test"])).unwrap();
        assert_eq!(
            out,
            b"Bcc: b@x.test\r\nTo: A <a@x.test>\r\nSubject: s\r\n\r\nhi\r\n"
        );
        assert_eq!(for_envelope(body, &rcpts(&["a@x.test"])), Ok(body.to_vec()));
    }

    #[test]
    fn lines_continuing_no_field_do_not_join_the_bcc() {
        // Found by the `mime_convert` fuzz target: a message starting with a folded line
        // (` gone@x.test`, no field before it) had the added `Bcc: ann@x.test` take that
        // line in, so Graph could send to gone@x.test.
        let body = b" gone@x.test\r\nBcc: secret@x.test, hid@x.test\r\nt\r\n\
Cc: =?utf-8?q?J=C3=BCrgen?= <j@x.test>,\r\n gone@x.test\r\nBcc: secret@x.test, hid@x.test\r\n\
Subject: s\r\n\r\nbody\r\n";
        let out = for_envelope(body, &rcpts(&["ANN@x.test"])).unwrap();
        assert_eq!(receivers(&out), vec!["ann@x.test"]);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("gone@"), "{text}");
        assert!(
            text.starts_with("Bcc: ANN@x.test\r\nSubject: s\r\n"),
            "{text}"
        );
        // Headers naming only envelope recipients: the same when the Bcc is added.
        let body = b"\t other@x.test\r\nTo: a@x.test\r\n\r\nhi\r\n";
        let out = for_envelope(body, &rcpts(&["a@x.test", "b@x.test"])).unwrap();
        assert_eq!(out, b"Bcc: b@x.test\r\nTo: a@x.test\r\n\r\nhi\r\n");
    }

    #[test]
    fn fields_without_a_proper_name_are_dropped() {
        // Found by the `mime_convert` fuzz target: `:cc: x` was copied as an unknown field,
        // and mail-parser reads it as a Cc (Graph could too).
        let body = b"To: a@x.test\r\n:cc: secret@elsewhere.test\r\nT\xb8o: c@x.test\r\n\
Subject: s\r\n\r\nbody\r\n";
        let out = for_envelope(body, &rcpts(&["a@x.test", "b@x.test"])).unwrap();
        assert_eq!(receivers(&out), vec!["a@x.test", "b@x.test"]);
        assert_eq!(
            out,
            b"Bcc: b@x.test\r\nTo: a@x.test\r\nSubject: s\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn envelope_only_recipients_become_bcc() {
        let body = b"To: A <a@x.test>\r\nCc: b@x.test\r\nSubject: s\r\n\r\nhi\r\n";
        let rcpts = ["a@x.test".to_string(), "c@x.test".to_string()];
        let named = header_recipients(&parse(body).unwrap());
        let out = with_envelope_bcc(body, &named, &rcpts);
        assert!(out.starts_with(b"Bcc: c@x.test\r\nTo: A <a@x.test>"));
        let all = ["A@x.test".to_string()];
        assert_eq!(with_envelope_bcc(body, &named, &all), body.to_vec());
    }
}
