//! The registry of enabled providers, at most one configuration each.

use crate::provider::{ProviderConfig, ProviderId};

/// The enabled providers, at most one configuration per [`ProviderId`].
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: Vec<ProviderConfig>,
}

impl Registry {
    /// An empty registry (no provider enabled).
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables `provider`, replacing any earlier configuration with the same id.
    pub fn with(mut self, provider: ProviderConfig) -> Self {
        self.providers.retain(|p| p.id != provider.id);
        self.providers.push(provider);
        self
    }

    /// The configuration of `id`, if that provider is enabled.
    pub fn get(&self, id: ProviderId) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// Every enabled provider.
    pub fn iter(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.providers.iter()
    }

    /// Whether no provider is enabled.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use crate::provider::MondayFlow;

    use super::*;

    #[test]
    fn enabling_a_provider_twice_keeps_the_last_configuration() {
        let registry = Registry::new()
            .with(ProviderConfig::monday("old", SecretString::from("s"), MondayFlow::Legacy))
            .with(ProviderConfig::monday("new", SecretString::from("s"), MondayFlow::V2));
        assert_eq!(registry.iter().count(), 1);
        assert_eq!(registry.get(ProviderId::Monday).map(|p| p.client_id.as_str()), Some("new"));
        assert!(registry.get(ProviderId::Google).is_none());
    }

    #[test]
    fn provider_names_round_trip_and_unknown_names_are_refused() {
        for id in [ProviderId::Google, ProviderId::Monday] {
            assert_eq!(id.as_str().parse::<ProviderId>(), Ok(id));
        }
        assert!("Google".parse::<ProviderId>().is_err(), "names are exact");
        assert!("github".parse::<ProviderId>().is_err());
        assert_eq!("v2".parse::<MondayFlow>(), Ok(MondayFlow::V2));
        assert!("v3".parse::<MondayFlow>().is_err());
    }

    #[test]
    fn built_in_endpoints_are_the_real_providers() {
        let google = ProviderConfig::google("g", SecretString::from("s"));
        assert_eq!(google.token_url.as_str(), "https://oauth2.googleapis.com/token");
        assert_eq!(google.identity_url.as_str(), "https://openidconnect.googleapis.com/v1/userinfo");
        assert_eq!(google.issuer, "https://accounts.google.com");
        let legacy = ProviderConfig::monday("m", SecretString::from("s"), MondayFlow::Legacy);
        assert_eq!(legacy.token_url.as_str(), "https://auth.monday.com/oauth2/token");
        assert!(legacy.revoke_url.is_none());
        let v2 = ProviderConfig::monday("m", SecretString::from("s"), MondayFlow::V2);
        assert_eq!(v2.token_url.as_str(), "https://auth.monday.com/oauth_ms/oauth/token");
        assert_eq!(v2.revoke_url.as_ref().map(|u| u.as_str()), Some("https://auth.monday.com/oauth_ms/oauth/revoke"));
        assert_eq!(v2.identity_url.as_str(), "https://api.monday.com/v2");
        assert_eq!(v2.issuer, "https://auth.monday.com");
    }
}
