//! Making foreign text safe to echo: upstream replies go back to clients and into logs.

/// Keeps printable ASCII, turns everything else (CR, LF, controls, non-ASCII) into a space,
/// collapses runs of spaces and cuts to `max` bytes.
pub fn sanitize_reply_text(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max));
    let mut last_space = true;
    for c in input.chars() {
        let c = if (' '..='~').contains(&c) { c } else { ' ' };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if out.len() + 1 > max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_controls_and_cuts() {
        assert_eq!(
            sanitize_reply_text("550 no\r\n such\tuser", 100),
            "550 no such user"
        );
        assert_eq!(sanitize_reply_text("abcdef", 3), "abc");
        assert_eq!(sanitize_reply_text("  lead", 10), "lead");
    }
}
