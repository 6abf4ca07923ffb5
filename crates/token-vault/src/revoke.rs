//! Ending a provider grant (RFC 7009): what a disconnect asks of the provider.

use patchbay_oauth::{OAuthClient, ProviderConfig, RevokeVerdict, TokenSet, TokenTypeHint};

/// Revokes a token set's grant: the refresh token, which ends the whole grant (and its access
/// tokens) where the provider supports it, else the access token; a provider that refuses the
/// refresh token's type (`unsupported_token_type`) gets the access token instead (RFC 7009
/// §2.2.1). The caller reads the set after any refresh in flight has finished, so a refresh
/// token the provider just rotated is the one revoked (the one it replaced is already dead).
pub async fn revoke_grant(oauth: &OAuthClient, config: &ProviderConfig, set: &TokenSet) -> RevokeVerdict {
    let Some(refresh) = &set.refresh_token else {
        return oauth.revoke_verdict(config, &set.access_token, Some(TokenTypeHint::AccessToken)).await;
    };
    match oauth.revoke_verdict(config, refresh, Some(TokenTypeHint::RefreshToken)).await {
        RevokeVerdict::Failed { reason, .. } if reason == "unsupported_token_type" => {
            tracing::info!(provider = %config.id, "refresh token revocation unsupported; revoking the access token");
            oauth.revoke_verdict(config, &set.access_token, Some(TokenTypeHint::AccessToken)).await
        }
        verdict => verdict,
    }
}
