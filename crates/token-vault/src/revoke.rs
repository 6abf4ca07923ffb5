//! Ending a provider grant (RFC 7009): what a disconnect asks of the provider.

use patchbay_oauth::{ErrorClass, OAuthClient, ProviderConfig, RevokeOutcome, TokenSet, TokenTypeHint};

/// What became of a grant Patchbay asked the provider to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantRevocation {
    /// The provider confirmed it.
    Revoked,
    /// The provider has no revocation (Monday's legacy tokens): the grant may still be live.
    NotSupported,
    /// A transient failure (5xx, 429, timeout): worth retrying; the grant may still be live.
    Retry(String),
    /// A definite refusal or an answer that cannot be trusted: retrying will not help; the grant
    /// may still be live.
    Failed(String),
}

impl GrantRevocation {
    /// Whether the grant is known to be dead.
    pub fn is_revoked(&self) -> bool {
        matches!(self, Self::Revoked)
    }
}

/// Revokes a token set's grant: the refresh token, which ends the whole grant (and its access
/// tokens) where the provider supports it, else the access token. The caller reads the set after
/// any refresh in flight has finished, so a refresh token the provider just rotated is the one
/// revoked (the one it replaced is already dead).
pub async fn revoke_grant(oauth: &OAuthClient, config: &ProviderConfig, set: &TokenSet) -> GrantRevocation {
    let (token, hint) = match &set.refresh_token {
        Some(refresh) => (refresh, TokenTypeHint::RefreshToken),
        None => (&set.access_token, TokenTypeHint::AccessToken),
    };
    match oauth.revoke(config, token, Some(hint)).await {
        Ok(RevokeOutcome::Revoked) => GrantRevocation::Revoked,
        Ok(RevokeOutcome::NotSupported) => GrantRevocation::NotSupported,
        Err(e) if matches!(e.class(), ErrorClass::Transient { .. } | ErrorClass::RateLimited { .. }) => {
            GrantRevocation::Retry(e.reason().to_string())
        }
        Err(e) => GrantRevocation::Failed(e.reason().to_string()),
    }
}
