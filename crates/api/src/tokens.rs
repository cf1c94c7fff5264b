//! Access tokens: HS256 JWTs with a short life, signed with a key kept outside the database.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::principal::Claims;

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Seconds an access token lives.
    pub access_ttl_secs: u64,
}

impl Tokens {
    pub fn new(secret: &[u8], access_ttl_secs: u64) -> Self {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl_secs,
        }
    }

    pub fn issue(&self, user_id: i64, now_secs: u64) -> String {
        let claims = Claims {
            sub: user_id,
            iat: now_secs,
            exp: now_secs + self.access_ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The claims of a valid, unexpired token signed by us.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}
