//! The fakes' HTML: a consent page with `approve`/`deny` buttons and an error page. Every
//! reflected value is escaped; nothing loads from elsewhere.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What the consent page shows and where its buttons post.
pub(crate) struct ConsentPage<'a> {
    pub provider: &'a str,
    pub client_id: &'a str,
    pub request_id: &'a str,
    pub approve_action: &'a str,
    pub deny_action: &'a str,
    /// Each requested scope and whether its checkbox starts ticked.
    pub scopes: Vec<(String, bool)>,
    /// `(value, label, selected)` per user the tester can pick.
    pub users: Vec<(String, String, bool)>,
    /// Serve with `Cross-Origin-Opener-Policy: same-origin`, which severs a popup's opener.
    pub sever_opener: bool,
}

impl ConsentPage<'_> {
    pub fn render(&self) -> Response {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>{} consent</h1><p>The application <b id=\"client\">{}</b> asks for:</p>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"request_id\" value=\"{}\"><ul>",
            escape(self.provider),
            escape(self.client_id),
            escape(self.approve_action),
            escape(self.request_id),
        );
        for (scope, ticked) in &self.scopes {
            let checked = if *ticked { " checked" } else { "" };
            let _ = write!(
                body,
                "<li><label><input type=\"checkbox\" name=\"scope\" value=\"{0}\"{checked}> {0}</label></li>",
                escape(scope)
            );
        }
        body.push_str("</ul><label>Account <select id=\"user\" name=\"user\">");
        for (value, label, selected) in &self.users {
            let selected = if *selected { " selected" } else { "" };
            let _ = write!(body, "<option value=\"{}\"{selected}>{}</option>", escape(value), escape(label));
        }
        let _ = write!(
            body,
            "</select></label><p><button id=\"approve\" type=\"submit\">Approve</button> \
             <button id=\"deny\" type=\"submit\" formaction=\"{}\">Deny</button></p></form>",
            escape(self.deny_action)
        );
        let mut response = page(StatusCode::OK, &format!("{} consent", self.provider), &body);
        if self.sever_opener {
            response
                .headers_mut()
                .insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
        }
        response
    }
}

/// An error page shown instead of redirecting (e.g. an unregistered `redirect_uri`).
pub(crate) fn error_page(status: StatusCode, error: &str, message: &str) -> Response {
    let body = format!(
        "<h1>Error {}: <span id=\"error\">{}</span></h1><p id=\"message\">{}</p>",
        status.as_u16(),
        escape(error),
        escape(message)
    );
    page(status, "Error", &body)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        html,
    )
        .into_response()
}
