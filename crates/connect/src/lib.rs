#![forbid(unsafe_code)]
//! Patchbay's connect flow (architecture §4.1) and disconnect (§4.6), with no HTTP framework:
//! the API crate turns what these functions return into responses.
//!
//! - [`Connect::create_session`]: the app starts a connect for one of its users.
//! - [`Connect::confirmation`]: what the confirmation page at `GET /connect/{token}` shows
//!   (never consumes the token).
//! - [`Connect::begin`]: `POST /connect/{token}` consumes the session, stores a single-use state
//!   with a sealed PKCE verifier, and answers the provider redirect and the per-state cookie.
//! - [`Connect::callback`]: consumes the state, checks provider, cookie binding and `iss`, then
//!   exchanges the code, looks the identity up, checks scopes, and saves everything in one
//!   transaction; [`answer`] says how the browser returns to the app.
//! - [`DisconnectJob`]: the job that revokes the grant (unless shared), and — whatever the
//!   provider said — destroys the credential and writes the tombstone.
//!
//! Ownership always comes from stored rows (session, state), never from the callback's query.

mod answer;
mod callback;
mod disconnect;
mod error;
mod session;
pub mod targets;

pub use answer::{answer, Answer, SessionStatus};
pub use callback::{CallbackQuery, Finished};
pub use disconnect::DisconnectJob;
pub use error::ConnectError;
pub use session::{cookie_name, Confirmation, CreatedSession, ProviderRedirect, SessionRequest, StateCookie};

use base64::Engine;
use patchbay_oauth::{OAuthClient, ProviderConfig, ProviderId, Registry};
use patchbay_store::Store;
use patchbay_token_vault::Tokens;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use url::Url;

/// How long a connect session's token is valid.
pub const SESSION_TTL_MINUTES: i64 = 10;
/// How long a state (and its cookie) is valid.
pub const STATE_TTL_MINUTES: i64 = 10;

/// What the connect flow needs to know about this deployment.
#[derive(Clone, Debug)]
pub struct ConnectSettings {
    /// `PATCHBAY_PUBLIC_URL`: redirect URIs and connect links are built from it.
    pub public_url: Url,
    /// `PATCHBAY_RETURN_TO_ORIGINS`: where a connect may send the browser back.
    pub return_to_origins: Vec<String>,
    /// `PATCHBAY_APP_NAME`: the product name the confirmation page shows.
    pub app_name: String,
}

/// The connect flow.
pub struct Connect {
    store: Arc<dyn Store>,
    tokens: Arc<Tokens>,
    oauth: Arc<OAuthClient>,
    registry: Registry,
    settings: ConnectSettings,
}

impl Connect {
    pub fn new(
        store: Arc<dyn Store>,
        tokens: Arc<Tokens>,
        oauth: Arc<OAuthClient>,
        registry: Registry,
        settings: ConnectSettings,
    ) -> Self {
        Self { store, tokens, oauth, registry, settings }
    }

    /// The deployment settings the flow runs with.
    pub fn settings(&self) -> &ConnectSettings {
        &self.settings
    }

    /// The configuration of an enabled provider.
    pub fn provider(&self, id: ProviderId) -> Result<&ProviderConfig, ConnectError> {
        self.registry.get(id).ok_or(ConnectError::ProviderDisabled(id))
    }

    /// The callback URL registered with each provider.
    pub fn redirect_uri(&self, provider: ProviderId) -> Url {
        let mut url = self.settings.public_url.clone();
        url.set_path(&format!("/oauth/{}/callback", provider.as_str()));
        url.set_query(None);
        url
    }

    fn secure(&self) -> bool {
        self.settings.public_url.scheme() == "https"
    }
}

/// A random URL-safe token of 32 bytes and its SHA-256 (what the store keeps).
pub fn random_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = sha256(&token);
    (token, digest)
}

/// SHA-256 of a token's text.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
