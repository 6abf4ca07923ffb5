//! Which provider-side grant a connection's tokens belong to, so callers can tell when two
//! connections (e.g. of two tenants) share one (security.md B8).

use std::fmt;

use crate::{
    identity::AccountIdentity,
    provider::{ProviderConfig, ProviderId},
};

/// A stable key for the provider-side grant behind a connection: provider, OAuth client, provider
/// account and provider user.
///
/// Two connections with the same key share one grant at the provider, or may — so revoking one
/// connection's tokens can end the other's:
///
/// - Google keeps one grant per user (`sub`) and OAuth client; a repeat consent (even with
///   `prompt=consent`, which issues a new refresh token) joins the same grant, and revoking any of
///   its tokens ends all of them (providers.md B5.3, B5.5).
/// - monday.com: the app's authorization is per user within an account and an uninstall ends
///   every token of the account; whether two authorizations by one user share revocation is
///   UNCONFIRMED (providers.md A1.6), so they are treated as one grant.
///
/// The key is built from ids only (never tokens), so it may be stored and logged. Its text is
/// `provider:client_id:account_id:user_id` with each part percent-encoded (no part can contain a
/// bare `:`), and an empty user part when the provider has no separate user id (Google: `sub` is
/// both). The format is stable: store it, compare it with `==`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantIdentity(String);

impl GrantIdentity {
    /// The key for a grant of `provider` to OAuth client `client_id`, held by provider account
    /// `account_id` (Google `sub`; monday.com `me.account.id`) and provider user `user_id`
    /// (monday.com `me.id`; `None` for Google).
    pub fn new(provider: ProviderId, client_id: &str, account_id: &str, user_id: Option<&str>) -> Self {
        let part = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        GrantIdentity(format!(
            "{}:{}:{}:{}",
            provider.as_str(),
            part(client_id),
            part(account_id),
            part(user_id.unwrap_or_default())
        ))
    }

    /// The key for the grant behind tokens of `provider` whose identity lookup gave `identity`.
    pub fn of(provider: &ProviderConfig, identity: &AccountIdentity) -> Self {
        Self::new(provider.id, &provider.client_id, &identity.account_id, identity.user_id.as_deref())
    }

    /// The key as text (for storage and comparison).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GrantIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<GrantIdentity> for String {
    fn from(key: GrantIdentity) -> Self {
        key.0
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::provider::MondayFlow;

    fn identity(account_id: &str, user_id: Option<&str>) -> AccountIdentity {
        AccountIdentity {
            account_id: account_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            name: Some("Ada".to_owned()),
            email: Some("ada@example.com".to_owned()),
        }
    }

    #[test]
    fn the_same_user_of_the_same_client_is_one_grant_whatever_the_display_fields() {
        let google = ProviderConfig::google("gid.apps.googleusercontent.com", SecretString::from("s"));
        let a = GrantIdentity::of(&google, &identity("1001", None));
        let mut renamed = identity("1001", None);
        renamed.name = Some("Ada L.".to_owned());
        renamed.email = None;

        assert_eq!(a, GrantIdentity::of(&google, &renamed));
        assert_eq!(a.as_str(), "google:gid.apps.googleusercontent.com:1001:");
        assert_eq!(a.to_string(), a.as_str());
    }

    #[test]
    fn provider_client_account_and_user_each_separate_grants() {
        let monday = ProviderConfig::monday("mid", SecretString::from("s"), MondayFlow::V2);
        let base = GrantIdentity::of(&monday, &identity("77", Some("501")));

        assert_eq!(base.as_str(), "monday:mid:77:501");
        assert_eq!(base, GrantIdentity::new(ProviderId::Monday, "mid", "77", Some("501")));
        assert_ne!(base, GrantIdentity::of(&monday, &identity("77", Some("502"))), "another user");
        assert_ne!(base, GrantIdentity::of(&monday, &identity("78", Some("501"))), "another account");
        assert_ne!(base, GrantIdentity::new(ProviderId::Monday, "other-app", "77", Some("501")), "another client");
        assert_ne!(base, GrantIdentity::new(ProviderId::Google, "mid", "77", Some("501")), "another provider");
    }

    #[test]
    fn separators_inside_ids_cannot_make_two_grants_collide() {
        let a = GrantIdentity::new(ProviderId::Monday, "app", "1:2", Some("3"));
        let b = GrantIdentity::new(ProviderId::Monday, "app", "1", Some("2:3"));
        let c = GrantIdentity::new(ProviderId::Google, "app", "1", None);
        let d = GrantIdentity::new(ProviderId::Google, "app", "1", Some(""));

        assert_ne!(a, b);
        assert_eq!(a.as_str().matches(':').count(), 3);
        assert_eq!(c, d, "no user id and an empty one are the same");
    }
}
