//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`), in its
//! two schemes: `v1,<b64>` (HMAC-SHA256 with a shared secret) and `v1a,<b64>` (ed25519: the
//! receiver holds only our public key). Plus the body-only HMAC the signature profiles put in a
//! header of their own (`sha256=<hex>`, bare `<hex>`), and verifiers receivers can use.
//!
//! Signed content is `"{id}.{timestamp}.{body}"`. An HMAC key is the base64-decoded secret after
//! `whsec_`, or a raw secret's UTF-8 bytes (TrustPager's form: `createHmac('sha256', secret)`).
//! The body-only forms are HMAC-SHA256 of the raw body alone, keyed the same way.
//!
//! Secrets have a text form shown to the customer once ([`Secret::expose`]) and a stored form
//! ([`Secret::stored`]): the same text, except a raw secret, stored as `whraw_<text>`; an ed25519
//! signing key is `whsk_<b64 of its 32-byte seed>` and never shown; its public key `whpk_<b64>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "whsec_";
const SIGNING_KEY_PREFIX: &str = "whsk_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";
const RAW_PREFIX: &str = "whraw_";
/// Prefixes a raw secret may not start with (they name the other forms).
pub const RESERVED_PREFIXES: [&str; 4] = [PREFIX, SIGNING_KEY_PREFIX, PUBLIC_KEY_PREFIX, RAW_PREFIX];

/// Receivers reject timestamps further than this from their clock (Standard Webhooks).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The Standard Webhooks signature scheme of a secret.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// HMAC-SHA256 with a shared secret.
    #[default]
    V1,
    /// ed25519: we sign, the receiver verifies with the public key.
    V1a,
}

#[derive(Clone, PartialEq, Eq)]
enum Key {
    Hmac(Vec<u8>),
    Ed25519(SigningKey),
}

/// A signing secret. `Debug` never prints it; only [`Secret::expose`] does, for the one response
/// that returns it at creation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    /// A raw secret (its text is the key), stored with [`RAW_PREFIX`].
    raw: bool,
    key: Key,
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
        Self { text: format!("{PREFIX}{}", B64.encode(&key)), raw: false, key: Key::Hmac(key) }
    }

    /// A fresh ed25519 signing key (`v1a`).
    pub fn generate_ed25519() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self { text: format!("{SIGNING_KEY_PREFIX}{}", B64.encode(seed)), raw: false, key: Key::Ed25519(SigningKey::from_bytes(&seed)) }
    }

    /// A raw secret: its UTF-8 bytes are the HMAC key (validated by the API, not here).
    pub fn raw(text: &str) -> Self {
        Self { text: text.to_owned(), raw: true, key: Key::Hmac(text.as_bytes().to_vec()) }
    }

    /// Reads the stored form (also what Standard Webhooks libraries take: `whsec_…` or bare base64).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        if let Some(raw) = text.strip_prefix(RAW_PREFIX) {
            return Ok(Self::raw(raw));
        }
        if let Some(b64) = text.strip_prefix(SIGNING_KEY_PREFIX) {
            let seed: [u8; 32] = B64.decode(b64).ok().and_then(|k| k.try_into().ok()).ok_or(SecretError::Malformed)?;
            return Ok(Self { text: text.to_owned(), raw: false, key: Key::Ed25519(SigningKey::from_bytes(&seed)) });
        }
        let b64 = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = B64.decode(b64).map_err(|_| SecretError::Malformed)?;
        if key.is_empty() {
            return Err(SecretError::Malformed);
        }
        Ok(Self { text: text.to_owned(), raw: false, key: Key::Hmac(key) })
    }

    /// The text the customer gave or got (never an ed25519 signing key's: see [`Secret::shown`]).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What a create or rotate response returns: the secret of a `v1` subscription; nothing for
    /// `v1a` (its signing key stays here, the public key is readable any time).
    pub fn shown(&self) -> Option<&str> {
        matches!(self.key, Key::Hmac(_)).then_some(self.text.as_str())
    }

    /// The form kept in the subscription's record, read back by [`Secret::parse`].
    pub fn stored(&self) -> String {
        match self.raw {
            true => format!("{RAW_PREFIX}{}", self.text),
            false => self.text.clone(),
        }
    }

    pub fn scheme(&self) -> Scheme {
        match self.key {
            Key::Hmac(_) => Scheme::V1,
            Key::Ed25519(_) => Scheme::V1a,
        }
    }

    /// `whpk_` + base64 of the ed25519 public key; `None` for an HMAC secret.
    pub fn public_key(&self) -> Option<String> {
        match &self.key {
            Key::Ed25519(k) => Some(format!("{PUBLIC_KEY_PREFIX}{}", B64.encode(k.verifying_key().as_bytes()))),
            Key::Hmac(_) => None,
        }
    }

    fn mac(key: &[u8]) -> HmacSha256 {
        HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
    }

    /// `v1,<base64>` (HMAC) or `v1a,<base64>` (ed25519) over `"{id}.{timestamp}.{body}"`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match &self.key {
            Key::Hmac(key) => {
                let mut mac = Self::mac(key);
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
            }
            Key::Ed25519(k) => {
                let content = [msg_id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", body].concat();
                format!("v1a,{}", B64.encode(k.sign(&content).to_bytes()))
            }
        }
    }

    /// Lower-case hex of HMAC-SHA256 over the raw body alone; `None` for an ed25519 key.
    pub fn body_hex(&self, body: &[u8]) -> Option<String> {
        let Key::Hmac(key) = &self.key else { return None };
        let mut mac = Self::mac(key);
        mac.update(body);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// `sha256=<hex>` over the raw body (the legacy `X-Webhook-Signature` header); empty for an
    /// ed25519 key, which has no shared secret.
    pub fn sign_body_hex(&self, body: &[u8]) -> String {
        self.body_hex(body).map(|h| format!("sha256={h}")).unwrap_or_default()
    }
}

/// The value of `webhook-signature` for one or more active secrets (several during rotation),
/// space-separated.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// An ed25519 public key as receivers hold it (`whpk_…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(text);
        let bytes: [u8; 32] = B64.decode(b64).ok().and_then(|k| k.try_into().ok()).ok_or(SecretError::Malformed)?;
        VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| SecretError::Malformed)
    }
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

fn timestamp_within(timestamp: &str, now: i64, tolerance_secs: i64) -> Result<i64, VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    // abs_diff: `now - ts` overflows for timestamps near i64::MIN or MAX.
    if now.abs_diff(ts) > tolerance_secs.unsigned_abs() {
        return Err(VerifyError::Expired);
    }
    Ok(ts)
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
    let ts = timestamp_within(timestamp, now, tolerance_secs)?;
    let expected = secret.sign(msg_id, ts, body);
    let expected = expected.as_bytes();
    let matched = signatures
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .fold(false, |acc, s| acc | bool::from(subtle::ConstantTimeEq::ct_eq(s.as_bytes(), expected)));
    matched.then_some(()).ok_or(VerifyError::NoMatch)
}

/// [`verify`] for `v1a`: any of the header's `v1a,` entries verifies with `key`.
pub fn verify_v1a(key: &PublicKey, msg_id: &str, timestamp: &str, signatures: &str, body: &[u8], now: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    let ts = timestamp_within(timestamp, now, tolerance_secs)?;
    let content = [msg_id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
    let matched = signatures.split(' ').filter_map(|s| s.strip_prefix("v1a,")).any(|b64| {
        let sig = B64.decode(b64).ok().and_then(|b| <[u8; 64]>::try_from(b).ok());
        sig.is_some_and(|sig| key.0.verify_strict(&content, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
    });
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
        assert!(matches!(Secret::parse(s.expose()).unwrap().key, Key::Hmac(k) if k.len() == 32));
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn legacy_body_signature_is_hex_hmac_of_the_body() {
        let s = Secret::parse(V2.0).unwrap();
        let sig = s.sign_body_hex(V2.3.as_bytes());
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert_ne!(sig, s.sign_body_hex(b"other"));
        assert_eq!(s.body_hex(V2.3.as_bytes()).unwrap(), sig["sha256=".len()..]);
    }

    #[test]
    fn raw_secrets_key_hmac_with_their_bytes_and_round_trip_through_storage() {
        let raw = Secret::raw("my-trustpager-secret-1");
        let same = Secret::parse(&format!("whsec_{}", B64.encode("my-trustpager-secret-1"))).unwrap();
        assert_eq!(raw.sign("m", 1, b"{}"), same.sign("m", 1, b"{}"), "a Standard Webhooks library verifies it as whsec_ + base64 of its bytes");
        assert_eq!(raw.expose(), "my-trustpager-secret-1");
        assert_eq!(raw.stored(), "whraw_my-trustpager-secret-1");
        assert_eq!(Secret::parse(&raw.stored()).unwrap(), raw);
        assert_eq!(raw.body_hex(b"{}"), same.body_hex(b"{}"));
    }

    #[test]
    fn ed25519_keys_sign_v1a_that_verifies_with_the_public_key_only() {
        let k = Secret::generate_ed25519();
        assert_eq!(k.scheme(), Scheme::V1a);
        assert_eq!(k.shown(), None, "the signing key is never shown");
        assert_eq!(k.body_hex(b"{}"), None);
        assert!(k.stored().starts_with("whsk_"));
        assert_eq!(Secret::parse(&k.stored()).unwrap(), k);
        let pk = PublicKey::parse(&k.public_key().unwrap()).unwrap();
        let sig = k.sign("msg_1", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("v1a,"));
        let both = format!("{} {sig}", Secret::generate().sign("msg_1", 1_700_000_000, b"{\"a\":1}"));
        assert_eq!(verify_v1a(&pk, "msg_1", "1700000000", &both, b"{\"a\":1}", 1_700_000_000, 300), Ok(()));
        assert_eq!(verify_v1a(&pk, "msg_1", "1700000000", &sig, b"{\"a\":2}", 1_700_000_000, 300), Err(VerifyError::NoMatch));
        let other = PublicKey::parse(&Secret::generate_ed25519().public_key().unwrap()).unwrap();
        assert_eq!(verify_v1a(&other, "msg_1", "1700000000", &sig, b"{\"a\":1}", 1_700_000_000, 300), Err(VerifyError::NoMatch));
        assert!(!format!("{k:?}").contains("whsk_"));
    }
}
