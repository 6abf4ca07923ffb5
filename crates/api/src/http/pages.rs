//! The few HTML pages Patchbay serves to browsers: the connect confirmation page, the popup
//! result page and a generic error page. No third-party resources; the only scripts are inline
//! and pinned by hash in the page's own Content-Security-Policy; nothing user-supplied is
//! reflected unescaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use patchbay_connect::Confirmation;
use patchbay_store::ConnectMode;
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

/// `GET /connect/{token}`: the confirmation page (architecture §4.1 step 2). It names the app,
/// the person the account will be connected for, the provider, and in plain words what Patchbay
/// will read and change, with one button that posts `POST /connect/{token}`. Nothing runs by
/// itself: a person sent someone else's link sees whose it is before consenting (connection
/// fixation), and a link scanner's GET consumes nothing. `form-action` allows the provider's
/// origin because the POST's redirect goes there. Popup sessions are served COOP
/// `unsafe-none`: a `same-origin` page here would sever the popup from the app for good.
pub fn confirmation(token: &str, c: &Confirmation) -> Response {
    let list = |items: &[&str]| items.iter().map(|i| format!("<li>{}</li>", escape(i))).collect::<String>();
    let writes = if c.writes.is_empty() {
        "<p>It will not change anything there.</p>".to_string()
    } else {
        format!("<p>It will also change:</p><ul>{}</ul>", list(&c.writes))
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Connect {provider} to {app}</title></head><body>\
         <h1>Connect {provider} to {app}</h1>\
         <p>You are connecting a {provider} account for <strong id=\"end-user\">{user}</strong>. \
         If that is not you, close this page.</p>\
         <p>{app} will read:</p><ul>{reads}</ul>{writes}\
         <form method=\"post\" action=\"/connect/{token}\"><button id=\"continue\" type=\"submit\">Continue to {provider}</button></form>\
         </body></html>",
        provider = escape(c.provider_name),
        app = escape(&c.app_name),
        user = escape(&c.end_user),
        reads = list(&c.reads),
        token = escape(token),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; base-uri 'none'; frame-ancestors 'none'",
        c.provider_origin
    );
    let keep_opener = c.session.mode == ConnectMode::Popup;
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
