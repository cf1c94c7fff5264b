//! Checking that feedback really comes from the service: SendGrid's ECDSA signature,
//! Mailgun's HMAC, SNS's RSA signature against a certificate from an allowed URL.
//! Pure functions over bytes, but for fetching SNS certificates.

use sluice_deliver::egress::Egress;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why feedback was refused. Every variant answers 401 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the signature is missing")]
    Missing,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the timestamp is outside the allowed window")]
    Stale,
    #[error("the certificate URL is not allowed")]
    CertificateUrl,
    #[error("the certificate could not be fetched or read")]
    Certificate,
    #[error("this provider has no key to verify its feedback")]
    NoKey,
}

/// The key bytes of a SubjectPublicKeyInfo (DER): the EC point, or PKCS#1 RSAPublicKey.
fn spki_key(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).ok()?;
    Some(spki.subject_public_key.data.to_vec())
}

/// SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `timestamp + body`; the key is the
/// base64 DER public key SendGrid shows, the signature base64 DER.
pub fn sendgrid(
    verification_key: &str,
    signature_b64: &str,
    timestamp: &str,
    body: &[u8],
    now_secs: i64,
    max_age_secs: i64,
) -> Result<(), Refused> {
    let key_der = B64
        .decode(verification_key.trim())
        .map_err(|_| Refused::NoKey)?;
    let point = spki_key(&key_der).ok_or(Refused::NoKey)?;
    let sig = B64
        .decode(signature_b64.trim())
        .map_err(|_| Refused::BadSignature)?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &sig)
        .map_err(|_| Refused::BadSignature)?;
    fresh(timestamp, now_secs, max_age_secs)
}

/// Mailgun: hex HMAC-SHA256(signing key, timestamp + token), from the body's `signature`.
pub fn mailgun(
    signing_key: &str,
    payload: &Value,
    now_secs: i64,
    max_age_secs: i64,
) -> Result<String, Refused> {
    let sig = &payload["signature"];
    let (Some(timestamp), Some(token), Some(hex_sig)) = (
        sig["timestamp"].as_str(),
        sig["token"].as_str(),
        sig["signature"].as_str(),
    ) else {
        return Err(Refused::Missing);
    };
    let expected = hex::decode(hex_sig).map_err(|_| Refused::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()).map_err(|_| Refused::NoKey)?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected)
        .map_err(|_| Refused::BadSignature)?;
    fresh(timestamp, now_secs, max_age_secs)?;
    Ok(token.to_string())
}

fn fresh(timestamp: &str, now_secs: i64, max_age_secs: i64) -> Result<(), Refused> {
    let at: i64 = timestamp.trim().parse().map_err(|_| Refused::Stale)?;
    if (now_secs - at).abs() > max_age_secs {
        return Err(Refused::Stale);
    }
    Ok(())
}

/// The text SNS signs for a message of this type: `name\nvalue\n` per field, in order.
pub fn sns_string_to_sign(message: &Value) -> Option<String> {
    let fields: &[&str] = match message["Type"].as_str()? {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return None,
    };
    let mut text = String::new();
    for field in fields {
        match message.get(*field).and_then(Value::as_str) {
            Some(value) => {
                text.push_str(field);
                text.push('\n');
                text.push_str(value);
                text.push('\n');
            }
            // Only a notification's Subject may be absent.
            None if *field == "Subject" => {}
            None => return None,
        }
    }
    Some(text)
}

/// Whether a URL SNS gave (certificate, SubscribeURL) may be fetched: by default
/// `https://sns.<region>.amazonaws.com/...`; with prefixes configured, one of them.
pub fn sns_url_allowed(url: &str, prefixes: &[String]) -> bool {
    if !prefixes.is_empty() {
        return prefixes.iter().any(|p| url.starts_with(p.as_str()));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    regex::Regex::new(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
        .map(|re| re.is_match(host))
        .unwrap_or(false)
}

/// Fetches and caches SNS signing certificates' public keys, and fetches SubscribeURLs.
/// Both URLs come from a request anyone can send, so besides the prefix check every fetch
/// goes through the egress policy, and redirects are not followed.
pub struct SnsCertificates {
    http: reqwest::Client,
    egress: Egress,
    allowed_prefixes: Vec<String>,
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

impl SnsCertificates {
    pub fn new(allowed_prefixes: Vec<String>, egress: Egress) -> Self {
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        SnsCertificates {
            http: egress
                .http_client(builder)
                .build()
                .expect("static client settings"),
            egress,
            allowed_prefixes,
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn url_allowed(&self, url: &str) -> bool {
        sns_url_allowed(url, &self.allowed_prefixes)
    }

    /// GETs an allowed URL through the egress policy; the body of a 2xx answer.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        if !self.url_allowed(url) {
            return Err("the URL is not an allowed SNS URL".into());
        }
        self.egress.check_url(url).map_err(|e| e.to_string())?;
        let fetched = async {
            self.http
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
        }
        .await;
        fetched.map(|b| b.to_vec()).map_err(|error| {
            match sluice_deliver::egress::refusal_in(&error) {
                Some(refused) => refused.to_string(),
                None => "the fetch failed".into(),
            }
        })
    }

    async fn public_key(&self, url: &str) -> Result<Vec<u8>, Refused> {
        if !self.url_allowed(url) {
            return Err(Refused::CertificateUrl);
        }
        if let Some(key) = self.keys.lock().expect("cert cache").get(url) {
            return Ok(key.clone());
        }
        let pem = self.fetch(url).await.map_err(|why| {
            tracing::warn!(%why, "SNS signing certificate not fetched");
            Refused::Certificate
        })?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| Refused::Certificate)?;
        let cert = pem.parse_x509().map_err(|_| Refused::Certificate)?;
        let key = cert.public_key().subject_public_key.data.to_vec();
        self.keys
            .lock()
            .expect("cert cache")
            .insert(url.to_string(), key.clone());
        Ok(key)
    }

    /// Verifies an SNS message (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
    pub async fn verify(&self, message: &Value) -> Result<(), Refused> {
        let (Some(sig), Some(cert_url)) = (
            message["Signature"].as_str(),
            message["SigningCertURL"].as_str(),
        ) else {
            return Err(Refused::Missing);
        };
        let algorithm: &'static dyn signature::VerificationAlgorithm =
            match message["SignatureVersion"].as_str() {
                Some("1") => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                Some("2") => &signature::RSA_PKCS1_2048_8192_SHA256,
                _ => return Err(Refused::BadSignature),
            };
        let text = sns_string_to_sign(message).ok_or(Refused::Missing)?;
        let sig = B64.decode(sig).map_err(|_| Refused::BadSignature)?;
        let key = self.public_key(cert_url).await?;
        UnparsedPublicKey::new(algorithm, key)
            .verify(text.as_bytes(), &sig)
            .map_err(|_| Refused::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sns_urls_must_be_amazons_unless_configured() {
        let table = [
            (
                "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
                true,
            ),
            ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", true),
            ("http://sns.eu-west-1.amazonaws.com/x.pem", false),
            ("https://sns.eu-west-1.amazonaws.com.evil.test/x.pem", false),
            ("https://evil.test/sns.eu-west-1.amazonaws.com/x.pem", false),
        ];
        for (url, allowed) in table {
            assert_eq!(sns_url_allowed(url, &[]), allowed, "{url}");
        }
        let local = vec!["http://127.0.0.1:9/".to_string()];
        assert!(sns_url_allowed("http://127.0.0.1:9/cert.pem", &local));
        assert!(!sns_url_allowed(
            "https://sns.eu-west-1.amazonaws.com/x.pem",
            &local
        ));
    }

    #[test]
    fn sns_string_to_sign_follows_the_type() {
        let notification = json!({ "Type": "Notification", "MessageId": "m", "TopicArn": "t",
            "Message": "hello", "Timestamp": "2026-11-22T00:00:00.000Z" });
        assert_eq!(
            sns_string_to_sign(&notification).unwrap(),
            "Message\nhello\nMessageId\nm\nTimestamp\n2026-11-22T00:00:00.000Z\nTopicArn\nt\nType\nNotification\n"
        );
        let confirmation = json!({ "Type": "SubscriptionConfirmation", "MessageId": "m",
            "TopicArn": "t", "Message": "c", "Timestamp": "ts", "Token": "tok", "SubscribeURL": "u" });
        assert!(
            sns_string_to_sign(&confirmation)
                .unwrap()
                .contains("SubscribeURL\nu\n")
        );
        assert!(sns_string_to_sign(&json!({ "Type": "Notification" })).is_none());
    }

    #[test]
    fn mailgun_hmac_and_window() {
        let key = "key-1";
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"1000tok");
        let good = hex::encode(mac.finalize().into_bytes());
        let payload = |sig: &str| json!({ "signature": { "timestamp": "1000", "token": "tok", "signature": sig } });
        assert_eq!(mailgun(key, &payload(&good), 1010, 600), Ok("tok".into()));
        assert_eq!(
            mailgun("other", &payload(&good), 1010, 600),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            mailgun(key, &payload(&good), 5000, 600),
            Err(Refused::Stale)
        );
        assert_eq!(mailgun(key, &json!({}), 1000, 600), Err(Refused::Missing));
    }
}
