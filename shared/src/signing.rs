//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`)
//! and the legacy `X-Webhook-Signature: sha256=<hex>` form, plus a verifier receivers can use.
//!
//! Signed content is `"{id}.{timestamp}.{body}"`, HMAC-SHA256 keyed with the base64-decoded
//! secret (without its `whsec_` prefix). The legacy form is HMAC-SHA256 of the raw body alone,
//! keyed with the same decoded secret bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "whsec_";

/// Receivers reject timestamps further than this from their clock (Standard Webhooks).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A signing secret. `Debug` never prints it; only [`Secret::expose`] does, for the one response
/// that returns it at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a secret starts with `whsec_` followed by standard base64")]
    Malformed,
}

impl Secret {
    /// `whsec_` + base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { text: format!("{PREFIX}{}", B64.encode(&key)), key }
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = B64.decode(b64).map_err(|_| SecretError::Malformed)?;
        if key.is_empty() {
            return Err(SecretError::Malformed);
        }
        Ok(Self { text: text.to_owned(), key })
    }

    pub fn expose(&self) -> &str {
        &self.text
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// `v1,<base64>` over `"{id}.{timestamp}.{body}"`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// `sha256=<hex>` over the raw body (the legacy `X-Webhook-Signature` header).
    pub fn sign_body_hex(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// The value of `webhook-signature` for one or more active secrets (several during rotation),
/// space-separated.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("webhook-timestamp is not an integer")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    Expired,
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a `webhook-signature` header (any of its space-separated `v1,` entries may match) in
/// constant time, and that the timestamp is within `tolerance_secs` of `now`.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    // abs_diff: `now - ts` overflows for timestamps near i64::MIN or MAX.
    if now.abs_diff(ts) > tolerance_secs.unsigned_abs() {
        return Err(VerifyError::Expired);
    }
    let expected = secret.sign(msg_id, ts, body);
    let expected = expected.as_bytes();
    let matched = signatures
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .fold(false, |acc, s| acc | bool::from(subtle::ConstantTimeEq::ct_eq(s.as_bytes(), expected)));
    matched.then_some(()).ok_or(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from the Standard Webhooks specification.
    const V1: (&str, &str, i64, &str, &str) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    const V2: (&str, &str, i64, &str, &str) = (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        r#"{"email":"test@example.com","username":"test_user"}"#,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );

    #[test]
    fn standard_webhooks_vectors_sign_as_specified() {
        for (secret, id, ts, body, want) in [V1, V2] {
            let s = Secret::parse(secret).unwrap();
            assert_eq!(s.sign(id, ts, body.as_bytes()), want);
        }
    }

    #[test]
    fn verify_accepts_vectors_and_any_of_several_signatures() {
        let (secret, id, ts, body, sig) = V1;
        let s = Secret::parse(secret).unwrap();
        let ts_s = ts.to_string();
        assert_eq!(verify(&s, id, &ts_s, sig, body.as_bytes(), ts + 10, 300), Ok(()));
        let two = format!("v1,AAAA {sig}");
        assert_eq!(verify(&s, id, &ts_s, &two, body.as_bytes(), ts, 300), Ok(()));
    }

    #[test]
    fn extreme_timestamps_are_expired_not_a_panic() {
        let (secret, id, _, body, sig) = V1;
        let s = Secret::parse(secret).unwrap();
        for ts in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            for now in [i64::MIN, 0, 1_795_000_000, i64::MAX] {
                let r = verify(&s, id, &ts.to_string(), sig, body.as_bytes(), now, 300);
                assert!(matches!(r, Err(VerifyError::Expired) | Err(VerifyError::NoMatch)), "ts {ts}, now {now}: {r:?}");
            }
        }
        assert_eq!(verify(&s, id, "-9223372036854775808", sig, body.as_bytes(), 1_795_000_000, 300), Err(VerifyError::Expired));
        assert_eq!(verify(&s, id, "9223372036854775808", sig, body.as_bytes(), 0, 300), Err(VerifyError::BadTimestamp), "past i64");
    }

    #[test]
    fn verify_rejects_tampering_wrong_secret_and_stale_timestamps() {
        let (secret, id, ts, body, sig) = V1;
        let s = Secret::parse(secret).unwrap();
        let ts_s = ts.to_string();
        assert_eq!(verify(&s, id, &ts_s, sig, b"{\"test\": 1}", ts, 300), Err(VerifyError::NoMatch));
        let other = Secret::generate();
        assert_eq!(verify(&other, id, &ts_s, sig, body.as_bytes(), ts, 300), Err(VerifyError::NoMatch));
        assert_eq!(verify(&s, id, &ts_s, sig, body.as_bytes(), ts + 301, 300), Err(VerifyError::Expired));
        assert_eq!(verify(&s, id, "x", sig, body.as_bytes(), ts, 300), Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn generated_secrets_have_32_bytes_and_never_debug_print() {
        let s = Secret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse(s.expose()).unwrap().key.len(), 32);
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn legacy_body_signature_is_hex_hmac_of_the_body() {
        let s = Secret::parse(V2.0).unwrap();
        let sig = s.sign_body_hex(V2.3.as_bytes());
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert_ne!(sig, s.sign_body_hex(b"other"));
    }
}
