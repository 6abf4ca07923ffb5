//! The authorization URL the browser is sent to (architecture §4.1 step 2).

use url::Url;

use crate::provider::{ProviderConfig, ProviderId};

impl ProviderConfig {
    /// The authorization URL for one request: `response_type=code`, `client_id`, the exact
    /// `redirect_uri`, the configured scopes (never the caller's), `state`, PKCE S256 where the
    /// provider takes it (Google, monday.com v2 — never monday.com legacy) and Google's extras
    /// (`access_type=offline`, `prompt=consent`, `include_granted_scopes=true`).
    ///
    /// Callers pass [`crate::Pkce::generate`]'s challenge; it is left out for monday.com legacy,
    /// whose authorization endpoint has no PKCE.
    pub fn authorize_url(&self, state: &str, pkce_challenge: Option<&str>, redirect_uri: &Url) -> Url {
        let mut url = self.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("scope", &self.scopes.join(" "))
                .append_pair("state", state);
            if let (true, Some(challenge)) = (self.uses_pkce(), pkce_challenge) {
                query.append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
            }
            if self.id == ProviderId::Google {
                query
                    .append_pair("access_type", "offline")
                    .append_pair("prompt", "consent")
                    .append_pair("include_granted_scopes", "true");
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use crate::{pkce::Pkce, provider::MondayFlow};

    use super::*;

    fn redirect(provider: &str) -> Url {
        Url::parse(&format!("https://patchbay.example/oauth/{provider}/callback")).unwrap()
    }

    fn params(url: &Url) -> Vec<(String, String)> {
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    fn single<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
        let mut values = params.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "`{key}` appears more than once");
        first
    }

    fn secret() -> SecretString {
        SecretString::from("client-secret-canary")
    }

    #[test]
    fn google_url_has_code_flow_pkce_s256_and_offline_extras() {
        let google = ProviderConfig::google("gid", secret());
        let pkce = Pkce::generate();
        let url = google.authorize_url("st4te", Some(&pkce.challenge), &redirect("google"));
        let p = params(&url);

        assert_eq!(url.host_str(), Some("accounts.google.com"));
        assert_eq!(url.path(), "/o/oauth2/v2/auth");
        assert_eq!(single(&p, "response_type"), Some("code"));
        assert_eq!(single(&p, "client_id"), Some("gid"));
        assert_eq!(single(&p, "redirect_uri"), Some("https://patchbay.example/oauth/google/callback"));
        assert_eq!(single(&p, "scope"), Some("openid email https://www.googleapis.com/auth/calendar.readonly"));
        assert_eq!(single(&p, "state"), Some("st4te"));
        assert_eq!(single(&p, "code_challenge"), Some(pkce.challenge.as_str()));
        assert_eq!(single(&p, "code_challenge_method"), Some("S256"));
        assert_eq!(single(&p, "access_type"), Some("offline"));
        assert_eq!(single(&p, "prompt"), Some("consent"));
        assert_eq!(single(&p, "include_granted_scopes"), Some("true"));
        assert!(!url.as_str().contains("client-secret-canary"));
    }

    #[test]
    fn monday_v2_url_has_pkce_and_no_google_extras() {
        let monday = ProviderConfig::monday("mid", secret(), MondayFlow::V2).with_write_back(true);
        let url = monday.authorize_url("s", Some("challenge-value"), &redirect("monday"));
        let p = params(&url);

        assert_eq!(url.as_str().split('?').next(), Some("https://auth.monday.com/oauth2/authorize"));
        assert_eq!(single(&p, "response_type"), Some("code"));
        assert_eq!(single(&p, "scope"), Some("me:read account:read boards:read webhooks:write boards:write"));
        assert_eq!(single(&p, "code_challenge"), Some("challenge-value"));
        assert_eq!(single(&p, "code_challenge_method"), Some("S256"));
        for extra in ["access_type", "prompt", "include_granted_scopes"] {
            assert_eq!(single(&p, extra), None, "{extra} is Google-only");
        }
    }

    #[test]
    fn monday_legacy_url_never_carries_pkce() {
        let monday = ProviderConfig::monday("mid", secret(), MondayFlow::Legacy);
        let url = monday.authorize_url("s", Some("challenge-value"), &redirect("monday"));
        let p = params(&url);

        assert_eq!(single(&p, "response_type"), Some("code"));
        assert_eq!(single(&p, "code_challenge"), None);
        assert_eq!(single(&p, "code_challenge_method"), None);
    }

    #[test]
    fn scope_comes_from_configuration_and_always_includes_the_required_scopes() {
        let google = ProviderConfig::google("gid", secret()).with_scopes(["profile", "email"]);
        let url = google.authorize_url("s", Some("c"), &redirect("google"));
        let p = params(&url);

        assert_eq!(single(&p, "scope"), Some("openid email https://www.googleapis.com/auth/calendar.readonly profile"));
    }

    #[test]
    fn write_back_off_removes_boards_write_from_requested_and_required_scopes() {
        let monday = ProviderConfig::monday("m", secret(), MondayFlow::V2).with_write_back(true).with_write_back(false);
        assert!(!monday.scopes.iter().any(|s| s == "boards:write"));
        assert!(!monday.required_scopes.iter().any(|s| s == "boards:write"));
    }

    #[test]
    fn redirect_uri_is_sent_exactly_as_configured() {
        let google = ProviderConfig::google("gid", secret());
        let exact = Url::parse("https://patchbay.example:8443/base/oauth/google/callback").unwrap();
        let url = google.authorize_url("s", Some("c"), &exact);
        assert_eq!(single(&params(&url), "redirect_uri"), Some(exact.as_str()));
    }
}
