//! Configuration validation: production refuses every development fallback, each problem
//! names its variable, and development secrets are generated only on SQLite.

use crate::helpers::{settings, JWT_SECRET, VAULT_KEYS};
use patchbay_api::config::ConfigError;
use std::collections::HashMap;

/// A case: what it shows, extra flags, secret variables, and the variable the error must name.
type Case<'a> = (&'a str, Vec<&'a str>, HashMap<String, String>, &'a str);

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn production_refuses_every_development_fallback_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let https = ["--env", "production", "--data-dir", data, "--public-url", "https://patchbay.example"];
    let claims = ["--issuer", "https://idp.example", "--audience", "patchbay"];
    let keys = [("PATCHBAY_VAULT_KEYS", VAULT_KEYS), ("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)];
    let cases: Vec<Case> = vec![
        ("HS256 without issuer", [https.as_slice(), &["--audience", "a"]].concat(), env(&keys), "PATCHBAY_AUTH_ISSUER"),
        (
            "HS256 without audience",
            [https.as_slice(), &["--issuer", "https://idp.example"]].concat(),
            env(&keys),
            "PATCHBAY_AUTH_AUDIENCE",
        ),
        ("no vault keys", https.to_vec(), env(&[("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)]), "PATCHBAY_VAULT_KEYS"),
        ("no user-token key", https.to_vec(), env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS)]), "PATCHBAY_AUTH_JWT_SECRET"),
        ("http public URL", vec!["--env", "production", "--data-dir", data], env(&keys), "PATCHBAY_PUBLIC_URL"),
        (
            "JWKS without issuer",
            [https.as_slice(), &["--jwks-url", "https://idp.example/jwks", "--audience", "a"]].concat(),
            env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS)]),
            "PATCHBAY_AUTH_ISSUER",
        ),
        (
            "JWKS without audience",
            [https.as_slice(), &["--jwks-url", "https://idp.example/jwks", "--issuer", "https://idp.example"]].concat(),
            env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS)]),
            "PATCHBAY_AUTH_AUDIENCE",
        ),
        (
            "http CORS origin",
            [https.as_slice(), &claims, &["--cors-origins", "http://app.example"]].concat(),
            env(&keys),
            "PATCHBAY_CORS_ORIGINS",
        ),
    ];
    for (what, args, env, variable) in cases {
        let error = settings(&args, &env).expect_err(what);
        assert_eq!(error.variable, variable, "{what}: {error}");
        assert!(!error.to_string().contains('\n'), "{what}: one line");
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "production generated nothing into the data dir");
    settings(&[https.as_slice(), &claims].concat(), &env(&keys)).expect("production with its secrets is valid");
}

/// Production settings with both providers enabled, plus `extra` flags.
fn production_with_providers(data: &str, extra: &[&str]) -> Result<patchbay_api::config::Settings, ConfigError> {
    let args = [
        &[
            "--env",
            "production",
            "--data-dir",
            data,
            "--public-url",
            "https://patchbay.example",
            "--issuer",
            "https://idp.example",
            "--audience",
            "patchbay",
            "--monday-client-id",
            "monday-id",
            "--monday-oauth-flow",
            "v2",
            "--google-client-id",
            "google-id",
        ],
        extra,
    ]
    .concat();
    let secrets = env(&[
        ("PATCHBAY_VAULT_KEYS", VAULT_KEYS),
        ("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET),
        ("PATCHBAY_MONDAY_CLIENT_SECRET", "monday-client-secret"),
        ("PATCHBAY_MONDAY_SIGNING_SECRET", "monday-signing-secret"),
        ("PATCHBAY_GOOGLE_CLIENT_SECRET", "google-client-secret"),
    ]);
    settings(&args, &secrets)
}

#[test]
fn production_refuses_provider_urls_off_the_providers_hosts_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    production_with_providers(data, &[]).expect("production with both providers and no overrides is valid");
    let foreign: [(&str, &str, &str); 11] = [
        ("--google-auth-url", "https://evil.example/auth", "PATCHBAY_GOOGLE_AUTH_URL"),
        ("--google-token-url", "https://oauth2.googleapis.com.evil.example/token", "PATCHBAY_GOOGLE_TOKEN_URL"),
        ("--google-revoke-url", "https://evilgoogleapis.com/revoke", "PATCHBAY_GOOGLE_REVOKE_URL"),
        ("--google-userinfo-url", "https://127.0.0.1/userinfo", "PATCHBAY_GOOGLE_USERINFO_URL"),
        ("--google-api-url", "https://googleapis.com", "PATCHBAY_GOOGLE_API_URL"),
        ("--monday-auth-url", "https://auth.monday.com.evil.example/authorize", "PATCHBAY_MONDAY_AUTH_URL"),
        ("--monday-token-url", "https://evil.example/token", "PATCHBAY_MONDAY_TOKEN_URL"),
        ("--monday-revoke-url", "https://notmonday.com/revoke", "PATCHBAY_MONDAY_REVOKE_URL"),
        ("--monday-migrate-url", "https://accounts.google.com/migrate", "PATCHBAY_MONDAY_MIGRATE_URL"),
        ("--monday-api-url", "https://monday.com.evil.example/v2", "PATCHBAY_MONDAY_API_URL"),
        ("--monday-api-url", "https://[::1]/v2", "PATCHBAY_MONDAY_API_URL"),
    ];
    for (flag, url, variable) in foreign {
        let error = production_with_providers(data, &[flag, url]).expect_err(url);
        assert_eq!(error.variable, variable, "{url}: {error}");
        assert!(!error.to_string().contains('\n'), "{url}: one line");
        assert!(error.to_string().contains("PATCHBAY_ALLOW_PROVIDER_URL_OVERRIDES"), "{url}: names the way out");
        let allowed = [flag, url, "--allow-provider-url-overrides", "true"];
        production_with_providers(data, &allowed).unwrap_or_else(|e| panic!("{url} with the allow flag: {e}"));
    }
    let own: [(&str, &str); 9] = [
        ("--google-auth-url", "https://accounts.google.com/o/oauth2/v2/auth"),
        ("--google-token-url", "https://oauth2.googleapis.com/token"),
        ("--google-revoke-url", "https://oauth2.googleapis.com/revoke"),
        ("--google-userinfo-url", "https://openidconnect.googleapis.com/v1/userinfo"),
        ("--google-api-url", "https://www.googleapis.com"),
        ("--google-api-url", "https://calendar-json.googleapis.com"),
        ("--monday-auth-url", "https://auth.monday.com/oauth2/authorize"),
        ("--monday-api-url", "https://api.monday.com/v2"),
        ("--monday-migrate-url", "https://auth.monday.com/oauth_ms/oauth/migrate"),
    ];
    for (flag, url) in own {
        let loaded = production_with_providers(data, &[flag, url]).unwrap_or_else(|e| panic!("{url}: {e}"));
        if flag == "--google-api-url" {
            assert_eq!(
                loaded.providers.google_api_url.as_ref().map(url::Url::as_str),
                Some(format!("{url}/").as_str())
            );
        }
    }
    let dev = settings(
        &["--data-dir", data, "--google-client-id", "g", "--google-token-url", "http://127.0.0.1:9/token"],
        &env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS), ("PATCHBAY_GOOGLE_CLIENT_SECRET", "google-client-secret")]),
    );
    dev.expect("development accepts a local fake's URL");
}

#[test]
fn malformed_values_are_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let base = env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS), ("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)]);
    let with = |k: &str, v: &str| {
        let mut e = base.clone();
        e.insert(k.into(), v.into());
        e
    };
    let cases: Vec<Case> = vec![
        ("bad vault keys", vec![], with("PATCHBAY_VAULT_KEYS", "1:short"), "PATCHBAY_VAULT_KEYS"),
        ("short JWT secret", vec![], with("PATCHBAY_AUTH_JWT_SECRET", "short"), "PATCHBAY_AUTH_JWT_SECRET"),
        ("unknown database scheme", vec![], with("PATCHBAY_DATABASE_URL", "mysql://x"), "PATCHBAY_DATABASE_URL"),
        ("bad listen address", vec!["--listen", "nowhere"], base.clone(), "PATCHBAY_LISTEN"),
        ("bad proxy CIDR", vec!["--trusted-proxies", "10.0.0.0/99"], base.clone(), "PATCHBAY_TRUSTED_PROXIES"),
        (
            "origin with a path",
            vec!["--return-to-origins", "https://app.example/cb"],
            base.clone(),
            "PATCHBAY_RETURN_TO_ORIGINS",
        ),
        ("short admin token", vec![], with("PATCHBAY_ADMIN_TOKENS", "abc"), "PATCHBAY_ADMIN_TOKENS"),
        ("Monday without its flow", vec!["--monday-client-id", "id"], base.clone(), "PATCHBAY_MONDAY_OAUTH_FLOW"),
        ("Google without its secret", vec!["--google-client-id", "id"], base.clone(), "PATCHBAY_GOOGLE_CLIENT_SECRET"),
        ("zero rate", vec!["--v1-per-second", "0"], base.clone(), "PATCHBAY_RATE_LIMIT_V1_PER_SECOND"),
    ];
    for (what, extra, env, variable) in cases {
        let args = [["--data-dir", data].as_slice(), &extra].concat();
        let error = settings(&args, &env).expect_err(what);
        assert_eq!(error.variable, variable, "{what}: {error}");
        for secret in [VAULT_KEYS, JWT_SECRET] {
            assert!(!error.to_string().contains(secret), "{what}: no secret in the message");
        }
    }
}

#[test]
fn secrets_can_come_from_files_but_not_from_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("jwt");
    std::fs::write(&secret_file, format!("{JWT_SECRET}\n")).unwrap();
    let data = dir.path().to_str().unwrap();
    let from_file =
        env(&[("PATCHBAY_VAULT_KEYS", VAULT_KEYS), ("PATCHBAY_AUTH_JWT_SECRET_FILE", secret_file.to_str().unwrap())]);
    let loaded = settings(&["--data-dir", data], &from_file).expect("a secret from a file");
    assert!(loaded.auth.jwt_secret.is_some());
    let mut both = from_file.clone();
    both.insert("PATCHBAY_AUTH_JWT_SECRET".into(), JWT_SECRET.into());
    assert_eq!(settings(&["--data-dir", data], &both).unwrap_err().variable, "PATCHBAY_AUTH_JWT_SECRET");
}

#[test]
fn development_generates_secrets_once_on_sqlite_and_never_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let first = settings(&["--data-dir", data], &HashMap::new()).expect("development on SQLite needs nothing set");
    let second = settings(&["--data-dir", data], &HashMap::new()).unwrap();
    assert_eq!(first.vault_keys.ids(), second.vault_keys.ids());
    use secrecy::ExposeSecret;
    assert_eq!(
        first.auth.jwt_secret.as_ref().unwrap().expose_secret(),
        second.auth.jwt_secret.as_ref().unwrap().expose_secret(),
        "generated once, reused after"
    );
    let debug = format!("{first:?}");
    assert!(!debug.contains(first.auth.jwt_secret.as_ref().unwrap().expose_secret()), "Debug hides secrets");

    let other = tempfile::tempdir().unwrap();
    let pg = env(&[("PATCHBAY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")]);
    let error = settings(&["--data-dir", other.path().to_str().unwrap()], &pg).unwrap_err();
    assert_eq!(error.variable, "PATCHBAY_VAULT_KEYS", "no generated secrets on Postgres");
    assert!(std::fs::read_dir(other.path()).unwrap().next().is_none(), "nothing written");
}
