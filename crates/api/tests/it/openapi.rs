//! The served OpenAPI document against the server that serves it: a walker sends every declared
//! operation the bad input its declaration calls for, and checks that (a) every status answered
//! is declared for that operation, with a declared media type, problem details for problems,
//! and (b) every declared 4xx the walker knows how to provoke is provoked. Plus the input edges:
//! `limit=0`, cursors from another list, malformed path ids, the URI and header limits.

use crate::helpers::{json, spawn, spawn_app, token, Db, TestApp};
use patchbay_api::auth::api_key;
use patchbay_api::http::middleware::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use patchbay_store::{
    ApiKeyScope, ConnectionStatus, NewApiKey, NewAuditEvent, NewConnection, ProviderId, TenantId, UserId,
};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPERATOR: &str = "operator-token-0123456789abcdef";
const APP_ORIGIN: &str = "https://app.example";
const BODY_LIMIT: usize = 1024;
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// One operation of the document.
#[derive(Clone)]
struct Op {
    method: Method,
    path: String,
    op: Value,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn declared(&self) -> BTreeSet<u16> {
        self.op["responses"].as_object().unwrap().keys().filter_map(|k| k.parse().ok()).collect()
    }

    fn scheme(&self) -> Option<String> {
        let security = self.op["security"].as_array()?;
        security.first()?.as_object()?.keys().next().cloned()
    }

    fn is_browser(&self) -> bool {
        self.op["x-patchbay-browser"] == true
    }

    fn params(&self, place: &str) -> Vec<&Value> {
        self.op["parameters"].as_array().map(|ps| ps.iter().filter(|p| p["in"] == place).collect()).unwrap_or_default()
    }

    fn uuid_path_params(&self) -> Vec<String> {
        self.params("path")
            .into_iter()
            .filter(|p| p["schema"]["format"] == "uuid")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn has_query(&self, name: &str) -> bool {
        self.params("query").iter().any(|p| p["name"] == name)
    }

    /// The request path with every parameter filled: unknown UUIDs for ids, a placeholder for
    /// the rest (`provider` gets a real provider name).
    fn concrete(&self, overrides: &HashMap<String, String>) -> String {
        let mut path = self.path.clone();
        for p in self.params("path") {
            let name = p["name"].as_str().unwrap();
            let value = overrides.get(name).cloned().unwrap_or_else(|| {
                if p["schema"]["format"] == "uuid" {
                    uuid::Uuid::now_v7().to_string()
                } else if name == "provider" {
                    "google".to_string()
                } else {
                    format!("walker-{name}")
                }
            });
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        path
    }
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.push(Op { method: method.to_uppercase().parse().unwrap(), path: path.clone(), op: op.clone() });
            }
        }
    }
    out
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("{reference} resolves")))
        }
        None => value,
    }
}

/// The media types declared for `status` (empty when the response has no body).
fn media_types(doc: &Value, op: &Op, status: u16) -> Vec<String> {
    let response = resolve(doc, &op.op["responses"][status.to_string()]);
    response["content"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default()
}

/// The variants of an operation's JSON body schema (one, unless the schema is a `oneOf`).
fn body_variants<'a>(doc: &'a Value, op: &'a Op) -> Vec<&'a Value> {
    let schema = &op.op["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return Vec::new();
    }
    let schema = resolve(doc, schema);
    match schema["oneOf"].as_array() {
        Some(variants) => variants.iter().map(|v| resolve(doc, v)).collect(),
        None => vec![schema],
    }
}

/// A value for a property, from its example or its enum.
fn sample(doc: &Value, property: &Value) -> Value {
    let property = resolve(doc, property);
    if let Some(example) = property.get("example") {
        return example.clone();
    }
    if let Some(first) = property["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    panic!("the walker needs an example or an enum for a required body property: {property}")
}

/// The smallest valid body of a variant: its required properties.
fn minimal_body(doc: &Value, variant: &Value) -> Map<String, Value> {
    let mut body = Map::new();
    for name in variant["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        body.insert(name.to_string(), sample(doc, &variant["properties"][name]));
    }
    body
}

/// The optional properties of a variant that are ids.
fn optional_uuid_properties(variant: &Value) -> Vec<String> {
    let required: Vec<&Value> = variant["required"].as_array().map(|r| r.iter().collect()).unwrap_or_default();
    variant["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, p)| p["format"] == "uuid" && !required.contains(&&Value::from(name.as_str())))
        .map(|(name, _)| name.clone())
        .collect()
}

/// What the walker holds while walking.
struct Walker<'a> {
    doc: &'a Value,
    /// Per operation: every status answered.
    answered: BTreeMap<String, BTreeSet<u16>>,
}

impl<'a> Walker<'a> {
    /// Checks one answer against the operation's declaration and records its status.
    async fn check(&mut self, op: &Op, what: &str, response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        self.record(op, what, status, &headers, &text)
    }

    fn record(&mut self, op: &Op, what: &str, status: u16, headers: &HeaderMap, text: &str) -> (u16, Value) {
        let name = op.name();
        assert!(
            op.declared().contains(&status),
            "{name} ({what}): answered {status}, which the document does not declare ({:?}); body: {text}",
            op.declared()
        );
        self.answered.entry(name.clone()).or_default().insert(status);
        let media: Vec<String> = media_types(self.doc, op, status);
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().trim().to_string());
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if !media.is_empty() {
            let content_type =
                content_type.unwrap_or_else(|| panic!("{name} ({what}): {status} without a content type"));
            assert!(media.contains(&content_type), "{name} ({what}): {status} is {content_type}, declared {media:?}");
        }
        if status >= 400 && media.contains(&"application/problem+json".to_string()) {
            assert_eq!(
                headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{name} ({what}): {status} is problem details"
            );
            let code = body["code"].as_str().unwrap_or_else(|| panic!("{name} ({what}): a problem code: {text}"));
            assert_eq!(body["type"], format!("urn:patchbay:problem:{code}"), "{name} ({what})");
            assert_eq!(body["status"], status, "{name} ({what}): status in the body");
            assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{name} ({what}): a title");
        }
        (status, body)
    }

    fn answered(&self, op: &Op) -> BTreeSet<u16> {
        self.answered.get(&op.name()).cloned().unwrap_or_default()
    }
}

/// Everything the walk needs from one app.
struct Callers {
    admin: String,
    member: String,
    keys: Vec<String>,
}

async fn callers(app: &TestApp) -> Callers {
    let tenant = app.store.upsert_tenant("org:walker").await.unwrap();
    let mut keys = Vec::new();
    for scope in [ApiKeyScope::Read, ApiKeyScope::Connect] {
        keys.push(key_for(app, tenant.id, vec![scope]).await);
    }
    Callers { admin: token("walker-admin", json!({"role": "admin"})), member: token("walker-member", json!({})), keys }
}

async fn key_for(app: &TestApp, tenant: TenantId, scopes: Vec<ApiKeyScope>) -> String {
    let generated = api_key::generate();
    let new = NewApiKey {
        tenant_id: tenant,
        name: "walker".into(),
        prefix: generated.prefix,
        sha256: generated.sha256,
        scopes,
        expires_at: None,
    };
    app.store.create_api_key(new).await.unwrap();
    generated.key.expose_secret().to_string()
}

/// The most capable credential for an operation.
fn credential(op: &Op, callers: &Callers) -> Option<String> {
    match op.scheme().as_deref() {
        Some("bearer") => Some(callers.admin.clone()),
        Some("operator_token") => Some(OPERATOR.to_string()),
        _ => None,
    }
}

fn request(app: &TestApp, op: &Op, path: &str, bearer: Option<&str>) -> RequestBuilder {
    let mut builder = app.client.request(op.method.clone(), app.url(path));
    // A declared `Idempotency-Key` header (write-back) gets a fresh key, as a client sends one.
    if op.params("header").iter().any(|p| p["name"] == "Idempotency-Key") {
        builder = builder.header("idempotency-key", format!("walker-{}", uuid::Uuid::now_v7()));
    }
    match bearer {
        Some(bearer) => builder.bearer_auth(bearer),
        None => builder,
    }
}

/// A valid body for the operation, when it takes one.
fn valid_body(doc: &Value, op: &Op) -> Option<Value> {
    body_variants(doc, op).first().map(|v| Value::Object(minimal_body(doc, v)))
}

fn with_body(builder: RequestBuilder, body: &Option<Value>) -> RequestBuilder {
    match body {
        Some(body) => builder.json(body),
        None => builder,
    }
}

fn walker_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--google-client-id", "walker-google", "--return-to-origins", APP_ORIGIN];
    args.extend_from_slice(extra);
    args
}

fn walker_env(admin: bool) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("PATCHBAY_GOOGLE_CLIENT_SECRET".to_string(), "walker-google-secret".to_string());
    if admin {
        env.insert("PATCHBAY_ADMIN_TOKENS".to_string(), OPERATOR.to_string());
    }
    env
}

/// Sends a request whose body never finishes arriving, over a raw connection; returns the
/// status, headers and body of the answer.
async fn stalled_body(app: &TestApp, op: &Op, path: &str, bearer: Option<&str>) -> (u16, HeaderMap, String) {
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n",
        op.method
    );
    if let Some(bearer) = bearer {
        head.push_str(&format!("Authorization: Bearer {bearer}\r\n"));
    }
    head.push_str("\r\n{");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers a stalled body within its timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
    }
    (status, headers, body.to_string())
}

#[tokio::test]
async fn every_declared_operation_answers_only_what_it_declares_and_every_provokable_error() {
    let rates = [
        "--v1-per-second",
        "1000",
        "--v1-burst",
        "100000",
        "--connect-per-second",
        "1000",
        "--connect-burst",
        "100000",
        "--principal-per-second",
        "1000",
        "--principal-burst",
        "100000",
    ];
    let mut main_args = walker_args(&rates);
    main_args.extend_from_slice(&["--body-limit-bytes", "1024"]);
    let app = spawn(Db::Sqlite, &main_args, walker_env(true)).await.unwrap();
    // A strict rate limit (429), a one-second timeout (408), and the admin API off (404).
    let limited = spawn(
        Db::Sqlite,
        &walker_args(&[
            "--v1-per-second",
            "0.01",
            "--v1-burst",
            "1",
            "--connect-per-second",
            "0.01",
            "--connect-burst",
            "1",
        ]),
        walker_env(true),
    )
    .await
    .unwrap();
    let slow = spawn(Db::Sqlite, &walker_args(&["--request-timeout-seconds", "1"]), walker_env(true)).await.unwrap();
    let admin_off = spawn(Db::Sqlite, &walker_args(&[]), walker_env(false)).await.unwrap();

    let doc = json(app.get("/openapi.json").await).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 13, "the document lists the API and browser routes");
    let callers = callers(&app).await;
    let mut walker = Walker { doc: &doc, answered: BTreeMap::new() };
    let mut provokable: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let none = HashMap::new();

    for op in &ops {
        let name = op.name();
        let mine = provokable.entry(name.clone()).or_default();
        let bearer = credential(op, &callers);
        let body = valid_body(&doc, op);

        // No credential, otherwise a good request.
        let response = with_body(request(&app, op, &op.concrete(&none), None), &body).send().await.unwrap();
        walker.check(op, "no credential", response).await;
        if op.scheme().is_some() {
            mine.insert(401);
        }

        // The most capable credential, unknown ids.
        let response =
            with_body(request(&app, op, &op.concrete(&none), bearer.as_deref()), &body).send().await.unwrap();
        walker.check(op, "unknown ids", response).await;

        // A malformed id in each id parameter: 400, naming the parameter, not echoing it.
        for param in op.uuid_path_params() {
            mine.extend([400, 404]);
            let marker = format!("not-a-uuid-{}", "x".repeat(64));
            let overrides = HashMap::from([(param.clone(), marker.clone())]);
            let response =
                with_body(request(&app, op, &op.concrete(&overrides), bearer.as_deref()), &body).send().await.unwrap();
            let (status, problem) = walker.check(op, "malformed path id", response).await;
            assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_path")), "{name}: {problem}");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(!detail.contains("not-a-uuid"), "{name}: the detail does not echo the id: {detail}");
            assert!(detail.contains(&format!("`{param}`")), "{name}: the detail names the parameter: {detail}");
        }

        // Lists: limit=0 and a cursor this API never made.
        if op.has_query("limit") {
            mine.insert(400);
            for query in ["limit=0", "cursor=not-a-cursor"] {
                let path = format!("{}?{query}", op.concrete(&none));
                let response = request(&app, op, &path, bearer.as_deref()).send().await.unwrap();
                let (status, problem) = walker.check(op, query, response).await;
                assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_query")), "{name} {query}");
            }
        }

        // JSON bodies: malformed, wrong media type, each variant missing each required field,
        // and ids that name nothing.
        if let Some(valid) = &body {
            mine.extend([400, 415, 408]);
            let path = op.concrete(&none);
            let response = request(&app, op, &path, bearer.as_deref())
                .header(CONTENT_TYPE, "application/json")
                .body("{")
                .send()
                .await
                .unwrap();
            let (status, problem) = walker.check(op, "malformed JSON", response).await;
            assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_json")), "{name}");

            let response = request(&app, op, &path, bearer.as_deref())
                .header(CONTENT_TYPE, "text/plain")
                .body(valid.to_string())
                .send()
                .await
                .unwrap();
            let (status, _) = walker.check(op, "text/plain body", response).await;
            assert_eq!(status, 415, "{name}: a body that is not JSON");

            for variant in body_variants(&doc, op) {
                let complete = minimal_body(&doc, variant);
                let response = request(&app, op, &path, bearer.as_deref()).json(&complete).send().await.unwrap();
                let (status, created) = walker.check(op, "a variant's minimal body", response).await;
                // A route whose path names ids gets unknown ones from the walker: the valid body
                // passes validation and the ids answer 404 (write-back: a connection, board and
                // item would need a synced monday account behind them).
                if op.uuid_path_params().is_empty() {
                    assert!((200..300).contains(&status), "{name}: {complete:?} is valid: {created}");
                } else {
                    assert_eq!(status, 404, "{name}: {complete:?} is valid, the ids name nothing: {created}");
                }
                for field in complete.keys() {
                    let mut partial = complete.clone();
                    partial.remove(field);
                    let response = request(&app, op, &path, bearer.as_deref()).json(&partial).send().await.unwrap();
                    let (status, _) = walker.check(op, &format!("without `{field}`"), response).await;
                    assert_eq!(status, 400, "{name}: `{field}` is required in {partial:?}");
                }
                for field in optional_uuid_properties(variant) {
                    mine.insert(404);
                    let mut unknown = complete.clone();
                    unknown.insert(field.clone(), Value::from(uuid::Uuid::now_v7().to_string()));
                    let response = request(&app, op, &path, bearer.as_deref()).json(&unknown).send().await.unwrap();
                    walker.check(op, &format!("unknown `{field}`"), response).await;
                }
            }

            // A body that stops arriving: 408 once the request timeout passes.
            let (status, headers, text) = stalled_body(&slow, op, &op.concrete(&none), bearer.as_deref()).await;
            walker.record(op, "stalled body", status, &headers, &text);
            assert_eq!(status, 408, "{name}: a stalled body times out");
        }

        // Lesser credentials: API keys with one scope each, and a member without the admin role.
        if op.scheme().as_deref() == Some("bearer") {
            mine.insert(403);
            let mut lesser = callers.keys.clone();
            lesser.push(callers.member.clone());
            for bearer in lesser {
                let response =
                    with_body(request(&app, op, &op.concrete(&none), Some(&bearer)), &body).send().await.unwrap();
                walker.check(op, "lesser credential", response).await;
            }
        }

        // Operator routes with the admin API off.
        if op.scheme().as_deref() == Some("operator_token") {
            mine.insert(404);
            let response = request(&admin_off, op, &op.concrete(&none), Some(OPERATOR)).send().await.unwrap();
            walker.check(op, "admin API off", response).await;
        }

        // Every route: the body limit (on any method), the URI limit, the header limit.
        mine.extend([413, 414, 431]);
        let response = request(&app, op, &op.concrete(&none), bearer.as_deref())
            .header(CONTENT_TYPE, "application/json")
            .body(vec![b' '; BODY_LIMIT * 2])
            .send()
            .await
            .unwrap();
        let (status, _) = walker.check(op, "oversized body", response).await;
        assert_eq!(status, 413, "{name}: an oversized body");
        let long = format!("{}?pad={}", op.concrete(&none), "a".repeat(MAX_URI_BYTES));
        let response = with_body(request(&app, op, &long, bearer.as_deref()), &body).send().await.unwrap();
        let (status, _) = walker.check(op, "long URI", response).await;
        assert_eq!(status, 414, "{name}: a long URI");
        let response = with_body(request(&app, op, &op.concrete(&none), bearer.as_deref()), &body)
            .header("x-pad", "a".repeat(MAX_HEADER_BYTES))
            .send()
            .await
            .unwrap();
        let (status, _) = walker.check(op, "large headers", response).await;
        assert_eq!(status, 431, "{name}: large headers");

        // The rate limits: a few calls in a row on the strict app.
        mine.insert(429);
        let limited_bearer = match op.scheme().as_deref() {
            Some("bearer") => Some(callers.admin.clone()),
            Some("operator_token") => Some(OPERATOR.to_string()),
            _ => None,
        };
        for _ in 0..3 {
            let response = with_body(request(&limited, op, &op.concrete(&none), limited_bearer.as_deref()), &body)
                .send()
                .await
                .unwrap();
            walker.check(op, "a burst", response).await;
        }
    }

    // (b) Every declared 4xx the walker knows how to provoke was provoked.
    for op in &ops {
        let name = op.name();
        let declared_4xx: BTreeSet<u16> = op.declared().into_iter().filter(|s| (400..500).contains(s)).collect();
        let knows = &provokable[&name];
        let missed: Vec<u16> =
            declared_4xx.iter().filter(|s| knows.contains(s) && !walker.answered(op).contains(s)).copied().collect();
        assert!(missed.is_empty(), "{name}: declared {missed:?} but the walker could not provoke it");
        // The walk knows how to provoke every 4xx the API routes declare, but 408 without a
        // body to stall (that needs a store slower than the request timeout).
        // Nor the answers that need a live, synced connection at a provider (write-back and the
        // proxy: 409 for an inactive connection or a key in flight, 422 for monday's refusals
        // and a reused key); tests/it/writeback.rs and proxy.rs provoke those against the fakes.
        // A redrive's 409 needs a delivery still pending (tests/it/event_endpoints.rs).
        let needs_provider =
            op.path.ends_with("/column-values") || op.path.contains("/proxy/") || op.path.ends_with("/redrive");
        if !op.is_browser() {
            let unknown: Vec<&u16> = declared_4xx
                .iter()
                .filter(|s| !knows.contains(s) && **s != 408 && !(needs_provider && [409, 422].contains(*s)))
                .collect();
            assert!(unknown.is_empty(), "{name}: the walker has no way to provoke {unknown:?}");
        }
    }

    // 405 on every path, for a method it does not list, with `Allow` naming the ones it does.
    assert!(doc["components"]["responses"]["MethodNotAllowed"].is_object(), "405 is documented");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let listed: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.contains(&k.as_str()))
            .map(|k| k.to_uppercase())
            .collect();
        // The proxy lists all four; TRACE is refused there like anywhere.
        let method = ["PATCH", "PUT", "DELETE", "POST", "TRACE"].into_iter().find(|m| !listed.contains(*m)).unwrap();
        let first = item.as_object().unwrap().iter().find(|(k, _)| METHODS.contains(&k.as_str())).unwrap().1;
        let op = Op { method: Method::GET, path: path.clone(), op: first.clone() };
        let url = app.url(&op.concrete(&none));
        let response =
            app.client.request(method.parse().unwrap(), url).bearer_auth(&callers.admin).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allow: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(allow, listed, "{method} {path}: Allow lists the documented methods");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json", "{method} {path}");
        assert_eq!(json(response).await["code"], "method_not_allowed", "{method} {path}");
    }

    for app in [app, limited, slow, admin_off] {
        app.stop().await;
    }
}

#[tokio::test]
async fn the_connect_session_body_is_one_of_redirect_or_popup_and_ids_are_uuids() {
    let app = spawn_app().await;
    let doc = json(app.get("/openapi.json").await).await;
    let schemas = &doc["components"]["schemas"];
    let body = &schemas["ConnectSessionIn"];
    assert_eq!(body["discriminator"]["propertyName"], "mode");
    let variants: Vec<&Value> = body["oneOf"].as_array().unwrap().iter().map(|v| resolve(&doc, v)).collect();
    assert_eq!(variants.len(), 2);
    let by_mode: HashMap<String, &Value> =
        variants.iter().map(|v| (v["properties"]["mode"]["enum"][0].as_str().unwrap().to_string(), *v)).collect();
    let required = |mode: &str| -> BTreeSet<String> {
        by_mode[mode]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert!(required("redirect").contains("return_to") && !required("redirect").contains("opener_origin"));
    assert!(required("popup").contains("opener_origin") && !required("popup").contains("return_to"));
    for variant in &variants {
        assert_eq!(variant["additionalProperties"], false, "unknown fields are refused");
        assert_eq!(resolve(&doc, &variant["properties"]["provider"])["enum"], json!(["google", "monday"]));
        for id in ["connection_id", "user_id"] {
            assert_eq!(variant["properties"][id]["format"], "uuid", "{id}");
        }
    }
    assert!(body["description"].as_str().unwrap().contains("user_id"), "the caller-dependent rule is described");
    assert_eq!(schemas["ConnectMode"]["enum"], json!(["redirect", "popup"]));
    assert_eq!(
        schemas["ConnectionStatus"]["enum"],
        json!(ConnectionStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    );

    // Ids are uuids wherever they appear: path parameters, response fields.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values().filter(|v| v.is_object()) {
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["name"] == "id" {
                    assert_eq!(param["schema"]["format"], "uuid", "{path}: `id`");
                }
            }
        }
    }
    for (schema, fields) in [
        ("ConnectionOut", vec!["id", "user_id"]),
        ("MeOut", vec!["tenant_id", "user_id"]),
        ("ApiKeyOut", vec!["id"]),
        ("AuditEventOut", vec!["id"]),
        ("DisconnectOut", vec!["id"]),
        ("ConnectSessionCreated", vec!["id"]),
        ("ConnectSessionOut", vec!["id", "connection_id"]),
    ] {
        for field in fields {
            assert_eq!(schemas[schema]["properties"][field]["format"], "uuid", "{schema}.{field}");
        }
    }
    let fleet = schemas["FleetConnectionOut"]["allOf"].as_array().unwrap();
    assert!(
        fleet.iter().any(|part| part["properties"]["tenant_id"]["format"] == "uuid"),
        "FleetConnectionOut.tenant_id"
    );
    app.stop().await;
}

#[tokio::test]
async fn limit_zero_is_refused_on_every_list_and_large_limits_are_clamped() {
    let mut env = HashMap::new();
    env.insert("PATCHBAY_ADMIN_TOKENS".to_string(), OPERATOR.to_string());
    let app = spawn(Db::Sqlite, &[], env).await.unwrap();
    let admin = token("lister", json!({"role": "admin"}));
    for (list, bearer) in
        [("/v1/connections", &admin), ("/v1/audit-events", &admin), ("/admin/v1/connections", &OPERATOR.to_string())]
    {
        let response = app.get_as(&format!("{list}?limit=0"), bearer).await;
        assert_eq!(response.status(), 400, "{list}");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let problem = json(response).await;
        assert_eq!(problem["code"], "invalid_query", "{list}");
        assert!(problem["detail"].as_str().unwrap().contains("limit"), "{list}: {problem}");
        for limit in ["1", "500", "501", "100000"] {
            let response = app.get_as(&format!("{list}?limit={limit}"), bearer).await;
            assert_eq!(response.status(), 200, "{list}?limit={limit}");
        }
    }
    app.stop().await;
}

fn connection(tenant_id: TenantId, user_id: UserId, account: &str) -> NewConnection {
    NewConnection {
        tenant_id,
        user_id,
        provider: ProviderId::Monday,
        provider_account_id: account.into(),
        provider_user_id: None,
        account_name: None,
        account_email: None,
        scopes: vec![],
        status: ConnectionStatus::Active,
        status_reason: None,
    }
}

#[tokio::test]
async fn a_cursor_pages_its_own_list_and_is_refused_by_the_others() {
    let mut env = HashMap::new();
    env.insert("PATCHBAY_ADMIN_TOKENS".to_string(), OPERATOR.to_string());
    let app = spawn(Db::Sqlite, &[], env).await.unwrap();
    let admin = token("pager", json!({"role": "admin"}));
    let me = json(app.get_as("/v1/me", &admin).await).await;
    let tenant: TenantId = me["tenant_id"].as_str().unwrap().parse().unwrap();
    let user: UserId = me["user_id"].as_str().unwrap().parse().unwrap();
    for i in 0..3 {
        app.store.create_connection(connection(tenant, user, &format!("acct-{i}"))).await.unwrap();
        app.store
            .record_audit(NewAuditEvent {
                tenant_id: Some(tenant),
                actor: "test".into(),
                action: format!("test.{i}"),
                target: None,
                request_id: None,
                ip: None,
            })
            .await
            .unwrap();
    }
    let operator = OPERATOR.to_string();
    let lists = [("/v1/connections", &admin), ("/v1/audit-events", &admin), ("/admin/v1/connections", &operator)];
    let mut cursors = Vec::new();
    for (list, bearer) in lists {
        let first = json(app.get_as(&format!("{list}?limit=1"), bearer).await).await;
        let cursor =
            first["next_cursor"].as_str().unwrap_or_else(|| panic!("{list}: a next page: {first}")).to_string();
        assert!(uuid::Uuid::parse_str(&cursor).is_err(), "{list}: the cursor is opaque, not a bare id");
        // Keyset semantics: the next page starts after the first row.
        let second = json(app.get_as(&format!("{list}?limit=1&cursor={cursor}"), bearer).await).await;
        assert_ne!(first["data"][0]["id"], second["data"][0]["id"], "{list}: the cursor moves on");
        assert_eq!(second["data"].as_array().unwrap().len(), 1, "{list}");
        cursors.push((list, cursor, first["data"][0]["id"].as_str().unwrap().to_string()));
    }
    for (from, cursor, last_id) in &cursors {
        for (list, bearer) in lists {
            if list == *from {
                continue;
            }
            let response = app.get_as(&format!("{list}?cursor={cursor}"), bearer).await;
            assert_eq!(response.status(), 400, "a cursor of {from} on {list}");
            let problem = json(response).await;
            assert_eq!(problem["code"], "invalid_query", "a cursor of {from} on {list}");
            // The old format (a bare id) is no cursor either.
            let response = app.get_as(&format!("{list}?cursor={last_id}"), bearer).await;
            assert_eq!(response.status(), 400, "a bare id on {list}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_path_id_is_named_but_not_echoed() {
    let app = spawn_app().await;
    let user = token("pathy", json!({}));
    let pasted = format!("pasted-{}", "secret-looking-value-".repeat(20));
    for route in ["/v1/connections", "/v1/connect-sessions"] {
        let response = app.get_as(&format!("{route}/{pasted}"), &user).await;
        assert_eq!(response.status(), 400, "{route}");
        let problem = json(response).await;
        assert_eq!(problem["code"], "invalid_path", "{route}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(!detail.contains("pasted") && !detail.contains("secret-looking"), "{route}: {detail}");
        assert!(detail.contains("`id`"), "{route}: names the parameter: {detail}");
    }
    app.stop().await;
}

#[tokio::test]
async fn uri_and_header_limits_answer_problem_details_at_the_documented_sizes() {
    let app = spawn_app().await;
    let doc = json(app.get("/openapi.json").await).await;
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(description.contains(&format!("{MAX_URI_BYTES} bytes")), "the URI limit is documented");
    assert!(description.contains(&format!("{MAX_HEADER_BYTES} bytes")), "the header limit is documented");

    // The target of `/healthz?p=<pad>` is exactly the limit, then one byte over.
    let pad = MAX_URI_BYTES - "/healthz?p=".len();
    let at_limit = app.get(&format!("/healthz?p={}", "a".repeat(pad))).await;
    assert_eq!(at_limit.status(), 200, "a target at the limit is served");
    let over = app.get(&format!("/healthz?p={}", "a".repeat(pad + 1))).await;
    assert_eq!(over.status(), 414);
    assert_eq!(over.headers()[CONTENT_TYPE], "application/problem+json");
    assert!(over.headers().get("x-request-id").is_some(), "limited answers carry a request id");
    assert_eq!(json(over).await["code"], "uri_too_long");

    // Headers: well under the limit is served; just over it is refused.
    let served =
        app.client.get(app.url("/healthz")).header("x-pad", "a".repeat(MAX_HEADER_BYTES / 2)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    let over = app.client.get(app.url("/healthz")).header("x-pad", "a".repeat(MAX_HEADER_BYTES)).send().await.unwrap();
    assert_eq!(over.status(), 431);
    assert_eq!(over.headers()[CONTENT_TYPE], "application/problem+json");
    let problem = json(over).await;
    assert_eq!(problem["code"], "headers_too_large");
    assert_eq!(problem["status"], 431);
    // Many small headers add up the same way.
    let mut many = app.client.get(app.url("/healthz"));
    for i in 0..80 {
        many = many.header(format!("x-pad-{i}"), "a".repeat(MAX_HEADER_BYTES / 64));
    }
    let over = many.send().await.unwrap();
    assert_eq!(over.status(), 431, "the header section is counted as a whole");
    app.stop().await;
}
