//! Monday's `Authorization` JWT (providers.md A4.3, security.md N1–N4), verified by hand with
//! HMAC-SHA256: the algorithm is pinned to `HS256` (`none` and every other `alg` refused before
//! any key is used), the MAC is compared in constant time, `exp` is required, `aud` must equal
//! the exact endpoint URL, and `accountId` is returned for the caller to bind to its webhook.
//! Nothing of the token (`shortLivedToken` is a credential) is kept or logged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Seconds past `exp` a token is still accepted (clock skew between Monday and us).
pub const EXP_LEEWAY_SECONDS: i64 = 60;

/// The most bytes of token looked at; Monday's are a few hundred.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a JWT was refused (for the log only; the sender sees an empty 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("no Authorization header")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm other than HS256")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("no exp claim")]
    NoExpiry,
    #[error("expired")]
    Expired,
    #[error("aud is not this endpoint")]
    Audience,
    #[error("no accountId claim")]
    NoAccount,
    #[error("accountId is not the webhook's account")]
    Account,
}

/// The claims a verified token vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MondayClaims {
    /// `accountId`, as a decimal string (Monday sends a number).
    pub account_id: String,
    /// `userId`, when present.
    pub user_id: Option<String>,
    pub exp: i64,
}

fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The token in an `Authorization` header value: bare (as Monday sends it) or after `Bearer `.
pub fn token_of(header: Option<&str>) -> Result<&str, JwtRejection> {
    let value = header.map(str::trim).filter(|v| !v.is_empty()).ok_or(JwtRejection::Missing)?;
    Ok(value.strip_prefix("Bearer ").map(str::trim).unwrap_or(value))
}

/// Verifies `token` with `secret` for the endpoint `audience` at unix time `now`.
pub fn verify(token: &str, secret: &[u8], audience: &str, now: i64) -> Result<MondayClaims, JwtRejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtRejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtRejection::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(JwtRejection::Malformed)?;
    // The algorithm is pinned: whatever the token says, only HS256 is ever computed.
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtRejection::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtRejection::Malformed)?;
    let signed_len = token.len() - signature_len(token);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| JwtRejection::Signature)?;
    mac.update(&token.as_bytes()[..signed_len]);
    mac.verify_slice(&signature).map_err(|_| JwtRejection::Signature)?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .filter(Value::is_object)
        .ok_or(JwtRejection::Malformed)?;
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => return Err(JwtRejection::NoExpiry),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64)),
        Some(_) => None,
    }
    .ok_or(JwtRejection::Malformed)?;
    if now > exp.saturating_add(EXP_LEEWAY_SECONDS) {
        return Err(JwtRejection::Expired);
    }
    if claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(JwtRejection::Audience);
    }
    let account_id = id_text(claims.get("accountId")).ok_or(JwtRejection::NoAccount)?;
    Ok(MondayClaims { account_id, user_id: id_text(claims.get("userId")), exp })
}

/// Bytes of `.signature` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rsplit_once('.').map_or(0, |(_, s)| s.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"signing-secret";
    const AUD: &str = "https://patchbay.test/webhooks/monday/0192";

    fn encode(header: &Value, claims: &Value, secret: &[u8]) -> String {
        let head = URL_SAFE_NO_PAD.encode(header.to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        format!("{head}.{body}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn claims(exp: i64) -> Value {
        json!({ "accountId": 42, "userId": 7, "aud": AUD, "exp": exp, "iat": exp - 60, "shortLivedToken": "x" })
    }

    fn hs256(claims: &Value, secret: &[u8]) -> String {
        encode(&json!({ "alg": "HS256", "typ": "JWT" }), claims, secret)
    }

    #[test]
    fn a_valid_token_gives_its_account() {
        let got = verify(&hs256(&claims(1_000), SECRET), SECRET, AUD, 990).unwrap();
        assert_eq!(got, MondayClaims { account_id: "42".into(), user_id: Some("7".into()), exp: 1_000 });
    }

    #[test]
    fn alg_none_and_other_algs_are_refused() {
        let head = URL_SAFE_NO_PAD.encode(json!({ "alg": "none" }).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims(1_000).to_string());
        assert_eq!(verify(&format!("{head}.{body}."), SECRET, AUD, 990), Err(JwtRejection::Algorithm));
        for alg in ["HS512", "RS256", "hs256", "None"] {
            let token = encode(&json!({ "alg": alg }), &claims(1_000), SECRET);
            assert_eq!(verify(&token, SECRET, AUD, 990), Err(JwtRejection::Algorithm), "{alg}");
        }
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_payload_is_refused() {
        assert_eq!(verify(&hs256(&claims(1_000), b"client-secret"), SECRET, AUD, 990), Err(JwtRejection::Signature));
        let token = hs256(&claims(1_000), SECRET);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(1_000);
        forged["accountId"] = json!(43);
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert_eq!(verify(&parts.join("."), SECRET, AUD, 990), Err(JwtRejection::Signature));
    }

    #[test]
    fn exp_is_required_and_enforced_with_a_small_leeway() {
        let mut no_exp = claims(0);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&hs256(&no_exp, SECRET), SECRET, AUD, 0), Err(JwtRejection::NoExpiry));
        let token = hs256(&claims(1_000), SECRET);
        assert!(verify(&token, SECRET, AUD, 1_000 + EXP_LEEWAY_SECONDS).is_ok());
        assert_eq!(verify(&token, SECRET, AUD, 1_001 + EXP_LEEWAY_SECONDS), Err(JwtRejection::Expired));
    }

    #[test]
    fn aud_must_be_exactly_this_endpoint() {
        for aud in [
            "https://patchbay.test/webhooks/monday/0193",
            "http://patchbay.test/webhooks/monday/0192",
            "https://patchbay.test/webhooks/monday/0192/",
        ] {
            let mut c = claims(1_000);
            c["aud"] = json!(aud);
            assert_eq!(verify(&hs256(&c, SECRET), SECRET, AUD, 990), Err(JwtRejection::Audience), "{aud}");
        }
        let mut c = claims(1_000);
        c["aud"] = json!([AUD]);
        assert_eq!(verify(&hs256(&c, SECRET), SECRET, AUD, 990), Err(JwtRejection::Audience), "not a list");
    }

    #[test]
    fn malformed_tokens_and_headers_are_refused() {
        assert_eq!(token_of(None), Err(JwtRejection::Missing));
        assert_eq!(token_of(Some("  ")), Err(JwtRejection::Missing));
        assert_eq!(token_of(Some("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(token_of(Some("a.b.c")), Ok("a.b.c"));
        for token in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(verify(token, SECRET, AUD, 0).is_err(), "{token}");
        }
        let mut c = claims(1_000);
        c.as_object_mut().unwrap().remove("accountId");
        assert_eq!(verify(&hs256(&c, SECRET), SECRET, AUD, 990), Err(JwtRejection::NoAccount));
    }
}
