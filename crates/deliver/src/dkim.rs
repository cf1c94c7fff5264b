//! DKIM signing (mail-auth): keys generated or uploaded per account domain, the DNS
//! record to publish, and signing a message before it goes to an SMTP provider.

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use sluice_core::split_body::{RestReader, SplitBody};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Header fields signed when the message has them (From always).
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl DkimAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "rsa-sha256" => Some(DkimAlgorithm::RsaSha256),
            "ed25519-sha256" => Some(DkimAlgorithm::Ed25519Sha256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DkimError(String);

/// A new private key (PKCS#8 DER): RSA 2048 or Ed25519.
pub fn generate(algorithm: DkimAlgorithm) -> Result<Vec<u8>, DkimError> {
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| DkimError("RSA key generation failed".into()))?;
            let der = pair
                .as_der()
                .map_err(|_| DkimError("RSA key encoding failed".into()))?;
            Ok(der.as_ref().to_vec())
        }
        DkimAlgorithm::Ed25519Sha256 => Ed25519Key::generate_pkcs8()
            .map_err(|e| DkimError(format!("Ed25519 key generation failed: {e}"))),
    }
}

/// A private key from an upload: PEM (PKCS#8, or PKCS#1 for RSA) to PKCS#8 DER.
pub fn private_key_from_pem(algorithm: DkimAlgorithm, pem: &str) -> Result<Vec<u8>, DkimError> {
    let bad = |what: &str| DkimError(format!("private_key is not {what}"));
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = B64.decode(body).map_err(|_| bad("PEM"))?;
    match algorithm {
        DkimAlgorithm::RsaSha256 => {
            if pem.contains("BEGIN RSA PRIVATE KEY") {
                let pair =
                    aws_lc_rs::rsa::KeyPair::from_der(&der).map_err(|_| bad("an RSA key"))?;
                return pair
                    .as_der()
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| bad("an RSA key"));
            }
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(|_| bad("an RSA key"))?;
            if pair.public_modulus_len() < 128 {
                return Err(DkimError("RSA keys must have at least 1024 bits".into()));
            }
            Ok(der)
        }
        DkimAlgorithm::Ed25519Sha256 => {
            Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).map_err(|_| bad("an Ed25519 key"))?;
            Ok(der)
        }
    }
}

/// The TXT record to publish at `<selector>._domainkey.<domain>`.
pub fn dns_record(algorithm: DkimAlgorithm, pkcs8: &[u8]) -> Result<String, DkimError> {
    let unreadable = || DkimError("the stored key is unreadable".into());
    Ok(match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let key = rsa_key(pkcs8).map_err(|_| unreadable())?;
            format!(
                "v=DKIM1; k=rsa; p={}",
                B64.encode(rsa_spki(&key.public_key()))
            )
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let key =
                Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8).map_err(|_| unreadable())?;
            format!("v=DKIM1; k=ed25519; p={}", B64.encode(key.public_key()))
        }
    })
}

fn rsa_key(pkcs8: &[u8]) -> mail_auth::Result<RsaKey<Sha256>> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    RsaKey::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
}

/// SubjectPublicKeyInfo DER around a PKCS#1 RSAPublicKey, as DKIM records carry it.
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    fn len(n: usize) -> Vec<u8> {
        match n {
            0..=127 => vec![n as u8],
            128..=255 => vec![0x81, n as u8],
            _ => vec![0x82, (n >> 8) as u8, n as u8],
        }
    }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    bits.extend(len(rsa_public_key.len() + 1));
    bits.push(0);
    bits.extend_from_slice(rsa_public_key);
    let mut spki = vec![0x30];
    spki.extend(len(ALGORITHM.len() + bits.len()));
    spki.extend_from_slice(&ALGORITHM);
    spki.extend(bits);
    spki
}

/// A key ready to sign for one domain.
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub pkcs8: Vec<u8>,
}

impl DkimKey {
    /// The message with a DKIM-Signature header first. Headers signed: those of
    /// [`SIGNED_HEADERS`] the message has.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimError> {
        let present = self.present_headers(message);
        let failed = |e: mail_auth::Error| DkimError(format!("signing failed: {e}"));
        let header = match self.algorithm {
            DkimAlgorithm::RsaSha256 => {
                let key = rsa_key(&self.pkcs8).map_err(failed)?;
                self.signature(key, present, message).map_err(failed)?
            }
            DkimAlgorithm::Ed25519Sha256 => {
                let key =
                    Ed25519Key::from_pkcs8_maybe_unchecked_der(&self.pkcs8).map_err(failed)?;
                self.signature(key, present, message).map_err(failed)?
            }
        };
        let mut signed = header.into_bytes();
        signed.extend_from_slice(message);
        Ok(signed)
    }
}

impl DkimKey {
    /// A split message's head with a DKIM-Signature header first: the body hash is taken
    /// over `head`'s body part and then `split`'s rest, read a chunk at a time, so the
    /// message is never whole in memory.
    pub async fn sign_split(&self, head: &[u8], split: &SplitBody) -> Result<Vec<u8>, DkimError> {
        let present = self.present_headers(head);
        let failed = |e: mail_auth::Error| DkimError(format!("signing failed: {e}"));
        let mut rest = split
            .rest()
            .await
            .map_err(|e| DkimError(format!("message body unreadable: {e}")))?;
        let header = match self.algorithm {
            DkimAlgorithm::RsaSha256 => {
                let key = rsa_key(&self.pkcs8).map_err(failed)?;
                self.streamed_signature(key, present, head, &mut rest)
                    .await?
            }
            DkimAlgorithm::Ed25519Sha256 => {
                let key =
                    Ed25519Key::from_pkcs8_maybe_unchecked_der(&self.pkcs8).map_err(failed)?;
                self.streamed_signature(key, present, head, &mut rest)
                    .await?
            }
        };
        let mut signed = header.into_bytes();
        signed.extend_from_slice(head);
        Ok(signed)
    }

    /// [`SIGNED_HEADERS`] that the message has.
    fn present_headers(&self, message: &[u8]) -> Vec<&'static str> {
        let fields = sluice_core::router::header_fields(message);
        SIGNED_HEADERS
            .into_iter()
            .filter(|h| fields.iter().any(|(name, _)| name.eq_ignore_ascii_case(h)))
            .collect()
    }

    /// The DKIM-Signature header line for `head` then what `rest` reads.
    async fn streamed_signature<K: SigningKey>(
        &self,
        key: K,
        headers: Vec<&str>,
        head: &[u8],
        rest: &mut RestReader,
    ) -> Result<String, DkimError> {
        let signer = DkimSigner::from_key(key)
            .domain(&self.domain)
            .selector(&self.selector)
            .headers(headers);
        let mut stream = signer.sign_streaming();
        stream.write(head);
        while let Some(chunk) = rest
            .next_chunk()
            .await
            .map_err(|e| DkimError(format!("message body unreadable: {e}")))?
        {
            stream.write(&chunk);
        }
        let signature = stream
            .finish()
            .map_err(|e| DkimError(format!("signing failed: {e}")))?;
        Ok(signature.to_header())
    }

    /// The DKIM-Signature header line for `message`, whatever the key type.
    fn signature<K: SigningKey>(
        &self,
        key: K,
        headers: Vec<&str>,
        message: &[u8],
    ) -> mail_auth::Result<String> {
        Ok(DkimSigner::from_key(key)
            .domain(&self.domain)
            .selector(&self.selector)
            .headers(headers)
            .sign(message)?
            .to_header())
    }
}

/// The domain of the message's From address, lower case.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = crate::http::mime::parse_header_block(message)?;
    let address = parsed.from()?.first()?.address()?.to_string();
    sluice_core::domain_of(&address).map(|d| d.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_publish() {
        let message = b"From: a@example.com\r\nTo: b@x.test\r\nSubject: hi\r\n\r\nbody\r\n";
        for algorithm in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
            let pkcs8 = generate(algorithm).unwrap();
            let record = dns_record(algorithm, &pkcs8).unwrap();
            assert!(record.starts_with("v=DKIM1; k="), "{record}");
            let key = DkimKey {
                domain: "example.com".into(),
                selector: "s1".into(),
                algorithm,
                pkcs8,
            };
            let signed = key.sign(message).unwrap();
            let text = String::from_utf8(signed).unwrap();
            assert!(text.starts_with("DKIM-Signature: "), "{text}");
            assert!(text.contains("d=example.com"));
            assert!(text.contains("s=s1"));
            assert!(text.ends_with("\r\n\r\nbody\r\n"));
        }
        assert_eq!(from_domain(message).as_deref(), Some("example.com"));
    }
}
