//! The Standard Webhooks signature (<https://www.standardwebhooks.com>): the
//! secret is `whsec_` and the base64 of its key; each request carries
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature:
//! v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A secret that is not `whsec_` and base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret must be `whsec_` followed by base64 (24 to 64 bytes of key)")]
pub struct BadSecret;

/// The secret text for a 32-byte key (the caller draws the key at random).
pub fn format_secret(key: &[u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// The HMAC key a secret stands for.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let body = secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
    let key = B64.decode(body).map_err(|_| BadSecret)?;
    if (24..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(BadSecret)
    }
}

/// The `webhook-signature` header's value for one request.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Result<String, BadSecret> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Whether a `webhook-signature` header (space-separated `v1,<sig>` entries, as
/// during a secret rotation) holds the signature of this request. Compared in
/// constant time. What a receiver does; here for tests and the documentation.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let Ok(key) = secret_key(secret) else {
        return false;
    };
    header.split(' ').any(|entry| {
        let Some(sig) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = B64.decode(sig) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return false;
        };
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_like_the_reference() {
        assert_eq!(sign(SECRET, ID, TS, BODY).unwrap(), SIGNATURE);
    }

    #[test]
    fn verification_cases() {
        let cases = [
            (BODY, TS, SIGNATURE.to_owned(), true),
            (BODY, TS, format!("v1,bm90IGl0 {SIGNATURE}"), true),
            (r#"{"test": 2432232315}"#, TS, SIGNATURE.to_owned(), false),
            (BODY, TS + 1, SIGNATURE.to_owned(), false),
            (BODY, TS, SIGNATURE.replace("v1,", "v2,"), false),
            (BODY, TS, "v1,not base64!".to_owned(), false),
        ];
        for (body, ts, header, expected) in cases {
            assert_eq!(
                verify(SECRET, ID, ts, body, &header),
                expected,
                "{body} {ts} {header}"
            );
        }
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = format_secret(&[7; 32]);
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap(), [7; 32]);
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_AAAA"] {
            assert_eq!(secret_key(bad), Err(BadSecret), "{bad}");
        }
    }
}
