//! The `patchbay` binary itself: two commands on a fresh machine, refusals at start-up,
//! SIGTERM, `--help` everywhere, API keys and dev tokens from the command line.
//!
//! Runs the real binary: `patchbay_tests::binary` builds it when needed (see there).

use patchbay_testkit::app::{free_port, JWT_SECRET, VAULT_KEYS};
use patchbay_tests::binary::{command as patchbay, Served};
use std::process::Output;

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn serve_with_nothing_set_runs_on_sqlite_creating_its_data_dir_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(patchbay(dir.path()));
    served.wait_ready().await;
    let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", served.port)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(dir.path().join("data/patchbay.db").exists(), "the SQLite file is created under ./data");
    assert!(dir.path().join("data/secrets/dev-vault-keys").exists(), "development keys are generated");

    // A second instance on the same data directory refuses to start.
    let second = patchbay(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--metrics-listen", "off"])
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second SQLite instance exits non-zero");
    assert!(text(&second).contains("lock"), "it says why: {}", text(&second));

    let status = served.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
}

#[tokio::test]
async fn pretty_logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = patchbay(dir.path());
    command.env("PATCHBAY_LOG_FORMAT", "pretty").env("PATCHBAY_LOG", "info");
    let mut served = Served::start(command);
    served.wait_ready().await;
    let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", served.port)).await.unwrap();
    assert_eq!(health.status(), 200);
    let (status, output) = served.terminate_with_output();
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert!(output.contains("INFO"), "the pretty format wrote info lines: {output}");
    assert!(!output.contains("\x1b["), "no ANSI escape codes in piped logs: {output:?}");
}

#[tokio::test]
async fn serve_on_postgres_applies_migrations_and_is_ready() {
    let Some(url) = patchbay_testkit::db::postgres_url().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut migrate = patchbay(dir.path());
    migrate
        .env("PATCHBAY_DATABASE_URL", &url)
        .env("PATCHBAY_VAULT_KEYS", VAULT_KEYS)
        .env("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET);
    let output = migrate.arg("migrate").output().unwrap();
    assert!(output.status.success(), "migrate: {}", text(&output));

    let mut command = patchbay(dir.path());
    command
        .env("PATCHBAY_DATABASE_URL", &url)
        .env("PATCHBAY_VAULT_KEYS", VAULT_KEYS)
        .env("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)
        .env("PATCHBAY_RUN_MIGRATIONS", "false");
    let mut served = Served::start(command);
    served.wait_ready().await;
    let body: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{}/readyz", served.port)).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(!dir.path().join("data").exists(), "nothing is written to the data dir on Postgres");
    assert!(served.terminate().success());
}

#[test]
fn production_without_keys_exits_non_zero_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = patchbay(dir.path())
        .env("PATCHBAY_ENV", "production")
        .env("PATCHBAY_PUBLIC_URL", "https://patchbay.example")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "configuration errors exit 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PATCHBAY_VAULT_KEYS"), "names the variable: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!dir.path().join("data").exists(), "production generated nothing");
}

#[test]
fn every_command_has_help_and_help_never_shows_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let canary = "canary-secret-value-0123456789abcdefghijkl";
    let commands: [&[&str]; 20] = [
        &[],
        &["serve"],
        &["migrate"],
        &["check-config"],
        &["healthcheck"],
        &["api-keys"],
        &["api-keys", "create"],
        &["api-keys", "list"],
        &["api-keys", "revoke"],
        &["webhook-sources"],
        &["webhook-sources", "create"],
        &["webhook-sources", "list"],
        &["webhook-sources", "rotate-secret"],
        &["event-endpoints"],
        &["event-endpoints", "create"],
        &["event-endpoints", "list"],
        &["event-endpoints", "rotate-secret"],
        &["event-endpoints", "delete"],
        &["dev-token"],
        &["help"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        if command != ["help"] {
            args.push("--help");
        }
        let output = patchbay(dir.path())
            .args(&args)
            .env("PATCHBAY_AUTH_JWT_SECRET", canary)
            .env("PATCHBAY_VAULT_KEYS", canary)
            .env("PATCHBAY_ADMIN_TOKENS", canary)
            .env("PATCHBAY_DATABASE_URL", format!("postgres://u:{canary}@db/x"))
            .output()
            .unwrap();
        let out = text(&output);
        assert!(output.status.success(), "{args:?}: {out}");
        assert!(out.contains("Usage"), "{args:?} prints usage");
        assert!(!out.contains(canary), "{args:?} --help shows no secret");
    }
}

#[tokio::test]
async fn api_keys_and_dev_tokens_from_the_command_line_work_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = patchbay(dir.path()).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let mut served = Served::start(patchbay(dir.path()));
    served.wait_ready().await;
    let url = format!("http://127.0.0.1:{}/v1/me", served.port);
    let me = |bearer: String| {
        let url = url.clone();
        async move { reqwest::Client::new().get(url).bearer_auth(bearer).send().await.unwrap() }
    };

    // On SQLite the server holds the exclusive lock; key management still works beside it.
    let key =
        run(&["api-keys", "create", "--tenant", "acme", "--name", "ci", "--scope", "read,connect"]).trim().to_string();
    assert!(key.starts_with("pb_") && key.len() == 46, "a pb_ key is printed once: {key}");
    let listed = run(&["api-keys", "list", "--tenant", "acme"]);
    assert!(listed.contains(&key[..11]) && !listed.contains(&key), "list shows the prefix, never the key: {listed}");
    let by_key: serde_json::Value = me(key.clone()).await.json().await.unwrap();
    assert_eq!(by_key["role"], "api_key");
    assert_eq!(by_key["api_key"]["scopes"], serde_json::json!(["read", "connect"]));

    let token = run(&["dev-token", "--user", "dev-user"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT is printed");
    assert_eq!(me(token).await.status(), 200, "the dev token is accepted by the server");

    let id = listed.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    run(&["api-keys", "revoke", "--tenant", "acme", &id]);
    assert_eq!(me(key).await.status(), 401, "a revoked key is refused at once");
    assert!(served.terminate().success());

    let refused = patchbay(dir.path())
        .args(["dev-token", "--user", "x"])
        .env("PATCHBAY_ENV", "production")
        .env("PATCHBAY_PUBLIC_URL", "https://p.example")
        .env("PATCHBAY_VAULT_KEYS", VAULT_KEYS)
        .env("PATCHBAY_AUTH_JWT_SECRET", JWT_SECRET)
        .env("PATCHBAY_AUTH_ISSUER", "https://idp.example")
        .env("PATCHBAY_AUTH_AUDIENCE", "patchbay")
        .output()
        .unwrap();
    assert!(!refused.status.success(), "dev-token is refused in production");
    assert!(text(&refused).contains("production"));
}

#[tokio::test]
async fn webhook_sources_from_the_command_line_verify_deliveries_at_a_running_server() {
    use hmac::Mac;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = patchbay(dir.path()).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let mut served = Served::start(patchbay(dir.path()));
    served.wait_ready().await;
    let (secret, notes) = run(&["webhook-sources", "create", "--tenant", "acme", "--name", "gh", "--scheme", "github"]);
    let secret = secret.trim().to_string();
    assert_eq!(secret.len(), 64, "the secret alone is printed on stdout: {secret}");
    let url_line = notes.lines().find(|l| l.starts_with("url: ")).expect("the URL is printed");
    let path = &url_line[url_line.find("/webhooks/").unwrap()..];
    let id = path.trim_start_matches("/webhooks/sources/").to_string();
    let (listed, _) = run(&["webhook-sources", "list", "--tenant", "acme"]);
    assert!(listed.contains(&id) && !listed.contains(&secret), "list shows the source, never its secret: {listed}");

    let deliver = |secret: String, delivery: &'static str| {
        let url = format!("http://127.0.0.1:{}{path}", served.port);
        async move {
            let body = br#"{"zen":"Keep it logically awesome."}"#;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let response = reqwest::Client::new()
                .post(url)
                .header("x-hub-signature-256", signature)
                .header("x-github-delivery", delivery)
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(deliver(secret.clone(), "d-1").await, 204, "a delivery signed with the printed secret is stored");
    let (rotated, _) = run(&["webhook-sources", "rotate-secret", "--tenant", "acme", "--overlap-seconds", "0", &id]);
    let rotated = rotated.trim().to_string();
    assert_ne!(rotated, secret);
    assert_eq!(deliver(rotated, "d-2").await, 204, "the new secret verifies");
    assert_eq!(deliver(secret, "d-3").await, 401, "with no overlap the old secret stops at once");
    assert!(served.terminate().success());
}

#[test]
fn event_endpoints_are_created_listed_rotated_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        patchbay(dir.path()).env("PATCHBAY_ALLOW_PRIVATE_ENDPOINTS", "true").args(args).output().unwrap()
    };
    let ok = |args: &[&str]| {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let url = "http://127.0.0.1:9/events";
    let create = [
        "event-endpoints",
        "create",
        "--tenant",
        "acme",
        "--url",
        url,
        "--event-type",
        "sync.completed,connection.created",
    ];
    let (secret, notes) = ok(&create);
    let secret = secret.trim().to_string();
    assert!(secret.starts_with("whsec_") && !secret.contains('\n'), "the secret alone is printed on stdout: {secret}");
    let id = notes.lines().find_map(|l| l.strip_prefix("created event endpoint ")).expect("the id is printed");
    let id = id.split_whitespace().next().unwrap().to_string();
    let (listed, _) = ok(&["event-endpoints", "list", "--tenant", "acme"]);
    assert!(listed.contains(&id) && listed.contains(url), "list shows the endpoint: {listed}");
    assert!(
        listed.contains("connection.created,sync.completed") && !listed.contains(&secret),
        "never its secret: {listed}"
    );
    ok(&["event-endpoints", "create", "--tenant", "globex", "--url", url, "--event-type", "sync.failed"]);
    let (other, _) = ok(&["event-endpoints", "list", "--tenant", "globex"]);
    assert!(!other.contains(&id), "another tenant lists nothing of acme's: {other}");

    let (rotated, _) = ok(&["event-endpoints", "rotate-secret", "--tenant", "acme", "--overlap-seconds", "0", &id]);
    let rotated = rotated.trim().to_string();
    assert!(rotated.starts_with("whsec_") && rotated != secret, "a new secret is printed once");
    let refused = run(&["event-endpoints", "rotate-secret", "--tenant", "globex", &id]);
    assert!(!refused.status.success() && text(&refused).contains("no event endpoint"), "{}", text(&refused));
    let bad = run(&["event-endpoints", "create", "--tenant", "acme", "--url", url, "--event-type", "no.such"]);
    assert!(!bad.status.success() && text(&bad).contains("event_types"), "{}", text(&bad));

    ok(&["event-endpoints", "delete", "--tenant", "acme", &id]);
    let (listed, _) = ok(&["event-endpoints", "list", "--tenant", "acme"]);
    assert!(!listed.contains(&id), "deleted: {listed}");
    let again = run(&["event-endpoints", "delete", "--tenant", "acme", &id]);
    assert!(!again.status.success(), "deleting twice fails: {}", text(&again));
}

#[tokio::test]
async fn healthcheck_exits_zero_only_when_the_instance_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let down = patchbay(dir.path()).args(["healthcheck", "--listen", &format!("127.0.0.1:{port}")]).output().unwrap();
    assert_eq!(down.status.code(), Some(1), "nothing listening: exit 1");
    let mut served = Served::start(patchbay(dir.path()));
    served.wait_ready().await;
    let up =
        patchbay(dir.path()).args(["healthcheck", "--listen", &format!("127.0.0.1:{}", served.port)]).output().unwrap();
    assert_eq!(up.status.code(), Some(0), "ready: exit 0 ({})", text(&up));
    let check = patchbay(dir.path()).arg("check-config").output().unwrap();
    assert!(check.status.success() && text(&check).contains("configuration is valid"), "{}", text(&check));
    assert!(served.terminate().success());
}
