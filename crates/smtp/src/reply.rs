//! SMTP replies: a code and one or more lines of text.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an RFC 3463 enhanced status code.
    pub fn new(code: u16, status: &str, text: impl AsRef<str>) -> Self {
        Reply {
            code,
            lines: vec![format!("{status} {}", text.as_ref())],
        }
    }

    /// A reply without an enhanced status code (greeting, EHLO, SASL challenges).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Reply { code, lines }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The wire form: `250-a\r\n250 b\r\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{sep}{line}\r\n", self.code).as_bytes());
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(
            Reply::new(250, "2.0.0", "OK").to_bytes(),
            b"250 2.0.0 OK\r\n"
        );
        assert_eq!(
            Reply::multiline(250, vec!["a".into(), "b".into()]).to_bytes(),
            b"250-a\r\n250 b\r\n"
        );
        assert_eq!(Reply::plain(334, "").to_bytes(), b"334 \r\n");
    }
}
