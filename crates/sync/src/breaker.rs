//! Circuit breakers per connection and per provider (architecture §4.3). Only transient
//! failures (5xx, timeouts, connection errors) count; rate limits and permission errors do not.
//! An open breaker lets one probe through after its cooldown; a success closes it, a failed
//! probe reopens it with the cooldown doubled. State lives in the store, written on transitions.

use crate::SyncError;
use chrono::{DateTime, Utc};
use patchbay_store::{jobs::Clock, Breaker, BreakerPolicy, BreakerState, BudgetStore, ConnectionId, ProviderId};
use std::sync::Arc;

/// The breaker key of a connection.
pub fn connection_key(id: ConnectionId) -> String {
    format!("connection:{id}")
}

/// The breaker key of a provider.
pub fn provider_key(provider: ProviderId) -> String {
    format!("provider:{provider}")
}

/// Breakers over the store.
#[derive(Clone)]
pub struct Breakers {
    store: Arc<dyn BudgetStore>,
    policy: BreakerPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Breakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breakers").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Breakers {
    pub fn new(store: Arc<dyn BudgetStore>, policy: BreakerPolicy, clock: Arc<dyn Clock>) -> Self {
        Self { store, policy, clock }
    }

    /// Lets a call through each of `keys`, or answers [`SyncError::CircuitOpen`] with the time
    /// of the next probe. A breaker past its cooldown admits exactly one caller (the probe).
    pub async fn admit(&self, keys: &[String]) -> Result<(), SyncError> {
        let now = self.clock.now();
        for key in keys {
            if let Some(breaker) = self.store.breaker(key).await? {
                self.admit_one(&breaker, now).await?;
            }
        }
        Ok(())
    }

    async fn admit_one(&self, breaker: &Breaker, now: DateTime<Utc>) -> Result<(), SyncError> {
        let probe_at = breaker.next_probe_at.unwrap_or(now);
        match breaker.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open if now >= probe_at && self.store.breaker_try_probe(&breaker.key, now).await? => Ok(()),
            // Half-open: a probe is already out; wait for its verdict.
            BreakerState::Open | BreakerState::HalfOpen => {
                Err(SyncError::CircuitOpen(probe_at.max(now + chrono::Duration::seconds(1))))
            }
        }
    }

    /// A transient failure of a call that went through `keys`.
    pub async fn failure(&self, keys: &[String]) -> Result<(), SyncError> {
        let now = self.clock.now();
        for key in keys {
            let breaker = self.store.breaker_failure(key, self.policy, now).await?;
            if breaker.state == BreakerState::Open && breaker.consecutive_failures == self.policy.failure_threshold {
                tracing::warn!(breaker = %key, "circuit breaker opened");
                metrics::counter!("patchbay_breaker_opened_total").increment(1);
            }
        }
        Ok(())
    }

    /// A success of a call that went through `keys` (no write when already closed).
    pub async fn success(&self, keys: &[String]) -> Result<(), SyncError> {
        let now = self.clock.now();
        for key in keys {
            self.store.breaker_success(key, now).await?;
        }
        Ok(())
    }

    /// A breaker's current row (closed when it has none), for the connection API.
    pub async fn state(&self, key: &str) -> Result<Option<Breaker>, SyncError> {
        Ok(self.store.breaker(key).await?)
    }
}
