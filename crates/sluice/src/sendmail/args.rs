//! sendmail's command line, as applications write it: `-t`, `-f sender`, `-i`/`-oi`, the
//! harmless options they add out of habit (ignored), and the modes Sluice does not have
//! (refused). Pure: arguments in, a plan or a usage error out.

use std::path::PathBuf;

/// What to do with the message on stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendmailArgs {
    /// `-t`: recipients from To, Cc and Bcc (added to those given as arguments).
    pub recipients_from_headers: bool,
    /// `-f` / `-r`: the envelope sender.
    pub sender: Option<String>,
    /// `-F`: the full name for a From header Sluice writes when the message has none.
    pub full_name: Option<String>,
    /// `-i` / `-oi`: a line holding only "." is content, not the end of the message.
    pub ignore_dots: bool,
    pub recipients: Vec<String>,
    /// `--config PATH`: Sluice's config, to find its trusted listener.
    pub config: Option<PathBuf>,
    /// `--server HOST:PORT`.
    pub server: Option<String>,
    /// `-v`: the SMTP dialogue's replies on stderr.
    pub verbose: bool,
}

/// Modes of sendmail that are not "send one message".
const REFUSED_MODES: &[(&str, &str)] = &[
    (
        "-bs",
        "SMTP on stdin (-bs) is not supported: connect to Sluice's SMTP listener",
    ),
    (
        "-bd",
        "daemon mode (-bd) is not supported: run `sluice serve`",
    ),
    (
        "-bD",
        "daemon mode (-bD) is not supported: run `sluice serve`",
    ),
    (
        "-bp",
        "the queue listing (-bp, mailq) is not supported: see GET /api/v1/messages",
    ),
    ("-bi", "alias databases (-bi, newaliases) are not supported"),
    ("-bv", "address verification (-bv) is not supported"),
    ("-bt", "address test mode (-bt) is not supported"),
    ("-bh", "the connection database (-bh) is not supported"),
    ("-bH", "the connection database (-bH) is not supported"),
    ("-bP", "queue statistics (-bP) are not supported"),
    (
        "-q",
        "queue runs (-q) are not supported: Sluice's workers run the queue",
    ),
    ("-I", "alias databases (-I) are not supported"),
];

/// Options that take a value (joined, `-Bx`, or the next argument) and are ignored.
const IGNORED_WITH_VALUE: &[char] = &['B', 'C', 'h', 'L', 'N', 'O', 'p', 'R', 'V', 'X'];

/// Options without a value that are ignored.
const IGNORED_FLAGS: &[&str] = &[
    "-bm", "-n", "-m", "-U", "-G", "-Ac", "-Am", "-em", "-ee", "-eq", "-ew", "-ep",
];

/// Parses sendmail's arguments (without the program name).
pub fn parse(args: &[String]) -> Result<SendmailArgs, String> {
    let mut parsed = SendmailArgs::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value_of = |name: &str, joined: &str| -> Result<String, String> {
            match joined {
                "" => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
                joined => Ok(joined.to_string()),
            }
        };
        if arg == "--" {
            parsed.recipients.extend(rest.by_ref().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, joined) = long.split_once('=').unwrap_or((long, ""));
            match name {
                "config" => parsed.config = Some(PathBuf::from(value_of("--config", joined)?)),
                "server" => parsed.server = Some(value_of("--server", joined)?),
                _ => return Err(format!("unknown option --{name}")),
            }
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.recipients.push(arg.clone());
            continue;
        }
        if let Some((_, why)) = REFUSED_MODES.iter().find(|(mode, _)| arg.starts_with(mode)) {
            return Err((*why).to_string());
        }
        if IGNORED_FLAGS.contains(&arg.as_str()) {
            continue;
        }
        let mut chars = arg[1..].chars();
        let Some(letter) = chars.next() else { continue };
        let joined = chars.as_str();
        match letter {
            't' if joined.is_empty() => parsed.recipients_from_headers = true,
            'i' if joined.is_empty() => parsed.ignore_dots = true,
            'v' if joined.is_empty() => parsed.verbose = true,
            'f' | 'r' => parsed.sender = Some(value_of("-f", joined)?),
            'F' => parsed.full_name = Some(value_of("-F", joined)?),
            // -oi (and -oitrue): dots are content; every other -o option is a queue or
            // delivery setting of sendmail's own (-odi, -oem, -oQ...), ignored.
            'o' => {
                if joined == "i" || joined.eq_ignore_ascii_case("itrue") {
                    parsed.ignore_dots = true;
                } else if joined.is_empty() {
                    return Err("-o needs an option letter".into());
                }
            }
            'b' => {
                return Err(format!(
                    "unsupported mode {arg}: only -bm (send) is supported"
                ));
            }
            letter if IGNORED_WITH_VALUE.contains(&letter) => {
                value_of(&format!("-{letter}"), joined)?;
            }
            _ => return Err(format!("unsupported option {arg}")),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn what_applications_pass_is_understood() {
        // PHP's default sendmail_path, mailx, and a cron-style call.
        let php = parse(&args("-t -i")).unwrap();
        assert!(php.recipients_from_headers && php.ignore_dots);
        let mailx = parse(&args(
            "-oi -oem -odi -B8BITMIME -F Site -f app@example.com -- a@x.test",
        ))
        .unwrap();
        assert_eq!(
            mailx,
            SendmailArgs {
                ignore_dots: true,
                sender: Some("app@example.com".into()),
                full_name: Some("Site".into()),
                recipients: vec!["a@x.test".into()],
                ..SendmailArgs::default()
            }
        );
        let joined = parse(&args(
            "-fapp@example.com -FSite -bm -N never a@x.test b@x.test",
        ))
        .unwrap();
        assert_eq!(joined.sender.as_deref(), Some("app@example.com"));
        assert_eq!(joined.full_name.as_deref(), Some("Site"));
        assert_eq!(joined.recipients, vec!["a@x.test", "b@x.test"]);
        assert!(!joined.ignore_dots && !joined.recipients_from_headers);
        let ours = parse(&args("--config /etc/s.toml --server=127.0.0.1:2525 -t")).unwrap();
        assert_eq!(ours.config, Some(PathBuf::from("/etc/s.toml")));
        assert_eq!(ours.server.as_deref(), Some("127.0.0.1:2525"));
    }

    #[test]
    fn other_modes_and_unknown_options_are_refused_with_a_reason() {
        for refused in ["-bs", "-bd", "-bp", "-q", "-q30m", "-bi", "-bz"] {
            let error = parse(&args(refused)).unwrap_err();
            assert!(
                error.contains(refused.trim_end_matches("30m")),
                "{refused}: {error}"
            );
        }
        assert!(parse(&args("-Z")).unwrap_err().contains("-Z"));
        assert!(
            parse(&args("--frobnicate"))
                .unwrap_err()
                .contains("frobnicate")
        );
        assert!(parse(&args("-f")).unwrap_err().contains("needs a value"));
    }
}
