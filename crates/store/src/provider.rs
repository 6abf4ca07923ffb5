//! The providers Patchbay connects to, and the token flow a credential was issued under.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A provider Patchbay can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Google (OAuth 2.0 web-server flow, Calendar API).
    Google,
    /// monday.com (legacy or OAuth 2.1 flow, GraphQL API v2).
    Monday,
}

impl ProviderId {
    /// Every provider, in a stable order.
    pub const ALL: [ProviderId; 2] = [Self::Google, Self::Monday];

    /// The provider's name in URLs, configuration and storage: `google` or `monday`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Monday => "monday",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is neither `google` nor `monday`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider: expected `google` or `monday`")]
pub struct UnknownProvider;

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "google" => Ok(Self::Google),
            "monday" => Ok(Self::Monday),
            _ => Err(UnknownProvider),
        }
    }
}

/// The token flow a credential was issued under: it names the provider and how to refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenFlow {
    /// Google's OAuth 2.0 tokens (expiring access token, long-lived refresh token).
    Google,
    /// monday.com's legacy tokens: never expire, no refresh token.
    MondayLegacy,
    /// monday.com's OAuth 2.1 tokens: expiring JWT access tokens, rotating refresh tokens.
    MondayV2,
}

impl TokenFlow {
    /// The name stored in `credential.flow`: `google`, `legacy` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::MondayLegacy => "legacy",
            Self::MondayV2 => "v2",
        }
    }

    /// The provider whose tokens these are.
    pub fn provider(self) -> ProviderId {
        match self {
            Self::Google => ProviderId::Google,
            Self::MondayLegacy | Self::MondayV2 => ProviderId::Monday,
        }
    }
}

impl fmt::Display for TokenFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored flow name that Patchbay does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token flow: expected `google`, `legacy` or `v2`")]
pub struct UnknownTokenFlow;

impl FromStr for TokenFlow {
    type Err = UnknownTokenFlow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "google" => Ok(Self::Google),
            "legacy" => Ok(Self::MondayLegacy),
            "v2" => Ok(Self::MondayV2),
            _ => Err(UnknownTokenFlow),
        }
    }
}
