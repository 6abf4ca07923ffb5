//! Ingest durability on Postgres (issue 8 "Done when"): a steady load of Standard-Webhooks-signed
//! deliveries over real HTTP while the database server is restarted twice (`pg_ctl restart -m
//! fast`, then `-m immediate`, a crash). Afterwards every delivery that got a 2xx is in the inbox
//! exactly once, every other one got a 5xx or a connection error, and ingest works again.
//!
//! The server is a throwaway cluster of this test's own (initdb + pg_ctl on a free port in a
//! temp dir), never the shared one. Skipped with a message only when initdb is not installed.

use crate::helpers::{json, spawn, token, Db, TestApp};
use patchbay_webhooks::scheme::sign_standard;
use patchbay_webhooks::SigningKey;
use secrecy::SecretString;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Postgres server tool from PATH or the highest /usr/lib/postgresql/*/bin.
fn pg_tool(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file()));
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let tool = entry.path().join("bin").join(name);
            tool.is_file().then_some((major, tool))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, tool)| tool)
}

/// A private cluster, stopped (immediately) and deleted on drop.
struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// initdb refuses to run as root: then every tool runs as `postgres` through runuser.
    as_user: Option<&'static str>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Option<Self> {
        let Some(initdb) = pg_tool("initdb") else {
            println!(
                "skipped: initdb is not installed (apt-get install postgresql), so no private Postgres can be started"
            );
            return None;
        };
        let pg_ctl = pg_tool("pg_ctl").expect("pg_ctl is installed beside initdb");
        let dir = tempfile::tempdir().expect("a temp dir for the cluster");
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let as_user = root.then_some("postgres");
        if let Some(user) = as_user {
            let chown = Command::new("chown").arg("-R").arg(format!("{user}:")).arg(dir.path()).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown the cluster's dir to {user}");
        }
        let port = crate::helpers::free_port();
        let cluster = Self {
            pg_ctl,
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            port,
            as_user,
            _dir: dir,
        };
        let data = cluster.data.clone();
        cluster.run(&initdb, &["-D", path(&data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8"]);
        cluster.pg_ctl(&["start"]);
        Some(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &Path, args: &[&str]) {
        let mut command = match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(tool);
                c
            }
            None => Command::new(tool),
        };
        // From /, so an unreadable working directory does not matter to the other user.
        let output = command.args(args).current_dir("/").output().expect("run a Postgres tool");
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            tool.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl ACTION [-m MODE]` on this cluster, waiting until it is done.
    fn pg_ctl(&self, action: &[&str]) {
        let options =
            format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, path(self.data.parent().unwrap()));
        let mut args = vec!["-D", path(&self.data), "-l", path(&self.log), "-w", "-t", "60", "-o", &options];
        args.extend_from_slice(action);
        let pg_ctl = self.pg_ctl.clone();
        self.run(&pg_ctl, &args);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.clone();
        let mut command = match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&self.pg_ctl);
                c
            }
            None => Command::new(&self.pg_ctl),
        };
        let _ = command.args(["-D", path(&data), "-m", "immediate", "-w", "stop"]).current_dir("/").output();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    ServerError,
    ConnectionError,
}

async fn deliver(app: &TestApp, path: &str, key: &SigningKey, id: &str) -> Result<Outcome, String> {
    let ts = chrono::Utc::now().timestamp();
    let body = format!(r#"{{"id":"{id}"}}"#).into_bytes();
    let sent = app
        .client
        .post(app.url(path))
        .timeout(Duration::from_secs(30))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign_standard(key, id, ts, &body))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(Outcome::Acknowledged),
        Ok(r) if r.status().is_server_error() => Ok(Outcome::ServerError),
        Ok(r) => Err(format!("{id}: {} is neither a 2xx nor a 5xx", r.status())),
        Err(e) if e.is_connect() || e.is_request() || e.is_timeout() => Ok(Outcome::ConnectionError),
        Err(e) => Err(format!("{id}: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_delivery_survives_postgres_restarts_exactly_once() {
    let Some(cluster) = Cluster::start() else { return };
    let env = HashMap::from([("PATCHBAY_DATABASE_URL".to_owned(), cluster.url())]);
    // The route's per-address limit is not what this test is about (and a 429 is neither answer).
    let args = ["--tenant-claim", "org", "--webhooks-per-second", "1000000", "--webhooks-burst", "1000000"];
    let app = spawn(Db::Sqlite, &args, env).await.expect("the app starts on the cluster");
    let admin = token("admin-acme", json!({"org": "acme", "role": "admin"}));
    let created = app
        .client
        .post(app.url("/v1/webhook-sources"))
        .bearer_auth(&admin)
        .json(&json!({"name": "durable", "scheme": "standard_webhooks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    let key = SigningKey::from_secret(
        patchbay_store::WebhookScheme::StandardWebhooks,
        &SecretString::from(created["secret"].as_str().unwrap().to_owned()),
    )
    .unwrap();
    let url = created["url"].as_str().unwrap();
    let path = url[url.find("/webhooks/").unwrap()..].to_owned();
    let source_id = created["id"].as_str().unwrap().to_owned();

    // Eight senders, each one delivery at a time with fresh ids, until told to stop.
    let (app, key, path) = (Arc::new(app), Arc::new(key), Arc::new(path));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (app, key, path, stop) = (app.clone(), key.clone(), path.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("msg_{sender}_{n}");
                    n += 1;
                    let outcome = deliver(&app, &path, &key, &id).await;
                    outcomes.push((id, outcome, Instant::now()));
                }
                outcomes
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first_restart = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.pg_ctl(&["-m", "fast", "restart"]);
        cluster
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second_restart = Instant::now();
    let crash_wall_clock = chrono::Utc::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.pg_ctl(&["-m", "immediate", "restart"]);
        cluster
    })
    .await
    .unwrap();
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = Vec::new();
    for sender in senders {
        outcomes.extend(sender.await.unwrap());
    }
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for (id, outcome, _) in &outcomes {
        match outcome {
            Ok(Outcome::Acknowledged) => acknowledged.push(id.clone()),
            Ok(Outcome::ServerError | Outcome::ConnectionError) => failed += 1,
            Err(unexpected) => panic!("every delivery gets a 2xx, a 5xx or a connection error: {unexpected}"),
        }
    }
    // The load was steady across both restarts: acknowledged deliveries before, between, after.
    let acknowledged_in = |from: Instant, to: Instant| {
        outcomes.iter().any(|(_, o, at)| *at >= from && *at < to && matches!(o, Ok(Outcome::Acknowledged)))
    };
    let start = outcomes.iter().map(|(_, _, at)| *at).min().expect("deliveries were sent");
    assert!(acknowledged_in(start, first_restart), "deliveries were acknowledged before the first restart");
    assert!(acknowledged_in(first_restart, second_restart), "and between the restarts");
    let recovered = outcomes
        .iter()
        .filter(|(_, outcome, at)| {
            *at > restarted + Duration::from_secs(1) && matches!(outcome, Ok(Outcome::Acknowledged))
        })
        .count();
    assert!(recovered > 0, "ingest works again after the restarts");
    // One more, after everything: acknowledged.
    let last = deliver(&app, &path, &key, "msg_after").await.unwrap();
    assert_eq!(last, Outcome::Acknowledged, "ingest works again after the restarts");
    acknowledged.push("msg_after".to_owned());

    // Straight from the database: every acknowledged delivery exactly once.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url()).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT dedup_key, count(*) FROM webhook_event WHERE source_kind = 'source' AND source_id = $1 GROUP BY dedup_key",
    )
    .bind(&source_id)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let stored: HashMap<String, i64> = rows.into_iter().collect();
    let started: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT pg_postmaster_start_time()").fetch_one(&mut db).await.unwrap();
    assert!(started > crash_wall_clock, "the server really was restarted during the load");
    for id in &acknowledged {
        assert_eq!(stored.get(id).copied(), Some(1), "{id} was acknowledged, so it is in the inbox exactly once");
    }
    println!(
        "{} deliveries: {} acknowledged, {failed} refused with a 5xx or a connection error; {} rows stored",
        outcomes.len() + 1,
        acknowledged.len(),
        stored.len()
    );
    let app = Arc::try_unwrap(app).ok().expect("no sender holds the app");
    app.stop().await;
    drop(cluster);
}
