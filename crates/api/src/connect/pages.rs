//! The few HTML pages Patchbay serves to browsers: the self-submitting connect page, the popup
//! result page and a generic error page. No third-party resources; the only scripts are inline
//! and pinned by hash in the page's own Content-Security-Policy; nothing user-supplied is
//! reflected unescaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

fn script_hash(script: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
}

fn html(status: StatusCode, body: String, csp: String, coop: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static(coop));
    response
}

/// Escapes text for HTML bodies and attribute values.
pub fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// `GET /connect/{token}`: a page that submits itself as `POST /connect/{token}`, so a link
/// scanner that fetches the URL cannot burn the token. `provider_origin` is where the POST's
/// redirect goes (CSP `form-action` governs redirects after a form submission too). In popup
/// mode (`keep_opener`) it is served with COOP `unsafe-none`: a `same-origin` page here would
/// sever the popup from the app for good, and the result page could never post back.
pub fn self_submitting(token: &str, provider_origin: &str, keep_opener: bool) -> Response {
    let script = "document.getElementById('go').submit();";
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connecting…</title></head><body>\
         <form id=\"go\" method=\"post\" action=\"/connect/{token}\"><p>Connecting your account…</p>\
         <noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script>{script}</script></body></html>",
        token = escape(token),
    );
    let csp = format!(
        "default-src 'none'; script-src {}; form-action 'self' {}; base-uri 'none'; frame-ancestors 'none'",
        script_hash(script),
        provider_origin
    );
    html(StatusCode::OK, body, csp, if keep_opener { "unsafe-none" } else { "same-origin" })
}

/// The popup result page: posts `{patchbay_status, connection_id | error}` to the opener at
/// exactly `opener_origin`, then closes. COOP `unsafe-none` so the opener relation survives.
pub fn popup_result(opener_origin: &str, message: &serde_json::Value) -> Response {
    // JSON inside a script: `<` escaped so no `</script>` can end it early.
    let data = message.to_string().replace('<', "\\u003c");
    let origin = serde_json::Value::String(opener_origin.to_string()).to_string().replace('<', "\\u003c");
    let script = format!(
        "(function(){{var d={data};if(window.opener){{window.opener.postMessage(d,{origin});}}window.close();}})();"
    );
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connected</title></head><body>\
         <p>You can close this window.</p><script>{script}</script></body></html>"
    );
    let csp = format!(
        "default-src 'none'; script-src {}; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
        script_hash(&script)
    );
    html(StatusCode::OK, body, csp, "unsafe-none")
}

/// A generic error page for flows with no app to return to (unknown state, used link).
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connection failed</title></head><body>\
         <h1>Connection failed</h1><p>{}</p><p>Go back to the app and start again.</p></body></html>",
        escape(message)
    );
    html(
        status,
        body,
        "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'".into(),
        "same-origin",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("<script>\"x\"&'y'</script>"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
    }

    #[test]
    fn popup_payload_cannot_close_its_script() {
        let response = popup_result("https://app.example", &serde_json::json!({"error": "</script><script>alert(1)"}));
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert_eq!(response.headers()["cross-origin-opener-policy"], "unsafe-none");
    }
}
