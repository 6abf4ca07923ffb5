//! The provider fakes behave like the providers they stand in for, seen from an HTTP client that
//! follows no redirects.

mod google;
mod google_calendar;
mod monday;
mod monday_api;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use url::Url;

/// An HTTP client like the one under test: no redirects followed.
fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("build a client")
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!("verifier-{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// All values of a query parameter.
fn params(url: &Url, name: &str) -> Vec<String> {
    url.query_pairs().filter(|(k, _)| k == name).map(|(_, v)| v.into_owned()).collect()
}

/// The single value of a query parameter.
fn param(url: &Url, name: &str) -> Option<String> {
    params(url, name).into_iter().next()
}

/// The `Location` of a redirect.
fn location(response: &reqwest::Response) -> Url {
    let value = response.headers().get("location").expect("a Location header").to_str().expect("ASCII Location");
    Url::parse(value).expect("an absolute Location")
}

/// The consent request id in a consent page.
fn request_id(html: &str) -> String {
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).expect("a request_id field") + marker.len();
    html[start..].split('"').next().expect("a closing quote").to_owned()
}

/// What a browser submits for the consent page's ticked scope checkboxes.
fn ticked_scopes(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"checkbox\" name=\"scope\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .filter(|(_, after)| after.starts_with(" checked"))
        .map(|(value, _)| ("scope".to_owned(), value.to_owned()))
        .collect()
}

/// The claims of a JWT, unverified.
fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload")).expect("JSON claims")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
