//! Signature schemes as pure functions over the raw body, the headers and a given `now`:
//! Standard Webhooks, GitHub and generic HMAC-SHA256 (architecture §4.4, security.md K, L).
//!
//! Every comparison is of decoded MAC bytes through `Mac::verify_slice` (constant time). The
//! scheme is the source's, never the sender's: a request signed another way simply fails.

use crate::secret::SigningKey;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp may be from now, either way (security.md K6).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The longest delivery id kept as a dedup key (security.md K7).
pub const MAX_ID_LEN: usize = 255;

/// The generic scheme's settings: where the signature is and how it is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSettings {
    /// The header carrying the signature (e.g. `X-Signature`).
    pub signature_header: String,
    /// `hex` (the default) or `base64`.
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// A prefix before the encoded MAC (e.g. `sha256=`), required when set.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A header with the Unix time in seconds; when set the signed content is
    /// `{timestamp}.{body}` and the ±300 s window applies.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// A header with the sender's delivery id (the dedup key); else the body's SHA-256.
    #[serde(default)]
    pub id_header: Option<String>,
}

/// How a generic signature is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// A source's scheme with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    Github,
    Generic(GenericSettings),
}

/// Why a delivery was refused. Logged (never the values), never sent: the sender gets an
/// empty 401 whatever the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("header `{0}` is missing")]
    MissingHeader(String),
    #[error("header `{0}` is malformed")]
    MalformedHeader(String),
    #[error("no signature matches a valid secret")]
    BadSignature,
    #[error("the signed timestamp is more than 300 s old")]
    TimestampTooOld,
    #[error("the signed timestamp is more than 300 s in the future")]
    TimestampTooNew,
    #[error("the source has no valid secret")]
    NoValidSecret,
}

/// A delivery whose signature and timestamp passed: only a verifier makes one (it cannot be
/// built outside this crate).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Unique per source: the sender's delivery id, or `sha256:<hex of the body>`.
    pub dedup_key: String,
    /// The headers the processor needs (names lowercase), never a signature.
    pub headers: Vec<(String, String)>,
}

/// Verifies `body` under any of `keys` (rotation overlap) at `now` (Unix seconds).
pub fn verify(
    scheme: &Scheme,
    keys: &[SigningKey],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, Rejection> {
    if keys.is_empty() {
        return Err(Rejection::NoValidSecret);
    }
    match scheme {
        Scheme::StandardWebhooks => standard(keys, headers, body, now),
        Scheme::Github => github(keys, headers, body),
        Scheme::Generic(settings) => generic(settings, keys, headers, body, now),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Rejection> {
    let value = headers.get(name).ok_or_else(|| Rejection::MissingHeader(name.to_owned()))?;
    value.to_str().map_err(|_| Rejection::MalformedHeader(name.to_owned()))
}

fn id_header(headers: &HeaderMap, name: &str) -> Result<String, Rejection> {
    let id = header(headers, name)?;
    let printable = id.bytes().all(|b| b.is_ascii_graphic());
    if id.is_empty() || id.len() > MAX_ID_LEN || !printable {
        return Err(Rejection::MalformedHeader(name.to_owned()));
    }
    Ok(id.to_owned())
}

fn timestamp(headers: &HeaderMap, name: &str) -> Result<i64, Rejection> {
    let text = header(headers, name)?;
    // Digits only: "+5", " 5" and "5.0" are not the integer the sender signed.
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::MalformedHeader(name.to_owned()));
    }
    text.parse().map_err(|_| Rejection::MalformedHeader(name.to_owned()))
}

/// Both directions, inclusive at 300 s: ±300 passes, ±301 fails.
fn within_window(signed_at: i64, now: i64) -> Result<(), Rejection> {
    if now - signed_at > TOLERANCE_SECONDS {
        Err(Rejection::TimestampTooOld)
    } else if signed_at - now > TOLERANCE_SECONDS {
        Err(Rejection::TimestampTooNew)
    } else {
        Ok(())
    }
}

/// Whether `mac` is the HMAC-SHA256 of `parts` (concatenated) under one of `keys`.
fn any_key_signs(keys: &[SigningKey], parts: &[&[u8]], mac: &[u8]) -> bool {
    keys.iter().any(|key| {
        let mut hmac = HmacSha256::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
        for part in parts {
            hmac.update(part);
        }
        hmac.verify_slice(mac).is_ok()
    })
}

fn selected(headers: &HeaderMap, names: &[&str]) -> Vec<(String, String)> {
    names.iter().filter_map(|name| Some(((*name).to_owned(), headers.get(*name)?.to_str().ok()?.to_owned()))).collect()
}

fn standard(keys: &[SigningKey], headers: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, Rejection> {
    let id = id_header(headers, "webhook-id")?;
    let raw_timestamp = header(headers, "webhook-timestamp")?.to_owned();
    let signed_at = timestamp(headers, "webhook-timestamp")?;
    let signatures = header(headers, "webhook-signature")?;
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", raw_timestamp.as_bytes(), b".", body];
    // Space-separated `version,signature`; only `v1` is HMAC-SHA256, other versions are skipped.
    let valid = signatures.split(' ').filter_map(|entry| entry.split_once(',')).any(|(version, signature)| {
        version == "v1" && decode_base64(signature).is_some_and(|mac| any_key_signs(keys, &parts, &mac))
    });
    if !valid {
        return Err(Rejection::BadSignature);
    }
    within_window(signed_at, now)?;
    let headers = selected(headers, &["content-type", "webhook-id", "webhook-timestamp"]);
    Ok(Verified { dedup_key: id, headers })
}

fn github(keys: &[SigningKey], headers: &HeaderMap, body: &[u8]) -> Result<Verified, Rejection> {
    const SIGNATURE: &str = "x-hub-signature-256";
    let signature = header(headers, SIGNATURE)?;
    let hex_mac = signature.strip_prefix("sha256=").ok_or_else(|| Rejection::MalformedHeader(SIGNATURE.into()))?;
    let mac = hex::decode(hex_mac).map_err(|_| Rejection::MalformedHeader(SIGNATURE.into()))?;
    if !any_key_signs(keys, &[body], &mac) {
        return Err(Rejection::BadSignature);
    }
    // GitHub has no timestamp: replay protection is the delivery id's dedup (security.md L2).
    let id = id_header(headers, "x-github-delivery")?;
    let headers = selected(headers, &["content-type", "x-github-event", "x-github-delivery", "x-github-hook-id"]);
    Ok(Verified { dedup_key: id, headers })
}

fn generic(
    settings: &GenericSettings,
    keys: &[SigningKey],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, Rejection> {
    let name = settings.signature_header.to_ascii_lowercase();
    let mut encoded = header(headers, &name)?;
    if let Some(prefix) = &settings.prefix {
        encoded = encoded.strip_prefix(prefix.as_str()).ok_or_else(|| Rejection::MalformedHeader(name.clone()))?;
    }
    let mac = match settings.encoding {
        SignatureEncoding::Hex => hex::decode(encoded).ok(),
        SignatureEncoding::Base64 => decode_base64(encoded),
    }
    .ok_or_else(|| Rejection::MalformedHeader(name.clone()))?;
    let stamp = match &settings.timestamp_header {
        Some(ts_name) => {
            let ts_name = ts_name.to_ascii_lowercase();
            Some((header(headers, &ts_name)?.to_owned(), timestamp(headers, &ts_name)?))
        }
        None => None,
    };
    let valid = match &stamp {
        Some((raw, _)) => any_key_signs(keys, &[raw.as_bytes(), b".", body], &mac),
        None => any_key_signs(keys, &[body], &mac),
    };
    if !valid {
        return Err(Rejection::BadSignature);
    }
    if let Some((_, signed_at)) = stamp {
        within_window(signed_at, now)?;
    }
    let dedup_key = match &settings.id_header {
        Some(id_name) => id_header(headers, &id_name.to_ascii_lowercase())?,
        None => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    };
    let mut names = vec!["content-type".to_owned()];
    names.extend(settings.timestamp_header.iter().chain(&settings.id_header).map(|n| n.to_ascii_lowercase()));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(Verified { dedup_key, headers: selected(headers, &names) })
}

/// Standard base64, padded or not (senders differ); `None` for anything else or empty.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()?;
    (!bytes.is_empty()).then_some(bytes)
}

/// Signs like a Standard Webhooks sender (for tests and, later, events out): `v1,<base64>`.
pub fn sign_standard(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut hmac = HmacSha256::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    hmac.update(format!("{id}.{timestamp}.").as_bytes());
    hmac.update(body);
    format!("v1,{}", STANDARD.encode(hmac.finalize().into_bytes()))
}

/// The lowercase hex HMAC-SHA256 of `parts` under `key` (GitHub and generic senders).
pub fn hmac_hex(key: &SigningKey, parts: &[&[u8]]) -> String {
    let mut hmac = HmacSha256::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    for part in parts {
        hmac.update(part);
    }
    hex::encode(hmac.finalize().into_bytes())
}
