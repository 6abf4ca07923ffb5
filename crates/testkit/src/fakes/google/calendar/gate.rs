//! What every Calendar request passes before its handler: counting, injected latency, injected
//! failures, the access token and its scopes, and the per-user quota on the fake's clock.

use super::errors::{auth_error, insufficient_scopes, user_rate_limit, ApiError};
use super::state::QuotaRecord;
use crate::fakes::common::bearer;
use crate::fakes::google::Shared;
use axum::http::HeaderMap;
use std::time::Duration;

const AUTH: &str = "https://www.googleapis.com/auth/";
/// The quota window (providers.md B8: per-minute, sliding), unless a test shortened it.
const MINUTE: Duration = Duration::from_secs(60);

/// Which scopes a request needs: any one of them will do.
pub(crate) enum Need {
    CalendarList,
    Events,
}

impl Need {
    fn scopes(&self) -> &'static [&'static str] {
        match self {
            Need::CalendarList => {
                &["calendar", "calendar.readonly", "calendar.calendarlist", "calendar.calendarlist.readonly"]
            }
            Need::Events => &["calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly"],
        }
    }
}

/// The Google user a request acts for.
pub(crate) struct Caller {
    pub sub: String,
    pub email: String,
}

/// Admits a request to `path` or answers it: counted first, then delayed, then any queued
/// failure, then 401/403 for the token, then the per-user quota.
pub(crate) async fn admit(shared: &Shared, headers: &HeaderMap, path: &str, need: Need) -> Result<Caller, ApiError> {
    let latency = {
        let mut st = shared.lock().unwrap();
        let counters = &mut st.calendar.counters;
        counters.calls += 1;
        *counters.by_path.entry(path.to_owned()).or_default() += 1;
        st.calendar.switches.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut st = shared.lock().unwrap();
    let switches = &mut st.calendar.switches;
    let failure = if switches.failures.is_empty() {
        None
    } else if switches.pass_before_failures > 0 {
        switches.pass_before_failures -= 1;
        None
    } else {
        switches.failures.pop_front()
    };
    if let Some(failure) = failure {
        if failure.is_rate_limit() {
            st.calendar.counters.rate_limited += 1;
        }
        return Err(failure.error());
    }
    let Some(token) = bearer(headers, false).and_then(|t| st.live_access_token(&t)) else {
        return Err(auth_error());
    };
    if !need.scopes().iter().any(|s| token.scopes.contains(&format!("{AUTH}{s}"))) {
        return Err(insufficient_scopes());
    }
    let sub = token.sub.clone();
    let email = st.user(&sub).map_or_else(|| sub.clone(), |u| u.email.clone());
    let now = st.clock.now();
    let calendar = &mut st.calendar;
    if let Some(limit) = calendar.switches.user_quota {
        let length = calendar.switches.quota_window.unwrap_or(MINUTE);
        // Only admitted requests fill the window, so a client that waits a minute gets through.
        let window = calendar.counters.windows.entry(sub.clone()).or_default();
        while window.front().is_some_and(|at| now.duration_since(*at).unwrap_or_default() >= length) {
            window.pop_front();
        }
        let admitted = window.len() < limit;
        if admitted {
            window.push_back(now);
        }
        calendar.counters.quota_log.push(QuotaRecord { sub: sub.clone(), at: now, admitted });
        if !admitted {
            calendar.counters.rate_limited += 1;
            return Err(user_rate_limit());
        }
    }
    Ok(Caller { sub, email })
}
