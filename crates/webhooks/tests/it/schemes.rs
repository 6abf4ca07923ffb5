//! The signature schemes against the published vectors (security.md R1, R2, R4) and the
//! negative cases of K and L, with the clock passed in.

use http::{HeaderMap, HeaderName, HeaderValue};
use patchbay_store::WebhookScheme;
use patchbay_webhooks::scheme::{hmac_hex, sign_standard};
use patchbay_webhooks::{verify, GenericSettings, Rejection, Scheme, SignatureEncoding, SigningKey};
use secrecy::SecretString;

const R1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const R1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const R1_TS: i64 = 1614265330;
const R1_BODY: &str = r#"{"test": 2432232314}"#;
const R1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const R1_BAD: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";

const R2_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const R2_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const R2_TS: i64 = 1649367553;
const R2_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const R2_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
const R2_OTHERS: [&str; 4] = [
    "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
    "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
    "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
];

const R4_SECRET: &str = "It's a Secret to Everybody";
const R4_BODY: &str = "Hello, World!";
const R4_HEADER: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn key(scheme: WebhookScheme, secret: &str) -> SigningKey {
    SigningKey::from_secret(scheme, &SecretString::from(secret.to_owned())).expect("a usable secret")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn standard_headers(id: &str, ts: i64, signature: &str) -> HeaderMap {
    headers(&[("webhook-id", id), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", signature)])
}

fn r2(signature: &str, now: i64) -> Result<patchbay_webhooks::Verified, Rejection> {
    let keys = [key(WebhookScheme::StandardWebhooks, R2_SECRET)];
    verify(&Scheme::StandardWebhooks, &keys, &standard_headers(R2_ID, R2_TS, signature), R2_BODY.as_bytes(), now)
}

#[test]
fn standard_webhooks_signing_reproduces_the_published_vectors() {
    let r1 = key(WebhookScheme::StandardWebhooks, R1_SECRET);
    assert_eq!(sign_standard(&r1, R1_ID, R1_TS, R1_BODY.as_bytes()), R1_SIG, "R1");
    let r2 = key(WebhookScheme::StandardWebhooks, R2_SECRET);
    assert_eq!(sign_standard(&r2, R2_ID, R2_TS, R2_BODY.as_bytes()), R2_SIG, "R2");
    let unprefixed = key(WebhookScheme::StandardWebhooks, R2_SECRET.trim_start_matches("whsec_"));
    assert_eq!(sign_standard(&unprefixed, R2_ID, R2_TS, R2_BODY.as_bytes()), R2_SIG, "the prefix is optional");
}

#[test]
fn standard_webhooks_accepts_the_published_vectors_and_dedups_on_the_message_id() {
    let keys = [key(WebhookScheme::StandardWebhooks, R1_SECRET)];
    let verified =
        verify(&Scheme::StandardWebhooks, &keys, &standard_headers(R1_ID, R1_TS, R1_SIG), R1_BODY.as_bytes(), R1_TS)
            .expect("R1 verifies");
    assert_eq!(verified.dedup_key, R1_ID);
    assert!(verified.headers.iter().all(|(name, _)| name != "webhook-signature"), "no signature is kept");
    let bad =
        verify(&Scheme::StandardWebhooks, &keys, &standard_headers(R1_ID, R1_TS, R1_BAD), R1_BODY.as_bytes(), R1_TS);
    assert_eq!(bad.unwrap_err(), Rejection::BadSignature, "R1 negative");
    assert!(r2(R2_SIG, R2_TS).is_ok(), "R2");
}

#[test]
fn the_r2_header_check_holds_exactly_inside_three_hundred_seconds() {
    let both = format!("{} {R2_SIG}", R2_OTHERS[0]);
    let cases = [
        (R2_TS - 300, Ok(())),
        (R2_TS + 300, Ok(())),
        (R2_TS - 299, Ok(())),
        (R2_TS + 299, Ok(())),
        (R2_TS + 301, Err(Rejection::TimestampTooOld)),
        (R2_TS - 301, Err(Rejection::TimestampTooNew)),
    ];
    for (now, expected) in cases {
        assert_eq!(r2(&both, now).map(|_| ()), expected, "now = ts {:+}", now - R2_TS);
    }
    assert_eq!(r2(R2_OTHERS[0], R2_TS).unwrap_err(), Rejection::BadSignature, "without the valid entry");
}

#[test]
fn several_signatures_pass_when_one_v1_is_valid_and_unknown_versions_are_ignored() {
    let valid_b64 = R2_SIG.trim_start_matches("v1,");
    let cases: Vec<(String, bool, &str)> = vec![
        (format!("{} v2,{valid_b64} {R2_SIG}", R2_OTHERS[1]), true, "bad v1, valid v2, valid v1"),
        (format!("{} {} {} {R2_SIG}", R2_OTHERS[1], R2_OTHERS[2], R2_OTHERS[3]), true, "the last of four"),
        (format!("v2,{valid_b64}"), false, "only an unknown version carries the valid MAC"),
        (format!("v1a,{valid_b64}"), false, "v1a is the asymmetric variant, not HMAC"),
        ("v1,".to_owned(), false, "an empty signature"),
        (R2_SIG[..11].to_owned(), false, "the first 8 characters of the valid signature"),
        (R2_OTHERS.join(" "), false, "four non-matching v1 values"),
        ("garbage".to_owned(), false, "no version at all"),
    ];
    for (signature, ok, case) in cases {
        assert_eq!(r2(&signature, R2_TS).is_ok(), ok, "{case}");
    }
}

#[test]
fn tampered_and_reserialized_bodies_fail() {
    let keys = [key(WebhookScheme::StandardWebhooks, R2_SECRET)];
    let h = standard_headers(R2_ID, R2_TS, R2_SIG);
    let bodies = [
        r#"{"email": "test@example.com","username":"test_user"}"#, // one space added
        r#"{"username":"test_user","email":"test@example.com"}"#,  // keys reordered
        r#"{"email":"test@example.com","username":"test_user"} "#, // trailing space
        r#"{"email":"evil@example.com","username":"test_user"}"#,  // changed value
    ];
    for body in bodies {
        let got = verify(&Scheme::StandardWebhooks, &keys, &h, body.as_bytes(), R2_TS);
        assert_eq!(got.unwrap_err(), Rejection::BadSignature, "{body}");
    }
}

#[test]
fn each_missing_or_malformed_standard_header_is_refused() {
    let keys = [key(WebhookScheme::StandardWebhooks, R2_SECRET)];
    let ts = R2_TS.to_string();
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let all = [("webhook-id", R2_ID), ("webhook-timestamp", ts.as_str()), ("webhook-signature", R2_SIG)];
        let kept: Vec<(&str, &str)> = all.into_iter().filter(|(n, _)| *n != missing).collect();
        let got = verify(&Scheme::StandardWebhooks, &keys, &headers(&kept), R2_BODY.as_bytes(), R2_TS);
        assert_eq!(got.unwrap_err(), Rejection::MissingHeader(missing.into()), "without {missing}");
    }
    for bad_ts in ["hello", "1649367553.0", "+1649367553", ""] {
        let h = headers(&[("webhook-id", R2_ID), ("webhook-timestamp", bad_ts), ("webhook-signature", R2_SIG)]);
        let got = verify(&Scheme::StandardWebhooks, &keys, &h, R2_BODY.as_bytes(), R2_TS);
        assert!(got.is_err(), "timestamp {bad_ts:?} must be refused");
    }
}

#[test]
fn a_github_signed_request_fails_at_a_standard_webhooks_source_and_the_reverse() {
    let github = headers(&[("x-hub-signature-256", R4_HEADER), ("x-github-delivery", "d-1")]);
    let sw_keys = [key(WebhookScheme::StandardWebhooks, R2_SECRET)];
    let got = verify(&Scheme::StandardWebhooks, &sw_keys, &github, R4_BODY.as_bytes(), R2_TS);
    assert_eq!(got.unwrap_err(), Rejection::MissingHeader("webhook-id".into()));
    let gh_keys = [key(WebhookScheme::Github, R4_SECRET)];
    let standard = standard_headers(R2_ID, R2_TS, R2_SIG);
    let got = verify(&Scheme::Github, &gh_keys, &standard, R2_BODY.as_bytes(), R2_TS);
    assert_eq!(got.unwrap_err(), Rejection::MissingHeader("x-hub-signature-256".into()));
}

#[test]
fn github_accepts_the_published_vector_and_refuses_its_variants() {
    let keys = [key(WebhookScheme::Github, R4_SECRET)];
    let ok = verify(
        &Scheme::Github,
        &keys,
        &headers(&[("X-Hub-Signature-256", R4_HEADER), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]),
        R4_BODY.as_bytes(),
        0,
    )
    .expect("R4 verifies");
    assert_eq!(ok.dedup_key, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let wrong = [key(WebhookScheme::Github, "not the secret")];
    let cases: Vec<(&[SigningKey], &str, &str, Rejection, &str)> = vec![
        (&keys, R4_HEADER, "Hello, World?", Rejection::BadSignature, "tampered body"),
        (
            &keys,
            R4_HEADER.trim_start_matches("sha256="),
            R4_BODY,
            Rejection::MalformedHeader("x-hub-signature-256".into()),
            "no sha256= prefix",
        ),
        (&wrong, R4_HEADER, R4_BODY, Rejection::BadSignature, "wrong secret"),
    ];
    for (keys, signature, body, expected, case) in cases {
        let h = headers(&[("x-hub-signature-256", signature), ("x-github-delivery", "d-1")]);
        assert_eq!(verify(&Scheme::Github, keys, &h, body.as_bytes(), 0).unwrap_err(), expected, "{case}");
    }
    let no_header = headers(&[("x-hub-signature", "sha1=abc"), ("x-github-delivery", "d-1")]);
    assert_eq!(
        verify(&Scheme::Github, &keys, &no_header, R4_BODY.as_bytes(), 0).unwrap_err(),
        Rejection::MissingHeader("x-hub-signature-256".into()),
        "the SHA-1 header is not accepted"
    );
    let no_delivery = headers(&[("x-hub-signature-256", R4_HEADER)]);
    assert_eq!(
        verify(&Scheme::Github, &keys, &no_delivery, R4_BODY.as_bytes(), 0).unwrap_err(),
        Rejection::MissingHeader("x-github-delivery".into())
    );
}

#[test]
fn a_rotated_secret_and_its_successor_both_verify_while_both_are_given() {
    let old = key(WebhookScheme::StandardWebhooks, R1_SECRET);
    let new = key(WebhookScheme::StandardWebhooks, R2_SECRET);
    let signed_with_old = sign_standard(&old, R2_ID, R2_TS, R2_BODY.as_bytes());
    let h = standard_headers(R2_ID, R2_TS, &signed_with_old);
    let both = [key(WebhookScheme::StandardWebhooks, R2_SECRET), key(WebhookScheme::StandardWebhooks, R1_SECRET)];
    assert!(verify(&Scheme::StandardWebhooks, &both, &h, R2_BODY.as_bytes(), R2_TS).is_ok(), "during the overlap");
    assert_eq!(
        verify(&Scheme::StandardWebhooks, &[new], &h, R2_BODY.as_bytes(), R2_TS).unwrap_err(),
        Rejection::BadSignature,
        "after the overlap only the new secret is given"
    );
    assert_eq!(
        verify(&Scheme::StandardWebhooks, &[], &h, R2_BODY.as_bytes(), R2_TS).unwrap_err(),
        Rejection::NoValidSecret
    );
}

#[test]
fn standard_webhooks_secrets_must_decode() {
    for bad in ["whsec_", "", "whsec_!!!not-base64!!!"] {
        let got = SigningKey::from_secret(WebhookScheme::StandardWebhooks, &SecretString::from(bad.to_owned()));
        assert!(got.is_err(), "{bad:?} must be refused");
    }
    assert!(SigningKey::from_secret(WebhookScheme::Github, &SecretString::from(String::new())).is_err());
}

fn generic(prefix: Option<&str>, encoding: SignatureEncoding, timestamp: bool, id: bool) -> Scheme {
    Scheme::Generic(GenericSettings {
        signature_header: "X-Signature".into(),
        encoding,
        prefix: prefix.map(str::to_owned),
        timestamp_header: timestamp.then(|| "X-Timestamp".into()),
        id_header: id.then(|| "X-Delivery".into()),
    })
}

#[test]
fn generic_hmac_follows_its_settings() {
    let k = key(WebhookScheme::GenericHmac, "generic-secret");
    let keys = [key(WebhookScheme::GenericHmac, "generic-secret")];
    let body = br#"{"a":1}"#;
    let hex_mac = hmac_hex(&k, &[body]);
    // Plain hex, no prefix, no timestamp: the dedup key is the body's hash.
    let plain = verify(
        &generic(None, SignatureEncoding::Hex, false, false),
        &keys,
        &headers(&[("x-signature", &hex_mac)]),
        body,
        0,
    )
    .expect("plain hex");
    assert!(plain.dedup_key.starts_with("sha256:") && plain.dedup_key.len() == 7 + 64, "{}", plain.dedup_key);
    // A required prefix.
    let prefixed = format!("sha256={hex_mac}");
    let scheme = generic(Some("sha256="), SignatureEncoding::Hex, false, true);
    let h = headers(&[("x-signature", &prefixed), ("x-delivery", "evt-9")]);
    assert_eq!(verify(&scheme, &keys, &h, body, 0).expect("prefixed").dedup_key, "evt-9");
    let h = headers(&[("x-signature", &hex_mac), ("x-delivery", "evt-9")]);
    assert!(verify(&scheme, &keys, &h, body, 0).is_err(), "the prefix is required when configured");
    // Base64 over `{timestamp}.{body}` with the window.
    use base64::Engine;
    let ts = 1_700_000_000i64;
    let mac = hex::decode(hmac_hex(&k, &[ts.to_string().as_bytes(), b".", body])).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac);
    let scheme = generic(None, SignatureEncoding::Base64, true, false);
    let h = headers(&[("x-signature", &b64), ("x-timestamp", &ts.to_string())]);
    assert!(verify(&scheme, &keys, &h, body, ts + 299).is_ok(), "inside the window");
    assert_eq!(verify(&scheme, &keys, &h, body, ts + 301).unwrap_err(), Rejection::TimestampTooOld);
    assert_eq!(verify(&scheme, &keys, &h, body, ts - 301).unwrap_err(), Rejection::TimestampTooNew);
    assert_eq!(verify(&scheme, &keys, &h, b"{\"a\":2}", ts).unwrap_err(), Rejection::BadSignature, "tampered");
    let no_ts = headers(&[("x-signature", &b64)]);
    assert_eq!(verify(&scheme, &keys, &no_ts, body, ts).unwrap_err(), Rejection::MissingHeader("x-timestamp".into()));
    let no_sig = headers(&[("x-timestamp", &ts.to_string())]);
    assert_eq!(verify(&scheme, &keys, &no_sig, body, ts).unwrap_err(), Rejection::MissingHeader("x-signature".into()));
}
