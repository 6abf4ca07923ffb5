//! How the browser returns to the app after a callback, and how a polled session reads.

use crate::{Connect, ConnectError, STATE_TTL_MINUTES};
use patchbay_store::{ConnectMode, ConnectOutcome, ConnectSession, ConnectionId, ConnectionStatus, TenantScope};
use url::Url;

/// Where the browser goes after a callback.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Redirect mode: a 303 to this URL (`return_to` plus `patchbay_status`, …).
    Redirect(Url),
    /// Popup mode: a page that posts `message` to `window.opener` at exactly `origin`.
    Popup { origin: String, message: serde_json::Value },
    /// The session has no way back to the app (cannot happen for sessions this crate created).
    NoWayBack,
}

/// A session's state as the app polls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Pending,
    Connected(ConnectionId),
    /// `connection_id` is set when a connection was stored all the same (a partial grant).
    Failed {
        code: String,
        connection_id: Option<ConnectionId>,
    },
}

impl SessionStatus {
    fn of(outcome: &Result<ConnectionId, ConnectError>) -> Self {
        match outcome {
            Ok(id) => Self::Connected(*id),
            Err(e) => Self::Failed { code: e.code().to_string(), connection_id: e.connection_id() },
        }
    }

    /// The query pairs (and popup message fields) that tell the app the outcome.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Pending => vec![("patchbay_status", "pending".into())],
            Self::Connected(id) => vec![("patchbay_status", "connected".into()), ("connection_id", id.to_string())],
            Self::Failed { code, connection_id } => {
                let mut pairs = vec![("patchbay_status", "error".into()), ("error", code.clone())];
                if let Some(id) = connection_id {
                    pairs.push(("connection_id", id.to_string()));
                }
                pairs
            }
        }
    }
}

fn expired() -> SessionStatus {
    SessionStatus::Failed { code: "expired".into(), connection_id: None }
}

/// The browser's way back to the app for a finished callback.
pub fn answer(session: &ConnectSession, outcome: &Result<ConnectionId, ConnectError>) -> Answer {
    let pairs = SessionStatus::of(outcome).pairs();
    match (session.mode, &session.return_to, &session.opener_origin) {
        (ConnectMode::Redirect, Some(return_to), _) => match Url::parse(return_to) {
            Ok(mut target) => {
                target.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
                Answer::Redirect(target)
            }
            Err(_) => Answer::NoWayBack,
        },
        (ConnectMode::Popup, _, Some(origin)) => {
            let message: serde_json::Map<String, serde_json::Value> =
                pairs.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect();
            Answer::Popup { origin: origin.clone(), message: serde_json::Value::Object(message) }
        }
        _ => Answer::NoWayBack,
    }
}

impl Connect {
    /// How a session reads when polled. A session whose connection was stored with missing
    /// scopes reads as `insufficient_scope` with the connection id.
    pub async fn status(&self, session: &ConnectSession, now: chrono::DateTime<chrono::Utc>) -> SessionStatus {
        match &session.outcome {
            // Never opened in time, or opened and abandoned at the provider past the state's life.
            None if session.consumed_at.is_none() && session.expires_at <= now => expired(),
            None if session.consumed_at.is_some_and(|at| at + chrono::Duration::minutes(STATE_TTL_MINUTES) <= now) => {
                expired()
            }
            None => SessionStatus::Pending,
            Some(ConnectOutcome::Failed(code)) => SessionStatus::Failed { code: code.clone(), connection_id: None },
            Some(ConnectOutcome::Connected(id)) => {
                let scope = TenantScope::new(session.tenant_id);
                match self.store.get_connection(scope, *id).await {
                    Ok(c) if c.status == ConnectionStatus::InsufficientScope => SessionStatus::Failed {
                        code: ConnectError::InsufficientScope(*id).code().into(),
                        connection_id: Some(*id),
                    },
                    _ => SessionStatus::Connected(*id),
                }
            }
        }
    }
}
