//! SASL PLAIN (RFC 4616) and LOGIN decoding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Credentials a client presented. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"********")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not base64.
    Encoding,
    /// Base64, but not the shape the mechanism needs.
    Malformed,
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, SaslError> {
    let text = text.trim();
    if text == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(text).map_err(|_| SaslError::Encoding)
}

pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `[authzid] NUL authcid NUL passwd`; an authzid other than the authcid is refused.
pub fn decode_plain(text: &str) -> Result<Credentials, SaslError> {
    let raw = decode_base64(text)?;
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() || (!authzid.is_empty() && authzid != authcid) {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        username: utf8(authcid)?,
        password: utf8(password)?,
    })
}

/// One LOGIN step: a base64 username or password.
pub fn decode_login_item(text: &str) -> Result<String, SaslError> {
    utf8(&decode_base64(text)?)
}

fn utf8(bytes: &[u8]) -> Result<String, SaslError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_table() {
        let enc = |s: &[u8]| encode_base64(s);
        let ok = decode_plain(&enc(b"\0dev@example.com\0dev")).unwrap();
        assert_eq!(
            (ok.username.as_str(), ok.password.as_str()),
            ("dev@example.com", "dev")
        );
        assert!(decode_plain(&enc(b"a@b\0a@b\0pw")).is_ok());
        assert_eq!(
            decode_plain(&enc(b"other\0a@b\0pw")),
            Err(SaslError::Malformed)
        );
        assert_eq!(decode_plain(&enc(b"a@b\0pw")), Err(SaslError::Malformed));
        assert_eq!(decode_plain(&enc(b"\0\0pw")), Err(SaslError::Malformed));
        assert_eq!(decode_plain("!!!"), Err(SaslError::Encoding));
        assert!(!format!("{ok:?}").contains("dev\""));
    }
}
